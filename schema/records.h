// Plain C++ forms of the records that flow through glm's data path: a
// tokenized document and a model-ready GLM sample. The Cap'n Proto schemas in
// this folder are their stored and wire forms; storage/ and dataloader/
// convert between the two. No LibTorch here: trainers turn samples into
// tensors in model/.
//
// Thread-safety: plain values.
#ifndef GLM_SCHEMA_RECORDS_H_
#define GLM_SCHEMA_RECORDS_H_

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace glm {

// GLM's three pretraining objectives (GLM_SPEC.md sections 2.3, 2.5, 2.6).
enum class Objective : uint8_t {
  kBlank = 0,     // token-level spans, [MASK]
  kSentence = 1,  // whole sentences, [sMASK]
  kDocument = 2,  // one long span, [gMASK]
};
inline constexpr int kNumObjectives = 3;

inline std::string_view ObjectiveName(Objective o) {
  switch (o) {
    case Objective::kBlank: return "blank";
    case Objective::kSentence: return "sentence";
    case Objective::kDocument: return "document";
  }
  return "unknown";
}

// One tokenized document of the corpus (GLM_SPEC.md 1.1), end-of-document
// token included.
struct Document {
  uint64_t id = 0;                      // dense index in the corpus manifest, 0..N-1
  std::vector<int32_t> tokens;          // token ids, ending with the eod token
  std::vector<uint8_t> sentence_end;    // per token: 1 if it ends a sentence (GLM_SPEC 1.3)
};

// One model-ready training sample (GLM_SPEC.md 2.4-2.6), unpadded.
struct Sample {
  Objective objective = Objective::kBlank;
  uint32_t epoch = 0;
  uint64_t index = 0;                   // sample index within (objective, epoch)
  uint64_t tokenizer_hash = 0;          // content hash of the tokenizer the ids belong to
  std::vector<int32_t> source;          // the raw sample x (starts with [CLS]), length n
  std::vector<std::pair<int32_t, int32_t>> spans;  // [start, end) in source, Part-B order
  bool suffix_layout = false;           // document objective's prefix-LM layout (2.6)
  std::vector<int32_t> tokens;          // Part A ++ Part B input ids, length S
  std::vector<int32_t> targets;         // length S
  std::vector<uint8_t> loss_mask;       // length S; 1 where the loss counts
  std::vector<int32_t> position_ids;    // length S, row 0 of the 2-D positions
  std::vector<int32_t> block_position_ids;  // length S, row 1
  int32_t sep = 0;                      // length of Part A: row i attends j < sep or j <= i
};

}  // namespace glm

#endif  // GLM_SCHEMA_RECORDS_H_
