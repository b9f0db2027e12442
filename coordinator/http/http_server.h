// HttpServer: the coordinator's HTTP endpoint for people and monitoring,
// off the data path (the data path is ZeroMQ):
//
//   GET /             the dashboard (self-contained page, assets embedded in
//                     the binary; no CDN)
//   GET /static/...   the dashboard's scripts and styles
//   GET /metrics      Prometheus text format (prometheus_text.h)
//   GET /api/status   ClusterStatus as JSON (status.h); query parameters
//                     history_after=STEP (only newer history points) and
//                     max_history=N (thin to at most N points)
//   GET /healthz      200 "ok" while the server runs
//   GET /readyz       200 "ready" when the StatusProvider says so, else 503
//                     with its reason
//
// The server runs on its own thread pool (`num_threads` workers plus one
// accept thread). Handlers only read: the provider's snapshot and the
// metrics registry.
//
// Lifetime: Start() binds and returns a running server; the destructor (or
// Stop()) stops it and joins its threads. `registry`, `provider` and
// `glm_metrics` are borrowed and must outlive the server.
//
// Thread-safety: port(), url() and Stop() may be called from any thread.
#ifndef GLM_COORDINATOR_HTTP_HTTP_SERVER_H_
#define GLM_COORDINATOR_HTTP_HTTP_SERVER_H_

#include <memory>
#include <string>

#include "common/status.h"
#include "coordinator/http/glm_metrics.h"
#include "coordinator/http/metrics.h"
#include "coordinator/http/status.h"

namespace glm::http {

struct HttpServerOptions {
  // Address to bind. Default: 127.0.0.1 (this machine only); 0.0.0.0 serves
  // the whole network (inside a cluster, behind its network policy).
  std::string address = "127.0.0.1";
  // TCP port. Default: 8265 (as Ray's dashboard); 0 picks a free port.
  int port = 8265;
  // Worker threads serving requests. A browser opens up to 6 connections
  // at once and each keep-alive connection holds a thread, so fewer threads
  // make the page's parallel asset loads wait (on a loaded machine they were
  // seen to fail with empty responses). Default: 8.
  int num_threads = 8;
  // How often the dashboard page polls /api/status. Default: 1000 ms.
  int poll_interval_ms = 1000;

  Status Validate() const;  // names the option: http-address, http-port, ...
};

// Parses a --http flag value "HOST:PORT" (e.g. "127.0.0.1:8265",
// "0.0.0.0:8266", "[::1]:0"; port 0 = any free port) into options->address
// and options->port. InvalidArgument naming `flag` and the expected form.
Status ParseHttpAddress(const std::string& text, const std::string& flag, HttpServerOptions* options);

// Writes `url` and a newline to `path` atomically (a temporary file renamed
// over it), so a reader never sees a partial URL.
Status WriteUrlFile(const std::string& path, const std::string& url);

class HttpServer {
 public:
  // Binds and starts serving. Unavailable if the address/port cannot be bound
  // (in use, or no such address), InvalidArgument for bad options.
  // `glm_metrics` may be null; when set, each /metrics scrape first refreshes
  // its state gauges from the provider's snapshot.
  static StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                     MetricsRegistry* registry,
                                                     StatusProvider* provider,
                                                     GlmMetrics* glm_metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  // "http://127.0.0.1:8265" (0.0.0.0 is shown as 127.0.0.1).
  std::string url() const;
  // Stops accepting, finishes in-flight requests, joins the threads. Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_HTTP_SERVER_H_
