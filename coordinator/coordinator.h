// Coordinator: the cluster's brain, without sockets (server.h puts it on the
// wire). Node registry, actor placement, task leases with retries, backoff
// and a dead-letter list, and the pipeline schedule with back-pressure.
//
// State machine of a task (persisted states in capitals):
//
//            Lease()                 TaskDone()
//   PENDING ─────────► leased ─────────────────────► DONE
//      ▲  ▲              │ TaskFailed(retryable) / lease expired / node lost
//      │  └──(backoff)───┤   attempts < max_attempts
//      │                 │ attempts >= max_attempts or !retryable
//      │ abandoned       └──────────────────────────► DEAD (dead-letter list, with reason)
//      └────────────── (SIGTERM on a worker: no attempt counted)
//
// Node: registered ──heartbeats──► alive ──(no heartbeat for node_timeout_ms)──► dead
//   (its leases return to the queue, its actors are placed elsewhere). After
//   a coordinator restart every stored node is "unconfirmed" until it
//   registers again (HeartbeatAck.reregister tells it to); a node that does
//   not within node_timeout_ms is dead.
//
// Persistence (the coordinator owns no irreplaceable state in memory): the
// job, the pipeline cursor, every task (state, attempts, last error, output
// counts), fixed actors and nodes are in RocksDB under the --state directory
// (layout in docs/runtime.md). Leases live in memory only: after a restart
// leased tasks are pending again, and a late TaskDone from before the restart
// is still accepted. Executors write idempotently under deterministic keys,
// so a task run twice leaves the same output (exactly-once effect).
//
// Pipeline schedule: phase "tokenize" (one task per corpus shard), then
// phase "corrupt": per objective, global sample numbers g = 0, 1, ... map to
// (epoch g / samples_per_epoch, index g % samples_per_epoch); tasks cover
// samples_per_task indices inside one epoch and are created only while
// their first sample's step (g / per-objective batch) is at most
// consumed_step + max_batches_ahead. Consumed(step) advances the cursor;
// with auto_consume the produced prefix counts as consumed.
//
// Time comes from the injected Clock (tests use ManualClock). Thread-safety:
// not thread-safe; the server calls it from its one thread.
#ifndef GLM_COORDINATOR_COORDINATOR_H_
#define GLM_COORDINATOR_COORDINATOR_H_

#include <nlohmann/json.hpp>
#include <rocksdb/db.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "coordinator/job.h"
#include "coordinator/run_metrics.h"
#include "coordinator/trainer_report.h"
#include "transport/task.h"

namespace glm::coordinator {

struct CoordinatorOptions {
  // Heartbeat interval told to workers. Default: 1000 ms.
  int64_t heartbeat_interval_ms = 1000;
  // A node silent this long is dead. Default: 5000 ms.
  int64_t node_timeout_ms = 5000;
  // A lease not renewed by a heartbeat for this long expires. Default: 10000 ms.
  int64_t lease_ms = 10000;
  // Retry backoff: base * 2^(attempt-1), capped. Default: 200 ms, 10000 ms.
  int64_t retry_backoff_base_ms = 200;
  int64_t retry_backoff_max_ms = 10000;
  // Attempts before a task goes to the dead-letter list. Default: 5.
  int64_t max_attempts = 5;
  // Restarts an actor may use before it is declared dead. Default: 3.
  int64_t actor_max_restarts = 3;
  // Told to idle actors when nothing can be leased. Default: 100 ms.
  int64_t idle_retry_ms = 100;
  // Run directory for per-step training metrics from trainer rank 0's
  // reports: DIR/tensorboard/events.out.tfevents.* and
  // DIR/coordinator-metrics.jsonl (coordinator/run_metrics.h). Created at
  // the first report. Default: "" (off).
  std::string run_dir;

  Status Validate() const;
};

struct Resources {
  double cpu = 0;
  double gpu = 0;
  uint64_t memory_mb = 0;
};

// An actor as placed on a node.
struct ActorAssignment {
  std::string actor_id;
  std::string kind;                     // "pipeline", "trainer", ...
  std::vector<std::string> task_kinds;  // kinds it leases
};

using ::glm::TaskSpec;  // transport/task.h

struct RegisterResult {
  bool accepted = false;
  std::string reason;
  std::vector<ActorAssignment> actors;
};

struct HeartbeatResult {
  bool reregister = false;
  bool job_done = false;
  std::vector<ActorAssignment> actors;
};

struct LeaseResult {
  enum Kind { kTask, kRetryAfter, kJobDone, kReregister } kind = kRetryAfter;
  TaskSpec task;
  int64_t retry_after_ms = 0;
};

class Coordinator {
 public:
  // Opens (creating if empty) the state database in `state_dir`. A new
  // database starts `job` (validated, corpus listed); an existing one
  // resumes its stored job and ignores `job`.
  static StatusOr<std::unique_ptr<Coordinator>> Open(const std::string& state_dir, const JobOptions& job,
                                                     const CoordinatorOptions& options, Clock* clock);
  ~Coordinator();

