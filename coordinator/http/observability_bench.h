// Benchmarks of the observability layer, behind `glm bench metrics`: the cost
// of recording a metric on the hot path (against a bare atomic add, side by
// side), of rendering /metrics, and of serving /metrics and /api/status over
// loopback HTTP; and on the real coordinator: the snapshot the coordinator
// thread publishes for the HTTP server (StatusJson + Publish) with many tasks
// behind it, and one TrainerReporter::Report round trip over CURVE loopback
// (a trainer's per-step cost). Each result is one JSON object; numbers are
// measured, never asserted (docs/benchmarks.md).
//
// Thread-safety: run from one thread; it starts and joins its own.
#ifndef GLM_COORDINATOR_HTTP_OBSERVABILITY_BENCH_H_
#define GLM_COORDINATOR_HTTP_OBSERVABILITY_BENCH_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace glm::http {

struct ObservabilityBenchOptions {
  int64_t updates = 20000000;   // Default: 20M metric updates per hot-path measurement
  int threads = 4;              // Default: 4 threads for the contended measurement
  int history_steps = 5000;     // Default: 5000 steps of history behind /api/status
  int requests = 200;           // Default: 200 HTTP requests per endpoint
  int64_t publish_tasks = 20000;  // Default: 20000 finished tasks behind each snapshot
  int reports = 2000;           // Default: 2000 trainer reports for the round-trip measurement
  Status Validate() const;
};

// One JSON object per measurement.
StatusOr<std::vector<nlohmann::json>> RunObservabilityBench(const ObservabilityBenchOptions& options);

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_OBSERVABILITY_BENCH_H_
