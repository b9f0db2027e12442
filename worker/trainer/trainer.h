// The data-parallel trainer: pulls its slice of every fixed global batch
// through a prefetch thread, runs forward/backward per micro batch, all-reduces
// gradients, clips, steps AdamW on the spec's LR schedule, emits per-step
// metrics, writes checkpoints, and survives membership changes.
//
// Seams (docs/trainer.md shows how GlmModel plugs in):
//   torch::nn::Module   any module; the trainer never calls forward itself.
//   BatchSource         turns the SampleRefs of a micro batch into tensors
//                       (the real one reads the sample store and collates).
//   LossFunction        runs the model on a MicroBatch and returns the summed
//                       loss and its normaliser weight, per objective.
//   CommunicatorFactory builds the process group of a membership generation.
//   MembershipSource    tells the trainer about joins and losses.
//   MetricsSink         receives StepMetrics (the coordinator writes metrics.jsonl).
//   CheckpointManager   writes and reads checkpoints (optional).
//
// Loss normalisation: the optimised objective of step k is
//   sum over the global batch of per-token losses / sum of normaliser weights
// (the weights, e.g. loss-mask token counts, are known from the data before
// forward and summed over ranks with one all-reduce), so the gradient does
// not depend on world size or micro batch size up to float rounding.
//
// State machine of one trainer:
//
//        Start(m)                      step ok
//   NEW ─────────► RUNNING ◄──────────────────────┐
//                    │  ▲                          │
//    PollChange()=m' │  │ Join(m') + SyncState     │
//    (step boundary) ▼  │                          │
//               RECONFIGURING ◄── AwaitChange() ◄── step aborted (collective failed)
//
// SyncState: ranks all-gather their completed step; the lowest rank among
// those with the highest step (and with state: a newcomer has none) broadcasts
// parameters, buffers, optimizer state and the step counter to all. The
// abandoned step is redone from its first micro batch with the new slice.
//
// Randomness: before each micro batch the torch CPU generator is seeded with
// a hash of (seed, step, first global slot of the micro batch), so dropout
// never depends on history: a resumed run (same world size) is bit-identical.
//
// Thread-safety: one thread drives a Trainer (Start, Run, TrainStep,
// SaveCheckpoint); the prefetch thread is internal. MembershipSource and
// BatchSource implementations must be thread-safe as documented there.
#ifndef GLM_WORKER_TRAINER_TRAINER_H_
#define GLM_WORKER_TRAINER_TRAINER_H_

#include <torch/torch.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/trainer/batch_plan.h"
#include "worker/trainer/checkpoint.h"
#include "worker/trainer/communicator.h"
#include "worker/trainer/lr_schedule.h"
#include "worker/trainer/optimizer.h"

namespace glm::trainer {

// One micro batch: which samples, and (after BatchSource::Load) their tensors.
struct MicroBatch {
  int64_t step = 0;
  int64_t begin_slot = 0;  // global-batch slots [begin_slot, end_slot)
  int64_t end_slot = 0;
  std::vector<SampleRef> samples;  // one per slot, in slot order
  // Filled by the source: e.g. "tokens", "position_ids", "block_position_ids",
  // "sep", "targets", "loss_mask" for GLM (shapes (B, S) and (B)).
  std::map<std::string, torch::Tensor> tensors;
  double loss_weight = 0;  // this batch's share of the loss normaliser (e.g. loss-mask tokens)
  int64_t num_tokens = 0;  // tokens processed, for tokens/s
};

// Produces micro batches. Load() is called from the trainer's prefetch thread
// only (one call at a time); it may block (remote store) and should return
// kUnavailable/kDeadlineExceeded for transient failures (the trainer retries)
// and other codes for fatal ones.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Fills batch->tensors, loss_weight and num_tokens for batch->samples.
  virtual Status Load(MicroBatch* batch) = 0;
};

struct LossOutput {
  torch::Tensor loss_sum;  // scalar: sum of per-token losses of the batch; has a graph
  // Detached per-objective sums and weights, for metrics.
  std::array<double, kNumObjectives> objective_loss_sum = {0, 0, 0};
  std::array<double, kNumObjectives> objective_weight = {0, 0, 0};
};

// Runs the model on one micro batch. May throw (LibTorch does); the trainer
// turns exceptions into kInternal.
using LossFunction = std::function<LossOutput(torch::nn::Module& model, const MicroBatch& batch)>;

struct StepMetrics {
  int64_t step = 0;  // completed steps after this one (1 for the first)
  double loss = 0;   // global-batch loss
  std::array<double, kNumObjectives> objective_loss = {0, 0, 0};  // NaN when absent
  std::array<uint64_t, kNumObjectives> objective_samples = {0, 0, 0};
  double lr = 0;
  double grad_norm = 0;     // before clipping
  double tokens_per_s = 0;  // global tokens / step wall time
  double data_wait_ms = 0;  // time this rank waited for its micro batches
  double step_ms = 0;       // wall time of the step on this rank
  double allreduce_ms = 0;  // time in collectives on this rank
  // Time training was blocked by checkpointing in this step: starting one, and
  // waiting before the optimizer update for the background copy of the last one.
  double checkpoint_block_ms = 0;
  int64_t world_size = 1;
  int64_t generation = 0;
  int64_t rank = 0;
  int64_t num_micro_batches = 0;
};

// One JSON object (a metrics.jsonl line, no newline); absent objectives are
// left out.
std::string StepMetricsToJson(const StepMetrics& m);

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  virtual void OnStep(const StepMetrics& metrics) = 0;
};

