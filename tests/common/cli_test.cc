#include "common/cli.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

namespace glm {
namespace {

// Builds a fresh app with one option and parses argv; returns the value.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("GLM_MAX_STEPS");
    // One file per test: ctest runs the tests of this binary in parallel.
    config_path_ = ::testing::TempDir() + "/glm_cli_test_" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
  }
  void TearDown() override {
    unsetenv("GLM_MAX_STEPS");
    std::remove(config_path_.c_str());
  }
  void WriteConfig(const std::string& text) { std::ofstream(config_path_) << text; }

  // Parses args (after the program name) into max_steps; throws CLI errors.
  int64_t Parse(std::vector<std::string> args) {
    CLI::App app{"test"};
    int64_t max_steps = 300;
    AddOption(&app, "max-steps", &max_steps, "steps");
    AddConfigOption(&app, "");
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
    last_status_ = ApplyConfigFile(&app);
    return max_steps;
  }

  std::string config_path_;
  Status last_status_;
};

TEST_F(CliTest, DefaultWhenNothingIsGiven) { EXPECT_EQ(Parse({}), 300); }

TEST_F(CliTest, ConfigFileOverridesDefault) {
  WriteConfig("max_steps: 40\n");
  EXPECT_EQ(Parse({"--config", config_path_}), 40);
}

TEST_F(CliTest, EnvironmentOverridesConfigFile) {
  WriteConfig("max_steps: 40\n");
  setenv("GLM_MAX_STEPS", "50", 1);
  EXPECT_EQ(Parse({"--config", config_path_}), 50);
}

TEST_F(CliTest, FlagOverridesEnvironmentAndConfig) {
  WriteConfig("max_steps: 40\n");
  setenv("GLM_MAX_STEPS", "50", 1);
  EXPECT_EQ(Parse({"--config", config_path_, "--max-steps", "60"}), 60);
}

TEST_F(CliTest, UnknownConfigKeyIsAnErrorNamingIt) {
  WriteConfig("max_stepz: 40\n");
  Parse({"--config", config_path_});
  EXPECT_EQ(last_status_.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(last_status_.message().find("max-stepz"), std::string::npos) << last_status_;
}

TEST_F(CliTest, BadValueTypeIsAnErrorNamingTheKey) {
  WriteConfig("max_steps: many\n");
  Parse({"--config", config_path_});
  EXPECT_EQ(last_status_.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(last_status_.message().find("max-steps"), std::string::npos) << last_status_;
}

TEST_F(CliTest, MalformedYamlIsAnError) {
  WriteConfig("max_steps: [1\n");
  Parse({"--config", config_path_});
  EXPECT_EQ(last_status_.code(), StatusCode::kInvalidArgument);
}

TEST_F(CliTest, MissingConfigFileIsNotFound) {
  Parse({"--config", "/nonexistent.yaml"});
  EXPECT_EQ(last_status_.code(), StatusCode::kNotFound);
}

TEST_F(CliTest, DefaultConfigPathIsUsedWhenNoneGiven) {
  WriteConfig("max_steps: 41\n");
  CLI::App app{"test"};
  int64_t max_steps = 300;
  AddOption(&app, "max-steps", &max_steps, "steps");
  AddConfigOption(&app, config_path_);
  app.parse(std::vector<std::string>{});
  ASSERT_TRUE(ApplyConfigFile(&app).ok());
  EXPECT_EQ(max_steps, 41);
}

TEST_F(CliTest, HelpShowsDefaultAndEnvironmentVariable) {
  CLI::App app{"test"};
  int64_t max_steps = 300;
  AddOption(&app, "max-steps", &max_steps, "steps to run");
  std::string help = app.help();
  EXPECT_NE(help.find("300"), std::string::npos) << help;
  EXPECT_NE(help.find("GLM_MAX_STEPS"), std::string::npos) << help;
}

}  // namespace
}  // namespace glm
