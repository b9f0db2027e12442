#include "coordinator/http/health_server.h"

#include "coordinator/http/serving.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/check.h"

namespace glm::http {

class HealthServer::Impl {
 public:
  Impl(const HttpServerOptions& options, ReadyFn ready) : options_(options), ready_(std::move(ready)) {}
  ~Impl() { Stop(); }

  Status Start() {
    ConfigureServer(&server_, 1);
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      std::string reason;
      if (ready_(&reason)) {
        res.set_content("ready\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content("not ready: " + reason + "\n", "text/plain");
      }
    });
    return serving_.Start(&server_, options_.address, options_.port, "choose another --http");
  }

  void Stop() { serving_.Stop(); }

  int port() const { return serving_.port(); }
  const HttpServerOptions& options() const { return options_; }

 private:
  const HttpServerOptions options_;
  const ReadyFn ready_;
  httplib::Server server_;
  ServingThread serving_;  // after server_: stopped before it is destroyed
};

StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(const HttpServerOptions& options, ReadyFn ready) {
  GLM_RETURN_IF_ERROR(options.Validate());
  GLM_CHECK(ready != nullptr) << "HealthServer needs a readiness function";
  auto impl = std::make_unique<Impl>(options, std::move(ready));
  GLM_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HealthServer>(new HealthServer(std::move(impl)));
}

HealthServer::HealthServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HealthServer::~HealthServer() { Stop(); }

int HealthServer::port() const { return impl_->port(); }

std::string HealthServer::url() const {
  std::string host = impl_->options().address;
  if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(impl_->port());
}

void HealthServer::Stop() { impl_->Stop(); }

}  // namespace glm::http
