#include "dataloader/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/check.h"

namespace glm::dataloader {

SpanLengthSampler::SpanLengthSampler(double lambda, int32_t max_length_exclusive) {
  GLM_CHECK(lambda > 0 && max_length_exclusive >= 2)
      << "lambda " << lambda << ", max length " << max_length_exclusive;
  // Unnormalised Poisson weights lambda^k / k!: the exp(-lambda) factor
  // cancels in the renormalisation, and the recurrence uses only IEEE basic
  // operations, so every machine computes the same thresholds.
  std::vector<double> w;
  double wk = 1.0, total = 0.0;
  for (int32_t k = 1; k < max_length_exclusive; ++k) {
    wk = wk * lambda / k;
    w.push_back(wk);
    total += wk;
  }
  double cum = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    probabilities_.push_back(w[i] / total);
    cum += w[i];
    uint64_t t = static_cast<uint64_t>(std::floor(cum / total * 4294967296.0));
    if (i + 1 == w.size() || t > (1ULL << 32)) t = 1ULL << 32;
    thresholds_.push_back(t);
  }
  first_candidate_.resize(256);
  for (uint64_t b = 0; b < 256; ++b) {
    int32_t k = 0;
    while (thresholds_[k] <= (b << 24)) ++k;
    first_candidate_[b] = k;
  }
}

double SpanLengthSampler::Probability(int32_t k) const {
  if (k < 1 || k > static_cast<int32_t>(probabilities_.size())) return 0.0;
  return probabilities_[k - 1];
}

void ComputeRegions(const int32_t* x, int32_t n, const SpecialTokenIds& ids,
                    std::vector<Region>* regions) {
  regions->clear();
  // Walk the eod positions from the end, as the reference does with
  // reversed([-1] + eod positions).
  int32_t last = n;
  for (int32_t index = n - 1;; --index) {
    while (index >= 0 && x[index] != ids.eod) --index;  // index = previous eod or -1
    int32_t start = index;
    if (start + 1 < n && x[start + 1] == ids.cls) ++start;
    int32_t length = last - start - 1;
    if (last == n && length > 0) --length;
    regions->push_back(Region{start + 1, length < 0 ? 0 : length});
    last = index;
    if (index < 0) break;
  }
  // Stable insertion sort by length (few regions; keeps the reference's ties).
  for (size_t i = 1; i < regions->size(); ++i) {
    Region r = (*regions)[i];
    size_t j = i;
    while (j > 0 && (*regions)[j - 1].length > r.length) {
      (*regions)[j] = (*regions)[j - 1];
      --j;
    }
    (*regions)[j] = r;
  }
}

namespace {

// sample_spans: m lengths into [offset, offset + length) at uniform gaps.
void SampleSpansInRegion(const int32_t* lengths, int32_t m, int32_t region_length, int32_t offset,
                         SampleRng* rng, std::vector<Span>* spans, std::vector<int32_t>* places) {
  int32_t sum = 0;
  for (int32_t i = 0; i < m; ++i) sum += lengths[i];
  const int32_t free_slots = region_length - sum - m + 1;  // m' in the spec
  places->resize(m);
  for (int32_t i = 0; i < m; ++i) {
    (*places)[i] = static_cast<int32_t>(rng->Uniform(static_cast<uint32_t>(free_slots) + 1u));
  }
  // Insertion sort: m is small.
  for (int32_t i = 1; i < m; ++i) {
    const int32_t v = (*places)[i];
    int32_t j = i;
    while (j > 0 && (*places)[j - 1] > v) {
      (*places)[j] = (*places)[j - 1];
      --j;
    }
    (*places)[j] = v;
  }
  for (int32_t i = 0; i < m; ++i) {
    const int32_t start = offset + (*places)[i];
    spans->emplace_back(start, start + lengths[i]);
    offset += lengths[i] + 1;
  }
}

}  // namespace

int32_t PlaceSpans(const std::vector<Region>& regions, const std::vector<int32_t>& lengths,
                   double ratio, SampleRng* rng, std::vector<Span>* spans,
                   std::vector<int32_t>* scratch) {
  spans->clear();
  const int32_t total = static_cast<int32_t>(lengths.size());
  int32_t next = 0;
  for (size_t r = 0; r < regions.size(); ++r) {
    const Region& region = regions[r];
    int32_t sum = 0, count = 0;
    if (r + 1 == regions.size()) {
      while (next + count < total && lengths[next + count] + sum + count <= region.length) {
        sum += lengths[next + count];
        ++count;
      }
    } else {
      const int32_t budget = static_cast<int32_t>(region.length * ratio);
      while (next + count < total && lengths[next + count] + sum <= budget) {
        sum += lengths[next + count];
        ++count;
      }
    }
    if (count > 0) {
      SampleSpansInRegion(lengths.data() + next, count, region.length, region.offset, rng, spans,
                          scratch);
      next += count;
    }
  }
  return next;
}

void SentenceSpans(const int32_t* x, int32_t n, const VocabInfo& vocab, std::vector<Span>* spans) {
  spans->clear();
  int32_t last = (n > 0 && x[0] == vocab.ids.cls) ? 1 : 0;
  for (int32_t i = 0; i < n; ++i) {
    if (vocab.EndsSentence(x[i])) {
      if (last < i + 1) spans->emplace_back(last, i + 1);
      last = i + 1;
    } else if (x[i] == vocab.ids.eod) {
      last = i + 1;
    }
  }
  if (last < n) spans->emplace_back(last, n);
}

