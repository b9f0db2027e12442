// Global-batch arithmetic and the objective mixer: pure functions that say,
// for optimizer step k, which samples the fixed global batch holds and which of
// them are this rank's (ARCHITECTURE contracts 1, 3 and 4).
//
// Vocabulary:
//   slot      position j in [0, global_batch_size) of one global batch; the
//             global slot number of (step k, slot j) is k * global_batch_size + j.
//   SampleRef (objective, epoch, index): the key of one sample in the store.
//
// The global batch of step k is a pure function of (k, MixerOptions,
// global_batch_size): world size, micro batch size, restarts and timing never
// change it. World size only changes which contiguous range of slots a rank
// takes (RankSlice) and how many micro batches it accumulates.
//
// Mixer modes:
//   kPerSample   every global batch holds every enabled objective at its rate.
//                The cumulative count of objective o after n samples is the
//                largest-remainder apportionment of n by the weights, so after
//                any number of whole batches each objective is within one sample
//                of its exact share (|count_o - n * w_o| < 1). Inside a batch
//                slots are grouped by objective in enum order (blank, sentence,
//                document), so micro batches are mostly single-objective.
//   kPerBatch    the reference's mode (GLM_SPEC 2.1): a whole global batch has
//                one objective. The objective of batch k follows a periodic
//                smooth weighted round-robin over integer weights, so after any
//                number of batches each objective is within one batch of its
//                exact share (the reference draws it at random instead).
//
// Weights are quantised to integer parts per million (kWeightResolution) and
// all arithmetic is integer, so results are exact and identical on every
// machine.
//
// Thread-safety: ObjectiveMixer is immutable after Create(); all methods are
// const and may be called concurrently.
#ifndef GLM_WORKER_TRAINER_BATCH_PLAN_H_
#define GLM_WORKER_TRAINER_BATCH_PLAN_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "schema/records.h"

namespace glm::trainer {

// ---------------------------------------------------------------------------
// Rank slices of the fixed global batch.
// ---------------------------------------------------------------------------

struct BatchGeometryOptions {
  // Samples per optimizer step, over all ranks. Never depends on world size.
  // Default: 8.
  int64_t global_batch_size = 8;
  // Samples per forward/backward pass on one rank. Default: 4.
  int64_t micro_batch_size = 4;

  // global-batch-size >= 1, micro-batch-size >= 1.
  Status Validate() const;
};

// The part of one global batch that rank `rank` of `world_size` computes.
// Slots are split contiguously: the first (G % W) ranks take ceil(G / W) slots,
// the others floor(G / W). Each rank cuts its slots into micro batches of at
// most micro_batch_size, the last one possibly shorter.
struct RankSlice {
  int64_t begin_slot = 0;  // first slot of this rank, in [0, G]
  int64_t end_slot = 0;    // one past the last slot
  // Micro batches of this rank: [micro_begin[i], micro_begin[i+1]) with the
  // final entry equal to end_slot; num_micro_batches() = micro_begin.size() - 1.
  std::vector<int64_t> micro_begin;

  int64_t num_slots() const { return end_slot - begin_slot; }
  int64_t num_micro_batches() const {
    return micro_begin.empty() ? 0 : static_cast<int64_t>(micro_begin.size()) - 1;
  }
};

// Slots of rank `rank` in a world of `world_size`. Fails when rank is out of
// range or world_size > global_batch_size (a rank would get no sample).
StatusOr<RankSlice> ComputeRankSlice(const BatchGeometryOptions& geometry, int64_t rank,
                                     int64_t world_size);

// Gradient accumulation count: the number of micro batches the busiest rank
// runs per step, ceil(ceil(G / W) / micro). Ranks with fewer slots run fewer.
int64_t GradientAccumulationSteps(const BatchGeometryOptions& geometry, int64_t world_size);

// ---------------------------------------------------------------------------
// The objective mixer.
// ---------------------------------------------------------------------------

enum class MixMode {
  kPerSample,  // every batch mixes all enabled objectives (default)
  kPerBatch,   // one objective per global batch (the reference's mode)
};

struct MixerOptions {
  // Relative weight per objective, indexed by glm::Objective; 0 disables an
  // objective. Normalised internally. Default: blanks only (GLM-Large).
  std::array<double, kNumObjectives> weights = {1.0, 0.0, 0.0};
  // Default: kPerSample.
  MixMode mode = MixMode::kPerSample;
  // Samples per epoch for each objective; the per-objective index i maps to
  // (epoch i / n, index i % n). 0 means one unbounded epoch. Default: 0.
  std::array<uint64_t, kNumObjectives> samples_per_epoch = {0, 0, 0};

