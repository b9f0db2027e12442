#include "tests/k8s/netns_lab.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/testing/run_command.h"

namespace glm::testing {
namespace {

constexpr const char* kSwitch = "sw";

// Deletes namespaces of earlier runs whose test process is gone.
void SweepStale() {
  auto list = RunCommand("ip netns list");
  std::istringstream in(list.output);
  std::string line;
  const std::regex name("^(glmk8s-([0-9]+)-\\S+)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (!std::regex_search(line, m, name)) continue;
    const std::string pid = m[2].str();
    if (std::filesystem::exists("/proc/" + pid)) continue;
    RunCommand("ip netns pids " + m[1].str() + " | xargs -r kill -9; ip netns del " + m[1].str());
  }
}

}  // namespace

NetnsLab::NetnsLab() : prefix_("glmk8s-" + std::to_string(getpid()) + "-") {}

NetnsLab::~NetnsLab() {
  for (pid_t pid : pids_) {
    if (pid > 0 && kill(pid, 0) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // Anything else still inside (e.g. children of the spawned processes).
  for (const std::string& ns : namespaces_)
    RunCommand("ip netns pids " + ns + " | xargs -r kill -9");
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it)
    RunCommand("ip netns del " + *it);
}

bool NetnsLab::Ip(const std::string& args) {
  auto r = RunCommand("ip " + args);
  if (r.exit_code != 0) {
    error_ = "ip " + args + ": " + r.output;
    while (!error_.empty() && error_.back() == '\n') error_.pop_back();
    return false;
  }
  return true;
}

std::string NetnsLab::Create() {
  if (geteuid() != 0)
    return "network namespaces need root (running as uid " + std::to_string(geteuid()) + ")";
  if (RunCommand("ip -V").exit_code != 0)
    return "iproute2's ip command is missing (Debian package iproute2)";
  SweepStale();
  const std::string sw = Namespace(kSwitch);
  if (!Ip("netns add " + sw)) return error_;
  namespaces_.push_back(sw);
  if (!Ip("-n " + sw + " link add br0 type bridge") || !Ip("-n " + sw + " link set br0 up") ||
      !Ip("-n " + sw + " link set lo up")) {
    return error_;
  }
  return "";
}

std::string NetnsLab::AddHost(const std::string& name) {
  const int index = static_cast<int>(host_index_.size()) + 1;
  const std::string ns = Namespace(name);
  const std::string sw = Namespace(kSwitch);
  const std::string address = "10.213.0." + std::to_string(index);
  const std::string port = "p" + std::to_string(index);
  if (!Ip("netns add " + ns)) return "";
  namespaces_.push_back(ns);
  host_index_[name] = index;
  if (!Ip("-n " + sw + " link add " + port + " type veth peer name eth0 netns " + ns) ||
      !Ip("-n " + sw + " link set " + port + " master br0") ||
      !Ip("-n " + sw + " link set " + port + " up") ||
      !Ip("-n " + ns + " addr add " + address + "/24 dev eth0") ||
      !Ip("-n " + ns + " link set eth0 up") || !Ip("-n " + ns + " link set lo up")) {
    return "";
  }
  return address;
}

pid_t NetnsLab::Spawn(const std::string& name, const std::vector<std::string>& argv,
                      const std::vector<std::string>& env, const std::string& log) {
  std::vector<std::string> full = {"/usr/sbin/ip", "netns", "exec", Namespace(name)};
  if (access(full[0].c_str(), X_OK) != 0) full[0] = "/sbin/ip";
  full.insert(full.end(), argv.begin(), argv.end());
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    std::vector<char*> args, envp;
    for (const auto& a : full) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  if (pid > 0) pids_.push_back(pid);
  return pid;
}

bool NetnsLab::SetLink(const std::string& name, bool up) {
  return Ip("-n " + Namespace(name) + " link set eth0 " + (up ? "up" : "down"));
}

int NetnsLab::Exec(const std::string& name, const std::string& command, std::string* output) {
  auto r = RunCommand("ip netns exec " + Namespace(name) + " " + command);
  if (output != nullptr) *output = r.output;
  return r.exit_code;
}

int NetnsLab::Stop(pid_t pid, int grace_ms) {
  int status = 0;
  if (pid <= 0) return -1;
  for (pid_t& p : pids_) {
    if (p == pid) p = -1;  // reaped below: the destructor must not signal a reused pid
  }
  kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return status;
}

}  // namespace glm::testing
