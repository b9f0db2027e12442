// Test helper: a child process with its stdout on a pipe, killable by pid.
#ifndef GLM_TESTS_STORAGE_CHILD_PROCESS_H_
#define GLM_TESTS_STORAGE_CHILD_PROCESS_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace glm::testing {

class ChildProcess {
 public:
  explicit ChildProcess(const std::vector<std::string>& argv) {
    int out[2], in[2];
    if (pipe(out) != 0 || pipe(in) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(in[0], 0);
      close(out[0]);
      close(in[1]);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    close(in[0]);
    stdout_ = fdopen(out[0], "r");
    stdin_fd_ = in[1];
  }
  ~ChildProcess() {
    Kill(SIGKILL);
    if (stdout_) fclose(stdout_);
    if (stdin_fd_ >= 0) close(stdin_fd_);
  }

  // One line of the child's stdout without the newline; false at EOF.
  bool ReadLine(std::string* line) {
    char buf[256];
    if (!stdout_ || !fgets(buf, sizeof(buf), stdout_)) return false;
    *line = buf;
    if (!line->empty() && line->back() == '\n') line->pop_back();
    return true;
  }
  // Sends `sig` and reaps the child; returns its wait status.
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  FILE* stdout_ = nullptr;
  int stdin_fd_ = -1;
};

}  // namespace glm::testing

#endif  // GLM_TESTS_STORAGE_CHILD_PROCESS_H_
