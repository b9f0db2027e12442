#include "model/loss.h"

namespace glm::model {
namespace {

// ce: (M) per-token losses already multiplied by their mask; rows: (M) row of
// each; mask: (M) mask values.
void FillObjectives(const torch::Tensor& weighted_ce, const torch::Tensor& mask, const torch::Tensor& rows,
                    const Batch& batch, LossOutput* out) {
  torch::NoGradGuard no_grad;
  torch::Tensor objective = batch.objective.to(torch::kCPU).to(torch::kInt64);  // (B)
  torch::Tensor obj = objective.index_select(0, rows.to(torch::kCPU));         // (M)
  torch::Tensor loss_sum = torch::zeros({kNumObjectives}, torch::kFloat64)
                               .index_add_(0, obj, weighted_ce.detach().to(torch::kCPU).to(torch::kFloat64));
  torch::Tensor count = torch::zeros({kNumObjectives}, torch::kFloat64)
                            .index_add_(0, obj, mask.detach().to(torch::kCPU).to(torch::kFloat64));
  for (int o = 0; o < kNumObjectives; ++o) {
    out->objective_loss_sum[o] = loss_sum[o].item<double>();
    out->objective_tokens[o] = count[o].item<double>();
  }
}

torch::Tensor AtLeastFloat32(const torch::Tensor& t) {
  return (t.scalar_type() == torch::kFloat64) ? t : t.to(torch::kFloat32);
}

LossOutput Finish(const torch::Tensor& weighted_ce, const torch::Tensor& mask, const torch::Tensor& rows,
                  const Batch& batch) {
  LossOutput out;
  torch::Tensor total = weighted_ce.sum();
  out.tokens = mask.sum().item<double>();
  // As the reference: divide only when there are loss tokens.
  out.loss = out.tokens > 0 ? total / out.tokens : total;
  FillObjectives(weighted_ce, mask, rows, batch, &out);
  return out;
}

}  // namespace

LossOutput LossFromLogits(const torch::Tensor& logits, const Batch& batch) {
  const int64_t b = logits.size(0), s = logits.size(1), v = logits.size(2);
  torch::Tensor flat = AtLeastFloat32(logits).reshape({b * s, v});  // (B*S, V)
  torch::Tensor ce = torch::nn::functional::cross_entropy(
      flat, batch.targets.reshape({b * s}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (B*S)
  torch::Tensor mask = batch.loss_mask.reshape({b * s}).to(ce.scalar_type());    // (B*S)
  torch::Tensor rows = torch::arange(b, torch::kInt64).repeat_interleave(s);     // (B*S)
  return Finish(ce * mask, mask, rows, batch);
}

LossOutput LossFromHidden(GlmModel& model, const torch::Tensor& hidden, const Batch& batch) {
  const int64_t b = hidden.size(0), s = hidden.size(1), h = hidden.size(2);
  torch::Tensor mask_all = batch.loss_mask.reshape({b * s});           // (B*S)
  torch::Tensor index = torch::nonzero(mask_all != 0).reshape({-1});    // (M)
  torch::Tensor selected = hidden.reshape({b * s, h}).index_select(0, index.to(hidden.device()));  // (M, H)
  torch::Tensor logits = AtLeastFloat32(model->Logits(selected));      // (M, V)
  torch::Tensor targets = batch.targets.reshape({b * s}).index_select(0, index);  // (M)
  torch::Tensor ce = torch::nn::functional::cross_entropy(
      logits, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (M)
  torch::Tensor mask = mask_all.index_select(0, index).to(ce.scalar_type());  // (M)
  torch::Tensor rows = torch::div(index, s, "floor");                          // (M)
  return Finish(ce * mask, mask, rows, batch);
}

LossOutput ComputeLoss(GlmModel& model, const Batch& batch) {
  torch::Tensor hidden = model->Hidden(batch.tokens, batch.position_ids, batch.block_position_ids, batch.sep);
  return LossFromHidden(model, hidden, batch);
}

}  // namespace glm::model
