// The dashboard in a real browser: Debian's Chromium, headless, driven by
// playwright-core (dashboard_check.js). The test starts Chromium itself (via
// node) in a fresh user-data-dir and makes sure no Chromium process of its
// own survives it.
//
// Target: by default an in-process HttpServer whose FakeStatusProvider
// simulates a job (empty until the page's first poll, then a new training
// step every 100 ms). To point the same
// check at a real job, set
//   GLM_DASHBOARD_URL=http://127.0.0.1:8265/          (e.g. `glm pretrain --config configs/tiny.yaml`)
//   GLM_DASHBOARD_EXPECT_NODES=node-0,node-1           (optional: ids the node table must list)
//   GLM_DASHBOARD_MIN_POINTS=3                         (optional: loss points to wait for)
// Screenshots: build/test-output/dashboard/*.png.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "coordinator/http/fake_status_provider.h"
#include "coordinator/http/http_server.h"

namespace glm::http {
namespace {

namespace fs = std::filesystem;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string PlaywrightDir() {
  std::ifstream in(std::string(GLM_SOURCE_DIR) + "/coordinator/http/web/npm_packages.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name, version;
    words >> name >> version;
    if (name == "playwright-core") return std::string(GLM_SOURCE_DIR) + "/.cache/npm/playwright-core-" + version;
  }
  return "";
}

// Pids of live processes whose command line contains `marker`.
std::vector<pid_t> ProcessesWith(const std::string& marker) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(marker) != std::string::npos) out.push_back(std::stoi(name));
  }
  return out;
}

struct BrowserRun {
  int exit_code = -1;
  std::string output;
  nlohmann::json result;  // the last JSON line, if any
};

// Runs dashboard_check.js in its own process group with a deadline, then
// ends whatever it left behind: first the group, then any Chromium still
// using our user-data-dir (Playwright starts Chromium in its own group).
BrowserRun RunBrowserCheck(const std::string& url, const std::string& screenshot,
                           const std::vector<std::string>& extra_args, int timeout_s) {
  BrowserRun run;
  const std::string user_data_dir =
      (fs::temp_directory_path() / ("glm-chromium-" + std::to_string(::getpid()) + "-" +
                                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count())))
          .string();
  fs::create_directories(user_data_dir);
  const std::string log = user_data_dir + ".log";
  std::vector<std::string> argv = {"node",
                                   std::string(GLM_SOURCE_DIR) + "/tests/coordinator/http/dashboard_check.js",
                                   "--url", url,
                                   "--chromium", EnvOr("GLM_CHROMIUM", "/usr/bin/chromium"),
                                   "--playwright", PlaywrightDir(),
                                   "--user-data-dir", user_data_dir,
                                   "--screenshot", screenshot,
                                   "--timeout-ms", std::to_string((timeout_s - 10) * 1000)};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());

  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (f == nullptr || ::dup2(::fileno(stdout), 2) < 0) ::_exit(126);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execvp("node", cargv.data());
    std::perror("exec node");
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!exited) {
    ::kill(-pid, SIGTERM);  // Playwright closes Chromium on SIGTERM
    std::this_thread::sleep_for(std::chrono::seconds(2));
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    run.output = "[timed out after " + std::to_string(timeout_s) + " s]\n";
  } else if (WIFEXITED(status)) {
    run.exit_code = WEXITSTATUS(status);
  }
  ::kill(-pid, SIGKILL);  // anything left in node's group
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::vector<pid_t> leftovers = ProcessesWith(user_data_dir);
  for (pid_t p : leftovers) ::kill(p, SIGKILL);
  if (!leftovers.empty()) {
    run.output += "[killed " + std::to_string(leftovers.size()) + " leftover Chromium processes]\n";
  }

  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    run.output += line + "\n";
    if (!line.empty() && line[0] == '{') {
      try {
        run.result = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
      }
    }
  }
  std::error_code ignored;
  fs::remove_all(user_data_dir, ignored);
  fs::remove(log, ignored);
  return run;
}

std::string OutputDir() {
  fs::path dir = fs::path(GLM_BINARY_DIR) / "test-output" / "dashboard";
  fs::create_directories(dir);
  return dir.string();
}

