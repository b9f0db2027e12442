// `glm <command> ... --check-args` (cmd/commands.h): parses the flags,
// applies GLM_* variables and --config, runs the command's check and exits 0
// ("arguments OK") or 2 with the error, starting nothing and touching no
// state, data or keys directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/testing/run_command.h"

namespace glm {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::RunCommand;

class K8sCheckArgsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("glm_check_args_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // Runs glm with a clean environment plus `env` ("A=1 B=2").
  testing::CommandResult Glm(const std::string& args, const std::string& env = "") {
    return RunCommand("env -i PATH=/usr/bin:/bin " + env + " " + GLM_BINARY + " " + args);
  }
  void WriteJob(const std::string& text) { std::ofstream(dir_ / "job.json") << text; }
  fs::path dir_;
};

TEST_F(K8sCheckArgsTest, CoordinatorLineIsOkAndNothingIsStartedOrCreated) {
  WriteJob(
      R"({"job_id": "j", "corpus": "/nowhere/*.txt", "output_dir": "", "seed": 1, "executor": "glm",
               "objectives": "blank,sentence,document", "epochs": 1, "samples_per_epoch": 0,
               "samples_per_task": 64, "global_batch_size": 48, "max_batches_ahead": 8, "auto_consume": true,
               "noop_tasks": 0, "params": ""})");
  auto r = Glm("coordinator --bind tcp://0.0.0.0:5555 --state " + (dir_ / "state").string() +
               " --keys " + (dir_ / "keys").string() + " --job-file " +
               (dir_ / "job.json").string() + " --check-args");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "glm coordinator: arguments OK")) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "state"));  // the state database was not opened
  EXPECT_FALSE(Contains(r.output, "serving on")) << r.output;
}

TEST_F(K8sCheckArgsTest, BadEndpointIsUsageErrorNamingTheOption) {
  auto r = Glm("coordinator --bind 0.0.0.0:5555 --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--bind")) << r.output;
  EXPECT_TRUE(Contains(r.output, "tcp://HOST:PORT")) << r.output;
  r = Glm("worker --coordinator tcp://glm-coordinator:55555555 --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--coordinator")) << r.output;
  // A bound port may be chosen by the system where nobody needs to know it.
  r = Glm("store serve --store /s --tokenizer /t --bind tcp://127.0.0.1:* --check-args");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(K8sCheckArgsTest, JobFileIsReadAndItsErrorsNameIt) {
  const std::string base =
      "coordinator --job-file " + (dir_ / "job.json").string() + " --check-args";
  auto r = Glm(base);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "cannot read it")) << r.output;
  WriteJob("{not json");
  r = Glm(base);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "job.json: not JSON")) << r.output;
  WriteJob(R"({"job_id": "j", "corpus": "c", "output_dir": "", "seed": 1, "executor": "glm",
               "objectives": "blank,sentence,document", "epochs": 0, "samples_per_epoch": 0,
               "samples_per_task": 64, "global_batch_size": 48, "max_batches_ahead": 8, "auto_consume": true,
               "noop_tasks": 0, "params": ""})");
  r = Glm(base);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "job.json")) << r.output;
  EXPECT_TRUE(Contains(r.output, "epochs")) << r.output;
}

TEST_F(K8sCheckArgsTest, EnvironmentVariablesAndConfigFileAreApplied) {
  const std::string worker = "worker --coordinator tcp://c:5555 --keys /keys --check-args";
  EXPECT_EQ(Glm(worker).exit_code, 0);
  auto r = Glm(worker, "GLM_RESOURCES=cpu=lots");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "cpu=lots")) << r.output;
  // A flag wins over the variable.
  EXPECT_EQ(Glm(worker + " --resources cpu=2", "GLM_RESOURCES=cpu=lots").exit_code, 0);
  std::ofstream(dir_ / "train.yaml") << "preset: tiny\nmax_steps: 0\n";
  r = Glm("train --store /s --config " + (dir_ / "train.yaml").string() + " --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "max-steps")) << r.output;
  std::ofstream(dir_ / "train.yaml") << "preset: tiny\nmax_stepz: 3\n";
  r = Glm("train --store /s --config " + (dir_ / "train.yaml").string() + " --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "unknown key 'max-stepz'")) << r.output;
}

TEST_F(K8sCheckArgsTest, UnknownFlagsBadEndpointsAndMissingRequiredOnesFail) {
  auto r = Glm("worker --coordinator tcp://c:5555 --no-such-flag 1 --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--no-such-flag")) << r.output;
  r = Glm("checkpoint --coordinator coordinator:5555 --check-args");  // no tcp://
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "coordinator")) << r.output;
  r = Glm("checkpoint --coordinator tcp://glm-coordinator:5555 --keys /keys --check-args");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Glm("store serve --tokenizer /t --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "store")) << r.output;
  r = Glm("train --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "--store")) << r.output;
}

TEST_F(K8sCheckArgsTest, KeysGenerateChecksWithoutWritingKeys) {
  auto r = Glm("keys generate --output " + (dir_ / "keys").string() + " --check-args");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "keys"));
  r = Glm("tokenizer train --input /nowhere/x.txt --output " + (dir_ / "tok").string() +
          " --vocab-size 5 --check-args");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(Contains(r.output, "vocab-size")) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "tok"));
}

}  // namespace
}  // namespace glm
