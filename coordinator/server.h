// CoordinatorServer: puts a Coordinator on the wire. One thread owns the
// ROUTER socket and the Coordinator: it receives envelopes, dispatches them,
// replies to the sender's routing id, and calls Coordinator::Tick every
// tick_ms. Unexpected message kinds are dropped and counted like malformed
// ones.
//
// Thread-safety: Run() on one thread; RequestStop() from any thread (or a
// signal handler through the flag passed to Run).
#ifndef GLM_COORDINATOR_SERVER_H_
#define GLM_COORDINATOR_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "coordinator/coordinator.h"
#include "coordinator/trainer_group.h"
#include "transport/socket.h"

namespace glm::coordinator {

struct ServerOptions {
  // How often Tick runs. Default: 20 ms.
  int tick_ms = 20;
  // Called on the server's thread every publish_interval_ms (and once when
  // Run starts) with the coordinator and its StatusJson (with the
  // "transport" section, as StatusReply carries it): the way to hand
  // snapshots to other threads (the HTTP server) without locking the state
  // machine. Must be quick. The interval stretches to 20x the last
  // publish's duration, so publishing takes at most ~5% of the thread
  // (StatusJson walks every task). Default: none; 500 ms.
  std::function<void(const Coordinator&, const nlohmann::json&)> publish;
  int publish_interval_ms = 500;
  // The trainer group (TrainerSync, CheckpointRequest); must outlive the
  // server. Default: none (trainer-group messages are answered with a stop
  // that says the coordinator runs no group).
  TrainerGroup* trainer_group = nullptr;
};

class CoordinatorServer {
 public:
  // Both must outlive the server.
  CoordinatorServer(Coordinator* coordinator, transport::ServerSocket* socket, ServerOptions options = {});

  // Serves until *stop becomes true.
  void Run(const std::atomic<bool>* stop);

  uint64_t num_unexpected() const { return num_unexpected_.load(); }

 private:
  void Dispatch(const std::string& peer, wire::Envelope::Reader e);
  nlohmann::json StatusWithTransport() const;

  Coordinator* coordinator_;
  transport::ServerSocket* socket_;
  ServerOptions options_;
  std::atomic<uint64_t> num_unexpected_{0};
};

// Fills a wire JobSpec from the job's options.
void FillJobSpec(const JobOptions& job, wire::JobSpec::Builder spec);

}  // namespace glm::coordinator

#endif  // GLM_COORDINATOR_SERVER_H_
