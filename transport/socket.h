// CURVE-secured ZeroMQ sockets carrying Envelopes.
//
//   ServerSocket: ROUTER, CURVE server, bound; the coordinator (and bench
//     servers). Every peer is known by its ZeroMQ routing id; replies go
//     back by that id. Starts a ZapAuthenticator on its context, so only
//     allow-listed client keys complete the handshake.
//   ClientSocket: DEALER, CURVE client, connected; workers, glm status,
//     bench clients. ZMQ_IMMEDIATE is set, so nothing queues while the
//     server is away (a send then fails Unavailable and the caller backs
//     off); libzmq reconnects by itself with exponential backoff
//     (reconnect_ivl_ms up to reconnect_ivl_max_ms).
//
// Both set ZMQ_MAXMSGSIZE and decode with DecodeEnvelope: a malformed,
// oversized or wrong-version message is dropped and counted
// (num_dropped()), and receiving continues.
//
// Thread-safety: like zmq sockets, each object is used by one thread at a
// time (counters are atomic and readable from anywhere). Lifetime: the
// context outlives the socket.
#ifndef GLM_TRANSPORT_SOCKET_H_
#define GLM_TRANSPORT_SOCKET_H_

#include <zmq.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "transport/codec.h"
#include "transport/keys.h"
#include "transport/readable_waiter.h"
#include "transport/zap.h"

namespace glm::transport {

struct SocketOptions {
  // Decode limits; max_message_bytes is also ZMQ_MAXMSGSIZE. Default: see DecodeLimits.
  DecodeLimits limits;
  // Send and receive high-water marks in messages. Default: 100000.
  int high_water_mark = 100000;
  // First and largest reconnect interval of a client. Default: 100 ms, 2000 ms.
  int reconnect_ivl_ms = 100;
  int reconnect_ivl_max_ms = 2000;
  // Handshake timeout. Default: 5000 ms.
  int handshake_ivl_ms = 5000;
  // Adaptive busy polling while ClientSocket::Call waits for its reply
  // (transport/readable_waiter.h); Receive and ServerSocket never spin.
  // Default: spin up to 100 us while replies come within 1 ms on average.
  BusyPollOptions busy_poll;
};

struct Incoming {
  std::string peer;  // routing id (ServerSocket) or empty (ClientSocket)
  std::unique_ptr<DecodedEnvelope> message;
};

class ServerSocket {
 public:
  // Binds `endpoint` (e.g. "tcp://0.0.0.0:5555" or "tcp://127.0.0.1:*") as
  // a CURVE server with `keys`, admitting keys.allowed_clients.
  static StatusOr<std::unique_ptr<ServerSocket>> Bind(zmq::context_t* context,
                                                      const std::string& endpoint,
                                                      const ServerKeys& keys,
                                                      const SocketOptions& options);
  ~ServerSocket();

  // The endpoint actually bound (the port resolved when "*" was given).
  const std::string& endpoint() const { return endpoint_; }

  // Waits up to timeout_ms (0 = do not wait) for one valid message; invalid
  // ones are dropped and counted on the way. nullopt on timeout.
  std::optional<Incoming> Receive(int timeout_ms);
  // Sends to `peer`. Unavailable if the peer is gone or its queue is full.
  Status Send(const std::string& peer, EnvelopeBuilder& message);

  zmq::socket_t& raw() { return socket_; }
  uint64_t num_received() const { return num_received_.load(); }
  uint64_t num_dropped() const { return num_dropped_.load(); }
  uint64_t num_refused() const { return zap_.num_refused(); }

 private:
  ServerSocket(zmq::context_t* context, const ServerKeys& keys, const SocketOptions& options);

  SocketOptions options_;
  ZapAuthenticator zap_;
  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<uint64_t> num_received_{0};
  std::atomic<uint64_t> num_dropped_{0};
};

class ClientSocket {
 public:
  // Connects (asynchronously; the handshake happens in the background) to
  // `endpoint` as a CURVE client with `keys`.
  static StatusOr<std::unique_ptr<ClientSocket>> Connect(zmq::context_t* context,
                                                         const std::string& endpoint,
                                                         const ClientKeys& keys,
                                                         const SocketOptions& options);

  // Unavailable when no connection is up (or the queue is full).
  Status Send(EnvelopeBuilder& message);
  // Like ServerSocket::Receive.
  std::unique_ptr<DecodedEnvelope> Receive(int timeout_ms);
  // Send, then wait up to timeout_ms for the reply whose requestId matches
  // (other messages are dropped). DeadlineExceeded on timeout. The wait
  // busy-polls as options.busy_poll says: a synchronous caller has nothing
  // else to do, and a sleep costs a wake-up on the reply's critical path.
  StatusOr<std::unique_ptr<DecodedEnvelope>> Call(EnvelopeBuilder& message, int timeout_ms);

  zmq::socket_t& raw() { return socket_; }
  uint64_t num_dropped() const { return num_dropped_.load(); }

 private:
  ClientSocket(zmq::context_t* context, const SocketOptions& options);
  // Receive, with `waiter` deciding how to wait (nullptr: PollReadable).
  std::unique_ptr<DecodedEnvelope> Receive(int timeout_ms, ReadableWaiter* waiter);

  SocketOptions options_;
  zmq::socket_t socket_;
  ReadableWaiter reply_waiter_;  // Call's
  std::atomic<uint64_t> num_dropped_{0};
};

}  // namespace glm::transport

#endif  // GLM_TRANSPORT_SOCKET_H_
