#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace glm {
namespace {

TEST(ConfigTest, FlattensNestedMapsAndNormalisesUnderscores) {
  auto entries = ParseYamlConfig("max_steps: 300\nmodel:\n  preset: small\n  num_layers: 4\n", "t");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].key, "max-steps");
  EXPECT_EQ((*entries)[0].values, std::vector<std::string>{"300"});
  EXPECT_EQ((*entries)[1].key, "model-preset");
  EXPECT_EQ((*entries)[2].key, "model-num-layers");
}

TEST(ConfigTest, SequencesBecomeLists) {
  auto entries = ParseYamlConfig("input: [a.txt, b.json]\n", "t");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ((*entries)[0].values, (std::vector<std::string>{"a.txt", "b.json"}));
}

TEST(ConfigTest, EmptyFileAndNullValuesLeaveDefaults) {
  auto empty = ParseYamlConfig("", "t");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto null_value = ParseYamlConfig("seed:\n", "t");
  ASSERT_TRUE(null_value.ok());
  EXPECT_TRUE(null_value->empty());
}

TEST(ConfigTest, MalformedYamlNamesSourceAndLine) {
  auto entries = ParseYamlConfig("a: 1\nb: [unclosed\n", "configs/bad.yaml");
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(entries.status().message().find("configs/bad.yaml:"), std::string::npos)
      << entries.status();
}

TEST(ConfigTest, TopLevelMustBeAMapping) {
  auto entries = ParseYamlConfig("- a\n- b\n", "list.yaml");
  ASSERT_FALSE(entries.ok());
  EXPECT_NE(entries.status().message().find("mapping"), std::string::npos);
}

TEST(ConfigTest, NestedListsAreRejected) {
  auto entries = ParseYamlConfig("input: [[a]]\n", "t");
  EXPECT_FALSE(entries.ok());
}

TEST(ConfigTest, LoadMissingFileIsNotFound) {
  auto entries = LoadYamlConfig("/nonexistent/glm.yaml");
  EXPECT_EQ(entries.status().code(), StatusCode::kNotFound);
}

TEST(ConfigTest, LoadsFromDisk) {
  std::string path = ::testing::TempDir() + "/glm_config_test.yaml";
  std::ofstream(path) << "seed: 7\n";
  auto entries = LoadYamlConfig(path);
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ((*entries)[0].values[0], "7");
  std::remove(path.c_str());
}

TEST(ConfigTest, EnvNameFor) {
  EXPECT_EQ(EnvNameFor("max-steps"), "GLM_MAX_STEPS");
  EXPECT_EQ(EnvNameFor("seed"), "GLM_SEED");
}

}  // namespace
}  // namespace glm
