// CoordinatorStatusProvider: the StatusProvider of a real coordinator
// (`glm coordinator --http ADDR`).
//
// The Coordinator is a single-threaded state machine owned by the
// CoordinatorServer's thread, so HTTP threads never touch it. Instead the
// server thread calls Publish() every ServerOptions::publish_interval_ms with
// the coordinator and its StatusJson; Publish converts that snapshot into a
// ClusterStatus, appends the trainer reports that arrived since the last
// publish to the chart history, and feeds the per-step histograms (data
// wait, all-reduce, checkpoint duration) and counters of GlmMetrics. HTTP
// threads then read the latest snapshot under a mutex: /api/status and
// /metrics lag the state machine by at most one publish interval.
//
// Mapping from the coordinator's StatusJson (docs/observability.md):
//   phase       "training" while a trainer reports and step < max_steps,
//               else "done" when the pipeline is done, else the pipeline
//               phase ("tokenize", "corrupt", "noop"); "starting" before
//               the first publish
//   nodes       StatusJson nodes (state alive / unconfirmed / draining)
//   actors      StatusJson actor_list, plus one "trainer" actor per
//               reporting trainer ("running", or "silent" when it has not
//               reported for trainer_silent_ms)
//   stages      tasks by kind: pending, leased, done, failed (= dead)
//   objectives  produced = samples written; consumed = the trainers'
//               objective_samples; target_rate = the job's equal split
//   history     one point per step from rank 0's reports; tokens/s of a
//               point = the sum over trainers of their latest tokens_per_s
//   failures    StatusJson events (node lost, actor restarts, task retries,
//               dead tasks) and dead letters
//   checkpoints StatusJson checkpoints (reported by trainers)
//
// Thread-safety: Publish and SetNotReady from one thread (the coordinator's);
// GetStatus and IsReady from any thread. `metrics` (may be null) outlives
// the provider.
#ifndef GLM_COORDINATOR_HTTP_COORDINATOR_STATUS_H_
#define GLM_COORDINATOR_HTTP_COORDINATOR_STATUS_H_

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "coordinator/coordinator.h"
#include "coordinator/http/glm_metrics.h"
#include "coordinator/http/metrics_history.h"
#include "coordinator/http/status.h"

namespace glm::http {

struct CoordinatorStatusOptions {
  // Chart history points kept (older ones thinned). Default: 20000.
  size_t history_capacity = 20000;
  // A trainer silent this long shows as "silent" and leaves tokens/s.
  // Default: 30000 ms.
  int64_t trainer_silent_ms = 30000;
};

// The pure part of the mapping above (no history, no rates): `status` is a
// Coordinator::StatusJson (with or without "transport"), `now_ms` Unix ms.
ClusterStatus ClusterStatusFromCoordinatorJson(const nlohmann::json& status, int64_t now_ms,
                                               int64_t trainer_silent_ms = 30000);

class CoordinatorStatusProvider : public StatusProvider {
 public:
  explicit CoordinatorStatusProvider(GlmMetrics* metrics, CoordinatorStatusOptions options = {});

  // Coordinator thread (ServerOptions::publish): a new snapshot. Makes the
  // provider ready unless SetNotReady said it is stopping.
  void Publish(const coordinator::Coordinator& coordinator, const nlohmann::json& status);
  // Not ready from now on (e.g. "stopping"); before the first Publish the
  // reason is "loading the coordinator state".
  void SetNotReady(const std::string& reason);

  ClusterStatus GetStatus(const StatusQuery& query) override;
  bool IsReady(std::string* reason) override;

  int64_t num_publishes() const { return num_publishes_.load(); }

 private:
  void RecordReports(const std::vector<coordinator::Coordinator::LoggedReport>& reports, int64_t now_ms);

  const CoordinatorStatusOptions options_;
  GlmMetrics* const metrics_;
  MetricsHistory history_;

  // Coordinator thread only.
  uint64_t last_report_seq_ = 0;
  std::map<std::string, double> tokens_per_s_;  // trainer -> latest
  std::set<int64_t> checkpoints_seen_;
  int64_t last_produced_ = -1;
  int64_t last_produced_ms_ = 0;
  double produced_per_s_ = 0;

  std::mutex mu_;
  ClusterStatus snapshot_;      // guarded by mu_; without history
  bool published_ = false;      // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::string not_ready_reason_ = "loading the coordinator state";  // guarded by mu_
  std::atomic<int64_t> num_publishes_{0};
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_COORDINATOR_STATUS_H_