// Tells the trainer about membership changes. Called from the trainer thread.
class MembershipSource {
 public:
  virtual ~MembershipSource() = default;
  // At a step boundary, after `completed_steps`: the membership to switch to,
  // or nullopt to continue. (Joins are applied here.)
  virtual std::optional<Membership> PollChange(int64_t completed_steps) = 0;
  // After a collective failed in `failed_generation`: blocks until the
  // coordinator announces the next generation (losses are applied here).
  virtual StatusOr<Membership> AwaitChange(int64_t failed_generation) = 0;
};

// A membership that never changes: a failed collective is fatal.
class StaticMembership : public MembershipSource {
 public:
  std::optional<Membership> PollChange(int64_t) override { return std::nullopt; }
  StatusOr<Membership> AwaitChange(int64_t generation) override {
    return UnavailableError("collective failed in generation " + std::to_string(generation) +
                            " and no membership source can replace the lost trainer");
  }
};

struct TrainerOptions {
  BatchGeometryOptions geometry;
  MixerOptions mixer;
  LrScheduleOptions schedule;
  AdamWOptions adamw;
  // Global gradient norm clip. 0 disables. Default: 1.0 (GLM_SPEC 5.1).
  double clip_grad_norm = 1.0;
  // Job seed for the per-micro-batch RNG. Default: 1234.
  uint64_t seed = 1234;
  // Micro batches the prefetch thread keeps ready. Default: 4.
  int64_t prefetch_micro_batches = 4;
  // The last step the run will take: the prefetcher never loads past it (a
  // source still being filled would wait for samples nobody produces).
  // Default: 0 = unbounded.
  int64_t max_steps = 0;
  // With world size > 1, all-reduce gradient buckets during the last micro
  // batch's backward as they become ready (Communicator::
  // MakeGradientReducer) instead of after it. Default: true.
  bool overlap_allreduce = true;
  // Checkpoint every N completed steps (0: only when asked). Default: 0.
  int64_t checkpoint_every_steps = 0;
  // Write checkpoints on a background thread. Default: true.
  bool async_checkpoint = true;
  // Retries of a transient BatchSource failure per micro batch. Default: 10.
  int64_t data_retries = 10;
  // Membership changes tolerated within one TrainStep. Default: 8.
  int64_t max_reconfigurations_per_step = 8;
  // Written as config.json into checkpoints. Default: "{}".
  std::string config_json = "{}";
  // Files copied into every checkpoint: (name in the checkpoint, source
  // path), e.g. {"tokenizer.model", "/run/tokenizer.model"}. Default: none.
  std::vector<std::pair<std::string, std::string>> checkpoint_extra_files;

  Status Validate() const;
};

class Trainer {
 public:
  // Does not take ownership of the raw pointers; they must outlive the
  // Trainer. `metrics` and `checkpoints` may be null.
  Trainer(TrainerOptions options, std::shared_ptr<torch::nn::Module> model, BatchSource* source,
          LossFunction loss, CommunicatorFactory* communicators, MembershipSource* membership,
          MetricsSink* metrics, CheckpointManager* checkpoints);
  ~Trainer();

  // Validates options, builds the mixer and optimizer. Call once, first.
  Status Init();
  // Restores model, optimizer and step from a checkpoint. Before Start().
  Status Restore(const LoadedCheckpoint& checkpoint);
  // Joins `membership` and syncs state. has_state = false for a newcomer that
  // must receive everything from the group.
  Status Start(const Membership& membership, bool has_state = true);
  // Trains until step() == until_step, prefetching up to until_step.
  Status Run(int64_t until_step);
  // One optimizer step, handling membership changes. Called in a loop, it
  // keeps one prefetch thread that loads the next step's micro batches while
  // this one computes (at most one step ahead, and at most
  // prefetch_micro_batches micro batches held).
  Status TrainStep();
  // Checkpoints the state after the last completed step; rank 0 writes. With
  // async_checkpoint the tensors are copied and written on a background
  // thread, and the next optimizer update waits for the copy (see
  // checkpoint.h). Returns the time this call blocked, in ms.
  StatusOr<double> SaveCheckpoint();
  // Waits for a pending checkpoint write.
  Status WaitForCheckpoint();

  int64_t step() const { return step_; }
  const Communicator* communicator() const { return comm_.get(); }
  const AdamW& optimizer() const { return *optimizer_; }
  const ObjectiveMixer& mixer() const { return *mixer_; }
  // Model parameters and buffers by name (live tensors).
  NamedTensors ModelTensors() const;

 private:
  class Prefetcher;

  Status AttemptStep();
  Status Reconfigure(const Membership& membership);
  Status SyncState();
  void ZeroGrads();
  // Blocks until a background checkpoint copy of the live tensors is done;
  // returns the ms waited.
  double WaitForSnapshot();

  TrainerOptions options_;
  std::shared_ptr<torch::nn::Module> model_;
  BatchSource* source_;
  LossFunction loss_;
  CommunicatorFactory* communicators_;
  MembershipSource* membership_;
  MetricsSink* metrics_;
  CheckpointManager* checkpoints_;

  std::optional<ObjectiveMixer> mixer_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<Communicator> comm_;
  std::unique_ptr<GradientReducer> reducer_;  // of comm_; null: all-reduce after backward
  RankSlice slice_;
  std::unique_ptr<Prefetcher> prefetcher_;
  int64_t step_ = 0;
  bool has_state_ = true;
  int64_t run_until_ = 0;       // the until_step of the last Run()
  int64_t prefetch_until_ = 0;  // the prefetcher's horizon for this step
  std::shared_future<void> snapshot_taken_;
};

}  // namespace glm::trainer

#endif  // GLM_WORKER_TRAINER_TRAINER_H_
