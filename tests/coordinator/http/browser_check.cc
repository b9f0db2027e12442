#include "tests/coordinator/http/browser_check.h"

#include <gtest/gtest.h>
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

namespace glm::http::browser {
namespace {

namespace fs = std::filesystem;

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

}  // namespace

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

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

}  // namespace glm::http::browser
