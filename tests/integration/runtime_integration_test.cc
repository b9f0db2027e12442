// Exactly-once under failure, with real processes on loopback: the union of
// the node stores (worker/digest.h) after a run with faults equals that of a
// fault-free run.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "tests/testing/run_command.h"
#include "transport/keys.h"
#include "transport/socket.h"
#include "worker/digest.h"
#include "worker/executor.h"

namespace glm {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  dup2(fd, 1);
  dup2(fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

void KillAndReap(pid_t pid, int sig) {
  kill(pid, sig);
  waitpid(pid, nullptr, 0);
}

// A coordinator and workers as real `glm` processes on loopback.
class Cluster {
 public:
  explicit Cluster(const std::string& name) {
    dir_ = fs::temp_directory_path() / ("glm_it_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "corpus");
    fs::create_directories(dir_ / "logs");
    // 8 shards x 20 documents of 30 words.
    std::mt19937 rng(42);
    const char* words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"};
    for (int f = 0; f < 8; ++f) {
      std::ofstream out(dir_ / "corpus" / ("f" + std::to_string(f) + ".txt"));
      for (int d = 0; d < 20; ++d) {
        for (int w = 0; w < 30; ++w) out << words[rng() % 8] << (w + 1 < 30 ? " " : "\n\n");
      }
    }
    GLM_CHECK(transport::GenerateClusterKeys((dir_ / "keys").string(), false).ok());
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(FreePort());
  }
  ~Cluster() {
    for (pid_t pid : workers_) KillAndReap(pid, SIGKILL);
    if (coordinator_ > 0) KillAndReap(coordinator_, SIGKILL);
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_);
  }

  void StartCoordinator(int64_t item_delay_us) {
    coordinator_ = Spawn({GLM_BINARY, "coordinator", "--bind", endpoint_, "--state", (dir_ / "state").string(),
                          "--keys", (dir_ / "keys").string(), "--corpus", (dir_ / "corpus").string(),
                          "--output-dir", (dir_ / "output").string(), "--samples-per-task", "16",
                          "--global-batch-size", "24", "--max-batches-ahead", "4", "--params",
                          "item_delay_us=" + std::to_string(item_delay_us), "--heartbeat-interval-ms", "200",
                          "--node-timeout-ms", "1500", "--lease-ms", "2000", "--retry-backoff-base-ms", "50",
                          "--max-attempts", "50"},
                         (dir_ / "logs" / "coordinator.log").string());
  }
  void KillCoordinator() {
    KillAndReap(coordinator_, SIGKILL);
    coordinator_ = -1;
  }
  pid_t StartWorker(const std::string& keys_dir = "", const std::vector<std::string>& extra = {}) {
    std::string id = "w" + std::to_string(next_worker_++);
    std::vector<std::string> argv = {GLM_BINARY, "worker", "--coordinator", endpoint_, "--keys",
                                     keys_dir.empty() ? (dir_ / "keys").string() : keys_dir, "--resources", "cpu=1",
                                     "--node-id", id, "--call-timeout-ms", "500"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_t pid = Spawn(argv, (dir_ / "logs" / (id + ".log")).string());
    workers_.push_back(pid);
    return pid;
  }
  void KillWorker(size_t i) {
    KillAndReap(workers_[i], SIGKILL);
    workers_.erase(workers_.begin() + static_cast<long>(i));
  }
  size_t num_workers() const { return workers_.size(); }
  // Sends `sig` to worker i and waits up to `timeout` for it to exit;
  // returns its exit status, or -1 if it did not exit.
  int SignalWorkerAndWait(size_t i, int sig, std::chrono::seconds timeout) {
    pid_t pid = workers_[i];
    kill(pid, sig);
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        workers_.erase(workers_.begin() + static_cast<long>(i));
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

  // The coordinator's status JSON as text ("" when it does not answer),
  // asked in-process (cheaper than starting `glm status` at every poll).
  std::string Status() {
    auto keys = transport::LoadClientKeys((dir_ / "keys").string());
    GLM_CHECK(keys.ok()) << keys.status();
    zmq::context_t context;
    auto socket = transport::ClientSocket::Connect(&context, endpoint_, *keys, transport::SocketOptions());
    GLM_CHECK(socket.ok()) << socket.status();
    transport::EnvelopeBuilder b(1);
    b.envelope().initStatusRequest();
    auto reply = (*socket)->Call(b, 2000);
    if (!reply.ok() || !(*reply)->envelope().isStatusReply()) return "";
    return (*reply)->envelope().getStatusReply().getJson().cStr();
  }
  testing::CommandResult StatusCommand() {
    return testing::RunCommand(std::string(GLM_BINARY) + " status --timeout-ms 5000 --coordinator " + endpoint_ +
                               " --keys " + (dir_ / "keys").string());
  }
  bool Done() { return testing::Contains(Status(), "\"done\":true"); }
  // Waits for the job to finish, then for the workers to leave.
  bool WaitDone(std::chrono::seconds timeout, const std::function<void()>& each_poll = nullptr) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (Done()) {
        for (pid_t pid : workers_) {
          int status = 0;
          waitpid(pid, &status, 0);
          EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker " << pid << " status " << status;
        }
        workers_.clear();
        // SIGTERM stops the coordinator cleanly (exit 0).
        kill(coordinator_, SIGTERM);
        int status = 0;
        waitpid(coordinator_, &status, 0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "coordinator status " << status;
        coordinator_ = -1;
        return true;
      }
      if (each_poll) each_poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }
  std::string Digest(const std::string& output = "") {
    auto d = worker::DigestOutput(output.empty() ? (dir_ / "output").string() : output);
    GLM_CHECK(d.ok()) << d.status();
    EXPECT_EQ(d->num_records, 640u);  // 160 docs + 3 x 160 samples
    return d->sha256_hex;
  }
  fs::path dir() const { return dir_; }

 private:
  fs::path dir_;
  std::string endpoint_;
  pid_t coordinator_ = -1;
  std::vector<pid_t> workers_;
  int next_worker_ = 0;
};

// The fault-free output, computed in-process as an oracle: every task of
// the job run exactly once, by one node, with the same executors the
// workers run (8 tokenize tasks; 160 documents, so 160 samples per
// objective in epoch 0).
std::string ExpectedDigest(const fs::path& dir) {
  worker::ExecutorRegistry registry;
  worker::RegisterTestExecutors(&registry);
  worker::JobSpec job;
  job.seed = 1234;  // JobOptions' default seed
  job.executor = "test";
  job.output_dir = (dir / "expected").string();
  worker::ExecutorContext context("oracle", job, nullptr);
  {  // executors hold the node store open until they go
  auto tokenize = registry.Create("test", "tokenize", context);
  auto corrupt = registry.Create("test", "corrupt", context);
  GLM_CHECK(tokenize.ok() && corrupt.ok());
  for (uint32_t f = 0; f < 8; ++f) {
    TaskSpec t;
    t.kind = "tokenize";
    t.shard_index = f;
    t.shard_path = (dir / "corpus" / ("f" + std::to_string(f) + ".txt")).string();
    GLM_CHECK((*tokenize)->Run(t, context).ok());
  }
  for (int o = 0; o < 3; ++o) {
    TaskSpec t;
    t.kind = "corrupt";
    t.objective = o;
    t.begin = 0;
    t.end = 160;
    GLM_CHECK((*corrupt)->Run(t, context).ok());
  }
  }
  auto d = worker::DigestOutput(job.output_dir);
  GLM_CHECK(d.ok()) << d.status();
  GLM_CHECK(d->num_records == 640u) << d->num_records;
  return d->sha256_hex;
}

TEST(RuntimeIntegrationTest, KillingRandomWorkersLeavesTheSameOutput) {
  Cluster c("kill_workers");
  const std::string reference = ExpectedDigest(c.dir());
  c.StartCoordinator(8000);
  for (int i = 0; i < 3; ++i) c.StartWorker();
  std::mt19937 rng(7);
  // kill -9 a random worker (and start a replacement) every 500 ms, three
  // times, while the job runs.
  int kills = 0;
  for (; kills < 3; ++kills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ASSERT_FALSE(c.Done()) << "the job finished before the faults; make it longer";
    c.KillWorker(rng() % c.num_workers());
    c.StartWorker();
  }
  ASSERT_TRUE(c.WaitDone(std::chrono::seconds(50)));
  EXPECT_EQ(c.Digest(), reference);
}

TEST(RuntimeIntegrationTest, KillingAndRestartingTheCoordinatorLeavesTheSameOutput) {
  Cluster c("kill_coordinator");
  const std::string reference = ExpectedDigest(c.dir());
  c.StartCoordinator(8000);
  c.StartWorker();
  c.StartWorker();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_FALSE(c.Done());
  c.KillCoordinator();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  c.StartCoordinator(8000);  // same --state: resumes; workers re-register by themselves
  ASSERT_TRUE(c.WaitDone(std::chrono::seconds(50)));
  EXPECT_EQ(c.Digest(), reference);
}

TEST(RuntimeIntegrationTest, AddingWorkersMidRunLeavesTheSameOutput) {
  Cluster c("add_workers");
  const std::string reference = ExpectedDigest(c.dir());
  c.StartCoordinator(8000);
  c.StartWorker();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  c.StartWorker();
  c.StartWorker();
  ASSERT_TRUE(c.WaitDone(std::chrono::seconds(50)));
  EXPECT_EQ(c.Digest(), reference);
}

TEST(RuntimeIntegrationTest, WorkerWithAForeignKeyIsRefused) {
  Cluster c("foreign_key");
  c.StartCoordinator(0);
  std::string foreign = (c.dir() / "foreign").string();
  ASSERT_TRUE(transport::GenerateClusterKeys(foreign, false).ok());
  fs::copy_file(c.dir() / "keys" / "server.pub", fs::path(foreign) / "server.pub",
                fs::copy_options::overwrite_existing);
  c.StartWorker(foreign);
  std::string status;
  auto deadline = Clock::now() + std::chrono::seconds(40);
  while (Clock::now() < deadline) {
    status = c.Status();
    if (testing::Contains(status, "\"refused_peers\":") && !testing::Contains(status, "\"refused_peers\":0")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_FALSE(testing::Contains(status, "\"refused_peers\":0")) << status;
  EXPECT_TRUE(testing::Contains(status, "\"nodes\":[]")) << status;
  testing::CommandResult human = c.StatusCommand();
  EXPECT_EQ(human.exit_code, 0) << human.output;
  EXPECT_TRUE(testing::Contains(human.output, "refused")) << human.output;
  std::ifstream log(c.dir() / "logs" / "coordinator.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(testing::Contains(text, "not in the cluster's allow-list")) << text;
}

TEST(RuntimeIntegrationTest, PipelineCommandRunsALocalClusterToTheFaultFreeOutput) {
  Cluster c("pipeline_command");
  const std::string reference = ExpectedDigest(c.dir());
  testing::CommandResult r = testing::RunCommand(
      std::string(GLM_BINARY) + " pipeline --workdir " + (c.dir() / "work").string() + " --corpus " +
      (c.dir() / "corpus").string() + " --workers 2 --samples-per-task 16 --global-batch-size 24 " +
      "--heartbeat-interval-ms 200 --node-timeout-ms 1500 --lease-ms 2000 --timeout-s 60 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "\"digest\":\"" + reference + "\"")) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "\"mb_per_s_per_core\"")) << r.output;
}

TEST(RuntimeIntegrationTest, CommandsRejectBadInputWithHints) {
  Cluster c("cli");
  std::string glm = GLM_BINARY;
  std::string keys = (c.dir() / "keys").string();
  auto again = testing::RunCommand(glm + " keys generate --output " + keys);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_TRUE(testing::Contains(again.output, "--overwrite")) << again.output;
  auto bad = testing::RunCommand(glm + " worker --keys " + keys + " --resources cpu=lots");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_TRUE(testing::Contains(bad.output, "cpu=lots")) << bad.output;
  auto away = testing::RunCommand(glm + " status --coordinator tcp://127.0.0.1:1 --timeout-ms 300 --keys " + keys);
  EXPECT_EQ(away.exit_code, 1) << away.output;
  EXPECT_TRUE(testing::Contains(away.output, "no answer")) << away.output;
}

TEST(RuntimeIntegrationTest, SigtermGivesLeasedWorkBackAndExitsCleanly) {
  Cluster c("sigterm");
  c.StartCoordinator(200000);  // 0.2 s per record: a shard takes seconds
  c.StartWorker("", {"--drain-timeout-ms", "300"});
  auto deadline = Clock::now() + std::chrono::seconds(30);
  std::string status;
  while (Clock::now() < deadline) {
    status = c.Status();
    if (testing::Contains(status, "\"leased\":1")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(testing::Contains(status, "\"leased\":1")) << status;
  EXPECT_EQ(c.SignalWorkerAndWait(0, SIGTERM, std::chrono::seconds(20)), 0);
  status = c.Status();
  // The shard went back to the queue at once (no lease expiry), with no
  // attempt counted and nothing dead-lettered.
  EXPECT_TRUE(testing::Contains(status, "\"tokenize\":{\"pending\":8}")) << status;
  EXPECT_TRUE(testing::Contains(status, "\"dead_letters\":[]")) << status;
  std::ifstream log(c.dir() / "logs" / "coordinator.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(testing::Contains(text, "gave back tokenize/")) << text;
}

}  // namespace
}  // namespace glm