  RegisterResult Register(const std::string& node_id, const Resources& resources,
                          const std::string& hostname, uint32_t pid);
  HeartbeatResult Heartbeat(const std::string& node_id, const std::vector<uint64_t>& held_leases,
                            bool draining);
  LeaseResult Lease(const std::string& node_id, const std::string& actor_id,
                    const std::vector<std::string>& task_kinds);
  // Accepted for the current lease, for a pending task (a lease from before
  // a restart) and, as a no-op, for a task already done.
  void TaskDone(const std::string& node_id, const std::string& task_id, uint64_t lease_id,
                uint64_t output_count, uint64_t output_bytes);
  void TaskFailed(const std::string& node_id, const std::string& task_id, uint64_t lease_id,
                  const std::string& reason, bool retryable, bool abandoned);
  void ActorFailed(const std::string& node_id, const std::string& actor_id, const std::string& reason);
  // The consumer finished global batch `step` (and all before it).
  void Consumed(int64_t step);
  // A trainer rank finished optimizer step report.step: Consumed(step - 1),
  // and the report is kept (latest per trainer, the recent-report log, the
  // checkpoint list) for StatusJson and ReportsSince. With options.run_dir,
  // rank 0's report also goes to the run directory's metrics files unless it
  // repeats the step written last (RunMetricsWriter); a write error is logged
  // and recorded as an event, never returned (the report is still accepted).
  // InvalidArgument (and nothing changes) when the report fails
  // TrainerReport::Validate().
  Status ReportTrainer(const TrainerReport& report);
  // A fixed actor (e.g. a trainer rank) placed by resources on any node
  // with room, re-placed on node loss, at most actor_max_restarts times.
  Status AddActor(const std::string& actor_id, const std::string& kind,
                  const std::vector<std::string>& task_kinds, const Resources& demand);

  // Failure detection, lease expiry, backoff, task creation. Call often.
  void Tick();

  const JobOptions& job() const { return job_; }
  const CoordinatorOptions& options() const { return options_; }
  bool job_done() const;
  // Highest global batch fully produced (-1: none yet).
  int64_t produced_step() const;
  int64_t consumed_step() const { return consumed_step_; }
  nlohmann::json StatusJson() const;
  // Tasks by state: "pending", "leased", "done", "dead".
  std::map<std::string, int64_t> TaskCounts() const;
  std::vector<std::pair<std::string, std::string>> DeadLetters() const;  // (task id, reason)
  std::vector<ActorAssignment> ActorsOn(const std::string& node_id) const;

  // Trainer reports in arrival order, numbered from 1; the newest
  // kReportLogCapacity are kept (memory only).
  struct LoggedReport {
    uint64_t seq = 0;
    int64_t received_ms = 0;  // clock_ time
    TrainerReport report;
  };
  static constexpr size_t kReportLogCapacity = 4096;
  // Reports with seq > after_seq (at most the kept ones), oldest first.
  std::vector<LoggedReport> ReportsSince(uint64_t after_seq) const;
  uint64_t last_report_seq() const { return next_report_seq_ - 1; }

 private:
  enum class TaskState { kPending, kLeased, kDone, kDead };
  struct Task {
    TaskSpec spec;
    uint64_t order = 0;
    TaskState state = TaskState::kPending;
    uint32_t attempts = 0;
    std::string last_error;
    uint64_t output_count = 0;
    uint64_t output_bytes = 0;
    int64_t not_before_ms = 0;
    // Lease (memory only).
    uint64_t lease_id = 0;
    std::string lease_node;
    int64_t lease_expiry_ms = 0;
  };
  struct Node {
    std::string id;
    std::string hostname;
    uint32_t pid = 0;
    Resources resources;
    Resources used;  // by fixed actors
    int64_t last_seen_ms = 0;
    bool confirmed = false;
    bool draining = false;
    bool dead = false;
  };
  struct FixedActor {
    ActorAssignment assignment;
    Resources demand;
    std::string node_id;  // "" = waiting for room
    int64_t restarts = 0;
    bool dead = false;
    std::string reason;
  };

