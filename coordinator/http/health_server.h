// HealthServer: /healthz and /readyz alone, for processes that are not the
// coordinator (`glm worker --http ADDR`), as Kubernetes liveness and
// readiness probes use them:
//
//   GET /healthz   200 "ok" while the process serves
//   GET /readyz    200 "ready" when `ready` says so, else 503 "not ready:
//                  <reason>"
//
// Anything else is 404. One accept thread and one worker thread; `ready` is
// called from that thread and must be thread-safe and quick.
//
// Lifetime: Start() binds and returns a running server; the destructor (or
// Stop()) stops it and joins its threads.
#ifndef GLM_COORDINATOR_HTTP_HEALTH_SERVER_H_
#define GLM_COORDINATOR_HTTP_HEALTH_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "coordinator/http/http_server.h"

namespace glm::http {

class HealthServer {
 public:
  using ReadyFn = std::function<bool(std::string* reason)>;

  // Uses options.address and options.port (0 = any free port).
  // Unavailable when the address cannot be bound.
  static StatusOr<std::unique_ptr<HealthServer>> Start(const HttpServerOptions& options, ReadyFn ready);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const;
  std::string url() const;  // 0.0.0.0 shown as 127.0.0.1
  void Stop();              // idempotent

  class Impl;

 private:
  explicit HealthServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_HEALTH_SERVER_H_
