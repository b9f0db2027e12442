// A small Prometheus-style metrics registry: counters, gauges and histograms
// with labels.
//
//   MetricsRegistry registry;
//   Family<Counter>* produced = registry.AddCounter(
//       "glm_samples_produced_total", "Samples written to the store", {"objective"});
//   Counter* blank = produced->WithLabels({"blank"});   // look up once (takes a lock)
//   blank->Increment(64);                               // hot path: one atomic CAS
//   std::string text = WritePrometheusText(registry);   // prometheus_text.h
//
// Ownership: the registry owns every family and every child; the pointers it
// hands out stay valid until the registry is destroyed. No singletons: the
// coordinator owns one registry and passes it to whoever records.
//
// Thread-safety: everything is thread-safe. Updating a child (Increment, Set,
// Observe) is lock-free; creating families and children and collecting take
// a mutex, so keep child pointers rather than looking them up per update.
#ifndef GLM_COORDINATOR_HTTP_METRICS_H_
#define GLM_COORDINATOR_HTTP_METRICS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace glm::http {

enum class MetricType { kCounter, kGauge, kHistogram };

// "counter", "gauge", "histogram" (the Prometheus TYPE names).
const char* MetricTypeName(MetricType type);

// True for names matching [a-zA-Z_:][a-zA-Z0-9_:]* (labels: no ':').
bool IsValidMetricName(const std::string& name);
bool IsValidLabelName(const std::string& name);

// Counters and gauges sit on their own cache line, so that children updated
// from different threads (one per rank, one per actor) do not false-share.
inline constexpr size_t kMetricAlignment = 64;

// A value that only goes up (events, samples, seconds spent).
class alignas(kMetricAlignment) Counter {
 public:
  // `amount` must be >= 0 (a negative amount is ignored: counters never go down).
  void Increment(double amount = 1.0);
  // Raises the counter to `total` when that is higher (for totals kept
  // elsewhere, e.g. produced counts in the coordinator's store).
  void AdvanceTo(double total);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down (nodes alive, current loss, tokens/s).
class alignas(kMetricAlignment) Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into fixed buckets (durations, sizes). Bucket bounds
// are upper bounds, strictly increasing; +Inf is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;       // without +Inf
    std::vector<uint64_t> cumulative;       // one per bound, then +Inf (= count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> bucket_counts_;  // per bucket + one for +Inf
  std::atomic<double> sum_{0.0};
  std::atomic<uint64_t> count_{0};
};

// Bounds start, start*factor, ... (num values). For durations: 0.001 x 2^k.
std::vector<double> ExponentialBuckets(double start, double factor, int num);

// One sample as collected for exposition: name (with _bucket/_sum/_count for
// histograms), label pairs in order, value.
struct CollectedSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct CollectedFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<CollectedSample> samples;
};

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  virtual CollectedFamily Collect() const = 0;

 protected:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// All children of one metric name, one per combination of label values.
template <typename T>
class Family : public FamilyBase {
 public:
  using FamilyBase::FamilyBase;
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::vector<double> bounds)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // The child for these label values (one per label name, in order), created
  // on first use. Dies (GLM_CHECK) on a wrong number of values: a programming
  // error, not input.
  T* WithLabels(const std::vector<std::string>& values);
  // The child of a family without labels.
  T* Get() { return WithLabels({}); }
  // Sets every existing child to zero (gauges only; used to clear states that
  // no longer occur, e.g. no more "dead" nodes).
  void ResetAll();

  CollectedFamily Collect() const override;

 private:
  const std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;  // guarded by mu_
};

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Register a family. Invalid or duplicate names die (GLM_CHECK): metric
  // names are fixed in code, so this is a programming error.
  Family<Counter>* AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>* AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>* AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> upper_bounds);

  // Every family, in registration order, with its current values.
  std::vector<CollectedFamily> Collect() const;

 private:
  void CheckNewName(const std::string& name, const std::vector<std::string>& label_names) const;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;  // guarded by mu_
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_METRICS_H_
