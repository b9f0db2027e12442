#include "coordinator/http/metrics.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <cmath>
#include <limits>

#include "common/check.h"

namespace glm::http {
namespace {

// std::atomic<double>::fetch_add is C++20; a CAS loop is the C++17 spelling.
void AtomicAdd(std::atomic<double>* target, double amount) {
  double current = target->load(std::memory_order_relaxed);
  while (!target->compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

bool IsNameChar(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (allow_colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool IsValidName(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> Pairs(const std::vector<std::string>& names,
                                                       const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], values[i]);
  return out;
}

template <typename T>
std::unique_ptr<T> MakeChild(const std::vector<double>&) {
  return std::make_unique<T>();
}
template <>
std::unique_ptr<Histogram> MakeChild<Histogram>(const std::vector<double>& bounds) {
  return std::make_unique<Histogram>(bounds);
}

// Prometheus writes bucket bounds as plain floats: 0.005, 1, 2.5, +Inf.
std::string FormatBound(double bound) {
  if (std::isinf(bound)) return "+Inf";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", bound);
  // Shortest form that round-trips.
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, bound);
    if (std::strtod(buf, nullptr) == bound) break;
  }
  return buf;
}

void AppendChild(const std::string& family, const std::vector<std::pair<std::string, std::string>>& labels,
                 const Counter& c, std::vector<CollectedSample>* out) {
  out->push_back({family, labels, c.Value()});
}
void AppendChild(const std::string& family, const std::vector<std::pair<std::string, std::string>>& labels,
                 const Gauge& g, std::vector<CollectedSample>* out) {
  out->push_back({family, labels, g.Value()});
}
void AppendChild(const std::string& family, const std::vector<std::pair<std::string, std::string>>& labels,
                 const Histogram& h, std::vector<CollectedSample>* out) {
  Histogram::Snapshot s = h.Read();
  for (size_t i = 0; i <= s.upper_bounds.size(); ++i) {
    auto with_le = labels;
    with_le.emplace_back("le", i < s.upper_bounds.size() ? FormatBound(s.upper_bounds[i]) : "+Inf");
    out->push_back({family + "_bucket", std::move(with_le), static_cast<double>(s.cumulative[i])});
  }
  out->push_back({family + "_sum", labels, s.sum});
  out->push_back({family + "_count", labels, static_cast<double>(s.count)});
}

}  // namespace

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

bool IsValidMetricName(const std::string& name) { return IsValidName(name, true); }
bool IsValidLabelName(const std::string& name) { return IsValidName(name, false); }

void Counter::Increment(double amount) {
  if (!(amount >= 0)) return;  // also drops NaN
  AtomicAdd(&value_, amount);
}

void Counter::AdvanceTo(double total) {
  double current = value_.load(std::memory_order_relaxed);
  while (total > current &&
         !value_.compare_exchange_weak(current, total, std::memory_order_relaxed)) {
  }
}

void Gauge::Add(double amount) { AtomicAdd(&value_, amount); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      bucket_counts_(new std::atomic<uint64_t>[upper_bounds_.size() + 1]) {
  for (size_t i = 0; i + 1 < upper_bounds_.size(); ++i) {
    GLM_CHECK(upper_bounds_[i] < upper_bounds_[i + 1]) << "histogram bounds must increase";
  }
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) bucket_counts_[i].store(0);
}

void Histogram::Observe(double value) {
  // First bucket whose upper bound is >= value ("le" is inclusive).
  size_t i = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  bucket_counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(&sum_, value);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.upper_bounds = upper_bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += bucket_counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // Concurrent observers may have bumped a bucket but not yet the count; the
  // exposition stays consistent by reporting the bucket total as the count.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int num) {
  GLM_CHECK(start > 0 && factor > 1 && num >= 1) << "bad exponential buckets";
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < num; ++i, v *= factor) out.push_back(v);
  return out;
}

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(label_names)) {}

template <typename T>
T* Family<T>::WithLabels(const std::vector<std::string>& values) {
  GLM_CHECK_EQ(values.size(), label_names_.size()) << "label values for metric " << name_;
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<T>& child = children_[values];
  if (!child) child = MakeChild<T>(bounds_);
  return child.get();
}

template <typename T>
void Family<T>::ResetAll() {
  if constexpr (std::is_same_v<T, Gauge>) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [values, child] : children_) child->Set(0);
  }
}

template <typename T>
CollectedFamily Family<T>::Collect() const {
  CollectedFamily out{name_, help_, type_, {}};
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, child] : children_) {
    AppendChild(name_, Pairs(label_names_, values), *child, &out.samples);
  }
  return out;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void MetricsRegistry::CheckNewName(const std::string& name,
                                   const std::vector<std::string>& label_names) const {
  GLM_CHECK(IsValidMetricName(name)) << "invalid metric name '" << name << "'";
  for (const std::string& label : label_names) {
    GLM_CHECK(IsValidLabelName(label) && label != "le" && label.rfind("__", 0) != 0)
        << "invalid label name '" << label << "' on metric " << name;
  }
  for (const auto& family : families_) {
    GLM_CHECK(family->name() != name) << "metric " << name << " registered twice";
  }
}

Family<Counter>* MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                             std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, label_names);
  auto family = std::make_unique<Family<Counter>>(name, help, MetricType::kCounter, std::move(label_names));
  Family<Counter>* raw = family.get();
  families_.push_back(std::move(family));
  return raw;
}

Family<Gauge>* MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                         std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, label_names);
  auto family = std::make_unique<Family<Gauge>>(name, help, MetricType::kGauge, std::move(label_names));
  Family<Gauge>* raw = family.get();
  families_.push_back(std::move(family));
  return raw;
}

Family<Histogram>* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                                 std::vector<std::string> label_names,
                                                 std::vector<double> upper_bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  CheckNewName(name, label_names);
  for (size_t i = 0; i + 1 < upper_bounds.size(); ++i) {
    GLM_CHECK(upper_bounds[i] < upper_bounds[i + 1]) << "histogram " << name << " bounds must increase";
  }
  auto family = std::make_unique<Family<Histogram>>(name, help, MetricType::kHistogram,
                                                    std::move(label_names), std::move(upper_bounds));
  Family<Histogram>* raw = family.get();
  families_.push_back(std::move(family));
  return raw;
}

std::vector<CollectedFamily> MetricsRegistry::Collect() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<CollectedFamily> out;
  out.reserve(families_.size());
  for (const auto& family : families_) out.push_back(family->Collect());
  return out;
}

}  // namespace glm::http
