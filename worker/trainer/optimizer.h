// AdamW with decoupled weight decay (GLM_SPEC 5.1), global-norm gradient
// clipping, and the rule that decides which parameters are decayed.
//
// The update for parameter p with gradient g, at update number t (1-based,
// t = completed optimizer steps + 1) and learning rate lr:
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p = p - lr * ( (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + wd * p )
// with wd = weight_decay for decayed parameters and 0 for the others. This is
// DeepSpeed FusedAdam in AdamW mode and torch.optim.AdamW (which applies the
// decay as p *= 1 - lr * wd before the Adam step: the same formula). We write
// the update ourselves (rather than torch::optim::AdamW) so that its state is
// plain named tensors we can checkpoint, broadcast and compare, and so that a
// step with lr = 0 (the first warmup step) still advances m, v and t exactly as
// the reference does. tests/worker/trainer checks it against
// torch::optim::AdamW.
//
// Speed: for contiguous float32/float64 CPU tensors each parameter's whole
// update (m, v, decay, step) is one parallel pass over its elements instead of
// ~8 LibTorch element-wise passes (those were 14% of a GLM-Base training step
// on 2 CPU cores); other tensors (GPU, non-contiguous, half precision) take
// the same update as LibTorch ops. This is glm's only AdamW: the trainer,
// `glm bench train` and the checkpoints' optimizer.safetensors all use it.
//
// Decay rule (reference glm_get_params_for_weight_decay_optimization): a
// parameter is NOT decayed when
//   (a) its own name (last dotted component) is "bias", or
//   (b) it belongs to a torch::nn::LayerNorm module, or
//   (c) its full name contains "layernorm" or "layer_norm" (case-insensitive;
//       GLM's reference names input_layernorm, post_attention_layernorm,
//       final_layernorm).
// Everything else is decayed, including embeddings.
//
// Thread-safety: not thread-safe; one owner (the Trainer) calls it.
// Ownership: holds references (shared tensor storage) to the parameters it
// updates; the module must outlive it.
#ifndef GLM_WORKER_TRAINER_OPTIMIZER_H_
#define GLM_WORKER_TRAINER_OPTIMIZER_H_

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace glm::trainer {

struct AdamWOptions {
  // Default: 0.9 (all GLM presets).
  double beta1 = 0.9;
  // Default: 0.98 (GLM-Base/Large; 2B/10B use 0.95).
  double beta2 = 0.98;
  // Default: 1e-6 (GLM-Base/Large; 2B/10B use 1e-8).
  double eps = 1e-6;
  // Decoupled weight decay coefficient. Default: 0.1.
  double weight_decay = 0.1;
  // Use the one-pass CPU update where it applies. false: always the LibTorch
  // ops (same maths; for side-by-side benchmarks). Default: true.
  bool fused = true;

  Status Validate() const;
};

// One trainable parameter with its dotted name and whether it is decayed.
struct NamedParameter {
  std::string name;
  torch::Tensor tensor;
  bool decay = true;
};

// The parameters of `module` that require grad, in named_parameters() order,
// with the decay rule above applied.
std::vector<NamedParameter> CollectParameters(torch::nn::Module& module);

// True when a parameter with this full name is exempt from weight decay by
// rules (a) and (c) (rule (b) needs the module; CollectParameters applies it).
bool NameExemptFromDecay(const std::string& name);

class AdamW {
 public:
  // Allocates m and v (zeros, like each parameter) eagerly so that the state
  // can be broadcast to a newcomer before its first step.
  AdamW(std::vector<NamedParameter> params, AdamWOptions options);

  // One update with learning rate `lr`, using each parameter's .grad()
  // (a parameter without a gradient is treated as having a zero gradient).
  void Step(double lr);

  // Completed updates t.
  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t t) { step_count_ = t; }

  const std::vector<NamedParameter>& parameters() const { return params_; }
  const AdamWOptions& options() const { return options_; }

  // State as named tensors: "exp_avg.<param>" and "exp_avg_sq.<param>". The
  // tensors alias the live state (clone them to snapshot).
  std::vector<std::pair<std::string, torch::Tensor>> StateTensors() const;

  // Copies state from named tensors (as StateTensors() names them); fails with
  // DataLoss when a name is missing or a shape differs.
  Status LoadState(const std::vector<std::pair<std::string, torch::Tensor>>& state,
                   int64_t step_count);

 private:
  std::vector<NamedParameter> params_;
  std::vector<torch::Tensor> exp_avg_;
  std::vector<torch::Tensor> exp_avg_sq_;
  AdamWOptions options_;
  int64_t step_count_ = 0;
};

// Scales all gradients so that their global L2 norm is at most max_norm
// (coefficient max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_)
// and returns the norm before clipping.
double ClipGradNorm(const std::vector<NamedParameter>& params, double max_norm);

}  // namespace glm::trainer

#endif  // GLM_WORKER_TRAINER_OPTIMIZER_H_
