// What the sample builder needs to know about a vocabulary: the GLM special
// token ids, which tokens end a sentence (GLM_SPEC.md 1.3) and the hash that
// names the tokenizer. GlmTokenizer::vocab() makes one from a trained
// tokenizer; tests build them by hand (e.g. with the reference's BERT ids).
//
// Thread-safety: plain values.
#ifndef GLM_DATALOADER_VOCAB_H_
#define GLM_DATALOADER_VOCAB_H_

#include <cstdint>
#include <string_view>
#include <vector>

namespace glm::dataloader {

// Ids of GLM's special tokens. The defaults are the fixed ids every glm
// tokenizer uses (docs/data-pipeline.md); pieces 11.. are the learned ones.
struct SpecialTokenIds {
  int32_t pad = 0;     // [PAD]: padding (never produced by encoding)
  int32_t unk = 1;     // [UNK]: unknown text
  int32_t cls = 2;     // [CLS]: starts every document in a raw sample (the reference's ENC)
  int32_t sep = 3;     // [SEP]: not used by pretraining; fine-tuning patterns
  int32_t mask = 4;    // [MASK]: token-level blank
  int32_t smask = 5;   // [sMASK]: sentence-level blank
  int32_t gmask = 6;   // [gMASK]: document-level blank
  int32_t sop = 7;     // [sop]: starts a Part-B span (the paper's [START])
  int32_t eop = 8;     // [eop]: ends a Part-B span's targets (the paper's [END])
  int32_t eod = 9;     // [eod]: ends every document (the reference's eos)
  int32_t dblock = 10; // [dBLOCK]: the reference's optional Part-B input masking
};

// The special tokens' strings, in id order 0..10.
inline constexpr std::string_view kSpecialTokenPieces[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[sMASK]",
    "[gMASK]", "[sop]", "[eop]", "[eod]", "[dBLOCK]"};
inline constexpr int32_t kNumSpecialTokens = 11;

// GLM_SPEC.md 1.3: a token ends a sentence if its vocabulary string contains
// any of . ? ! ; : or a newline, or the full-width 。？！； or …
bool PieceEndsSentence(std::string_view piece);

struct VocabInfo {
  SpecialTokenIds ids;
  int32_t vocab_size = 0;         // ids 0..vocab_size-1 can be produced
  int32_t padded_vocab_size = 0;  // vocab_size rounded up to a multiple of 128 (embedding rows)
  uint64_t hash = 0;              // the tokenizer's content hash (GlmTokenizer::hash())
  std::vector<uint8_t> ends_sentence;  // [vocab_size]: 1 if the piece ends a sentence

  bool EndsSentence(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < ends_sentence.size() && ends_sentence[id] != 0;
  }
};

// Rounds up to a multiple of 128 (the reference's --make-vocab-size-divisible-by).
constexpr int32_t PadVocabSize(int32_t n) { return (n + 127) / 128 * 128; }

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_VOCAB_H_