// Fails (never skips) when the browser tooling is missing: say what to run.
void RequireBrowserTooling() {
  const std::string chromium = EnvOr("GLM_CHROMIUM", "/usr/bin/chromium");
  ASSERT_TRUE(IsExecutable(chromium))
      << "Chromium not found at " << chromium
      << ". HINT: run scripts/setup (installs Debian's chromium), or set GLM_CHROMIUM";
  ASSERT_EQ(std::system("command -v node >/dev/null 2>&1"), 0)
      << "node not found. HINT: run scripts/setup (installs nodejs)";
  const std::string playwright = PlaywrightDir();
  ASSERT_TRUE(fs::exists(playwright + "/.glm-npm"))
      << "playwright-core not found in " << playwright
      << ". HINT: run scripts/setup (fetches it from the npm registry into .cache/npm)";
}

TEST(DashboardBrowserTest, LossChartFillsAndNodeTableListsNodesWithoutConsoleErrors) {
  RequireBrowserTooling();
  if (HasFatalFailure()) return;

  MetricsRegistry registry;
  GlmMetrics metrics(&registry);
  FakeStatusProvider provider;
  std::unique_ptr<HttpServer> server;
  std::atomic<bool> stop{false};
  std::thread simulator;
  std::string url = EnvOr("GLM_DASHBOARD_URL", "");
  std::string expect_nodes = EnvOr("GLM_DASHBOARD_EXPECT_NODES", "");
  int min_points = std::atoi(EnvOr("GLM_DASHBOARD_MIN_POINTS", "0").c_str());
  if (url.empty()) {
    auto now_ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    HttpServerOptions options;
    options.port = 0;
    options.poll_interval_ms = 250;
    auto started = HttpServer::Start(options, &registry, &provider, &metrics);
    ASSERT_TRUE(started.ok()) << started.status();
    server = std::move(*started);
    url = server->url() + "/";
    // The page first sees an empty job (no nodes, no steps: the empty states
    // must render without errors), then a step every 100 ms while it polls.
    simulator = std::thread([&] {
      while (!stop) {
        if (provider.num_status_calls() > 0) provider.SimulateStep(now_ms());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
    expect_nodes = "node-0,node-1,node-2";
    min_points = 40;  // 4 s of live updates
  }
  std::vector<std::string> extra = {"--min-points", std::to_string(std::max(1, min_points))};
  if (!expect_nodes.empty()) extra.insert(extra.end(), {"--expect-nodes", expect_nodes});

  const std::string screenshot = OutputDir() + "/dashboard.png";
  BrowserRun run = RunBrowserCheck(url, screenshot, extra, 60);
  stop = true;
  if (simulator.joinable()) simulator.join();

  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json& r = run.result;
  EXPECT_TRUE(r.value("ok", false)) << run.output;
  EXPECT_TRUE(r["console_errors"].empty()) << r["console_errors"].dump();
  EXPECT_TRUE(r["page_errors"].empty()) << r["page_errors"].dump();
  EXPECT_GE(r.value("loss_points", 0), std::max(1, min_points));
  if (server != nullptr) {
    EXPECT_EQ(r["objectives"], nlohmann::json({"total", "blank", "sentence", "document"}));
    EXPECT_EQ(r.value("stage_rows", 0), 2);
    EXPECT_EQ(r.value("actor_rows", 0), 6);
    EXPECT_GT(provider.num_status_calls(), 1);
  }
  EXPECT_TRUE(fs::exists(screenshot) && fs::file_size(screenshot) > 10000) << screenshot;
  std::cout << "screenshot: " << screenshot << "\n";
}

// The check must be able to fail: a page that logs an error and never draws.
TEST(DashboardBrowserTest, CheckFailsOnConsoleErrorsAndAnEmptyChart) {
  RequireBrowserTooling();
  if (HasFatalFailure()) return;
  httplib::Server broken;
  broken.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(
        "<!doctype html><link rel=icon href='data:,'><script>"
        "window.glmDashboard={lossPoints:()=>0};console.error('boom from the page');"
        "</script><p>broken</p>",
        "text/html");
  });
  const int port = broken.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serve([&] { broken.listen_after_bind(); });
  while (!broken.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  BrowserRun run = RunBrowserCheck("http://127.0.0.1:" + std::to_string(port) + "/",
                                   OutputDir() + "/broken.png", {"--timeout-ms", "3000"}, 40);
  broken.stop();
  serve.join();
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_FALSE(run.result.value("ok", true)) << run.output;
  EXPECT_NE(run.result["console_errors"].dump().find("boom from the page"), std::string::npos)
      << run.output;
}

}  // namespace
}  // namespace glm::http
