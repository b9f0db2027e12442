// `glm pretrain --config configs/tiny.yaml` end to end as a real process
// (store, training, held-out evaluation, infilling), then a longer run stopped
// by Ctrl-C and resumed; bad invocations exit 2 with a message.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/testing/run_command.h"

namespace {
namespace fs = std::filesystem;
using glm::testing::RunCommand;

const std::string kGlm = GLM_BINARY;
const std::string kSource = GLM_SOURCE_DIR;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t Lines(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

TEST(PretrainCommandTest, TinyConfigTrainsEvaluatesAndResumesAfterCtrlC) {
  if (!fs::exists(kSource + "/data/sotu/1790_george_washington_n.txt")) {
    GTEST_SKIP() << "data/sotu is missing: run `GLM_SETUP_NO_BUILD=1 scripts/setup`";
  }
  const fs::path dir = fs::path(::testing::TempDir()) / "pretrain_command_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Run from another directory: the corpus path resolves against the checkout.
  // (RunCommand merges stderr into stdout; the subshell keeps the JSON apart.)
  auto r = RunCommand("cd " + dir.string() + " && (" + kGlm + " pretrain --config " + kSource +
                      "/configs/tiny.yaml --workdir run --json 2> pretrain.log)");
  ASSERT_EQ(r.exit_code, 0) << r.output << Slurp(dir / "pretrain.log");
  auto j = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["final_step"], 40);
  EXPECT_LT(j["last_loss"].get<double>(), j["first_loss"].get<double>() - 1.0) << j.dump();
  for (const char* o : {"blank", "sentence", "document"}) {
    ASSERT_TRUE(j["eval"].contains(o)) << j.dump();
    EXPECT_GT(j["eval"][o]["tokens"].get<double>(), 0);
  }
  EXPECT_EQ(j["infill"].size(), 2u);
  EXPECT_EQ(Lines(dir / "run" / "metrics.jsonl"), 40);
  const std::string log = Slurp(dir / "pretrain.log");
  EXPECT_NE(log.find("step 40/40"), std::string::npos) << log;
  EXPECT_NE(log.find("ETA"), std::string::npos) << log;

  // A longer run of the same config: Ctrl-C after two steps checkpoints and
  // exits 130; --resume continues from that checkpoint to the end.
  const std::string longer = kGlm + " pretrain --config " + kSource + "/configs/tiny.yaml --workdir t --max-steps 400";
  r = RunCommand("cd " + dir.string() + " && (" + longer +
                 " > /dev/null 2> stop.log & pid=$!; n=0; while [ \"$(cat t/metrics.jsonl 2>/dev/null | wc -l)\" -lt 2 ] && "
                 "[ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done; kill -INT $pid; wait $pid; echo rc=$?)");
  EXPECT_NE(r.output.find("rc=130"), std::string::npos) << r.output << Slurp(dir / "stop.log");
  EXPECT_NE(Slurp(dir / "stop.log").find("--resume"), std::string::npos) << Slurp(dir / "stop.log");
  int64_t checkpoints = 0;
  for (const auto& e : fs::directory_iterator(dir / "t" / "checkpoints")) {
    checkpoints += e.path().filename().string().rfind("step-", 0) == 0;
  }
  EXPECT_GE(checkpoints, 1);
  // Resume with a shorter horizon (the store already holds enough samples).
  r = RunCommand("cd " + dir.string() + " && (" + kGlm + " pretrain --config " + kSource +
                 "/configs/tiny.yaml --workdir t --max-steps 60 --resume --json 2> resume.log)");
  ASSERT_EQ(r.exit_code, 0) << r.output << Slurp(dir / "resume.log");
  auto k = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(k.is_discarded()) << r.output;
  EXPECT_GT(k["start_step"].get<int64_t>(), 0);
  EXPECT_EQ(k["final_step"], 60);
  EXPECT_NE(Slurp(dir / "resume.log").find("reusing the store"), std::string::npos) << Slurp(dir / "resume.log");
  fs::remove_all(dir);
}

TEST(PretrainCommandTest, BadInvocationsExitTwoWithAMessage) {
  auto r = RunCommand(kGlm + " train --workdir /tmp/x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--store"), std::string::npos) << r.output;
  r = RunCommand(kGlm + " pretrain --trainers 2 --workdir /tmp/x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--trainers"), std::string::npos) << r.output;
  r = RunCommand(kGlm + " pretrain --config /nonexistent/tiny.yaml");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = RunCommand(kGlm + " pretrain --max-steps 0 --workdir /tmp/x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("max-steps"), std::string::npos) << r.output;
  r = RunCommand(kGlm + " train --store /nonexistent/store --workdir /tmp/x");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/store"), std::string::npos) << r.output;
}

}  // namespace
