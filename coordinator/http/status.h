// What /api/status returns: a snapshot of a job for people (the dashboard,
// `glm status`), and the StatusProvider interface the coordinator implements
// to produce it.
//
// The JSON form (ToJson / FromJson, field names as below, times in Unix
// milliseconds, durations in seconds) is documented in docs/observability.md
// and carries "format_version": 1.
//
// Thread-safety: the structs are values. StatusProvider implementations are
// called from the HTTP server's threads concurrently and must be thread-safe.
#ifndef GLM_COORDINATOR_HTTP_STATUS_H_
#define GLM_COORDINATOR_HTTP_STATUS_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace glm::http {

inline constexpr int kStatusFormatVersion = 1;

struct NodeStatus {
  std::string id;                 // node id, e.g. "node-0"
  std::string address;            // host:port the node agent listens on
  std::string state;              // "alive", "suspect" (missed heartbeats), "dead"
  int64_t last_heartbeat_ms = 0;  // Unix ms of the last heartbeat received
  double num_cpus = 0;            // declared resources
  double num_gpus = 0;
  int64_t memory_bytes = 0;
  int num_actors = 0;             // actors placed on this node
};

struct ActorStatus {
  std::string id;       // e.g. "tokenizer-3"
  std::string kind;     // "tokenizer", "corruption", "storage", "trainer"
  std::string node_id;  // where it runs
  std::string state;    // "pending", "running", "restarting", "dead"
  int restarts = 0;     // times restarted after a failure
};

// Progress of one pipeline stage; tasks are leased units of work.
struct StageStatus {
  std::string stage;    // "tokenize", "corrupt", "train", ...
  int64_t pending = 0;  // waiting for a lease
  int64_t leased = 0;   // running
  int64_t done = 0;
  int64_t failed = 0;   // failed attempts (retried tasks count once per failure)
  int64_t total = 0;    // tasks planned so far (0 = unknown)
};

struct ObjectiveStatus {
  std::string objective;     // "blank", "sentence", "document"
  int64_t produced = 0;      // samples written to the store
  int64_t consumed = 0;      // samples read by trainers
  double target_rate = 0;    // configured share of each global batch, 0..1
  double consumed_rate = 0;  // actual share of consumed samples, 0..1
};

struct ThroughputStatus {
  double tokens_per_second = 0;   // training, all ranks
  double samples_per_second = 0;  // training, all ranks
  double produced_samples_per_second = 0;  // data pipeline
};

struct TrainerStatus {
  int64_t step = 0;       // last completed optimizer step
  int64_t max_steps = 0;  // 0 = unbounded
  int world_size = 0;     // trainer ranks in the current generation
  int64_t generation = 0; // rendezvous generation
  double loss = 0;        // last step's total loss
  double learning_rate = 0;
};

// A failure or restart worth showing to people.
struct FailureEvent {
  int64_t time_ms = 0;
  std::string kind;     // "node_lost", "actor_restart", "task_retry", "checkpoint_failed", ...
  std::string subject;  // the node, actor or task id
  std::string message;  // what happened, one line
};

struct CheckpointStatus {
  int64_t step = 0;
  int64_t time_ms = 0;      // when it completed (or failed)
  double duration_s = 0;
  int64_t bytes = 0;
  std::string path;
  std::string state;        // "complete", "in_progress", "failed"
};

// One training step as the history charts show it.
struct MetricsPoint {
  int64_t step = 0;
  int64_t time_ms = 0;
  double loss = 0;                             // total
  std::map<std::string, double> objective_loss;  // "blank" -> loss, ... (objectives present in the step)
  double learning_rate = 0;
  double tokens_per_second = 0;
};

struct ClusterStatus {
  int format_version = kStatusFormatVersion;
  std::string job;        // job name
  std::string phase;      // "starting", "running", "checkpointing", "done", "failed"
  int64_t time_ms = 0;    // when this snapshot was taken
  int64_t started_ms = 0; // when the job started
  TrainerStatus trainer;
  ThroughputStatus throughput;
  std::vector<NodeStatus> nodes;
  std::vector<ActorStatus> actors;
  std::vector<StageStatus> stages;
  std::vector<ObjectiveStatus> objectives;
  std::vector<FailureEvent> failures;       // most recent last; the provider bounds the count
  std::vector<CheckpointStatus> checkpoints;  // oldest first
  std::vector<MetricsPoint> history;        // steps > StatusQuery::history_after_step, ascending
  // The coordinator's own status document (what `glm status --json` prints:
  // docs/wire-protocol.md, "Status JSON"), for tools that want every detail;
  // null from providers that have none.
  nlohmann::json coordinator;
};

// What a caller wants in a snapshot; /api/status?history_after=N&max_history=M.
struct StatusQuery {
  int64_t history_after_step = -1;  // Default: -1 = the whole history
  int max_history_points = 5000;    // Default: 5000; providers thin older points beyond this
};

// Implemented by the coordinator; called from HTTP threads.
class StatusProvider {
 public:
  virtual ~StatusProvider() = default;
  // A consistent snapshot. Must be quick (copy state the coordinator already
  // keeps; no RPCs to workers) and thread-safe.
  virtual ClusterStatus GetStatus(const StatusQuery& query) = 0;
  // Whether the job is ready (for /readyz): e.g. nodes registered and the
  // pipeline running. When not, `*reason` says why, for people.
  virtual bool IsReady(std::string* reason) = 0;
};

nlohmann::json ToJson(const ClusterStatus& status);
// Parses what ToJson writes; missing fields keep their defaults. Errors are
// InvalidArgument (wrong types, or a newer format_version).
StatusOr<ClusterStatus> ClusterStatusFromJson(const nlohmann::json& json);

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_STATUS_H_