  Coordinator(std::unique_ptr<rocksdb::DB> db, JobOptions job, CoordinatorOptions options, Clock* clock);
  Status Load();
  Status CreateJob(const std::vector<std::string>& shards);
  void PersistTask(const Task& task, rocksdb::WriteBatch* batch = nullptr);
  void PersistPipeline(rocksdb::WriteBatch* batch = nullptr);
  // The checkpoint manifest (meta/checkpoint/*) into checkpoints_.
  void LoadCheckpointManifest();
  void PersistNode(const Node& node);
  void PersistActor(const FixedActor& actor);
  void Write(rocksdb::WriteBatch* batch);
  void AddTask(Task task, rocksdb::WriteBatch* batch);
  void MakeReady(Task& task);
  void Requeue(Task& task, const std::string& reason, bool count_attempt);
  void MarkNodeDead(Node& node, const std::string& why);
  void PlaceActors();
  void Refill();
  void AdvanceFrontiers();
  std::vector<ActorAssignment> FillActorsFor(const Node& node) const;
  int64_t BatchPerObjective() const;
  int64_t TotalPerObjective() const;

  std::unique_ptr<rocksdb::DB> db_;
  JobOptions job_;
  CoordinatorOptions options_;
  Clock* clock_;
  int64_t started_ms_ = 0;
  uint64_t lease_epoch_ = 0;  // bumped at every open so lease ids never repeat
  uint64_t next_lease_ = 1;

  std::map<std::string, Node> nodes_;
  std::map<std::string, FixedActor> actors_;
  std::map<std::string, int64_t> fill_restarts_;      // fill actor id -> restarts used
  std::set<std::string> dead_fill_actors_;
  std::map<std::string, Task> tasks_;
  uint64_t next_order_ = 0;
  std::map<std::string, std::set<std::pair<uint64_t, std::string>>> ready_;  // kind -> (order, id)
  std::set<std::pair<int64_t, std::string>> delayed_;                        // (not_before, id)
  std::map<uint64_t, std::string> leases_;                                   // lease id -> task id

  // Pipeline cursor (persisted).
  std::string phase_ = "tokenize";  // "tokenize", "corrupt", "noop"
  int64_t samples_per_epoch_ = 0;
  std::vector<int> objectives_;
  std::vector<int64_t> next_g_;                       // per objective slot
  std::vector<std::vector<std::pair<int64_t, std::string>>> corrupt_tasks_;  // per slot: (end_g, id)
  std::vector<size_t> frontier_index_;
  std::vector<int64_t> frontier_g_;
  int64_t consumed_step_ = -1;
  int64_t num_noop_created_ = 0;
  size_t num_terminal_ = 0;  // tasks done or dead
  // Throughput of this process's lifetime.
  uint64_t session_bytes_ = 0;
  uint64_t session_tasks_ = 0;

  // Observability (memory only; coordinator/trainer_report.h): trainers'
  // latest reports, recent reports, checkpoints they wrote, and recent
  // failures and restarts for people (StatusJson "events").
  void AddObservabilityJson(int64_t now, nlohmann::json* out) const;
  void RecordEvent(const std::string& kind, const std::string& subject, const std::string& message);
  struct TrainerState {
    TrainerReport latest;
    int64_t received_ms = 0;
  };
  struct CheckpointRecord {
    int64_t step = 0;
    double duration_ms = 0;
    int64_t received_ms = 0;
    std::string trainer_id;
  };
  struct Event {
    int64_t time_ms = 0;
    std::string kind, subject, message;
  };
  std::map<std::string, TrainerState> trainers_;
  // Per-step metrics in options_.run_dir (null when off).
  std::unique_ptr<RunMetricsWriter> run_metrics_;
  // Tokens/s of the whole job for rank 0's `report`: each rank's latest
  // report of the same world size (rank 0's value for a rank not heard yet).
  double JobTokensPerS(const TrainerReport& rank0) const;
  std::deque<LoggedReport> report_log_;
  uint64_t next_report_seq_ = 1;
  std::deque<CheckpointRecord> checkpoints_;  // newest 100; persisted as the checkpoint manifest
  std::deque<Event> events_;                  // newest 100
  int64_t num_node_failures_ = 0;
  int64_t num_task_retries_ = 0;
  int64_t num_actor_restarts_ = 0;
};

}  // namespace glm::coordinator

#endif  // GLM_COORDINATOR_COORDINATOR_H_
