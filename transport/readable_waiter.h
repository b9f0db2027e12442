// ReadableWaiter: waits for a ZeroMQ socket to have a message, busy-polling
// briefly before it sleeps when messages have been arriving close together.
//
// Why: a thread that sleeps in zmq_poll idles its CPU, and waking it again
// from another CPU is the dominant cost of a request/reply round trip on a
// small VM. Measured on the 2-vCPU development machine (docs/benchmarks.md,
// "Busy polling"): one synchronous CURVE round trip is ~105 us when every
// party sleeps, ~32 us when all four threads (caller, callee, their two
// libzmq I/O threads) share one CPU, and ~50-70 us when the waiting side
// checks the socket and sched_yield()s for a while before sleeping. The same idea
// as Linux's SO_BUSY_POLL and glibc's adaptive mutexes.
//
// Policy (adaptive, so an idle socket costs nothing):
//
//   every Wait with timeout > 0 measures how long it waited (d, capped at
//   kMaxCountedWaitUs) and keeps a moving average: avg = 3/4 avg + 1/4 d.
//
//   avg <= spin_below_us ? ── yes ──> check + sched_yield() for up to spin_us,
//          │                          then sleep in zmq_poll for the rest
//          no ─────────────────────-> sleep in zmq_poll at once
//
// A socket whose waits average at most spin_below_us therefore spins, and
// one that waits seconds between messages (a heartbeat loop, a slow peer)
// never does. The cost is CPU time while spinning, at most spin_us per wait:
// about 10% of a CPU when waits sit at the 1 ms limit, most of the waiting
// time when replies come just after spin_us. sched_yield hands the CPU to
// any other thread runnable on it (a trainer's compute threads), so what
// spinning takes is mostly time the CPU would have idled.
//
// Thread-safety: like the socket it waits on, one thread at a time.
#ifndef GLM_TRANSPORT_READABLE_WAITER_H_
#define GLM_TRANSPORT_READABLE_WAITER_H_

#include <zmq.hpp>

#include <cstdint>

namespace glm::transport {

struct BusyPollOptions {
  // Longest busy-poll before sleeping, in microseconds; 0 disables busy
  // polling. Default: 100.
  int spin_us = 100;
  // Busy-poll only while the average wait is at most this. Default: 1000.
  int spin_below_us = 1000;
};

// zmq_poll for one socket: true when it has a message within timeout_ms
// (0 = just look); false on timeout or when a signal interrupted the wait
// (EINTR, e.g. SIGTERM to drain), so the caller's loop can look at its stop
// flag.
bool PollReadable(zmq::socket_t& socket, int64_t timeout_ms);

class ReadableWaiter {
 public:
  explicit ReadableWaiter(BusyPollOptions options = BusyPollOptions()) : options_(options) {}

  // PollReadable, busy-polling first when the policy says so.
  bool Wait(zmq::socket_t& socket, int timeout_ms);

  // Whether the next Wait would busy-poll (for tests and diagnostics).
  bool spinning() const;
  uint64_t num_spin_hits() const { return num_spin_hits_; }
  uint64_t num_spin_misses() const { return num_spin_misses_; }

  // Waits longer than this count as this long in the average. 10 ms.
  static constexpr int64_t kMaxCountedWaitUs = 10000;

 private:
  BusyPollOptions options_;
  // Starts high: spinning begins only after messages are seen arriving fast.
  double average_wait_us_ = kMaxCountedWaitUs;
  uint64_t num_spin_hits_ = 0;
  uint64_t num_spin_misses_ = 0;
};

}  // namespace glm::transport

#endif  // GLM_TRANSPORT_READABLE_WAITER_H_
