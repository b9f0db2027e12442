// Per-step training metrics the coordinator writes into a run directory
// (glm coordinator --run-dir DIR; glm pretrain passes its workdir):
//
//   DIR/tensorboard/events.out.tfevents.<unix seconds>.<hostname>
//       TensorBoard event file (coordinator/tensorboard.h), one Event per step
//   DIR/coordinator-metrics.jsonl
//       the same values, one JSON object per line:
//       {"step": 12, "wall_time": 1764400000.25, "loss": 7.1, "loss/blank": 7.3, ...}
//
// One record per optimizer step, from trainer rank 0's report; tags (also the
// JSON keys) are listed by StepScalars and in docs/observability.md. Values
// that are not finite (an objective absent from the step, a grad norm an old
// trainer did not send) are left out of that step.
//
// A step is written once: a report for the step written last (a retried
// report; after a coordinator restart, the in-flight one) is skipped, and so
// is step 0 (nothing trained yet). The last written step survives a
// coordinator restart through the last line of coordinator-metrics.jsonl; the
// restarted coordinator starts a new event file (TensorBoard merges the files
// of a directory). A step below the last written one means the run went back
// (a trainer resumed from a checkpoint, a new run in the same directory): it
// is written, preceded in the event file by a SessionLog START at that step,
// so TensorBoard drops the older events from that step on (every event file
// also has one before its first step: TensorBoard takes a run's first START
// as its start, only later ones as restarts), and in the JSONL
// file it follows the metrics.jsonl rule (a line whose step is not above the
// previous line's replaces the earlier lines from that step on).
//
// Files are opened at the first step (a coordinator that never sees a trainer
// leaves nothing). An I/O error disables that one file for the rest of the
// process (its last record may be partial) and is returned once, naming it;
// the other file goes on.
//
// Thread-safety: not thread-safe (the Coordinator calls it from its thread).
#ifndef GLM_COORDINATOR_RUN_METRICS_H_
#define GLM_COORDINATOR_RUN_METRICS_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/tensorboard.h"
#include "coordinator/trainer_report.h"

namespace glm::coordinator {

inline constexpr const char* kRunMetricsJsonl = "coordinator-metrics.jsonl";
inline constexpr const char* kRunTensorBoardDir = "tensorboard";

class RunMetricsWriter {
 public:
  // Nothing is touched until the first WriteStep.
  explicit RunMetricsWriter(std::string run_dir);
  ~RunMetricsWriter();
  RunMetricsWriter(const RunMetricsWriter&) = delete;
  RunMetricsWriter& operator=(const RunMetricsWriter&) = delete;

  // The scalars of one step, in tag order: loss, loss/blank, loss/sentence,
  // loss/document, lr, grad_norm, tokens_per_s (= the argument: all ranks),
  // data_wait_ms, step_ms, allreduce_ms, world_size; non-finite ones left out.
  static std::vector<TensorBoardScalar> StepScalars(const TrainerReport& report, double tokens_per_s);

  // Writes report.step (rank 0's report; tokens_per_s: all ranks together)
  // to both files at wall_time (Unix seconds) unless it is 0 or
  // last_written_step() (see above). Ok also when skipped; an error names the
  // file that just failed (each file fails at most once; see above).
  Status WriteStep(const TrainerReport& report, double tokens_per_s, double wall_time = UnixSecondsNow());

  // Step of the last record written (-1: none; after a restart, read from the
  // JSONL file's last line at the first WriteStep).
  int64_t last_written_step() const { return last_step_; }
  const std::string& run_dir() const { return run_dir_; }
  // The event file ("" until opened).
  std::string events_path() const { return events_ ? events_->path() : std::string(); }

 private:
  void Start();  // the first WriteStep: last step from the JSONL file

  const std::string run_dir_;
  bool started_ = false;
  int64_t last_step_ = -1;
  std::unique_ptr<TensorBoardWriter> events_;
  bool events_failed_ = false;
  std::FILE* jsonl_ = nullptr;  // owned, append mode
  bool jsonl_failed_ = false;
};

}  // namespace glm::coordinator

#endif  // GLM_COORDINATOR_RUN_METRICS_H_
