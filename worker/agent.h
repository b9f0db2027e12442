// NodeAgent: `glm worker`. Registers the node and its resources with the
// coordinator, heartbeats, and hosts the actors the coordinator places on
// it, each on its own thread with its own mailbox and its own CURVE socket.
//
//   start ──Register (retry, backoff 100 ms..2 s)──► registered
//   registered ──Heartbeat every interval──► (ack: actor set) start/stop actors
//             ──ack.reregister (coordinator restarted)──► Register again
//             ──ack.jobDone and actors idle──► exit 0 (if exit_when_done)
//   drain (SIGTERM) ──► actors finish their task (up to drain_timeout_ms),
//             then cancel: unfinished tasks are given back (TaskFailed
//             abandoned) ──► final heartbeat ──► exit 0
//
// The coordinator being away is never fatal: calls time out, libzmq
// reconnects with backoff, and the agent keeps trying.
//
// Thread-safety: Run() from one thread; the drain flag may be set from a
// signal handler.
#ifndef GLM_WORKER_AGENT_H_
#define GLM_WORKER_AGENT_H_

#include <atomic>
#include <string>

#include "common/status.h"
#include "transport/readable_waiter.h"
#include "worker/executor.h"

namespace glm::worker {

struct AgentOptions {
  // Coordinator endpoint. Default: tcp://127.0.0.1:5555.
  std::string coordinator = "tcp://127.0.0.1:5555";
  // Directory with server.pub, client.pub, client.secret. Default: "keys".
  std::string keys_dir = "keys";
  // Declared resources, "cpu=2,gpu=0,memory=4096" (memory in MiB).
  // Default: "cpu=1,gpu=0".
  std::string resources = "cpu=1,gpu=0";
  // Node id; "" = <hostname>-<pid>-<random>. Default: "".
  std::string node_id;
  // Timeout of one call to the coordinator. Default: 2000 ms.
  int call_timeout_ms = 2000;
  // After SIGTERM, how long running tasks may finish before they are given
  // back. Default: 10000 ms.
  int drain_timeout_ms = 10000;
  // Exit once the coordinator says the job is done. Default: true.
  bool exit_when_done = true;
  // Longest busy-poll of a call to the coordinator for its reply, in
  // microseconds (transport/readable_waiter.h); 0 = always sleep, for nodes
  // whose CPUs are oversubscribed. Default: 100.
  int busy_poll_us = transport::BusyPollOptions().spin_us;

  Status Validate() const;
};

struct ParsedResources {
  double cpu = 0;
  double gpu = 0;
  uint64_t memory_mb = 0;
};
// "cpu=2,gpu=0,memory=4096" -> values; InvalidArgument naming the bad item.
StatusOr<ParsedResources> ParseResources(const std::string& text);

class NodeAgent {
 public:
  // `registry` outlives the agent.
  NodeAgent(AgentOptions options, const ExecutorRegistry* registry);
  // Runs until the job is done (exit_when_done) or *drain is set and the
  // node has drained. Errors only for unusable options or keys.
  Status Run(const std::atomic<bool>* drain);

  // Readiness for `glm worker --http` (/readyz; any thread): true while the
  // node is registered with the coordinator and not draining; otherwise
  // *reason says why ("registering with ...", "draining", "stopped").
  bool Ready(std::string* reason) const;

 private:
  enum Phase : int { kRegistering = 0, kRegistered, kDraining, kStopped };
  std::atomic<int> phase_{kRegistering};
  AgentOptions options_;
  const ExecutorRegistry* registry_;
};

}  // namespace glm::worker

#endif  // GLM_WORKER_AGENT_H_
