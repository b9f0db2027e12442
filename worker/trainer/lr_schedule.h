// Learning-rate schedule of GLM pretraining (GLM_SPEC 5.1, reference
// learning_rates.py: AnnealingLR).
//
// With D = decay_steps, W = warmup_fraction * D (a fraction of the decay
// length, not of the training length) and t = the number of optimizer steps
// already completed (the first update uses t = 0, so lr = 0 in warmup):
//   warmup  (W > 0 and t <= W):  lr = lr_max * t / W
//   cosine  (t > W):  lr = lr_max * (r + (1 - r) * (1 + cos(pi * min(1, (t - W) / (D - W)))) / 2)
//   linear  (t > W):  lr = lr_max * (1 - (1 - r) * (t - W) / (D - W))   (not clamped after D)
//   constant:         lr = lr_max after warmup
// where r = decay_ratio. When D == W the decay phase has length zero and the
// schedule jumps to its end value (cosine: r * lr_max; linear: r * lr_max).
//
// Thread-safety: a value; LearningRate() is a pure function.
#ifndef GLM_WORKER_TRAINER_LR_SCHEDULE_H_
#define GLM_WORKER_TRAINER_LR_SCHEDULE_H_

#include <cstdint>
#include <string>

#include "common/status.h"

namespace glm::trainer {

enum class DecayStyle { kCosine, kLinear, kConstant };

// "cosine" / "linear" / "constant" -> DecayStyle; others InvalidArgument.
StatusOr<DecayStyle> ParseDecayStyle(const std::string& name);

struct LrScheduleOptions {
  // Peak learning rate lr_max. Default: 1e-4.
  double lr = 1e-4;
  // D: steps over which the rate decays (reference --lr-decay-iters).
  // Default: 1000.
  int64_t decay_steps = 1000;
  // W / D (reference --warmup). Default: 0.01.
  double warmup_fraction = 0.01;
  // Default: kCosine.
  DecayStyle style = DecayStyle::kCosine;
  // r: final rate as a fraction of lr_max (reference --lr-decay-ratio).
  // Default: 0.1.
  double decay_ratio = 0.1;

  Status Validate() const;
};

// lr for the update that follows `completed_steps` completed optimizer steps.
double LearningRate(const LrScheduleOptions& options, int64_t completed_steps);

}  // namespace glm::trainer

#endif  // GLM_WORKER_TRAINER_LR_SCHEDULE_H_
