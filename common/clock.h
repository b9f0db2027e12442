// Clock: the time source of every component that has timeouts.
//
// Components take a `Clock*` in their constructor, so that tests drive time
// with ManualClock instead of sleeping. RealClock reads steady_clock.
//
// Thread-safety: all methods are safe from any thread.
#ifndef GLM_COMMON_CLOCK_H_
#define GLM_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace glm {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds since an arbitrary epoch.
  virtual int64_t NowMs() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t NowMs() const override;
  // The process-wide instance; RealClock has no state, so sharing it is safe.
  static RealClock* Get();
};

// CPU seconds (user + system) used by every thread of this process so far:
// what benchmarks divide work by.
double ProcessCpuSeconds();

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 0) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void AdvanceMs(int64_t delta_ms) { now_ms_ += delta_ms; }
  void SetMs(int64_t now_ms) { now_ms_ = now_ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace glm

#endif  // GLM_COMMON_CLOCK_H_