  // At least one positive weight, none negative or non-finite.
  Status Validate() const;
};

// Presets from GLM_SPEC 5.2: "glm-large" and "glm-base" (blanks only),
// "glm-doc" (blank + document 1:1), "glm-sent" (blank + sentence 1:1),
// "glm-2b" (0.4 / 0.3 / 0.3), "glm-10b" (0.5 / 0.3 / 0.2), "equal" (all three
// 1:1:1). Unknown names are an InvalidArgument error listing the known ones.
StatusOr<MixerOptions> MixerPreset(const std::string& name);

// Which sample a global slot holds.
struct SampleRef {
  Objective objective = Objective::kBlank;
  uint32_t epoch = 0;
  uint64_t index = 0;  // index within (objective, epoch)

  bool operator==(const SampleRef& o) const {
    return objective == o.objective && epoch == o.epoch && index == o.index;
  }
};

// Per-objective sample counts, indexed by glm::Objective.
using ObjectiveCounts = std::array<uint64_t, kNumObjectives>;

// A contiguous run of one objective inside a range of slots: slots
// [begin_slot, begin_slot + count) hold per-objective indices
// [first_index, first_index + count) (before the epoch split). This is what
// a batched store read wants.
struct ObjectiveRun {
  Objective objective = Objective::kBlank;
  int64_t begin_slot = 0;
  int64_t count = 0;
  uint64_t first_index = 0;  // cumulative per-objective index (epoch not applied)
};

class ObjectiveMixer {
 public:
  // Precomputes the integer weights (and the period of kPerBatch).
  // `global_batch_size` must be >= 1; in kPerSample mode every enabled
  // objective must get at least one sample per batch on average
  // (G * w_o >= 1), otherwise InvalidArgument.
  static StatusOr<ObjectiveMixer> Create(const MixerOptions& options, int64_t global_batch_size);

  const MixerOptions& options() const { return options_; }
  int64_t global_batch_size() const { return global_batch_size_; }

  // Number of samples of each objective in the global batch of `step`.
  ObjectiveCounts CountsInBatch(int64_t step) const;

  // Samples of each objective consumed by steps 0 .. num_steps - 1 (what a
  // checkpoint after num_steps completed steps records).
  ObjectiveCounts ConsumedAfter(int64_t num_steps) const;

  // The sample in slot `slot` (0 <= slot < G) of the global batch of `step`.
  SampleRef SlotSample(int64_t step, int64_t slot) const;

  // Runs of one objective covering slots [begin_slot, end_slot) of `step`,
  // in slot order.
  std::vector<ObjectiveRun> Runs(int64_t step, int64_t begin_slot, int64_t end_slot) const;

  // Splits a cumulative per-objective index into (epoch, index).
  SampleRef ToSampleRef(Objective objective, uint64_t cumulative_index) const;

 private:
  ObjectiveMixer() = default;

  // Cumulative apportionment of n samples (kPerSample).
  ObjectiveCounts Apportion(uint64_t n) const;
  // Number of batches of each objective among the first k batches (kPerBatch).
  ObjectiveCounts BatchesBefore(int64_t k) const;

  MixerOptions options_;
  int64_t global_batch_size_ = 1;
  std::array<uint64_t, kNumObjectives> int_weights_ = {0, 0, 0};  // sum = total_weight_
  uint64_t total_weight_ = 0;
  // kPerBatch: objective of batch (k mod period), and the per-objective count
  // of batches before each position of the period.
  std::vector<uint8_t> period_;
  std::vector<ObjectiveCounts> period_prefix_;  // size period + 1
};

// Integer parts per million used for weights.
inline constexpr uint64_t kWeightResolution = 1000000;

}  // namespace glm::trainer

#endif  // GLM_WORKER_TRAINER_BATCH_PLAN_H_
