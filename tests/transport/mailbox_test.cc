#include "transport/mailbox.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace glm::transport {
namespace {

class SummingActor : public Actor<int> {
 public:
  SummingActor() : Actor<int>("summer", std::chrono::milliseconds(5)) {}
  std::atomic<int> sum{0};
  std::atomic<int> idles{0};
  std::vector<int> order;  // touched only on the actor's thread until joined

 protected:
  void Handle(int message) override {
    sum += message;
    order.push_back(message);
  }
  void OnIdle() override { ++idles; }
};

TEST(MailboxTest, PopTimesOutWhenEmptyAndDrainsAfterClose) {
  Mailbox<int> box;
  EXPECT_FALSE(box.Pop(std::chrono::milliseconds(1)).has_value());
  EXPECT_TRUE(box.Post(1));
  box.Close();
  EXPECT_FALSE(box.Post(2));
  EXPECT_EQ(box.Pop(std::chrono::milliseconds(1)).value(), 1);
  EXPECT_FALSE(box.Pop(std::chrono::milliseconds(1)).has_value());
}

TEST(MailboxTest, ActorHandlesMessagesInOrderOnItsThreadAndDrainsOnStop) {
  SummingActor actor;
  actor.Start();
  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(actor.Post(i));
  actor.Join();
  EXPECT_EQ(actor.sum.load(), 5050);
  ASSERT_EQ(actor.order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(actor.order[i], i + 1);
  EXPECT_FALSE(actor.Post(1));
}

TEST(MailboxTest, ActorGetsIdleCallsWhenNothingArrives) {
  SummingActor actor;
  actor.Start();
  while (actor.idles.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  actor.Join();
  EXPECT_GE(actor.idles.load(), 3);
}

}  // namespace
}  // namespace glm::transport
