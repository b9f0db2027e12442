// Elastic data-parallel training through the coordinator's trainer group
// (coordinator/trainer_group.h), with real processes on loopback: the local
// cluster of `glm pretrain --config configs/tiny.yaml`, a trainer killed with
// SIGKILL mid-run, a newcomer `glm train` joining mid-run, and `glm
// checkpoint` asking the group for a checkpoint.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/testing/run_command.h"

namespace {
namespace fs = std::filesystem;
using glm::testing::RunCommand;

const std::string kGlm = GLM_BINARY;
const std::string kSource = GLM_SOURCE_DIR;

std::string Slurp(const fs::path& p) { return glm::testing::ReadFileOrEmpty(p.string()); }

std::vector<nlohmann::json> Metrics(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

// Shell: wait until `file` has at least `lines` lines (at most 90 s).
std::string WaitForLines(const fs::path& file, int lines) {
  return "n=0; while [ \"$(cat " + file.string() + " 2>/dev/null | wc -l)\" -lt " + std::to_string(lines) +
         " ] && [ $n -lt 900 ]; do sleep 0.1; n=$((n+1)); done; ";
}

// Every step 1..last exactly once, in order; each with the equal mix of the
// 12-sample global batch (4 samples per objective), whatever the world size.
void ExpectEveryStepOnceWithTheSameSamples(const std::vector<nlohmann::json>& m, int64_t last) {
  ASSERT_EQ(static_cast<int64_t>(m.size()), last);
  for (int64_t i = 0; i < last; ++i) {
    ASSERT_EQ(m[i]["step"], i + 1);
    EXPECT_EQ(m[i]["samples_blank"], 4) << m[i];
    EXPECT_EQ(m[i]["samples_sentence"], 4) << m[i];
    EXPECT_EQ(m[i]["samples_document"], 4) << m[i];
  }
}

double MeanLoss(const std::vector<nlohmann::json>& m, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += m[i]["loss"].get<double>();
  return sum / static_cast<double>(end - begin);
}

class ElasticTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kSource + "/data/sotu/1790_george_washington_n.txt")) {
      GTEST_SKIP() << "the default corpus is not in data/sotu (scripts/setup downloads it)";
    }
    dir_ = fs::path(::testing::TempDir()) / ("elastic_" + std::string(::testing::UnitTest::GetInstance()
                                                                         ->current_test_info()
                                                                         ->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

// (b) Two trainers; SIGKILL one at step >= 30: the coordinator presumes it
// dead, the survivor re-forms the group alone, redoes the abandoned step
// with the whole global batch, and the run finishes without a restart or a
// jump in the loss.
TEST_F(ElasticTrainingTest, KilledTrainerIsDroppedAndTheSurvivorTrainsTheWholeBatch) {
  const fs::path run = dir_ / "k";
  auto r = RunCommand("cd " + kSource + " && (" + kGlm + " pretrain --config configs/tiny.yaml --workdir " +
                      run.string() + " --trainers 2 --max-steps 150 > /dev/null 2> " + (dir_ / "k.log").string() +
                      " & pid=$!; " + WaitForLines(run / "ranks" / "1" / "metrics.jsonl", 30) +
                      // The bracket keeps the pattern from matching this shell's own command line.
                      "pkill -9 -f -- 'train --workdir " + (run / "ranks").string() + "/[1]'; wait $pid; echo rc=$?)");
  const std::string log = Slurp(dir_ / "k.log");
  ASSERT_NE(r.output.find("rc=0"), std::string::npos) << r.output << log;
  EXPECT_NE(log.find("trainer-1 exited with 137"), std::string::npos) << log;
  EXPECT_NE(log.find("continues without it"), std::string::npos) << log;

  const std::vector<nlohmann::json> m = Metrics(run / "metrics.jsonl");
  ExpectEveryStepOnceWithTheSameSamples(m, 150);
  size_t first_alone = 0;
  while (first_alone < m.size() && m[first_alone]["world_size"] == 2) ++first_alone;
  ASSERT_GE(first_alone, 29u);
  ASSERT_LT(first_alone, 140u);
  for (size_t i = first_alone; i < m.size(); ++i) {
    ASSERT_EQ(m[i]["world_size"], 1) << m[i];
    ASSERT_EQ(m[i]["generation"], 1) << m[i];
  }
  // No jump: the five steps after the loss are within 0.5 nats of the five
  // before (a reset to initial weights would be ~1.5 nats up).
  EXPECT_NEAR(MeanLoss(m, first_alone, first_alone + 5), MeanLoss(m, first_alone - 5, first_alone), 0.5);
  EXPECT_TRUE(fs::exists(run / "checkpoints" / "step-0000000150"));
}

// (c) A second trainer started mid-run joins at a step boundary: the running
// rank checkpoints there, both switch to generation 1 together, the newcomer
// receives parameters and optimizer state (it reports the same all-reduced
// loss at every step), and the steps consume exactly the samples one trainer
// would. Then `glm checkpoint` gets a checkpoint written at the group's next
// boundary.
TEST_F(ElasticTrainingTest, NewcomerJoinsAtAStepBoundaryAndGlmCheckpointIsObeyed) {
  const fs::path run = dir_ / "n";
  const fs::path newcomer = dir_ / "newcomer";
  const std::string find_endpoints =
      "store=$(sed -n 's/.*local cluster: storage server \\([^,]*\\), coordinator \\([^,]*\\),.*/\\1/p' " +
      (dir_ / "n.log").string() + "); coord=$(sed -n 's/.*local cluster: storage server \\([^,]*\\), coordinator " +
      "\\([^,]*\\),.*/\\2/p' " + (dir_ / "n.log").string() + "); ";
  auto r = RunCommand(
      "cd " + kSource + " && (" + kGlm + " pretrain --config configs/tiny.yaml --workdir " + run.string() +
      " --trainers 1 --max-steps 400 --checkpoint-every 0 --keep-checkpoints 100 > /dev/null 2> " + (dir_ / "n.log").string() + " & pid=$!; " +
      WaitForLines(run / "metrics.jsonl", 20) + find_endpoints + "echo coord=$coord; " + kGlm +
      " train --coordinator $coord --keys " + (run / "cluster" / "keys").string() +
      " --store-endpoint $store --config configs/tiny.yaml --max-steps 400 --checkpoint-every 0 --quiet --workdir " + newcomer.string() +
      " > /dev/null 2> " + (dir_ / "newcomer.log").string() + " & npid=$!; " +
      WaitForLines(newcomer / "metrics.jsonl", 10) + kGlm + " checkpoint --coordinator $coord --keys " +
      (run / "cluster" / "keys").string() + " --wait-s 60 > " + (dir_ / "ck.out").string() +
      " 2>&1; echo ck=$?; wait $npid; echo nrc=$?; wait $pid; echo rc=$?)");
  const std::string context = r.output + Slurp(dir_ / "n.log") + Slurp(dir_ / "newcomer.log") + Slurp(dir_ / "ck.out");
  ASSERT_NE(r.output.find("rc=0"), std::string::npos) << context;
  ASSERT_NE(r.output.find("nrc=0"), std::string::npos) << context;
  ASSERT_NE(r.output.find("ck=0"), std::string::npos) << context;

  const std::vector<nlohmann::json> m = Metrics(run / "metrics.jsonl");
  ExpectEveryStepOnceWithTheSameSamples(m, 400);
  size_t joined = 0;
  while (joined < m.size() && m[joined]["world_size"] == 1) ++joined;
  ASSERT_GE(joined, 20u);
  ASSERT_LT(joined, 390u);
  for (size_t i = joined; i < m.size(); ++i) {
    ASSERT_EQ(m[i]["world_size"], 2) << m[i];
    ASSERT_EQ(m[i]["generation"], 1) << m[i];
  }
  // The rank switched with a checkpoint of the state before the change.
  EXPECT_TRUE(fs::exists(run / "checkpoints" / ("step-" + std::string(10 - std::to_string(joined).size(), '0') +
                                                std::to_string(joined))))
      << "no checkpoint at the switch step " << joined;
  // The newcomer's steps are the same steps with the same all-reduced loss.
  const std::vector<nlohmann::json> n = Metrics(newcomer / "metrics.jsonl");
  ASSERT_EQ(n.size(), m.size() - joined);
  for (size_t i = 0; i < n.size(); ++i) {
    ASSERT_EQ(n[i]["step"], m[joined + i]["step"]);
    EXPECT_EQ(n[i]["rank"], 1);
    EXPECT_DOUBLE_EQ(n[i]["loss"].get<double>(), m[joined + i]["loss"].get<double>()) << "step " << n[i]["step"];
  }
  // glm checkpoint: scheduled at a boundary and written there (no periodic
  // checkpoints in this run: only the switch's, this one and the last).
  std::smatch scheduled, written;
  const std::string ck = Slurp(dir_ / "ck.out");
  ASSERT_TRUE(std::regex_search(ck, scheduled, std::regex("checkpoint scheduled at step ([0-9]+)"))) << ck;
  ASSERT_TRUE(std::regex_search(ck, written, std::regex("checkpoint written at step ([0-9]+)"))) << ck;
  EXPECT_EQ(scheduled[1], written[1]) << ck;
  const std::string step = written[1];
  EXPECT_GT(std::stoll(step), static_cast<int64_t>(joined)) << ck;
  EXPECT_TRUE(fs::exists(run / "checkpoints" / ("step-" + std::string(10 - step.size(), '0') + step))) << ck;
}

// Ctrl-C of a two-trainer pretrain: both trainers tell the group they are
// leaving, and stop at the same step after one checkpoint of it; exit 130.
TEST_F(ElasticTrainingTest, CtrlCStopsEveryTrainerAtTheSameStepAfterOneCheckpoint) {
  const fs::path run = dir_ / "c";
  auto r = RunCommand("cd " + kSource + " && (" + kGlm + " pretrain --config configs/tiny.yaml --workdir " +
                      run.string() + " --trainers 2 --max-steps 400 --checkpoint-every 0 > /dev/null 2> " +
                      (dir_ / "c.log").string() + " & pid=$!; " + WaitForLines(run / "ranks" / "1" / "metrics.jsonl", 20) +
                      "kill -INT $pid; wait $pid; echo rc=$?)");
  const std::string log = Slurp(dir_ / "c.log");
  ASSERT_NE(r.output.find("rc=130"), std::string::npos) << r.output << log;
  const std::vector<nlohmann::json> m0 = Metrics(run / "metrics.jsonl");
  const std::vector<nlohmann::json> m1 = Metrics(run / "ranks" / "1" / "metrics.jsonl");
  ASSERT_FALSE(m0.empty());
  ASSERT_FALSE(m1.empty());
  const int64_t last = m0.back()["step"].get<int64_t>();
  EXPECT_EQ(m1.back()["step"].get<int64_t>(), last) << log;
  EXPECT_LT(last, 400);
  const std::string step = std::to_string(last);
  EXPECT_TRUE(fs::exists(run / "checkpoints" / ("step-" + std::string(10 - step.size(), '0') + step))) << log;
  EXPECT_NE(log.find("--resume"), std::string::npos) << log;
}

}  // namespace
