// One training run on a sample store, in this process: GlmModel + the
// trainer core + the real seams (seams.h), a live progress line,
// checkpoints, a clean stop on request (Ctrl-C), then the held-out
// evaluation per objective against the unigram baselines and a few greedy
// blank-infilling examples (GLM_SPEC 7.3, with the model's KV cache).
//
// Run directory layout (<workdir>):
//   checkpoints/step-*/   docs/checkpoint-format.md (model.safetensors loads
//                         with `glm forward --weights`)
//   metrics.jsonl         docs/observability.md
//   eval.json             the final evaluation (docs/pretrain.md)
//
// Thread-safety: RunTraining runs on the calling thread (plus the trainer's
// prefetch and checkpoint threads); `stop` may be set from a signal handler.
#ifndef GLM_WORKER_TRAINING_TRAIN_RUN_H_
#define GLM_WORKER_TRAINING_TRAIN_RUN_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/glm_model.h"
#include "schema/records.h"
#include "storage/sample_store.h"
#include "worker/training/dataset.h"
#include "worker/training/pretrain_config.h"
#include "worker/trainer/trainer.h"

namespace glm::dataloader {
class GlmTokenizer;
}

namespace glm::training {

// What the trainer group (run by the coordinator: coordinator/
// trainer_group.h) tells a trainer at a step boundary.
struct BoundaryDecision {
  bool checkpoint = false;  // write a checkpoint of the state after this boundary's steps
  bool stop = false;        // leave: the group stops, or goes on without this trainer
  std::string reason;       // with stop
};

// A trainer group membership that a coordinator decides (glm train
// --coordinator without --world-size); cmd/ implements it over the wire.
// Besides the MembershipSource calls (switches at step boundaries, and a new
// generation after a failed collective) it admits the trainer, names the
// rendezvous store, and decides checkpoints and stops.
class TrainerGroupMembership : public trainer::MembershipSource {
 public:
  // Blocks until the group admits this trainer: its first membership.
  virtual StatusOr<trainer::Membership> Join() = 0;
  // At every step boundary, before the step: what to do there. `leaving`: the
  // trainer was asked to stop (SIGTERM). A switch it announces is returned by
  // PollChange(completed_steps).
  virtual StatusOr<BoundaryDecision> AtBoundary(int64_t completed_steps, bool leaving) = 0;
  // The c10d rendezvous store of every generation (after Join).
  virtual std::string store_host() const = 0;
  virtual int store_port() const = 0;
};

struct TrainRunOptions {
  PretrainConfig config;
  // The samples: exactly one of
  std::string store_dir;       // a RocksDbSampleStore directory with a dataset manifest (read-only), or
  std::string store_endpoint;  // a storage server (`glm store serve`) the pipeline is filling: the
                               // manifest and samples not yet there are waited for
  std::string keys_dir;        // Default: "" = plain TCP. Cluster keys (client.*, server.pub) for the
                               // storage server
  int64_t wait_for_data_ms = 600000;  // Default: 10 min. Longest wait for the manifest or one sample
  // Data parallel (Gloo): rank 0 hosts the rendezvous store on the port of
  // `rendezvous` ("host:port") and writes checkpoints, eval.json; every rank
  // writes metrics.jsonl into its own workdir.
  int64_t rank = 0;            // Default: 0
  int64_t world_size = 1;      // Default: 1
  std::string rendezvous = "127.0.0.1:29500";  // Default: 127.0.0.1:29500 (world size > 1 only)
  // Default: "" = the local address that routes to the rendezvous host. The
  // address other trainers reach this one at (Gloo's device).
  std::string gloo_host;
  // Default: none. When set, the coordinator's trainer group decides rank,
  // world size, rendezvous, membership changes, checkpoints and stops
  // (rank, world_size and rendezvous above are then unused). Not owned.
  TrainerGroupMembership* group = nullptr;
  // Called after every step with its metrics (e.g. reports to the
  // coordinator). Default: none.
  std::function<void(const trainer::StepMetrics&)> on_step;
  // Called after a checkpoint was started for the state after `step`, with
  // the time training was blocked by it. Default: none.
  std::function<void(int64_t step, double blocked_ms)> on_checkpoint;
  std::string workdir;     // Required: the run directory
  bool resume = false;     // Default: false: start from the latest checkpoint in workdir
  bool progress = true;    // Default: true: progress lines on stderr
  const std::atomic<bool>* stop = nullptr;  // Default: none: set to stop after the current step
  // Default: 0 = none. Stop as on `stop` once this step is reached (tests:
  // an interrupted run to resume).
  int64_t stop_at_step = 0;
};

struct ObjectiveEval {
  Objective objective = Objective::kBlank;
  double loss = 0;          // nats per loss token, held-out samples
  double tokens = 0;        // loss tokens evaluated
  double unigram = 0;       // unigram cross-entropy of the same targets
};

struct InfillExample {
  std::string context;                 // Part A around the blanks, "[MASK]" shown
  std::vector<std::string> truth;      // per blank, Part-B order
  std::vector<std::string> generated;  // greedy
};

struct TrainRunResult {
  int64_t start_step = 0;       // step the run started from (after a resume)
  int64_t final_step = 0;
  bool stopped = false;         // stopped early on request
  double first_loss = 0;        // training loss of the first step of this run
  double last_loss = 0;         // mean training loss of the last min(10, steps) steps
  double seconds = 0;           // training wall time
  std::string checkpoint;       // the last checkpoint written
  double unigram_entropy = 0;
  std::vector<ObjectiveEval> eval;
  std::vector<InfillExample> infill;

  std::string ToJson() const;
};

StatusOr<TrainRunResult> RunTraining(const TrainRunOptions& options);

// Held-out loss per objective over the validation samples of `manifest`.
StatusOr<std::vector<ObjectiveEval>> EvaluateHeldOut(model::GlmModel& model, storage::SampleStore& store,
                                                     const DatasetManifest& manifest, int64_t batch_size);

// Greedy infilling of every blank of `sample` (Part A as stored), blank after
// blank in the sample's Part-B order, with the KV cache.
StatusOr<InfillExample> InfillSample(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                     const Sample& sample, int64_t max_tokens_per_blank);

}  // namespace glm::training

#endif  // GLM_WORKER_TRAINING_TRAIN_RUN_H_
