// The GLM pretraining loss (GLM_SPEC.md 2.7, pretrain_glm.py: forward_step):
// per-token cross-entropy of the logits (in float32 or wider) against the
// targets, loss = sum(ce * loss_mask) / sum(loss_mask) over the whole
// micro-batch (a token average, not a per-sample average), plus the same sums
// split by each row's objective.
//
// Only positions with loss_mask != 0 are projected to the vocabulary (their
// hidden states are gathered first): the reference computes logits at every
// position, but Part A never has loss, so this is the same number for a
// fraction of the work.
//
// Thread-safety: pure functions.
#ifndef GLM_MODEL_LOSS_H_
#define GLM_MODEL_LOSS_H_

#include <torch/torch.h>

#include <array>

#include "model/batch.h"
#include "model/glm_model.h"
#include "schema/records.h"

namespace glm::model {

struct LossOutput {
  torch::Tensor loss;  // scalar, differentiable; 0 when the batch has no loss tokens
  // Per objective (index = glm::Objective): sum of ce * loss_mask and the
  // number of loss tokens (sum of loss_mask). Detached host values.
  std::array<double, kNumObjectives> objective_loss_sum{};
  std::array<double, kNumObjectives> objective_tokens{};
  double tokens = 0;  // sum of loss_mask over the batch
};

// From full logits (B, S, V) (any float dtype; computed in at least float32).
LossOutput LossFromLogits(const torch::Tensor& logits, const Batch& batch);

// From final hidden states (B, S, H): gathers the loss positions and
// projects them with model->Logits(). Same value as LossFromLogits(model
// forward) up to float rounding.
LossOutput LossFromHidden(GlmModel& model, const torch::Tensor& hidden, const Batch& batch);

// Runs the model and the loss: the trainer's forward.
LossOutput ComputeLoss(GlmModel& model, const Batch& batch);

}  // namespace glm::model

#endif  // GLM_MODEL_LOSS_H_
