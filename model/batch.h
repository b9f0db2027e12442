// Batch: a micro-batch of GLM samples as tensors, the trainer's model input.
//
// CollateSamples right-pads rows to the longest sample exactly as the
// reference's pad_batch (GLM_SPEC.md 2.7): token 0, target 0, loss mask 0,
// position 0, block position 0. Padding comes after Part B, so real tokens
// never attend it (Part B is causal); its loss mask is 0.
//
// Thread-safety: plain values; CollateSamples is a pure function.
#ifndef GLM_MODEL_BATCH_H_
#define GLM_MODEL_BATCH_H_

#include <torch/torch.h>

#include <vector>

#include "common/status.h"
#include "schema/records.h"

namespace glm::model {

struct Batch {
  torch::Tensor tokens;              // (B, S) int64
  torch::Tensor position_ids;        // (B, S) int64
  torch::Tensor block_position_ids;  // (B, S) int64
  torch::Tensor sep;                 // (B) int64: row i attends j < sep or j <= i
  torch::Tensor targets;             // (B, S) int64
  torch::Tensor loss_mask;           // (B, S) float32, 0/1
  torch::Tensor objective;           // (B) int64: 0 blank, 1 sentence, 2 document

  int64_t batch_size() const { return tokens.defined() ? tokens.size(0) : 0; }
  int64_t seq_length() const { return tokens.defined() ? tokens.size(1) : 0; }

  // A copy on `device` (CPU tensors stay shared when device is CPU).
  Batch To(const torch::Device& device) const;
};

// Pads and stacks `samples` (at least one). Every sample must have equal
// lengths of tokens / targets / loss_mask / position_ids /
// block_position_ids and 0 <= sep <= length; otherwise InvalidArgument naming
// the sample (objective, epoch, index) and the field.
StatusOr<Batch> CollateSamples(const std::vector<Sample>& samples);

}  // namespace glm::model

#endif  // GLM_MODEL_BATCH_H_
