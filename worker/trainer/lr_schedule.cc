#include "worker/trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "common/options.h"

namespace glm::trainer {

StatusOr<DecayStyle> ParseDecayStyle(const std::string& name) {
  if (name == "cosine") return DecayStyle::kCosine;
  if (name == "linear") return DecayStyle::kLinear;
  if (name == "constant") return DecayStyle::kConstant;
  return InvalidArgumentError("unknown lr decay style '" + name +
                              "'; use cosine, linear or constant");
}

Status LrScheduleOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireInRange("lr", lr, 0.0, 1e3));
  GLM_RETURN_IF_ERROR(RequireAtLeast("lr-decay-steps", decay_steps, 1));
  GLM_RETURN_IF_ERROR(RequireInRange("warmup", warmup_fraction, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("lr-decay-ratio", decay_ratio, 0.0, 1.0));
  return Status::Ok();
}

double LearningRate(const LrScheduleOptions& o, int64_t completed_steps) {
  const double t = static_cast<double>(completed_steps);
  const double d = static_cast<double>(o.decay_steps);
  const double w = o.warmup_fraction * d;
  if (w > 0 && t <= w) return o.lr * t / w;
  if (o.style == DecayStyle::kConstant) return o.lr;
  const double r = o.decay_ratio;
  const double progress = d > w ? (t - w) / (d - w) : 1.0;
  if (o.style == DecayStyle::kCosine) {
    constexpr double kPi = 3.14159265358979323846;
    return o.lr * (r + (1 - r) * (1 + std::cos(kPi * std::min(1.0, progress))) / 2);
  }
  return o.lr * (1 - (1 - r) * progress);
}

}  // namespace glm::trainer
