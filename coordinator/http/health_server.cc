#include "coordinator/http/health_server.h"

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
    server_.new_task_queue = [] { return new httplib::ThreadPool(1); };
    server_.set_read_timeout(5, 0);
    server_.set_write_timeout(5, 0);
    server_.set_tcp_nodelay(true);
    server_.set_socket_options([](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
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
    if (options_.port == 0) {
      port_ = server_.bind_to_any_port(options_.address);
    } else {
      port_ = server_.bind_to_port(options_.address, options_.port) ? options_.port : -1;
    }
    if (port_ < 0) {
      return UnavailableError("cannot bind the health endpoint to " + options_.address + ":" +
                              std::to_string(options_.port) +
                              " (in use, or not an address of this machine); choose another --http");
    }
    thread_ = std::thread([this] {
      server_.listen_after_bind();
      listen_returned_ = true;
    });
    while (!server_.is_running() && !listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::Ok();
  }

  void Stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  const HttpServerOptions& options() const { return options_; }

 private:
  const HttpServerOptions options_;
  const ReadyFn ready_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = -1;
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
