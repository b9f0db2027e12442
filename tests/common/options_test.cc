#include "common/options.h"

#include <gtest/gtest.h>

namespace glm {
namespace {

TEST(OptionsTest, RequireAtLeastNamesTheFlagEnvAndYamlKey) {
  EXPECT_TRUE(RequireAtLeast("max-steps", 1, 1).ok());
  Status s = RequireAtLeast("max-steps", 0, 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("max-steps = 0"), std::string::npos) << s;
  EXPECT_NE(s.message().find("--max-steps"), std::string::npos) << s;
  EXPECT_NE(s.message().find("GLM_MAX_STEPS"), std::string::npos) << s;
  EXPECT_NE(s.message().find("max_steps"), std::string::npos) << s;
}

TEST(OptionsTest, RequireInRangeIsInclusive) {
  EXPECT_TRUE(RequireInRange("ratio", 0.0, 0.0, 1.0).ok());
  EXPECT_TRUE(RequireInRange("ratio", 1.0, 0.0, 1.0).ok());
  EXPECT_FALSE(RequireInRange("ratio", 1.5, 0.0, 1.0).ok());
}

TEST(OptionsTest, RequireOneOfListsTheChoices) {
  EXPECT_TRUE(RequireOneOf("dtype", "float32", {"float32", "float64"}).ok());
  Status s = RequireOneOf("dtype", "int8", {"float32", "float64"});
  EXPECT_NE(s.message().find("float32 float64"), std::string::npos) << s;
}

TEST(OptionsTest, RequireNonEmpty) {
  EXPECT_TRUE(RequireNonEmpty("store", "/tmp/x").ok());
  EXPECT_NE(RequireNonEmpty("store", "").message().find("--store"), std::string::npos);
}

}  // namespace
}  // namespace glm
