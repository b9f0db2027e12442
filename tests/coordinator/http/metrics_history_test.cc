#include "coordinator/http/metrics_history.h"

#include <gtest/gtest.h>

namespace glm::http {
namespace {

MetricsPoint At(int64_t step) {
  MetricsPoint p;
  p.step = step;
  p.loss = double(step);
  return p;
}

TEST(MetricsHistoryTest, SinceReturnsOnlyNewerPointsAscending) {
  MetricsHistory h;
  for (int s = 1; s <= 5; ++s) h.Append(At(s));
  auto points = h.Since(3, 100);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].step, 4);
  EXPECT_EQ(points[1].step, 5);
  EXPECT_TRUE(h.Since(5, 100).empty());
  EXPECT_EQ(h.Since(-1, 100).size(), 5u);
}

TEST(MetricsHistoryTest, ThinsEvenlyAndKeepsTheNewest) {
  MetricsHistory h;
  for (int s = 1; s <= 100; ++s) h.Append(At(s));
  auto points = h.Since(-1, 10);
  ASSERT_EQ(points.size(), 10u);
  EXPECT_EQ(points.front().step, 1);
  EXPECT_EQ(points.back().step, 100);
  for (size_t i = 1; i < points.size(); ++i) EXPECT_LT(points[i - 1].step, points[i].step);
}

TEST(MetricsHistoryTest, ResumingFromAnEarlierStepReplacesLaterPoints) {
  MetricsHistory h;
  for (int s = 1; s <= 10; ++s) h.Append(At(s));
  h.Append(At(6));  // resumed from the checkpoint at step 5
  auto points = h.Since(-1, 100);
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points.back().step, 6);
}

TEST(MetricsHistoryTest, StaysBoundedOverLongRuns) {
  MetricsHistory h(100);
  for (int s = 1; s <= 10000; ++s) h.Append(At(s));
  EXPECT_LT(h.size(), 100u);
  auto points = h.Since(-1, 1000);
  EXPECT_EQ(points.back().step, 10000);
  EXPECT_LE(points.front().step, 100);  // the start of the run is still there, coarser
}

}  // namespace
}  // namespace glm::http
