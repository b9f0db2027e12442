// NetnsLab: Linux network namespaces standing in for Kubernetes pods in a
// test. Each "host" is a namespace with one address on a private /24; a
// "switch" namespace holds the bridge every host's veth pair plugs into, so
// the machine's own network (the root namespace) is never touched. Processes
// run in a host with Spawn (ip netns exec). Needs root (CAP_SYS_ADMIN and
// CAP_NET_ADMIN) and iproute2.
//
// Cleanup whatever happens: the destructor kills every spawned process and
// deletes every namespace it made; names carry a per-run prefix with the
// test's pid (glmk8s-<pid>-...), and Create() first deletes namespaces that
// earlier runs left behind when they were killed (their pid is gone).
//
// Thread-safety: one thread.
#ifndef GLM_TESTS_K8S_NETNS_LAB_H_
#define GLM_TESTS_K8S_NETNS_LAB_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace glm::testing {

class NetnsLab {
 public:
  // Addresses are 10.213.0.<n>/24 (inside this lab's namespaces only).
  NetnsLab();
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  // Makes the switch namespace and its bridge. "" on success, else why not
  // (e.g. "ip netns add: Operation not permitted"): the caller skips.
  std::string Create();

  // Adds host `name` (a new namespace, a veth pair to the bridge, an
  // address, lo and the link up). Returns its IPv4 address, or "" (error()
  // says why).
  std::string AddHost(const std::string& name);

  // Runs argv in host `name` with exactly `env` as its environment, stdout
  // and stderr to `log`. Returns the pid (the process itself: ip netns exec
  // execs it), or -1.
  pid_t Spawn(const std::string& name, const std::vector<std::string>& argv,
              const std::vector<std::string>& env, const std::string& log);

  // `ip link set eth0 down|up` inside host `name`. True on success.
  bool SetLink(const std::string& name, bool up);

  // Runs a shell command line inside host `name`; returns its exit code and
  // output (stdout and stderr).
  int Exec(const std::string& name, const std::string& command, std::string* output);

  // The namespace of host `name`.
  std::string Namespace(const std::string& name) const { return prefix_ + name; }
  const std::string& error() const { return error_; }

  // Sends SIGTERM to `pid` and waits up to `grace_ms` before SIGKILL; reaps
  // it. Returns its wait status.
  int Stop(pid_t pid, int grace_ms);

 private:
  bool Ip(const std::string& args);  // runs "ip " + args; sets error_

  std::string prefix_;  // "glmk8s-<pid>-"
  std::vector<std::string> namespaces_;
  std::map<std::string, int> host_index_;
  std::vector<pid_t> pids_;
  std::string error_;
};

}  // namespace glm::testing

#endif  // GLM_TESTS_K8S_NETNS_LAB_H_
