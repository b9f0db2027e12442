// The executor seam: what runs a leased task on a worker.
//
// A pipeline actor leases a task, looks up the executor registered for
// (job executor family, task kind), runs it, and reports TaskDone with the
// returned counts or TaskFailed with the Status. The runtime guarantees:
//   * a task may run more than once, concurrently on two nodes, or be cut
//     off at any instruction (kill -9) and run again elsewhere;
//   * `context.cancelled()` becomes true when the worker drains (SIGTERM);
//     return AbortedError promptly and the task is given back unrun.
// An executor must guarantee (docs/runtime.md, "Executors"):
//   * outputs are a pure function of (job spec, task) and written under
//     deterministic keys derived from what they are, in atomic batches, so
//     a rerun overwrites the same keys with the same bytes;
//   * it returns only once its outputs are durable to its store;
//   * errors are Status: Unavailable/DeadlineExceeded/Aborted are retried
//     with backoff, InvalidArgument/FailedPrecondition/DataLoss dead-letter
//     the task at once; an exception is a crashed actor (restarted by the
//     coordinator within its restart limit).
//
// Thread-safety: one executor instance per actor thread; factories are
// called from actor threads and must be thread-safe.
#ifndef GLM_WORKER_EXECUTOR_H_
#define GLM_WORKER_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "transport/task.h"

namespace glm::worker {

// The job settings every process agrees on (wire::JobSpec, plain).
struct JobSpec {
  std::string job_id;
  uint64_t seed = 0;
  std::string output_dir;
  std::string executor;  // executor family, e.g. "test"
  std::map<std::string, std::string> params;

  std::string Param(const std::string& key, const std::string& fallback = "") const {
    auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
  }
};

class ExecutorContext {
 public:
  ExecutorContext(std::string node_id, JobSpec job, const std::atomic<bool>* cancel)
      : node_id_(std::move(node_id)), job_(std::move(job)), cancel_(cancel) {}
  const std::string& node_id() const { return node_id_; }
  const JobSpec& job() const { return job_; }
  bool cancelled() const { return cancel_ && cancel_->load(); }

 private:
  std::string node_id_;
  JobSpec job_;
  const std::atomic<bool>* cancel_;
};

struct TaskResult {
  uint64_t output_count = 0;  // records written
  uint64_t output_bytes = 0;  // input bytes consumed
};

class TaskExecutor {
 public:
  virtual ~TaskExecutor() = default;
  virtual StatusOr<TaskResult> Run(const TaskSpec& task, const ExecutorContext& context) = 0;
};

using ExecutorFactory =
    std::function<StatusOr<std::unique_ptr<TaskExecutor>>(const ExecutorContext& context)>;

// Maps (executor family, task kind) to a factory. Register at start-up,
// before actors run; Create is thread-safe.
class ExecutorRegistry {
 public:
  void Register(const std::string& family, const std::string& kind, ExecutorFactory factory);
  // NotFound naming the family and kind if none is registered.
  StatusOr<std::unique_ptr<TaskExecutor>> Create(const std::string& family, const std::string& kind,
                                                 const ExecutorContext& context) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, ExecutorFactory> factories_;
};

// Registers the "test" family: tokenize, corrupt and noop executors that
// write deterministic records into a RocksDB database per node under
// <output_dir>/nodes/<node_id> (test_executors.cc; docs/runtime.md).
void RegisterTestExecutors(ExecutorRegistry* registry);

}  // namespace glm::worker

#endif  // GLM_WORKER_EXECUTOR_H_
