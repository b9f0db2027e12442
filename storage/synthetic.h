// Synthetic records for tests and `glm bench store`: deterministic functions
// of their key, shaped like real GLM samples (Part A + Part B of seq_len
// tokens) but not built by the GLM corruption algorithm.
//
// Thread-safety: pure functions.
#ifndef GLM_STORAGE_SYNTHETIC_H_
#define GLM_STORAGE_SYNTHETIC_H_

#include <cstdint>

#include "schema/records.h"

namespace glm::storage {

// A sample of `seq_len` tokens whose every field depends on (o, e, i).
Sample MakeSyntheticSample(Objective objective, uint32_t epoch, uint64_t index, int seq_len);

// A document of `num_tokens` tokens with a sentence end every 17 tokens.
Document MakeSyntheticDocument(uint64_t id, int num_tokens);

}  // namespace glm::storage

#endif  // GLM_STORAGE_SYNTHETIC_H_
