// glm model info and glm bench train, run as a user would (the real binary).
// glm forward is tested on the golden data in tests/golden/.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/testing/run_command.h"

namespace {

using glm::testing::CommandResult;
using glm::testing::Contains;

CommandResult RunGlm(const std::string& args) { return glm::testing::RunCommand(std::string(GLM_BINARY) + " " + args); }

// The first line of the output that parses as a JSON object.
nlohmann::json FirstJsonLine(const std::string& output) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) return j;
  }
  return nlohmann::json();
}

TEST(ModelCommandsTest, ModelInfoPrintsParametersAndMemory) {
  CommandResult r = RunGlm("model info --preset base");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = FirstJsonLine(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["parameters"].get<int64_t>(), 109338624);
  EXPECT_EQ(j["vocab_size"].get<int64_t>(), 30592);
  EXPECT_GT(j["activation_bytes_per_sample"].get<int64_t>(), 0);
  EXPECT_TRUE(Contains(r.output, "109.3M parameters")) << r.output;
}

TEST(ModelCommandsTest, ModelInfoRejectsUnknownPreset) {
  CommandResult r = RunGlm("model info --preset nope");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "known presets: tiny, small")) << r.output;
}

TEST(ModelCommandsTest, BenchTrainPrintsOneJsonLineWithThroughput) {
  CommandResult r = RunGlm(
      "bench train --preset tiny --layers 1 --hidden 32 --heads 2 --vocab 100 --seq-len 32 --micro-batch 2 "
      "--steps 1 --warmup 0 --peak-gflops 10");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = FirstJsonLine(r.output);
  ASSERT_TRUE(j.is_object()) << r.output;
  EXPECT_EQ(j["layers"].get<int64_t>(), 1);
  EXPECT_EQ(j["vocab"].get<int64_t>(), 128);  // padded to a multiple of 128
  EXPECT_GT(j["tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["gflops_per_s"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(j["mfu"].get<double>(), j["gflops_per_s"].get<double>() / 10);
}

TEST(ModelCommandsTest, BenchTrainRejectsHeadsThatDoNotDivideHidden) {
  CommandResult r = RunGlm("bench train --preset tiny --hidden 30 --heads 4 --steps 1 --peak-gflops 10");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "num_attention_heads")) << r.output;
}

}  // namespace
