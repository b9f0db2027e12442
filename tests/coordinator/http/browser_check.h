// Headless Chromium checks of the dashboard, shared by the browser tests:
// runs dashboard_check.js (playwright-core driving Debian's Chromium) in its
// own process group with a deadline and a fresh user-data-dir, and ends any
// Chromium of its own that survives it.
#ifndef GLM_TESTS_COORDINATOR_HTTP_BROWSER_CHECK_H_
#define GLM_TESTS_COORDINATOR_HTTP_BROWSER_CHECK_H_

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace glm::http::browser {

struct BrowserRun {
  int exit_code = -1;
  std::string output;
  nlohmann::json result;  // the last JSON line, if any
};

// Value of environment variable `name`, or `fallback` when unset or empty.
std::string EnvOr(const char* name, const std::string& fallback);

// Opens `url`, waits as `extra_args` say (--min-points N, --expect-nodes
// a,b, --min-nodes N), saves `screenshot`; at most timeout_s seconds.
BrowserRun RunBrowserCheck(const std::string& url, const std::string& screenshot,
                           const std::vector<std::string>& extra_args, int timeout_s);

// build/test-output/dashboard (created).
std::string OutputDir();

// gtest fatal failures (never skips) naming what to install when Chromium,
// node or playwright-core is missing. Call, then `if (HasFatalFailure()) return;`.
void RequireBrowserTooling();

}  // namespace glm::http::browser

#endif  // GLM_TESTS_COORDINATOR_HTTP_BROWSER_CHECK_H_