void BuildBlockSample(const int32_t* x, int32_t n, const std::vector<Span>& spans,
                      int32_t mask_id, const SpecialTokenIds& ids, double dblock_prob,
                      SampleRng* rng, std::vector<int32_t>* order, Sample* out) {
  // Sort a copy by start and express the given order as a permutation of it.
  const int32_t m = static_cast<int32_t>(spans.size());
  std::vector<Span> sorted(spans);
  std::sort(sorted.begin(), sorted.end());
  std::vector<int32_t> permutation(m);
  for (int32_t j = 0; j < m; ++j) {
    permutation[j] = static_cast<int32_t>(
        std::lower_bound(sorted.begin(), sorted.end(), spans[j]) - sorted.begin());
  }
  BuildBlockSampleSorted(x, n, sorted, permutation, mask_id, ids, dblock_prob, rng, order, out);
}

void BuildBlockSampleSorted(const int32_t* x, int32_t n, const std::vector<Span>& sorted,
                            const std::vector<int32_t>& permutation, int32_t mask_id,
                            const SpecialTokenIds& ids, double dblock_prob, SampleRng* rng,
                            std::vector<int32_t>* mask_positions, Sample* out) {
  const int32_t m = static_cast<int32_t>(sorted.size());
  int32_t masked = 0;
  for (const Span& s : sorted) masked += s.second - s.first;
  const int32_t sep = n - masked + m;
  const int32_t total = sep + masked + m;  // n + 2m
  out->spans.resize(m);
  for (int32_t j = 0; j < m; ++j) out->spans[j] = sorted[permutation[j]];
  out->sep = sep;
  out->tokens.resize(total);
  out->targets.resize(total);
  out->loss_mask.resize(total);
  out->position_ids.resize(total);
  out->block_position_ids.resize(total);
  int32_t* tok = out->tokens.data();
  int32_t* tgt = out->targets.data();
  uint8_t* loss = out->loss_mask.data();
  int32_t* pos = out->position_ids.data();
  int32_t* blk = out->block_position_ids.data();

  // Part A: the text with each span replaced by one mask; positions 0..sep-1
  // (so a span's collapsed position is its mask's index in Part A).
  mask_positions->resize(m);
  int32_t a = 0, last = 0;
  for (int32_t k = 0; k < m; ++k) {
    const Span& s = sorted[k];
    std::memcpy(tok + a, x + last, sizeof(int32_t) * (s.first - last));
    a += s.first - last;
    (*mask_positions)[k] = a;
    tok[a++] = mask_id;
    last = s.second;
  }
  std::memcpy(tok + a, x + last, sizeof(int32_t) * (n - last));
  a += n - last;
  GLM_CHECK_EQ(a, sep);
  std::memcpy(tgt, tok, sizeof(int32_t) * sep);
  std::memset(loss, 0, sep);
  std::memset(blk, 0, sizeof(int32_t) * sep);
  for (int32_t i = 0; i < sep; ++i) pos[i] = i;

  // Part B in permutation order: [sop] + span -> span + [eop].
  int32_t b = sep;
  for (int32_t j = 0; j < m; ++j) {
    const int32_t k = permutation[j];
    const Span& s = sorted[k];
    const int32_t len = s.second - s.first;
    const int32_t mask_pos = (*mask_positions)[k];
    tok[b] = ids.sop;
    std::memcpy(tok + b + 1, x + s.first, sizeof(int32_t) * len);
    std::memcpy(tgt + b, x + s.first, sizeof(int32_t) * len);
    if (dblock_prob > 0) {
      for (int32_t i = 0; i < len; ++i) {
        if (rng->Bernoulli(dblock_prob)) tok[b + 1 + i] = ids.dblock;
      }
    }
    tgt[b + len] = ids.eop;
    for (int32_t i = 0; i <= len; ++i) {
      loss[b + i] = 1;
      pos[b + i] = mask_pos;
      blk[b + i] = i + 1;
    }
    b += len + 1;
  }
  GLM_CHECK_EQ(b, total);
}

void BuildSuffixSample(const int32_t* x, int32_t n, int32_t g, int32_t mask_id,
                       const SpecialTokenIds& ids, Sample* out) {
  GLM_CHECK(g >= 1 && g <= n - 1) << "generated length " << g << " for n = " << n;
  const int32_t d = n - g;
  const int32_t total = n + 1;
  out->spans.assign(1, Span(d, n));
  out->sep = d + 1;
  out->tokens.resize(total);
  out->targets.resize(total);
  out->loss_mask.resize(total);
  out->position_ids.resize(total);
  out->block_position_ids.resize(total);
  int32_t* tok = out->tokens.data();
  int32_t* tgt = out->targets.data();
  uint8_t* loss = out->loss_mask.data();
  int32_t* pos = out->position_ids.data();
  int32_t* blk = out->block_position_ids.data();
  std::memcpy(tok, x, sizeof(int32_t) * d);
  std::memcpy(tgt, x, sizeof(int32_t) * d);
  std::memset(loss, 0, d);
  std::memset(blk, 0, sizeof(int32_t) * d);
  for (int32_t i = 0; i < d; ++i) pos[i] = i;
  tok[d] = tgt[d] = mask_id;
  loss[d] = 0;
  pos[d] = d;
  blk[d] = 0;
  tok[d + 1] = ids.sop;
  std::memcpy(tok + d + 2, x + d, sizeof(int32_t) * (g - 1));
  std::memcpy(tgt + d + 1, x + d, sizeof(int32_t) * g);
  for (int32_t i = 0; i < g; ++i) {
    loss[d + 1 + i] = x[d + i] != ids.cls ? 1 : 0;
    pos[d + 1 + i] = d;
    blk[d + 1 + i] = i + 1;
  }
}

}  // namespace glm::dataloader
