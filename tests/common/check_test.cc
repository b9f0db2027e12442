#include "common/check.h"

#include <gtest/gtest.h>

namespace glm {
namespace {

TEST(CheckTest, PassingCheckDoesNotEvaluateTheMessage) {
  int evaluated = 0;
  auto side_effect = [&] { return ++evaluated; };
  GLM_CHECK(1 + 1 == 2) << side_effect();
  EXPECT_EQ(evaluated, 0);
}

TEST(CheckDeathTest, FailingCheckNamesConditionAndContext) {
  int shard = 7;
  EXPECT_DEATH(GLM_CHECK(shard < 3) << "shard " << shard, "CHECK failed: shard < 3 .*shard 7");
}

TEST(CheckDeathTest, ComparisonChecksPrintBothSides) {
  int a = 4, b = 5;
  EXPECT_DEATH(GLM_CHECK_EQ(a, b), "a = 4, b = 5");
  EXPECT_DEATH(GLM_CHECK_LT(b, a), "b = 5, a = 4");
}

}  // namespace
}  // namespace glm
