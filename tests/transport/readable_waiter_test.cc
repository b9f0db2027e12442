#include "transport/readable_waiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace glm::transport {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Two connected PAIR sockets over inproc: `in` is waited on, `out` sends.
class ReadableWaiterTest : public ::testing::Test {
 protected:
  ReadableWaiterTest() : in_(context_, zmq::socket_type::pair), out_(context_, zmq::socket_type::pair) {
    in_.bind("inproc://waiter");
    out_.connect("inproc://waiter");
  }

  void SendOne() { ASSERT_TRUE(out_.send(zmq::str_buffer("m"), zmq::send_flags::none)); }
  void ReceiveOne() {
    zmq::message_t m;
    ASSERT_TRUE(in_.recv(m, zmq::recv_flags::dontwait));
  }
  // Waits that find a message at once (an average wait of ~0 us) until the
  // waiter spins, at most `n` (a loaded machine may stretch a few of them).
  void FastTraffic(ReadableWaiter* waiter, int n = 1000) {
    for (int i = 0; i < n && !waiter->spinning(); ++i) {
      SendOne();
      ASSERT_TRUE(waiter->Wait(in_, 1000));
      ReceiveOne();
    }
  }

  zmq::context_t context_;
  zmq::socket_t in_;
  zmq::socket_t out_;
};

TEST_F(ReadableWaiterTest, StartsSleepingAndSpinsOnceMessagesComeFast) {
  ReadableWaiter waiter;
  EXPECT_FALSE(waiter.spinning());
  FastTraffic(&waiter);
  ASSERT_TRUE(waiter.spinning());
  const uint64_t hits = waiter.num_spin_hits();
  SendOne();
  EXPECT_TRUE(waiter.Wait(in_, 1000));
  ReceiveOne();
  EXPECT_EQ(waiter.num_spin_hits(), hits + 1);
}

TEST_F(ReadableWaiterTest, StopsSpinningWhenMessagesStopComing) {
  ReadableWaiter waiter;
  FastTraffic(&waiter);
  ASSERT_TRUE(waiter.spinning());
  // Each empty wait spins for spin_us, sleeps out its 5 ms, and pulls the
  // average up: after a few, no more spinning.
  int waits = 0;
  while (waiter.spinning() && waits < 20) {
    EXPECT_FALSE(waiter.Wait(in_, 5));
    ++waits;
  }
  EXPECT_FALSE(waiter.spinning());
  EXPECT_LE(waits, 5);
  EXPECT_EQ(waiter.num_spin_misses(), static_cast<uint64_t>(waits));
}

TEST_F(ReadableWaiterTest, TimesOutAfterTheWholeTimeoutWhileSpinning) {
  ReadableWaiter waiter;
  FastTraffic(&waiter);
  ASSERT_TRUE(waiter.spinning());
  const auto start = SteadyClock::now();
  EXPECT_FALSE(waiter.Wait(in_, 30));
  EXPECT_GE(SteadyClock::now() - start, std::chrono::milliseconds(29));
}

TEST_F(ReadableWaiterTest, ZeroSpinNeverSpins) {
  BusyPollOptions options;
  options.spin_us = 0;
  ReadableWaiter waiter(options);
  FastTraffic(&waiter, 30);
  EXPECT_FALSE(waiter.spinning());
  EXPECT_EQ(waiter.num_spin_hits(), 0u);
}

TEST_F(ReadableWaiterTest, ZeroTimeoutOnlyLooksAndLeavesThePolicyAlone) {
  ReadableWaiter waiter;
  for (int i = 0; i < 30; ++i) EXPECT_FALSE(waiter.Wait(in_, 0));
  EXPECT_FALSE(waiter.spinning());
  SendOne();
  EXPECT_TRUE(waiter.Wait(in_, 0));
  ReceiveOne();
}

TEST_F(ReadableWaiterTest, SleepsForAMessageThatComesAfterTheSpin) {
  ReadableWaiter waiter;
  FastTraffic(&waiter);
  ASSERT_TRUE(waiter.spinning());
  const uint64_t misses = waiter.num_spin_misses();
  std::atomic<bool> waiting{false};
  std::thread sender([&] {
    while (!waiting) std::this_thread::yield();
    // Long after the 100 us spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    SendOne();
  });
  waiting = true;
  EXPECT_TRUE(waiter.Wait(in_, 5000));
  sender.join();
  ReceiveOne();
  EXPECT_EQ(waiter.num_spin_misses(), misses + 1);
}

}  // namespace
}  // namespace glm::transport
