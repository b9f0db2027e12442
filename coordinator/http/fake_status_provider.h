// FakeStatusProvider: a StatusProvider for tests and demos, in place of the
// coordinator. Either set its snapshot directly, or let it simulate a small
// job step by step (three nodes, data and trainer actors, two pipeline
// stages, decreasing losses, an occasional actor restart and checkpoint), so
// the dashboard has live, changing data.
//
// Thread-safety: all methods are thread-safe.
#ifndef GLM_COORDINATOR_HTTP_FAKE_STATUS_PROVIDER_H_
#define GLM_COORDINATOR_HTTP_FAKE_STATUS_PROVIDER_H_

#include <atomic>
#include <mutex>
#include <string>

#include "coordinator/http/metrics_history.h"
#include "coordinator/http/status.h"

namespace glm::http {

class FakeStatusProvider : public StatusProvider {
 public:
  FakeStatusProvider();

  // Replaces the snapshot; its `history` is appended to the history buffer.
  void Set(ClusterStatus status);
  void SetReady(bool ready, std::string reason);
  // Advances the simulated job by one training step at wall time `now_ms`.
  // Deterministic given the sequence of calls.
  void SimulateStep(int64_t now_ms);

  ClusterStatus GetStatus(const StatusQuery& query) override;
  bool IsReady(std::string* reason) override;

  int64_t num_status_calls() const { return num_status_calls_.load(); }

 private:
  std::mutex mu_;
  ClusterStatus status_;  // guarded by mu_; history lives in history_
  bool ready_ = false;    // guarded by mu_
  std::string not_ready_reason_ = "starting";  // guarded by mu_
  MetricsHistory history_;
  std::atomic<int64_t> num_status_calls_{0};
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_FAKE_STATUS_PROVIDER_H_
