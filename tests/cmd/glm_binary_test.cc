// Runs the real build/glm binary as a user would.
#include <gtest/gtest.h>

#include "tests/testing/run_command.h"
#include <fstream>
#include <string>

namespace {

using glm::testing::CommandResult;
using glm::testing::Contains;

CommandResult RunGlm(const std::string& args, const std::string& env = "") {
  return glm::testing::RunCommand(env + " " + GLM_BINARY + " " + args);
}

TEST(GlmBinaryTest, HelpListsTheSubcommands) {
  CommandResult r = RunGlm("--help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* cmd : {"pretrain", "pipeline", "coordinator", "worker", "tokenizer", "corrupt",
                          "store", "forward", "infill", "eval", "bench", "version"}) {
    EXPECT_TRUE(Contains(r.output, cmd)) << cmd << " missing from:\n" << r.output;
  }
}

TEST(GlmBinaryTest, NoSubcommandIsAUsageError) {
  CommandResult r = RunGlm("");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--help")) << r.output;
}

TEST(GlmBinaryTest, VersionReportsCommitLibTorchAndOpenBlas) {
  CommandResult r = RunGlm("version");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "git ")) << r.output;
  EXPECT_TRUE(Contains(r.output, "LibTorch 1.")) << r.output;
  EXPECT_TRUE(Contains(r.output, "BLAS: OpenBLAS")) << r.output;
  EXPECT_TRUE(Contains(r.output, "CUDA:")) << r.output;
  EXPECT_TRUE(Contains(r.output, "NCCL:")) << r.output;
}

TEST(GlmBinaryTest, VersionJsonIsOneObject) {
  CommandResult r = RunGlm("version --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.front(), '{') << r.output;
  EXPECT_TRUE(Contains(r.output, "\"blas\":\"OpenBLAS\"")) << r.output;
}

TEST(GlmBinaryTest, SubcommandHelpShowsDefaultsAndVariables) {
  CommandResult r = RunGlm("bench gemm --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "--size")) << r.output;
  EXPECT_TRUE(Contains(r.output, "2048")) << r.output;
  EXPECT_TRUE(Contains(r.output, "GLM_SIZE")) << r.output;
}

TEST(GlmBinaryTest, UnknownFlagExitsTwoAndPointsToHelp) {
  CommandResult r = RunGlm("bench gemm --sise 10");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--sise")) << r.output;
  EXPECT_TRUE(Contains(r.output, "glm bench gemm --help")) << r.output;
}

TEST(GlmBinaryTest, BadValueNamesTheOptionToChange) {
  CommandResult r = RunGlm("bench gemm --dtype int8");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--dtype")) << r.output;
  EXPECT_TRUE(Contains(r.output, "float32")) << r.output;
}

TEST(GlmBinaryTest, PretrainRefusesASequenceThePresetCannotTakeBeforeAnyWork) {
  const std::string workdir = ::testing::TempDir() + "/glm_binary_pretrain_tiny";
  CommandResult r = RunGlm("pretrain --preset tiny --seq-length 256 --workdir " + workdir);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "max_sequence_length 128")) << r.output;
  EXPECT_TRUE(Contains(r.output, "HINT: pass --seq-length 128")) << r.output;
  EXPECT_FALSE(std::ifstream(workdir + "/cluster/keys/server.pub").good()) << "work started in " << workdir;
  EXPECT_EQ(RunGlm("pretrain --preset tiny --seq-length 128 --check-args").exit_code, 0);
}

TEST(GlmBinaryTest, BadConfigKeyExitsTwo) {
  std::string path = ::testing::TempDir() + "/glm_binary_bad.yaml";
  std::ofstream(path) << "sise: 10\n";
  CommandResult r = RunGlm("bench gemm --config " + path);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "sise")) << r.output;
}

TEST(GlmBinaryTest, ConfigAndEnvironmentSetOptions) {
  std::string path = ::testing::TempDir() + "/glm_binary_good.yaml";
  std::ofstream(path) << "size: 64\nrepeats: 1\n";
  CommandResult from_file = RunGlm("bench gemm --config " + path);
  EXPECT_EQ(from_file.exit_code, 0) << from_file.output;
  EXPECT_TRUE(Contains(from_file.output, "\"size\":64")) << from_file.output;
  CommandResult from_env = RunGlm("bench gemm --config " + path, "GLM_SIZE=32");
  EXPECT_TRUE(Contains(from_env.output, "\"size\":32")) << from_env.output;
}

TEST(GlmBinaryTest, GemmFloorFailsClearly) {
  CommandResult r = RunGlm("bench gemm --size 64 --repeats 1 --min-gflops 1e12");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "below the floor")) << r.output;
}

TEST(GlmBinaryTest, CheckpointWithoutACoordinatorSaysWhatIsWrong) {
  CommandResult r = RunGlm("checkpoint --run x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--run")) << r.output;
  r = RunGlm("checkpoint --coordinator tcp://127.0.0.1:1 --keys ''");  // nobody listens on port 1
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "coordinator tcp://127.0.0.1:1")) << r.output;
}

}  // namespace
