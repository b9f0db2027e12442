#include "coordinator/http/metrics_history.h"

#include <algorithm>

#include "common/check.h"

namespace glm::http {

MetricsHistory::MetricsHistory(size_t capacity) : capacity_(capacity) {
  GLM_CHECK(capacity >= 4) << "MetricsHistory capacity " << capacity;
}

void MetricsHistory::Append(const MetricsPoint& point) {
  std::lock_guard<std::mutex> lock(mu_);
  auto first_not_below = std::lower_bound(
      points_.begin(), points_.end(), point.step,
      [](const MetricsPoint& p, int64_t step) { return p.step < step; });
  points_.erase(first_not_below, points_.end());
  points_.push_back(point);
  if (points_.size() >= capacity_) {
    // Thin the older half by two.
    size_t half = points_.size() / 2;
    std::vector<MetricsPoint> kept;
    kept.reserve(capacity_);
    for (size_t i = 0; i < half; i += 2) kept.push_back(std::move(points_[i]));
    for (size_t i = half; i < points_.size(); ++i) kept.push_back(std::move(points_[i]));
    points_ = std::move(kept);
  }
}

std::vector<MetricsPoint> MetricsHistory::Since(int64_t after_step, size_t max_points) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto begin = std::upper_bound(points_.begin(), points_.end(), after_step,
                                [](int64_t step, const MetricsPoint& p) { return step < p.step; });
  size_t n = points_.end() - begin;
  if (max_points == 0 || n == 0) return {};
  if (n <= max_points) return std::vector<MetricsPoint>(begin, points_.end());
  std::vector<MetricsPoint> out;
  out.reserve(max_points);
  // Evenly spaced indices ending at the newest point.
  for (size_t k = 0; k < max_points; ++k) {
    size_t index = (n - 1) - (max_points - 1 - k) * (n - 1) / (max_points > 1 ? max_points - 1 : 1);
    out.push_back(*(begin + index));
  }
  return out;
}

size_t MetricsHistory::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return points_.size();
}

}  // namespace glm::http
