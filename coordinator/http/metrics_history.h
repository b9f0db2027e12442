// MetricsHistory: the per-step training metrics the dashboard charts, kept in
// memory for /api/status. The coordinator appends one point per step (from
// the trainers' reports); HTTP threads read ranges.
//
// Bounded: when `capacity` points are held, every other point of the older
// half is dropped, so a long run keeps its whole shape at coarser resolution
// and full resolution for recent steps. The authoritative copy of a run's
// metrics is DIR/metrics.jsonl (docs/observability.md); this is a view.
//
// Thread-safety: all methods are thread-safe.
#ifndef GLM_COORDINATOR_HTTP_METRICS_HISTORY_H_
#define GLM_COORDINATOR_HTTP_METRICS_HISTORY_H_

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "coordinator/http/status.h"

namespace glm::http {

class MetricsHistory {
 public:
  explicit MetricsHistory(size_t capacity = 20000);  // capacity >= 4

  // Appends a point; a point whose step is not above the last one replaces
  // the points from that step on (a job resumed from an earlier checkpoint).
  void Append(const MetricsPoint& point);

  // Points with step > after_step, ascending; when more than max_points,
  // evenly thinned, always keeping the newest.
  std::vector<MetricsPoint> Since(int64_t after_step, size_t max_points) const;

  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::vector<MetricsPoint> points_;  // guarded by mu_, ascending steps
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_METRICS_HISTORY_H_
