// StoreServer: serves a SampleStore to remote actors over ZeroMQ with the
// Cap'n Proto messages of schema/store_rpc.capnp (docs/store-format.md
// "Wire protocol").
//
//   zmq::context_t context;
//   StoreServerOptions options;
//   options.endpoint = "tcp://0.0.0.0:5601";
//   GLM_ASSIGN_OR_RETURN(auto server, StoreServer::Start(&store, &context, options));
//   ... clients connect to server->endpoint() ...
//
// One ROUTER socket, owned by the server's own thread, which answers one
// request at a time in arrival order:
//
//   Start() --bind--> [serving] --Stop()/destructor--> [stopped]
//                        |  recv [identity.., request]
//                        |  handle (store read/write)
//                        '- send [identity.., response]
//
// Bounds and back-pressure: incoming messages above max_message_bytes are
// refused by ZeroMQ (ZMQ_MAXMSGSIZE, the peer is disconnected); at most
// receive_hwm requests wait per peer, after which a DEALER client's sends
// block (its requests are the back-pressure); a request for more than
// max_records_per_request records, or whose answer would exceed
// max_message_bytes, is answered with an InvalidArgument / ResourceExhausted
// error. A malformed request is answered with an error (or dropped when not
// even its envelope can be read) and counted; it is never fatal.
//
// Security: set curve_secret_key to require CurveZMQ; configure_socket lets
// the runtime add its ZAP domain before bind.
//
// Lifetime: `store` and `context` are not owned and must outlive the server.
// Thread-safety: Start, Stop, endpoint and counters may be called from any
// thread; the store is called from the server thread only.
#ifndef GLM_STORAGE_STORE_SERVER_H_
#define GLM_STORAGE_STORE_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "common/status.h"
#include "storage/sample_store.h"

namespace glm::storage {

struct StoreServerOptions {
  // Where to bind. Default: "tcp://127.0.0.1:*" (loopback, a free port; see
  // StoreServer::endpoint()).
  std::string endpoint = "tcp://127.0.0.1:*";
  // Largest message accepted or sent. Default: 256 MiB.
  int64_t max_message_bytes = 256ll << 20;
  // Most records one request may ask for or carry. Default: 8192.
  uint32_t max_records_per_request = 8192;
  // Messages queued per peer in each direction before ZeroMQ pushes back.
  // Default: 64.
  int send_hwm = 64;
  int receive_hwm = 64;
  // How often the server thread checks for Stop(). Default: 50 ms.
  int poll_interval_ms = 50;
  // CurveZMQ: this server's key pair in Z85 (40 characters each). Default:
  // empty = plain TCP.
  std::string curve_public_key;
  std::string curve_secret_key;
  // Called on the socket before bind (e.g. to set a ZAP domain). Default: none.
  std::function<Status(zmq::socket_t*)> configure_socket;

  Status Validate() const;
};

// Meta keys a client may write (putMeta): the training dataset manifest
// that the pipeline's finalize task writes (worker/dataset_manifest.h).
inline constexpr const char* kRemoteMetaPrefix = "train/";

class StoreServer {
 public:
  struct Counters {
    uint64_t requests = 0;        // requests answered (including errors)
    uint64_t malformed = 0;       // requests that could not be read
    uint64_t errors = 0;          // requests answered with an error (malformed included)
    uint64_t records_sent = 0;    // records in responses
    uint64_t records_written = 0; // records written by put requests
  };

  // Binds and starts the server thread. InvalidArgument for bad options;
  // Unavailable when the endpoint cannot be bound (port in use).
  static StatusOr<std::unique_ptr<StoreServer>> Start(SampleStore* store, zmq::context_t* context,
                                                      StoreServerOptions options);
  ~StoreServer();  // Stop()s
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  // The bound endpoint with its real port, e.g. "tcp://127.0.0.1:41723".
  const std::string& endpoint() const { return endpoint_; }
  Counters counters() const;
  // Stops serving and closes the socket; idempotent.
  void Stop();

 private:
  StoreServer(SampleStore* store, StoreServerOptions options, zmq::socket_t socket, std::string endpoint);
  void Run();
  // Turns one request frame into one response frame; never throws.
  zmq::message_t Handle(const zmq::message_t& request);

  SampleStore* const store_;
  const StoreServerOptions options_;
  zmq::socket_t socket_;  // used by thread_ only once started
  const std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> avg_record_words_{256};  // sizes the next answer's first segment
  std::atomic<uint64_t> requests_{0}, malformed_{0}, errors_{0}, records_sent_{0}, records_written_{0};
  std::thread thread_;
};

}  // namespace glm::storage

#endif  // GLM_STORAGE_STORE_SERVER_H_
