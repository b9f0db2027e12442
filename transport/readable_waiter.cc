#include "transport/readable_waiter.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace glm::transport {
namespace {

using SteadyClock = std::chrono::steady_clock;

// ZMQ_EVENTS also processes the socket's pending commands, so a message the
// I/O thread has just handed over becomes visible without a sleep.
bool HasMessage(zmq::socket_t& socket) {
  return (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
}

}  // namespace

bool PollReadable(zmq::socket_t& socket, int64_t timeout_ms) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  try {
    return zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) > 0;
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;
    throw;
  }
}

bool ReadableWaiter::spinning() const {
  return options_.spin_us > 0 && average_wait_us_ <= options_.spin_below_us;
}

bool ReadableWaiter::Wait(zmq::socket_t& socket, int timeout_ms) {
  if (timeout_ms <= 0) return PollReadable(socket, 0);
  const auto start = SteadyClock::now();
  const auto deadline = start + std::chrono::milliseconds(timeout_ms);
  bool ready = false;
  bool decided = false;
  if (spinning()) {
    const auto spin_end = std::min(deadline, start + std::chrono::microseconds(options_.spin_us));
    try {
      do {
        if (HasMessage(socket)) {
          ready = decided = true;
          break;
        }
        sched_yield();
      } while (SteadyClock::now() < spin_end);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      return false;
    }
    if (ready) {
      ++num_spin_hits_;
    } else {
      ++num_spin_misses_;
    }
  }
  if (!decided) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    ready = PollReadable(socket, std::max<int64_t>(0, left));
  }
  const int64_t waited_us =
      std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count();
  average_wait_us_ = 0.75 * average_wait_us_ + 0.25 * static_cast<double>(std::min(waited_us, kMaxCountedWaitUs));
  return ready;
}

}  // namespace glm::transport
