// `glm coordinator --run-dir DIR` as a real process: trainer reports sent by
// a TrainerReporter over CURVE loopback come out as TensorBoard steps and
// coordinator-metrics.jsonl lines in DIR; --check-args accepts the flag and
// names a run dir that is a file.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "coordinator/trainer_report.h"
#include "tests/coordinator/event_file_reader.h"
#include "tests/testing/run_command.h"
#include "transport/keys.h"

namespace glm::coordinator {
namespace {
namespace fs = std::filesystem;
using glm::testing::CommandResult;
using glm::testing::Contains;

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

class RunDirProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("glm_run_dir_process_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!HasFailure()) fs::remove_all(root_);
  }

  fs::path root_;
  pid_t pid_ = -1;
};

TEST_F(RunDirProcessTest, CheckArgsAcceptsARunDirAndNamesOneThatIsAFile) {
  CommandResult ok = glm::testing::RunCommand(std::string(GLM_BINARY) + " coordinator --check-args --noop-tasks 2 " +
                                              "--run-dir " + (root_ / "run").string());
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  std::ofstream(root_ / "file") << "x";
  CommandResult bad = glm::testing::RunCommand(std::string(GLM_BINARY) + " coordinator --check-args --noop-tasks 2 " +
                                               "--run-dir " + (root_ / "file").string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "--run-dir " + (root_ / "file").string())) << bad.output;
}

TEST_F(RunDirProcessTest, ReportsOverTheWireBecomeTensorBoardStepsInTheRunDir) {
  const std::string keys = (root_ / "keys").string();
  ASSERT_TRUE(transport::GenerateClusterKeys(keys, false).ok());
  const int port = FreePort();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  const std::string run = (root_ / "run").string();
  const std::string log = (root_ / "coordinator.log").string();
  std::vector<std::string> argv = {GLM_BINARY, "coordinator", "--bind", endpoint, "--state", (root_ / "state").string(),
                                   "--keys", keys, "--noop-tasks", "2", "--run-dir", run};
  pid_ = fork();
  ASSERT_GE(pid_, 0);
  if (pid_ == 0) {
    FILE* out = std::freopen(log.c_str(), "w", stdout);
    (void)out;
    dup2(fileno(stdout), 2);
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  auto reporter = TrainerReporter::Connect(endpoint, keys, 5000);
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  for (int64_t step : {1, 2, 3, 3}) {  // the last: a retried report
    TrainerReport r;
    r.trainer_id = "trainer/0";
    r.step = step;
    r.loss = 4.0 - 0.5 * static_cast<double>(step);
    r.objective_loss = {3.0, NAN, NAN};
    r.lr = 1e-4;
    r.grad_norm = 2.5;
    r.tokens_per_s = 500;
    // The first report also waits for the coordinator to come up (the
    // reporter fails fast during its backoff: retry).
    Status s = (*reporter)->Report(r);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!s.ok() && s.IsRetryable() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      s = (*reporter)->Report(r);
    }
    ASSERT_TRUE(s.ok()) << s << "\n" << glm::testing::ReadFileBytes(log);
  }
  // Each report is acknowledged after the coordinator handled it, and each
  // record is flushed: the files are complete now, while it runs.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(run) / "tensorboard")) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  auto contents = glm::testing::ReadEventFile(files[0].string());
  ASSERT_EQ(contents.error, "");
  EXPECT_EQ(glm::testing::Layout(contents), "V S1 1 2 3");
  const auto steps = glm::testing::SummaryEvents(contents);
  ASSERT_EQ(steps.size(), 3u);
  for (int64_t step = 1; step <= 3; ++step) {
    auto s = glm::testing::ScalarsOf(steps[step - 1]);
    EXPECT_FLOAT_EQ(s.at("loss"), static_cast<float>(4.0 - 0.5 * step));
    EXPECT_FLOAT_EQ(s.at("loss/blank"), 3.0f);
    EXPECT_EQ(s.count("loss/document"), 0u);
    EXPECT_FLOAT_EQ(s.at("grad_norm"), 2.5f);  // carried by the wire's new field
    EXPECT_FLOAT_EQ(s.at("tokens_per_s"), 500.0f);
    EXPECT_EQ(s.at("world_size"), 1.0f);
  }
  std::ifstream in(fs::path(run) / "coordinator-metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    EXPECT_EQ(nlohmann::json::parse(line)["step"], lines + 1);
  }
  EXPECT_EQ(lines, 3);
  kill(pid_, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << glm::testing::ReadFileBytes(log);
  EXPECT_TRUE(Contains(glm::testing::ReadFileBytes(log), "per-step metrics to " + run));
}

}  // namespace
}  // namespace glm::coordinator
