// Binds an httplib::Server and runs its accept loop on a thread of its own:
// the part the dashboard server (http_server.h) and the workers' health
// server (health_server.h) share.
//
// Thread-safety: Start and Stop from one thread; port() after Start.
#ifndef GLM_COORDINATOR_HTTP_SERVING_H_
#define GLM_COORDINATOR_HTTP_SERVING_H_

#include <httplib.h>

#include <atomic>
#include <string>
#include <thread>

#include "common/status.h"

namespace glm::http {

// The settings both servers use: `threads` request threads, 5 s read/write
// and keep-alive timeouts, TCP_NODELAY (small responses: Nagle and delayed
// ACKs would add ~40 ms), and SO_REUSEADDR without httplib's default
// SO_REUSEPORT (which would let a second process silently share the port).
void ConfigureServer(httplib::Server* server, int threads);

class ServingThread {
 public:
  ~ServingThread() { Stop(); }

  // Binds `server` (not owned; must outlive this) to address:port (port 0 =
  // any free port) and starts listening; returns once the accept loop runs.
  // Unavailable naming the address, plus `hint` (what to change), when it
  // cannot bind.
  Status Start(httplib::Server* server, const std::string& address, int port, const std::string& hint);
  void Stop();
  int port() const { return port_; }

 private:
  httplib::Server* server_ = nullptr;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = -1;
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_SERVING_H_
