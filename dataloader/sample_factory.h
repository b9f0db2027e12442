// SampleFactory: model-ready GLM samples as a pure function of
// (corpus manifest, tokenizer, seed, objective, epoch, index).
//
//   SampleFactory factory(&documents, tokenizer.vocab(), options);
//   Sample s;
//   GLM_RETURN_IF_ERROR(factory.MakeInto(Objective::kBlank, epoch, index, &s));
//
// Each call builds a raw sample (GLM_SPEC.md 1.2) and corrupts it with one
// objective (2.3-2.6), drawing every random number from a Philox stream keyed
// by Hash(manifest hash, tokenizer hash, seed, objective, epoch) with counter
// (attempt, index): the same bytes whatever thread, process or order makes
// it. Where the reference decides per micro-batch, this decides per sample
// (docs/data-pipeline.md, "Deviations"):
//   * the document objective draws its length G per sample from
//     U{floor(r n), n - 2};
//   * a token-level sample whose spans do not fit (the reference drops it
//     from the batch) is redrawn from scratch with the next attempt counter,
//     up to max_attempts; the last attempt keeps the spans that fit;
//   * short sequences (off by default) replace a sample by one piece.
//
// Ownership: the factory borrows `documents`, which must outlive it.
// Thread-safety: Make/MakeInto are const and safe to call concurrently (each
// thread uses its own scratch buffers).
#ifndef GLM_DATALOADER_SAMPLE_FACTORY_H_
#define GLM_DATALOADER_SAMPLE_FACTORY_H_

#include <cstdint>

#include "common/status.h"
#include "dataloader/blocks.h"
#include "dataloader/document_source.h"
#include "dataloader/vocab.h"
#include "schema/records.h"

namespace glm::dataloader {

struct SampleOptions {
  int32_t seq_length = 512;          // Default: 512. Raw sample length limit n <= seq_length.
  uint64_t seed = 1;                 // Default: 1. The job seed, part of every sample's key.
  double mask_ratio = 0.15;          // Default: 0.15. Token-level: mask >= floor(ratio * n) tokens.
  double sentence_ratio = 0.15;      // Default: 0.15. Sentence-level: whole sentences to this share.
  double average_span_length = 3.0;  // Default: 3. Poisson lambda of token-level span lengths.
  int32_t max_span_length = 40;      // Default: 40, exclusive: lengths are 1..39.
  double document_min_ratio = 0.5;   // Default: 0.5. Document-level G >= floor(r n); 0.25 for 2B/10B.
  double suffix_prob = 0.5;          // Default: 0.5. Document-level: suffix layout share of
                                     //   single-document samples (the reference's gpt_infill_prob).
  bool task_masks = true;            // Default: true: [sMASK]/[gMASK]; false: [MASK] for all three.
  bool shuffle_spans = true;         // Default: true: Part B in random order; false: left to right.
  double non_sentence_start = 0.0;   // Default: 0. Chance to keep a long document's random cut.
  double block_mask_prob = 0.0;      // Default: 0 (off). [dBLOCK] on token-level Part-B inputs.
  double short_seq_prob = 0.0;       // Default: 0 (off). Chance of a short-sequence piece.
  double single_span_prob = 0.0;     // Default: 0 (off). Token-level: chance of one span only.
  int32_t max_attempts = 16;         // Default: 16. Redraws of a token-level sample that does not fit.

  Status Validate() const;
};

class SampleFactory {
 public:
  // CHECKs options.Validate(); call it first for a Status.
  SampleFactory(const DocumentSource* documents, VocabInfo vocab, SampleOptions options);

  // Sample `index` of objective `o` in epoch `epoch`.
  StatusOr<Sample> Make(Objective o, uint32_t epoch, uint64_t index) const;
  // The same into *out, reusing its vectors' capacity (the hot path).
  Status MakeInto(Objective o, uint32_t epoch, uint64_t index, Sample* out) const;

  // The Philox key of (objective, epoch).
  uint64_t Key(Objective o, uint32_t epoch) const;

  const SampleOptions& options() const { return options_; }
  const VocabInfo& vocab() const { return vocab_; }

 private:
  const DocumentSource* documents_;
  VocabInfo vocab_;
  SampleOptions options_;
  SpanLengthSampler lengths_;
  uint64_t base_key_;
};

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_SAMPLE_FACTORY_H_
