// The observability path end to end, as real processes on loopback:
//   glm coordinator --http 127.0.0.1:0 --http-endpoint-file F   (configs/pipeline-tiny.yaml's
//   glm worker --http 127.0.0.1:0 (x2), glm store serve          job, executor glm, with
//                                                                auto-consume off)
// plus a TrainerReporter in this process standing in for the trainer: it
// reports a step whenever the pipeline has produced the batch, so the
// pipeline's back-pressure is driven by the reports. Checked: /healthz,
// /readyz of the coordinator and of the workers, /metrics (parsed), /api/status,
// `glm status --json`'s trainers section, and the dashboard in headless
// Chromium (loss chart has points, node table lists both workers, no console
// errors; screenshot in build/test-output/dashboard/real-coordinator.png),
// then a worker's kill -9 as a node_lost failure, and the job's end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "coordinator/http/prometheus_text.h"
#include "coordinator/job.h"
#include "coordinator/trainer_report.h"
#include "tests/coordinator/http/browser_check.h"
#include "tests/testing/run_command.h"

namespace glm::http {
namespace {

namespace fs = std::filesystem;
using coordinator::TrainerReport;
using coordinator::TrainerReporter;

const char* kFiles[] = {"1790_george_washington_n.txt", "1791_george_washington_n.txt",
                        "1792_george_washington_n.txt", "1793_george_washington_n.txt"};
constexpr int64_t kSteps = 16;         // 256 samples per objective / 16 per batch
constexpr int64_t kPerObjective = 16;  // global batch 48, three objectives

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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

// Polls `done` every 50 ms until it holds or `seconds` pass.
bool WaitFor(const std::function<bool()>& done, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// "http://127.0.0.1:PORT" from a URL file, "" until it exists.
std::string ReadUrl(const fs::path& file) {
  std::ifstream in(file);
  std::string url;
  std::getline(in, url);
  return url;
}

// GET url + path; status 0 when there is no answer.
std::pair<int, std::string> Get(const std::string& url, const std::string& path) {
  httplib::Client client(url);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  auto res = client.Get(path.c_str());
  if (!res) return {0, ""};
  return {res->status, res->body};
}

class CoordinatorHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path sotu = fs::path(GLM_SOURCE_DIR) / "data" / "sotu";
    if (!fs::exists(sotu / kFiles[0])) GTEST_SKIP() << "no SOTU corpus in " << sotu << "; run scripts/setup";
    dir_ = fs::temp_directory_path() / ("glm_coordinator_http_it_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "corpus");
    fs::create_directories(dir_ / "logs");
    for (const char* f : kFiles) fs::copy_file(sotu / f, dir_ / "corpus" / f);
  }
  void TearDown() override {
    for (pid_t pid : pids_) {
      if (waitpid(pid, nullptr, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }

  pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open((dir_ / "logs" / log).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    pids_.push_back(pid);
    return pid;
  }

  // Exit code of `pid` once it exits within `seconds`, else -1.
  int WaitExit(pid_t pid, double seconds) {
    int status = 0;
    bool exited = WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, seconds);
    if (!exited) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string Logs() {
    std::string out;
    for (const auto& e : fs::directory_iterator(dir_ / "logs")) {
      std::string text = Slurp(e.path());
      if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
      out += "--- " + e.path().filename().string() + "\n" + text;
    }
    return out;
  }

  fs::path dir_;
  std::vector<pid_t> pids_;
};

TEST_F(CoordinatorHttpTest, RealCoordinatorServesMetricsStatusHealthAndTheDashboardFromTrainerReports) {
  const std::string glm = GLM_BINARY;
  const std::string keys = (dir_ / "keys").string();
  ASSERT_EQ(testing::RunCommand(glm + " keys generate --output " + keys + " 2>&1").exit_code, 0);
  std::string corpus_files;
  for (const char* f : kFiles) corpus_files += " --input " + (dir_ / "corpus" / f).string();
  auto trained = testing::RunCommand(glm + " tokenizer train" + corpus_files + " --output " +
                                     (dir_ / "tokenizer").string() +
                                     " --vocab-size 512 --text-split blank-line --seed 1234 2>&1");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  // The storage actor.
  Spawn({glm, "store", "serve", "--store", (dir_ / "store").string(), "--tokenizer", (dir_ / "tokenizer").string(),
         "--bind", "tcp://127.0.0.1:*", "--keys", keys, "--endpoint-file", (dir_ / "store.endpoint").string()},
        "store.log");
  std::string store_endpoint;
  ASSERT_TRUE(WaitFor([&] { return !(store_endpoint = ReadUrl(dir_ / "store.endpoint")).empty(); }, 30)) << Logs();

  // configs/pipeline-tiny.yaml's job, consumed by the reports below.
  coordinator::JobOptions job;
  job.job_id = "dashboard-it";
  job.corpus = (dir_ / "corpus").string();
  job.output_dir = (dir_ / "output").string();
  job.executor = "glm";
  job.seed = 1234;
  job.objectives = "blank,sentence,document";
  job.epochs = 1;
  job.samples_per_epoch = 256;
  job.samples_per_task = 32;
  job.global_batch_size = 48;
  job.max_batches_ahead = 8;
  job.auto_consume = false;
  job.params = "store=" + store_endpoint + ",store_keys=" + keys + ",tokenizer=" + (dir_ / "tokenizer").string() +
               ",text_split=blank-line,seq_len=128,document_min_ratio=0.5";
  std::ofstream(dir_ / "job.json") << job.ToJson().dump(2);

  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
  pid_t coordinator = Spawn({glm, "coordinator", "--bind", endpoint, "--state", (dir_ / "state").string(), "--keys",
                             keys, "--job-file", (dir_ / "job.json").string(), "--http", "127.0.0.1:0",
                             "--http-endpoint-file", (dir_ / "http.url").string(), "--heartbeat-interval-ms", "200",
                             "--node-timeout-ms", "3000", "--lease-ms", "3000", "--publish-interval-ms", "100",
                             "--http-poll-interval-ms", "250"},
                            "coordinator.log");
  std::string url;
  ASSERT_TRUE(WaitFor([&] { return !(url = ReadUrl(dir_ / "http.url")).empty(); }, 30)) << Logs();
  EXPECT_EQ(Get(url, "/healthz").first, 200);
  ASSERT_TRUE(WaitFor([&] { return Get(url, "/readyz").first == 200; }, 30)) << Get(url, "/readyz").second << Logs();

  std::vector<pid_t> workers;
  for (int i = 0; i < 2; ++i) {
    const std::string n = std::to_string(i);
    workers.push_back(Spawn({glm, "worker", "--coordinator", endpoint, "--keys", keys, "--resources", "cpu=1,gpu=0",
                             "--node-id", "local-" + n, "--http", "127.0.0.1:0", "--http-endpoint-file",
                             (dir_ / ("worker-" + n + ".url")).string()},
                            "worker-" + n + ".log"));
  }
  std::vector<std::string> worker_urls(2);
  for (int i = 0; i < 2; ++i) {
    const fs::path url_file = dir_ / ("worker-" + std::to_string(i) + ".url");
    ASSERT_TRUE(WaitFor([&] { return !(worker_urls[i] = ReadUrl(url_file)).empty(); }, 30)) << Logs();
    ASSERT_TRUE(WaitFor([&] { return Get(worker_urls[i], "/readyz").first == 200; }, 30))
        << Get(worker_urls[i], "/readyz").second << Logs();
    EXPECT_EQ(Get(worker_urls[i], "/healthz").first, 200);
  }

  // The trainer: reports step s once batch s - 1 is produced (as a trainer
  // would, blocked on its data); each report moves the back-pressure window.
  auto reporter = TrainerReporter::Connect(endpoint, keys, 3000);
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  auto produced_min = [&]() -> int64_t {
    auto [code, body] = Get(url, "/api/status");
    if (code != 200) return -1;
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || j["objectives"].size() != 3) return -1;
    int64_t least = INT64_MAX;
    for (const auto& o : j["objectives"]) least = std::min<int64_t>(least, o.value("produced", int64_t{0}));
    return least;
  };
  auto report = [&](int64_t step) {
    TrainerReport r;
    r.trainer_id = "trainer/0";
    r.step = step;
    r.max_steps = kSteps;
    r.objective_loss = {8.0 - 0.2 * step, 8.5 - 0.2 * step, 9.0 - 0.2 * step};
    r.loss = (r.objective_loss[0] + r.objective_loss[1] + r.objective_loss[2]) / 3;
    r.objective_samples = {kPerObjective * step, kPerObjective * step, kPerObjective * step};
    r.lr = 1e-3 * std::min<int64_t>(step, 4) / 4;
    r.tokens_per_s = 6000;
    r.data_wait_ms = 1.5;
    r.step_ms = 50;
    if (step >= 4) {
      r.checkpoint_step = step / 4 * 4;
      r.checkpoint_ms = 120;
    }
    return (*reporter)->Report(r);
  };
  auto run_steps = [&](int64_t first, int64_t last) {
    for (int64_t step = first; step <= last; ++step) {
      ASSERT_TRUE(WaitFor([&] { return produced_min() >= kPerObjective * step; }, 60))
          << "batch " << step - 1 << " never produced\n" << Logs();
      Status s = report(step);
      ASSERT_TRUE(s.ok()) << s;
    }
  };

  // Without reports production stops at the back-pressure window: batches 0..7.
  ASSERT_TRUE(WaitFor([&] { return produced_min() >= 8 * kPerObjective; }, 60)) << Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LE(produced_min(), 8 * kPerObjective + 32);  // at most one task past the window

  run_steps(1, 6);

  // /metrics while the job runs (workers alive, the pipeline mid-way).
  ASSERT_TRUE(WaitFor([&] {
    auto parsed = ParsePrometheusText(Get(url, "/metrics").second);
    return parsed.ok() && parsed->Find("glm_trainer_step") == 6;
  }, 10));
  auto [metrics_code, metrics_text] = Get(url, "/metrics");
  ASSERT_EQ(metrics_code, 200);
  auto metrics = ParsePrometheusText(metrics_text);
  ASSERT_TRUE(metrics.ok()) << metrics.status() << "\n" << metrics_text;
  EXPECT_EQ(metrics->Find("glm_nodes", {{"state", "alive"}}), 2) << metrics_text;
  EXPECT_EQ(metrics->Find("glm_actors", {{"kind", "pipeline"}, {"state", "running"}}), 2) << metrics_text;
  EXPECT_EQ(metrics->Find("glm_actors", {{"kind", "trainer"}, {"state", "running"}}), 1) << metrics_text;
  EXPECT_EQ(metrics->Find("glm_tasks", {{"stage", "tokenize"}, {"state", "done"}}), 4) << metrics_text;
  EXPECT_GE(*metrics->Find("glm_tasks", {{"stage", "corrupt"}, {"state", "done"}}), 3 * 3) << metrics_text;
  EXPECT_GE(*metrics->Find("glm_samples_produced_total", {{"objective", "blank"}}), 6 * kPerObjective);
  EXPECT_EQ(metrics->Find("glm_samples_consumed_total", {{"objective", "sentence"}}), 6 * kPerObjective);
  EXPECT_NEAR(*metrics->Find("glm_objective_target_rate", {{"objective", "document"}}), 1.0 / 3, 1e-9);
  EXPECT_NEAR(*metrics->Find("glm_objective_mix_drift", {{"objective", "blank"}}), 0, 1e-9);
  EXPECT_NEAR(*metrics->Find("glm_loss", {{"objective", "blank"}}), 8.0 - 1.2, 1e-9);
  EXPECT_NEAR(*metrics->Find("glm_loss", {{"objective", "all"}}), 8.5 - 1.2, 1e-9);
  EXPECT_NEAR(*metrics->Find("glm_learning_rate"), 1e-3, 1e-12);
  EXPECT_EQ(metrics->Find("glm_tokens_per_second"), 6000);
  EXPECT_EQ(metrics->Find("glm_data_wait_seconds_count"), 6);
  EXPECT_EQ(metrics->Find("glm_checkpoint_duration_seconds_count"), 1);  // step 4
  EXPECT_EQ(metrics->Find("glm_checkpoints_total", {{"result", "ok"}}), 1);

  // /api/status: what the dashboard draws.
  auto [status_code, status_body] = Get(url, "/api/status");
  ASSERT_EQ(status_code, 200);
  nlohmann::json st = nlohmann::json::parse(status_body);
  EXPECT_EQ(st["job"], "dashboard-it");
  EXPECT_EQ(st["phase"], "training");
  EXPECT_EQ(st["trainer"]["step"], 6);
  EXPECT_EQ(st["trainer"]["max_steps"], kSteps);
  ASSERT_EQ(st["history"].size(), 6u) << st["history"].dump();
  EXPECT_EQ(st["history"][0]["step"], 1);
  EXPECT_EQ(st["history"][5]["objective_loss"].size(), 3u);
  std::set<std::string> node_ids;
  for (const auto& n : st["nodes"]) {
    node_ids.insert(n["id"].get<std::string>());
    EXPECT_EQ(n["state"], "alive");
    EXPECT_GT(n["last_heartbeat_ms"].get<int64_t>(), 0);
  }
  EXPECT_EQ(node_ids, (std::set<std::string>{"local-0", "local-1"}));
  ASSERT_EQ(st["checkpoints"].size(), 1u);
  EXPECT_EQ(st["checkpoints"][0]["step"], 4);
  ASSERT_EQ(st["stages"].size(), 2u);
  EXPECT_EQ(st["stages"][0]["stage"], "tokenize");
  EXPECT_EQ(st["stages"][0]["done"], 4);
  EXPECT_EQ(st["stages"][1]["total"], 3 * 256 / 32);  // all corrupt tasks, created or not
  EXPECT_EQ(st["coordinator"]["consumed_step"], 5);  // what glm status shows, too
  EXPECT_EQ(st["coordinator"]["trainers"][0]["step"], 6);

  // `glm status --json`: the coordinator's own view has the trainers section.
  auto status_cmd = testing::RunCommand(glm + " status --json --coordinator " + endpoint + " --keys " + keys + " 2>&1");
  ASSERT_EQ(status_cmd.exit_code, 0) << status_cmd.output;
  std::string status_line;
  std::istringstream status_lines(status_cmd.output);
  for (std::string line; std::getline(status_lines, line);) {
    if (!line.empty() && line[0] == '{') status_line = line;
  }
  nlohmann::json cs = nlohmann::json::parse(status_line, nullptr, false);
  ASSERT_FALSE(cs.is_discarded()) << status_cmd.output;
  ASSERT_EQ(cs["trainers"].size(), 1u) << status_cmd.output;
  EXPECT_EQ(cs["trainers"][0]["id"], "trainer/0");
  EXPECT_EQ(cs["trainers"][0]["step"], 6);
  EXPECT_EQ(cs["consumed_step"], 5);
  auto human = testing::RunCommand(glm + " status --coordinator " + endpoint + " --keys " + keys + " 2>&1");
  ASSERT_EQ(human.exit_code, 0) << human.output;
  EXPECT_NE(human.output.find("trainer/0    rank 0/1  step 6/16  loss 7.3000"), std::string::npos) << human.output;

  // The dashboard in headless Chromium, against this coordinator.
  browser::RequireBrowserTooling();
  if (!HasFatalFailure()) {
    const std::string screenshot = browser::OutputDir() + "/real-coordinator.png";
    browser::BrowserRun run =
        browser::RunBrowserCheck(url + "/", screenshot, {"--min-points", "6", "--expect-nodes", "local-0,local-1"}, 60);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(run.result.value("ok", false)) << run.output;
    EXPECT_TRUE(run.result["console_errors"].empty()) << run.output;
    EXPECT_TRUE(run.result["page_errors"].empty()) << run.output;
    EXPECT_EQ(run.result["objectives"], nlohmann::json({"total", "blank", "sentence", "document"})) << run.output;
    EXPECT_EQ(run.result.value("stage_rows", 0), 2) << run.output;
    EXPECT_TRUE(fs::exists(screenshot) && fs::file_size(screenshot) > 10000) << screenshot;
    std::cout << "screenshot: " << screenshot << "\n";
  }

  // A worker dies (kill -9): after the node timeout it is a failure on the
  // dashboard and in /metrics, and local-0 finishes the pipeline alone.
  ASSERT_EQ(kill(workers[1], SIGKILL), 0);
  EXPECT_EQ(WaitExit(workers[1], 10), 128 + SIGKILL);
  ASSERT_TRUE(WaitFor([&] {
    auto j = nlohmann::json::parse(Get(url, "/api/status").second, nullptr, false);
    if (j.is_discarded()) return false;
    for (const auto& f : j["failures"]) {
      if (f["kind"] == "node_lost" && f["subject"] == "local-1") return true;
    }
    return false;
  }, 20)) << Get(url, "/api/status").second;
  auto after_loss = ParsePrometheusText(Get(url, "/metrics").second);
  ASSERT_TRUE(after_loss.ok());
  EXPECT_EQ(after_loss->Find("glm_node_failures_total"), 1);
  EXPECT_EQ(after_loss->Find("glm_nodes", {{"state", "alive"}}), 1);

  // The rest of the run: the pipeline finishes, the worker leaves, and the
  // trainer reaches max_steps.
  run_steps(7, kSteps);
  EXPECT_EQ(WaitExit(workers[0], 30), 0) << Logs();
  for (const std::string& w : worker_urls) EXPECT_EQ(Get(w, "/readyz").first, 0);  // gone with the worker
  ASSERT_TRUE(WaitFor([&] {
    auto j = nlohmann::json::parse(Get(url, "/api/status").second, nullptr, false);
    return !j.is_discarded() && j["phase"] == "done";
  }, 10)) << Get(url, "/api/status").second;
  auto final_metrics = ParsePrometheusText(Get(url, "/metrics").second);
  ASSERT_TRUE(final_metrics.ok());
  EXPECT_EQ(final_metrics->Find("glm_samples_produced_total", {{"objective", "document"}}), 256);
  EXPECT_EQ(final_metrics->Find("glm_trainer_step"), kSteps);
  EXPECT_EQ(final_metrics->Find("glm_checkpoints_total", {{"result", "ok"}}), 4);

  // SIGTERM: the coordinator stops serving and exits cleanly.
  kill(coordinator, SIGTERM);
  EXPECT_EQ(WaitExit(coordinator, 15), 0) << Logs();
  EXPECT_EQ(Get(url, "/healthz").first, 0);
}

TEST_F(CoordinatorHttpTest, WorkerIsAliveButNotReadyUntilRegisteredAndLeavesOnSigterm) {
  const std::string glm = GLM_BINARY;
  const std::string keys = (dir_ / "keys").string();
  ASSERT_EQ(testing::RunCommand(glm + " keys generate --output " + keys + " 2>&1").exit_code, 0);
  // No coordinator listens there.
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
  pid_t worker = Spawn({glm, "worker", "--coordinator", endpoint, "--keys", keys, "--node-id", "lonely",
                        "--call-timeout-ms", "300", "--http", "127.0.0.1:0", "--http-endpoint-file",
                        (dir_ / "worker.url").string()},
                       "worker.log");
  std::string url;
  ASSERT_TRUE(WaitFor([&] { return !(url = ReadUrl(dir_ / "worker.url")).empty(); }, 30)) << Logs();
  EXPECT_EQ(Get(url, "/healthz").first, 200);
  auto [code, body] = Get(url, "/readyz");
  EXPECT_EQ(code, 503);
  EXPECT_EQ(body, "not ready: registering with the coordinator at " + endpoint + "\n");
  kill(worker, SIGTERM);
  EXPECT_EQ(WaitExit(worker, 15), 0) << Logs();
  EXPECT_EQ(Get(url, "/healthz").first, 0);
}

TEST_F(CoordinatorHttpTest, BadHttpAddressIsAUsageErrorAndABusyPortAFailure) {
  const std::string glm = GLM_BINARY;
  auto bad = testing::RunCommand(glm + " coordinator --http localhost --state " + (dir_ / "s1").string() +
                                 " --keys " + (dir_ / "nokeys").string() + " 2>&1");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--http 'localhost': expected HOST:PORT"), std::string::npos) << bad.output;
  auto worker = testing::RunCommand(glm + " worker --http 127.0.0.1:99999 2>&1");
  EXPECT_EQ(worker.exit_code, 2) << worker.output;
  EXPECT_NE(worker.output.find("port above 65535"), std::string::npos) << worker.output;

  // A port already taken: exit 1 naming it, before any state is touched.
  httplib::Server taken;
  const int port = taken.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  auto busy = testing::RunCommand(glm + " coordinator --http 127.0.0.1:" + std::to_string(port) + " --state " +
                                  (dir_ / "s2").string() + " --keys " + (dir_ / "nokeys").string() + " 2>&1");
  EXPECT_EQ(busy.exit_code, 1) << busy.output;
  EXPECT_NE(busy.output.find("cannot bind 127.0.0.1:" + std::to_string(port)), std::string::npos) << busy.output;
  EXPECT_FALSE(fs::exists(dir_ / "s2"));
}

}  // namespace
}  // namespace glm::http
