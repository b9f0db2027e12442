// GLM_SPEC.md 1.2: one raw sample of at most seq_length tokens, a sequence of
// "[CLS] text... [eod]" documents chosen by length-weighted token position,
// cut to start and end at sentence boundaries where the rules allow.
//
// Thread-safety: pure function of its arguments (the source must allow
// concurrent reads).
#ifndef GLM_DATALOADER_RAW_SAMPLE_H_
#define GLM_DATALOADER_RAW_SAMPLE_H_

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "dataloader/document_source.h"
#include "dataloader/philox.h"
#include "dataloader/vocab.h"

namespace glm::dataloader {

struct RawSampleOptions {
  int32_t seq_length = 512;       // Default: 512 (the reference's --seq-length)
  double non_sentence_start = 0;  // Default: 0 (probability of keeping a long document's random cut)
};

// How many leading tokens of seq[0..size) right_strip_seq keeps for `limit`:
// cut the surplus, then keep cutting until the last kept token ends a
// sentence, unless that leaves fewer than limit/2 tokens (then cut exactly).
// `at(i)` returns token i.
template <typename At>
int32_t RightStripKeep(int32_t size, int32_t limit, const VocabInfo& vocab, At at) {
  int32_t strip = size - limit;
  if (strip <= 0) return size;
  while (strip < size - 1 && !vocab.EndsSentence(at(size - strip - 1))) ++strip;
  if (size - strip < limit / 2) strip = size - limit;
  return size - strip;
}

// Builds the raw sample into *out (cleared first), drawing from *rng in a
// fixed order. `doc_scratch` is passed to DocumentSource::ReadDocument.
Status BuildRawSample(const DocumentSource& documents, const VocabInfo& vocab,
                      const RawSampleOptions& options, SampleRng* rng,
                      std::vector<int32_t>* doc_scratch, std::vector<int32_t>* out);

// The reference's short-sequence piece (2.2, --short-seq-prob), one piece per
// sample: target length uniform in [32, seq_length - 1), start and end moved
// to sentence starts; replaces *x (which starts with [CLS]).
void ShortenRawSample(const VocabInfo& vocab, int32_t seq_length, SampleRng* rng,
                      std::vector<int32_t>* x, std::vector<int32_t>* scratch);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_RAW_SAMPLE_H_
