// CLI declarations shared by the runtime's commands (coordinator, pipeline,
// bench coordinator): each option declared once.
#ifndef GLM_CMD_RUNTIME_OPTIONS_H_
#define GLM_CMD_RUNTIME_OPTIONS_H_

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "common/cli.h"
#include "coordinator/coordinator.h"
#include "coordinator/job.h"

namespace glm::cmd {

inline void AddJobOptions(CLI::App* app, coordinator::JobOptions* job) {
  AddOption(app, "job-id", &job->job_id, "Stable job name");
  AddOption(app, "corpus", &job->corpus, "Corpus file, directory (*.txt, *.json, *.jsonl) or glob pattern; one shard per file");
  AddOption(app, "output-dir", &job->output_dir, "Where executors write their stores (\"\" = STATE/output)");
  AddOption(app, "seed", &job->seed, "Job seed: samples are pure functions of it");
  AddOption(app, "executor", &job->executor, "Executor family the workers run (glm: the real data path; test)");
  AddOption(app, "objectives", &job->objectives, "Enabled objectives: blank,sentence,document");
  AddOption(app, "epochs", &job->epochs, "Epochs of samples per objective");
  AddOption(app, "samples-per-epoch", &job->samples_per_epoch,
            "Samples per (objective, epoch); 0 = number of documents");
  AddOption(app, "samples-per-task", &job->samples_per_task, "Samples per corruption task");
  AddOption(app, "max-samples", &job->max_samples, "Cap on the samples per objective, all epochs (0: none)");
  AddOption(app, "finalize", &job->finalize,
            "Run a finalize task between tokenize and corrupt (glm: held-out split, validation samples, manifest)");
  AddOption(app, "global-batch-size", &job->global_batch_size, "Samples per global batch, all objectives");
  AddOption(app, "max-batches-ahead", &job->max_batches_ahead,
            "Back-pressure: global batches produced past the consumption cursor");
  AddOption(app, "auto-consume", &job->auto_consume,
            "Count produced batches as consumed (running the pipeline alone)");
  AddOption(app, "noop-tasks", &job->noop_tasks, "> 0: a job of this many noop tasks instead of the pipeline");
  AddOption(app, "params", &job->params, "Executor parameters key=value,... (e.g. item_delay_us=100)");
}

inline void AddCoordinatorOptions(CLI::App* app, coordinator::CoordinatorOptions* o) {
  AddOption(app, "heartbeat-interval-ms", &o->heartbeat_interval_ms, "Heartbeat interval told to workers");
  AddOption(app, "node-timeout-ms", &o->node_timeout_ms, "A node silent this long is dead");
  AddOption(app, "lease-ms", &o->lease_ms, "Lease length, renewed by heartbeats");
  AddOption(app, "retry-backoff-base-ms", &o->retry_backoff_base_ms, "First retry delay (doubles per attempt)");
  AddOption(app, "retry-backoff-max-ms", &o->retry_backoff_max_ms, "Largest retry delay");
  AddOption(app, "max-attempts", &o->max_attempts, "Attempts before a task is dead-lettered");
  AddOption(app, "actor-max-restarts", &o->actor_max_restarts, "Restarts an actor may use");
}

// Runs `argv` as a child process with stdout+stderr to `log_path` ("" =
// inherit). own_process_group: the child leaves the terminal's process group,
// so a Ctrl-C reaches only the parent (which decides what to forward).
// Returns the pid, or -1.
int SpawnProcess(const std::vector<std::string>& argv, const std::string& log_path,
                 bool own_process_group = false);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Path of the running glm binary.
std::string SelfExecutable();

}  // namespace glm::cmd

#endif  // GLM_CMD_RUNTIME_OPTIONS_H_

#include <nlohmann/json.hpp>
#include "common/status.h"
namespace glm::cmd {
// Asks the coordinator at `endpoint` for its status JSON (glm status).
StatusOr<nlohmann::json> QueryCoordinatorStatus(const std::string& endpoint, const std::string& keys_dir,
                                                int timeout_ms);
}  // namespace glm::cmd
