// Benchmarks of the observability layer, behind `glm bench metrics`: the cost
// of recording a metric on the hot path (against a bare atomic add, side by
// side), of rendering /metrics, and of serving /metrics and /api/status over
// loopback HTTP. Each result is one JSON object; numbers are measured, never
// asserted (docs/benchmarks.md).
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
  Status Validate() const;
};

// One JSON object per measurement.
StatusOr<std::vector<nlohmann::json>> RunObservabilityBench(const ObservabilityBenchOptions& options);

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_OBSERVABILITY_BENCH_H_
