#include "common/clock.h"

#include <gtest/gtest.h>

namespace glm {
namespace {

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(100);
  EXPECT_EQ(clock.NowMs(), 100);
  clock.AdvanceMs(250);
  EXPECT_EQ(clock.NowMs(), 350);
  clock.SetMs(5);
  EXPECT_EQ(clock.NowMs(), 5);
}

TEST(ClockTest, RealClockIsMonotonic) {
  int64_t a = RealClock::Get()->NowMs();
  int64_t b = RealClock::Get()->NowMs();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace glm
