// The Prometheus text exposition format (version 0.0.4), written and read.
//
// Writer: what GET /metrics returns. Format, per family:
//   # HELP glm_loss Training loss of the last step, per objective.
//   # TYPE glm_loss gauge
//   glm_loss{objective="blank"} 3.25
// Label values escape \ " and newline as \\ \" \n; values are decimal floats,
// +Inf, -Inf or NaN. Histograms write name_bucket{le="..."} (cumulative),
// name_sum and name_count. Content-Type: text/plain; version=0.0.4.
//
// Parser: strict enough for tests to scrape /metrics and check it: every
// sample must belong to a family declared by a preceding # TYPE line,
// histogram buckets must be cumulative and end with le="+Inf" equal to
// _count. Timestamps after the value are accepted and ignored.
//
// Thread-safety: free functions over values; ParsedMetrics is a value.
#ifndef GLM_COORDINATOR_HTTP_PROMETHEUS_TEXT_H_
#define GLM_COORDINATOR_HTTP_PROMETHEUS_TEXT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/http/metrics.h"

namespace glm::http {

inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

std::string WritePrometheusText(const std::vector<CollectedFamily>& families);
inline std::string WritePrometheusText(const MetricsRegistry& registry) {
  return WritePrometheusText(registry.Collect());
}

struct ParsedSample {
  std::string name;                           // with _bucket/_sum/_count suffix
  std::map<std::string, std::string> labels;  // unescaped
  double value = 0;
};

struct ParsedMetrics {
  std::map<std::string, MetricType> types;  // family name -> TYPE
  std::map<std::string, std::string> help;  // family name -> HELP (unescaped)
  std::vector<ParsedSample> samples;        // in input order

  // The value of the sample with exactly this name and these labels.
  std::optional<double> Find(const std::string& name,
                             const std::map<std::string, std::string>& labels = {}) const;
  // Every sample of `name`, whatever its labels.
  std::vector<const ParsedSample*> All(const std::string& name) const;
};

// Parses exposition text. Errors are InvalidArgument naming the line number.
StatusOr<ParsedMetrics> ParsePrometheusText(const std::string& text);

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_PROMETHEUS_TEXT_H_
