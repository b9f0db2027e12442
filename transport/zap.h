// ZapAuthenticator: the ZeroMQ Authentication Protocol (ZAP, RFC 27) handler
// that admits only the cluster's CURVE public keys.
//
// libzmq asks the handler bound at inproc://zeromq.zap.01 of a context about
// every CURVE handshake on a server socket of that context. This one answers
// 200 for a client key in the allow-list and 400 otherwise, logging the
// refused key and peer address and counting it. One per zmq context; start
// it before binding any CURVE server socket of the context.
//
// Lifetime: the context must outlive the authenticator. Thread-safety:
// counters may be read from any thread; Start/Stop from the owner.
#ifndef GLM_TRANSPORT_ZAP_H_
#define GLM_TRANSPORT_ZAP_H_

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <thread>

#include "common/status.h"

namespace glm::transport {

class ZapAuthenticator {
 public:
  ZapAuthenticator(zmq::context_t* context, std::set<std::string> allowed_public_z85);
  ~ZapAuthenticator();  // Stops.
  ZapAuthenticator(const ZapAuthenticator&) = delete;
  ZapAuthenticator& operator=(const ZapAuthenticator&) = delete;

  // Binds the handler socket and starts its thread. FailedPrecondition if
  // another handler is already bound in this context.
  Status Start();
  void Stop();

  uint64_t num_admitted() const { return num_admitted_.load(); }
  uint64_t num_refused() const { return num_refused_.load(); }

 private:
  void Loop();

  zmq::context_t* context_;
  std::set<std::string> allowed_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> num_admitted_{0};
  std::atomic<uint64_t> num_refused_{0};
};

}  // namespace glm::transport

#endif  // GLM_TRANSPORT_ZAP_H_
