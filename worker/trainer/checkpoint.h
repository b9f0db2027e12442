// Checkpoints: the on-disk layout is docs/checkpoint-format.md.
//
//   <root>/step-0000000120/
//     model.safetensors       model parameters (written by a pluggable ModelWriter)
//     optimizer.safetensors   AdamW state: exp_avg.<param>, exp_avg_sq.<param>
//     trainer_state.json      TrainerState (step, consumed samples per objective, ...)
//     config.json             the model config, as given by the caller
//     <extra files>           e.g. tokenizer.model, copied
//     checksums.json          size and CRC-32 of every file above; written last
//
// A checkpoint is written into ".step-0000000120.tmp", every file fsynced,
// then the directory is renamed and the root fsynced: a crash leaves either the
// whole checkpoint or no checkpoint. The last `keep_last` are kept.
// LoadLatest() verifies checksums and falls back to the previous checkpoint,
// with a warning, when the newest is truncated or corrupt.
//
// Asynchronous writes: SaveAsync() writes an already copied snapshot in the
// background; SaveLiveAsync() also makes the copy in the background and tells
// the caller when the live tensors may change again. The trainer uses the
// latter: training is blocked only if the copy outlasts the next step's
// forward and backward.
//
// Thread-safety: CheckpointManager methods may be called from one thread at a
// time; the background writer is internal. Destruction waits for a pending
// write.
#ifndef GLM_WORKER_TRAINER_CHECKPOINT_H_
#define GLM_WORKER_TRAINER_CHECKPOINT_H_

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "schema/records.h"

namespace glm::trainer {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Plain named-tensor safetensors files (the optimizer state, and the default
// model file), through model/safetensors.h's codec. GLM training passes the
// model's own writer for model.safetensors via CheckpointOptions::model_writer.
Status WriteSafetensors(const std::string& path, const NamedTensors& tensors);
StatusOr<NamedTensors> ReadSafetensors(const std::string& path);

// Writes the model file at `path`; must write every tensor under its name.
using ModelWriter = std::function<Status(const std::string& path, const NamedTensors& tensors)>;
using ModelReader = std::function<StatusOr<NamedTensors>(const std::string& path)>;

// Everything besides tensors that a resume needs (trainer_state.json).
struct TrainerState {
  int64_t format_version = 1;
  int64_t step = 0;                                           // completed optimizer steps
  std::array<uint64_t, kNumObjectives> consumed = {0, 0, 0};  // samples per objective
  int64_t data_cursor = 0;  // global slot of the next sample: step * global_batch_size
  int64_t global_batch_size = 0;
  int64_t world_size = 1;       // when written
  int64_t generation = 0;       // membership generation when written
  uint64_t seed = 0;            // job seed; per-micro-batch RNG is derived from it
  int64_t optimizer_steps = 0;  // AdamW t
  std::string rng = "counter";  // RNG scheme: torch seeded per micro batch from
                                // (seed, step, first slot); no stream state to save
};

std::string TrainerStateToJson(const TrainerState& state);
StatusOr<TrainerState> TrainerStateFromJson(const std::string& json);

struct CheckpointSnapshot {
  NamedTensors model;      // CPU copies
  NamedTensors optimizer;  // CPU copies
  TrainerState state;
  std::string config_json = "{}";
  // (file name in the checkpoint, source path) copied verbatim, e.g. the tokenizer.
  std::vector<std::pair<std::string, std::string>> extra_files;
};

// Copies tensors to contiguous CPU tensors (this is the blocking part of a save).
NamedTensors SnapshotTensors(const NamedTensors& live);

struct CheckpointOptions {
  // Root directory holding step-* checkpoints. Required.
  std::string directory;
  // Number of completed checkpoints kept (older ones deleted). Default: 3.
  int64_t keep_last = 3;
  // Writer for model.safetensors. Default: WriteSafetensors.
  ModelWriter model_writer = WriteSafetensors;
  // Reader for model.safetensors. Default: ReadSafetensors.
  ModelReader model_reader = ReadSafetensors;

  Status Validate() const;
};

struct LoadedCheckpoint {
  std::string path;  // the checkpoint directory
  CheckpointSnapshot snapshot;
};

class CheckpointManager {
 public:
  explicit CheckpointManager(CheckpointOptions options);
  ~CheckpointManager();
  CheckpointManager(const CheckpointManager&) = delete;
  CheckpointManager& operator=(const CheckpointManager&) = delete;

  // Writes synchronously; returns the checkpoint directory.
  StatusOr<std::string> Save(const CheckpointSnapshot& snapshot);
  // Waits for a previous asynchronous write (returning its error, if any),
  // then starts writing `snapshot` in the background.
  Status SaveAsync(CheckpointSnapshot snapshot);
  // Waits for a previous asynchronous write, then starts a background thread
  // that first copies the tensors of `live` (which may alias live training
  // state) and then writes the copy. The returned future becomes ready when
  // the copy is complete: until then the caller must not modify those tensors
  // (the trainer waits for it before its next optimizer update, so the copy
  // overlaps the next forward/backward).
  StatusOr<std::shared_future<void>> SaveLiveAsync(CheckpointSnapshot live);
  // Waits for the pending asynchronous write; OK when none.
  Status Wait();

  // Completed checkpoint directories, oldest first.
  std::vector<std::string> List() const;
  // The newest checkpoint whose checksums verify. NotFound when none exists;
  // DataLoss when every one is corrupt.
  StatusOr<LoadedCheckpoint> LoadLatest() const;
  // Loads and verifies one checkpoint directory.
  StatusOr<LoadedCheckpoint> Load(const std::string& path) const;

 private:
  // Save() for the background thread: exceptions become kInternal, errors are logged.
  Status SaveCatching(const CheckpointSnapshot& snapshot);

  CheckpointOptions options_;
  std::future<Status> pending_;
};

}  // namespace glm::trainer

#endif  // GLM_WORKER_TRAINER_CHECKPOINT_H_
