// Test helper: runs a shell command and captures its exit code and output.
#ifndef GLM_TESTS_TESTING_RUN_COMMAND_H_
#define GLM_TESTS_TESTING_RUN_COMMAND_H_

#include <string>

namespace glm::testing {

struct CommandResult {
  int exit_code = -1;  // -1 if it did not exit normally
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh, stderr merged into stdout.
CommandResult RunCommand(const std::string& command);

// The whole file at `path`; "" when it cannot be read (tests print it as context).
std::string ReadFileOrEmpty(const std::string& path);

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace glm::testing

#endif  // GLM_TESTS_TESTING_RUN_COMMAND_H_
