#include "dataloader/sample_factory.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/options.h"
#include "dataloader/hash.h"
#include "dataloader/raw_sample.h"

namespace glm::dataloader {
namespace {

// Per-thread buffers so that the hot path allocates nothing once warm.
struct Scratch {
  std::vector<int32_t> doc;
  std::vector<int32_t> other;
  std::vector<int32_t> lengths;
  std::vector<int32_t> places;
  std::vector<int32_t> order;
  std::vector<int32_t> permutation;
  std::vector<Region> regions;
  std::vector<Span> spans;
  std::vector<Span> chosen;
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// Insertion sort by start: the spans of one region are already in order.
void SortSpans(std::vector<Span>* spans) {
  Span* v = spans->data();
  const size_t m = spans->size();
  for (size_t i = 1; i < m; ++i) {
    const Span x = v[i];
    size_t j = i;
    while (j > 0 && v[j - 1].first > x.first) {
      v[j] = v[j - 1];
      --j;
    }
    v[j] = x;
  }
}

// Stream ids: the attempt number in the low bits; the high bits are free for
// future independent streams.
constexpr uint32_t kAttemptStream = 0;

}  // namespace

Status SampleOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireAtLeast("seq-length", seq_length, 8));
  GLM_RETURN_IF_ERROR(RequireInRange("mask-ratio", mask_ratio, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("sentence-ratio", sentence_ratio, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("average-span-length", average_span_length, 0.1, 100.0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-span-length", max_span_length, 2));
  GLM_RETURN_IF_ERROR(RequireInRange("document-min-ratio", document_min_ratio, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("suffix-prob", suffix_prob, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("non-sentence-start", non_sentence_start, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("block-mask-prob", block_mask_prob, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("short-seq-prob", short_seq_prob, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("single-span-prob", single_span_prob, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-attempts", max_attempts, 1));
  return Status::Ok();
}

SampleFactory::SampleFactory(const DocumentSource* documents, VocabInfo vocab,
                             SampleOptions options)
    : documents_(documents),
      vocab_(std::move(vocab)),
      options_(options),
      lengths_(options.average_span_length, options.max_span_length) {
  Status s = options_.Validate();
  GLM_CHECK(s.ok()) << s;
  GLM_CHECK(documents_ != nullptr);
  base_key_ = HashCombine(HashCombine(HashCombine(Hash64("glm-sample-v1"), documents_->manifest_hash()),
                                      vocab_.hash),
                          options_.seed);
}

uint64_t SampleFactory::Key(Objective o, uint32_t epoch) const {
  return HashCombine(HashCombine(base_key_, static_cast<uint64_t>(o)), epoch);
}

StatusOr<Sample> SampleFactory::Make(Objective o, uint32_t epoch, uint64_t index) const {
  Sample sample;
  GLM_RETURN_IF_ERROR(MakeInto(o, epoch, index, &sample));
  return sample;
}

Status SampleFactory::MakeInto(Objective o, uint32_t epoch, uint64_t index, Sample* out) const {
  Scratch& s = ThreadScratch();
  const SpecialTokenIds& ids = vocab_.ids;
  const uint64_t key = Key(o, epoch);
  RawSampleOptions raw_options;
  raw_options.seq_length = options_.seq_length;
  raw_options.non_sentence_start = options_.non_sentence_start;
  out->objective = o;
  out->epoch = epoch;
  out->index = index;
  out->tokenizer_hash = vocab_.hash;
  out->suffix_layout = false;

  for (int32_t attempt = 0; attempt < options_.max_attempts; ++attempt) {
    const bool last_attempt = attempt + 1 == options_.max_attempts;
    SampleRng rng(key, kAttemptStream + static_cast<uint32_t>(attempt), index);
    // The raw sample is built straight into out->source (no copy).
    std::vector<int32_t>& raw = out->source;
    GLM_RETURN_IF_ERROR(BuildRawSample(*documents_, vocab_, raw_options, &rng, &s.doc, &raw));
    if (options_.short_seq_prob > 0 && rng.Bernoulli(options_.short_seq_prob)) {
      ShortenRawSample(vocab_, options_.seq_length, &rng, &raw, &s.other);
    }
    const int32_t* x = raw.data();
    const int32_t n = static_cast<int32_t>(raw.size());

    switch (o) {
      case Objective::kBlank: {
        // 2.3: lengths until they reach floor(ratio * n), one shuffle (the
        // reference's two successive shuffles are one uniform permutation).
        s.lengths.clear();
        if (options_.single_span_prob > 0 && rng.Bernoulli(options_.single_span_prob)) {
          s.lengths.push_back(lengths_.Draw(&rng));
        } else {
          const int32_t budget = static_cast<int32_t>(options_.mask_ratio * n);
          int32_t total = 0;
          while (total < budget) {
            const int32_t l = lengths_.Draw(&rng);
            s.lengths.push_back(l);
            total += l;
          }
        }
        rng.Shuffle(s.lengths.data(), static_cast<uint32_t>(s.lengths.size()));
        ComputeRegions(x, n, ids, &s.regions);
        const int32_t placed =
            PlaceSpans(s.regions, s.lengths, options_.mask_ratio, &rng, &s.spans, &s.places);
        if (placed < static_cast<int32_t>(s.lengths.size()) && !last_attempt) continue;
        // Spans come out sorted within each region: sorting is nearly free,
        // and Part B's random order is a shuffled permutation of them.
        SortSpans(&s.spans);
        s.permutation.resize(s.spans.size());
        for (size_t j = 0; j < s.spans.size(); ++j) s.permutation[j] = static_cast<int32_t>(j);
        if (options_.shuffle_spans) {
          rng.Shuffle(s.permutation.data(), static_cast<uint32_t>(s.permutation.size()));
        }
        BuildBlockSampleSorted(x, n, s.spans, s.permutation, ids.mask, ids,
                               options_.block_mask_prob, &rng, &s.order, out);
        break;
      }
      case Objective::kSentence: {
        // 2.5: shuffled sentences until they cover floor(ratio * n) tokens.
        SentenceSpans(x, n, vocab_, &s.spans);
        rng.Shuffle(s.spans.data(), static_cast<uint32_t>(s.spans.size()));
        const int32_t threshold = static_cast<int32_t>(options_.sentence_ratio * n);
        s.chosen.clear();
        int32_t covered = 0;
        for (const Span& span : s.spans) {
          s.chosen.push_back(span);
          covered += span.second - span.first;
          if (covered >= threshold) break;
        }
        // The reference shuffles the chosen sentences again for Part B: a
        // uniform permutation of them, applied here to their sorted order.
        SortSpans(&s.chosen);
        s.permutation.resize(s.chosen.size());
        for (size_t j = 0; j < s.chosen.size(); ++j) s.permutation[j] = static_cast<int32_t>(j);
        if (options_.shuffle_spans) {
          rng.Shuffle(s.permutation.data(), static_cast<uint32_t>(s.permutation.size()));
        }
        BuildBlockSampleSorted(x, n, s.chosen, s.permutation,
                               options_.task_masks ? ids.smask : ids.mask, ids, 0.0, &rng,
                               &s.order, out);
        break;
      }
      case Objective::kDocument: {
        // 2.6 with G drawn per sample from U{floor(r n), n - 2}.
        const int32_t hi = n - 2 >= 1 ? n - 2 : 1;
        int32_t lo = static_cast<int32_t>(options_.document_min_ratio * n);
        if (lo > hi) lo = hi;
        if (lo < 1) lo = 1;
        const int32_t g = rng.UniformInt(lo, hi);
        const int32_t mask_id = options_.task_masks ? ids.gmask : ids.mask;
        bool multiple_documents = false;
        for (int32_t i = 0; i < n; ++i) {
          if (x[i] == ids.eod) {
            multiple_documents = i != n - 1;
            break;
          }
        }
        if (n < 3 || multiple_documents || rng.Bernoulli(options_.suffix_prob)) {
          BuildSuffixSample(x, n, g, mask_id, ids, out);
          out->suffix_layout = true;
        } else {
          s.lengths.assign(1, g);
          ComputeRegions(x, n, ids, &s.regions);
          const int32_t placed = PlaceSpans(s.regions, s.lengths, options_.mask_ratio, &rng,
                                            &s.spans, &s.places);
          GLM_CHECK_EQ(placed, 1) << "a single-document span of " << g << " in n = " << n;
          s.permutation.assign(1, 0);
          BuildBlockSampleSorted(x, n, s.spans, s.permutation, mask_id, ids, 0.0, &rng, &s.order,
                                 out);
        }
        break;
      }
    }
    return Status::Ok();
  }
  return InternalError("unreachable: no attempt produced a sample");
}

}  // namespace glm::dataloader
