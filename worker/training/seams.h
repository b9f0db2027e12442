// The real seams of the trainer core (worker/trainer/trainer.h) for GLM:
//
//   StoreBatchSource   reads a micro batch's samples from a SampleStore (a
//                      local RocksDbSampleStore or a StoreClient) with one
//                      ranged read per run of consecutive indices, and
//                      collates them with model::CollateSamples.
//   MakeGlmLoss        runs GlmModel and model::ComputeLoss; returns the summed
//                      loss and the per-objective breakdown.
//   GlmModelWriter /   model.safetensors with the reference names and the
//   GlmModelReader     GlmConfig in __metadata__ (so `glm forward --weights`
//                      loads a checkpoint directly).
//   JsonlMetricsSink   appends one metrics.jsonl line per step in the format
//                      docs/observability.md describes, and calls an optional
//                      progress callback.
//
// Ownership: StoreBatchSource borrows the store (it must outlive the source).
// Thread-safety: StoreBatchSource::Load is called from the trainer's
// prefetch thread only; the store is thread-safe. JsonlMetricsSink is called
// from the trainer thread.
#ifndef GLM_WORKER_TRAINING_SEAMS_H_
#define GLM_WORKER_TRAINING_SEAMS_H_

#include <cstdio>
#include <functional>
#include <string>

#include "common/status.h"
#include "model/glm_config.h"
#include "model/glm_model.h"
#include "storage/sample_store.h"
#include "worker/trainer/trainer.h"

namespace glm::training {

class StoreBatchSource : public trainer::BatchSource {
 public:
  // wait_for_samples_ms > 0: a sample not (yet) in the store is waited for,
  // polling, up to that long (a store the pipeline is still filling; the wait
  // shows as the trainer's data wait), then DeadlineExceeded naming it.
  // 0: a missing sample is an error at once.
  explicit StoreBatchSource(storage::SampleStore* store, int64_t wait_for_samples_ms = 0)
      : store_(store), wait_ms_(wait_for_samples_ms) {}

  // Fills tokens, position_ids, block_position_ids, sep, targets, loss_mask,
  // objective (model::Batch's tensors), loss_weight = loss-mask tokens and
  // num_tokens = B * S. A sample whose stored objective/epoch/index differs
  // from the requested slot is DataLoss.
  Status Load(trainer::MicroBatch* batch) override;

 private:
  storage::SampleStore* store_;
  int64_t wait_ms_;
};

// The loss seam: model must be the GlmModel the trainer was given.
trainer::LossFunction MakeGlmLoss(model::GlmModel model);

// model.safetensors via model/safetensors.h with `config` in __metadata__.
trainer::ModelWriter GlmModelWriter(const model::GlmConfig& config);
trainer::ModelReader GlmModelReader();

class JsonlMetricsSink : public trainer::MetricsSink {
 public:
  using Progress = std::function<void(const trainer::StepMetrics&)>;
  // Appends to `path` (created if missing). A resumed run appends lines whose
  // step restarts lower, which docs/observability.md defines as a resume.
  static StatusOr<std::unique_ptr<JsonlMetricsSink>> Open(const std::string& path, Progress progress);
  ~JsonlMetricsSink() override;

  void OnStep(const trainer::StepMetrics& metrics) override;

  // The line written for `metrics` (no newline): the trainer's
  // StepMetricsToJson fields plus tokens_per_second and time_ms.
  static std::string Line(const trainer::StepMetrics& metrics, int64_t unix_ms);

 private:
  JsonlMetricsSink(std::FILE* file, Progress progress) : file_(file), progress_(std::move(progress)) {}
  std::FILE* file_;
  Progress progress_;
};

}  // namespace glm::training

#endif  // GLM_WORKER_TRAINING_SEAMS_H_
