// The pieces of GLM's blank-infilling sample construction (GLM_SPEC.md
// 2.3-2.6), as pure functions over token arrays. SampleFactory strings them
// together; tests call them one by one (e.g. the spec's worked example 2.8).
//
// Conventions: `x` is a raw sample of `n` tokens starting with [CLS]; a Span
// is a half-open [start, end) in x's coordinates. Output arrays are written
// into a glm::Sample whose vectors are resized (their capacity is reused).
//
// Thread-safety: pure functions; SpanLengthSampler is immutable.
#ifndef GLM_DATALOADER_BLOCKS_H_
#define GLM_DATALOADER_BLOCKS_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "dataloader/philox.h"
#include "dataloader/vocab.h"
#include "schema/records.h"

namespace glm::dataloader {

using Span = std::pair<int32_t, int32_t>;  // [start, end)

// Span lengths of the token-level objective (2.3): Poisson(lambda) truncated
// to 1..max_length_exclusive-1 and renormalised. The weights are computed by
// the recurrence w_k = w_{k-1} * lambda / k (IEEE-exact everywhere) and turned
// into 32-bit thresholds, so a draw is one random word and a short scan.
class SpanLengthSampler {
 public:
  explicit SpanLengthSampler(double lambda = 3.0, int32_t max_length_exclusive = 40);

  int32_t Draw(SampleRng* rng) const {
    const uint64_t u = rng->NextU32();
    // Start at the first length whose threshold can exceed u (by its top
    // byte), then scan: about one comparison per draw.
    int32_t k = first_candidate_[u >> 24];
    while (u >= thresholds_[k]) ++k;
    return k + 1;
  }
  // The normalised probability of length k (0 outside 1..max-1).
  double Probability(int32_t k) const;
  int32_t max_length() const { return static_cast<int32_t>(thresholds_.size()); }

 private:
  std::vector<uint64_t> thresholds_;  // [max-1]: cumulative probability * 2^32, last = 2^32
  std::vector<int32_t> first_candidate_;  // [256]: first k with thresholds_[k] > (b << 24)
  std::vector<double> probabilities_;
};

// A maskable stretch of the raw sample: [offset, offset + length).
struct Region {
  int32_t offset = 0;
  int32_t length = 0;
};

// 2.3 step 2: the per-document regions of x, cut at every `eod`, skipping a
// [CLS] right after an eod, excluding every eod and (for the region running
// to the end of x) the last token; sorted by length ascending, ties in
// reverse document order (the reference enumerates from the end and sorts
// stably). Writes into *regions (cleared first).
void ComputeRegions(const int32_t* x, int32_t n, const SpecialTokenIds& ids,
                    std::vector<Region>* regions);

// 2.3 steps 3-4: places `lengths` (in list order) into the sorted regions.
// Every region but the last (longest) takes lengths from the front while
// their sum stays <= floor(ratio * region length); the longest takes the
// rest while they fit with one unmasked token between spans. Within a
// region spans keep list order left to right at uniformly drawn gaps.
// Writes the placed spans (in list order) into *spans and returns how many
// lengths were placed (== lengths.size() unless the sample must be dropped).
int32_t PlaceSpans(const std::vector<Region>& regions, const std::vector<int32_t>& lengths,
                   double ratio, SampleRng* rng, std::vector<Span>* spans,
                   std::vector<int32_t>* scratch);

// 2.5: the sentence candidates of x, left to right: a sentence ends at a token
// whose piece ends a sentence; an eod restarts without emitting; the trailing
// fragment is a candidate. Writes into *spans (cleared first).
void SentenceSpans(const int32_t* x, int32_t n, const VocabInfo& vocab, std::vector<Span>* spans);

// 2.4 make_block_data: Part A (x with each span replaced by `mask_id` at the
// span's collapsed position) followed by Part B (the spans in the given
// order, each [sop] + span -> span + [eop], positions = its mask's position,
// block positions 1..len+1). `spans` are in Part-B order, non-overlapping.
// With dblock_prob > 0 each Part-B input token after [sop] becomes [dBLOCK]
// with that probability (the reference's --block-mask-prob). Fills
// out->tokens, targets, loss_mask, position_ids, block_position_ids, sep and
// spans; `order` is scratch.
void BuildBlockSample(const int32_t* x, int32_t n, const std::vector<Span>& spans,
                      int32_t mask_id, const SpecialTokenIds& ids, double dblock_prob,
                      SampleRng* rng, std::vector<int32_t>* order, Sample* out);

// The same with the spans given sorted by start and Part B's order as a
// permutation: Part B's j-th span is sorted[permutation[j]]. The hot path:
// no sorting. `mask_positions` is scratch.
void BuildBlockSampleSorted(const int32_t* x, int32_t n, const std::vector<Span>& sorted,
                            const std::vector<int32_t>& permutation, int32_t mask_id,
                            const SpecialTokenIds& ids, double dblock_prob, SampleRng* rng,
                            std::vector<int32_t>* mask_positions, Sample* out);

// 2.6 suffix (prefix-LM) layout with generated length g (1 <= g <= n-1):
// x[0:D] + [gMASK, sop] + x[D:n-1] -> x[0:D] + [gMASK] + x[D:n], D = n - g,
// loss on x[D:n] where the raw sample's mask is 1 (every token but [CLS]).
void BuildSuffixSample(const int32_t* x, int32_t n, int32_t g, int32_t mask_id,
                       const SpecialTokenIds& ids, Sample* out);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_BLOCKS_H_
