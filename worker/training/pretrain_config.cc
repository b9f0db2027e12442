#include "worker/training/pretrain_config.h"

#include "common/options.h"

namespace glm::training {
Status PretrainConfig::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("preset", model_preset));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("corpus", corpus));
  GLM_RETURN_IF_ERROR(RequireInRange("vocab-size", vocab_size, 32, 1 << 20));
  GLM_RETURN_IF_ERROR(RequireInRange("seq-length", seq_length, 16, 1 << 16));
  GLM_RETURN_IF_ERROR(RequireAtLeast("heldout-every", heldout_every, 2));
  GLM_RETURN_IF_ERROR(RequireAtLeast("validation-samples", validation_samples, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-steps", max_steps, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("global-batch-size", global_batch_size, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("micro-batch-size", micro_batch_size, 1));
  GLM_RETURN_IF_ERROR(RequireInRange("lr", lr, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("warmup", warmup, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireOneOf("decay", decay, {"cosine", "linear", "constant"}));
  GLM_RETURN_IF_ERROR(RequireInRange("min-lr-ratio", min_lr_ratio, 0.0, 1.0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("checkpoint-every", checkpoint_every, 0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("keep-checkpoints", keep_checkpoints, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("threads", threads, 0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("infill-examples", infill_examples, 0));
  double total = 0;
  for (double w : objective_weights) {
    if (!(w >= 0)) return InvalidArgumentError("objectives: weights must be >= 0");
    total += w;
  }
  if (total <= 0) return InvalidArgumentError("objectives: enable at least one of blank, sentence, document");
  return Status::Ok();
}

}  // namespace glm::training
