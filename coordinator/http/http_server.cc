#include "coordinator/http/http_server.h"

#include "coordinator/http/serving.h"

#include <httplib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/options.h"
#include "coordinator/http/prometheus_text.h"
#include "coordinator/http/web_assets.h"

namespace glm::http {

Status HttpServerOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("http-address", address));
  GLM_RETURN_IF_ERROR(RequireInRange("http-port", port, 0, 65535));
  GLM_RETURN_IF_ERROR(RequireAtLeast("http-threads", num_threads, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("http-poll-interval-ms", poll_interval_ms, 100));
  return Status::Ok();
}

Status ParseHttpAddress(const std::string& text, const std::string& flag, HttpServerOptions* options) {
  const std::string hint = "--" + flag + " '" + text +
                           "': expected HOST:PORT, e.g. 127.0.0.1:8265 or 0.0.0.0:0 (0 = any free port)";
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return InvalidArgumentError(hint);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  if (host.empty() || port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5) {
    return InvalidArgumentError(hint);
  }
  const int port = std::stoi(port_text);
  if (port > 65535) return InvalidArgumentError(hint + " (port above 65535)");
  options->address = host;
  options->port = port;
  return Status::Ok();
}

Status WriteUrlFile(const std::string& path, const std::string& url) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << url << "\n";
    if (!out.good()) return UnavailableError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return UnavailableError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

class HttpServer::Impl {
 public:
  Impl(const HttpServerOptions& options, MetricsRegistry* registry, StatusProvider* provider,
       GlmMetrics* glm_metrics)
      : options_(options), registry_(registry), provider_(provider), glm_metrics_(glm_metrics) {}

  ~Impl() { Stop(); }

  Status Start() {
    ConfigureServer(&server_, options_.num_threads);
    Route();
    return serving_.Start(&server_, options_.address, options_.port, "choose another --http address or port");
  }

  void Stop() { serving_.Stop(); }

  int port() const { return serving_.port(); }
  const HttpServerOptions& options() const { return options_; }

 private:
  // Bounded label values for glm_http_requests_total.
  static std::string PathLabel(const std::string& path) {
    for (const char* known : {"/", "/metrics", "/api/status", "/healthz", "/readyz"}) {
      if (path == known) return path;
    }
    if (path.rfind("/static/", 0) == 0) return "/static";
    return "other";
  }

  void Route() {
    server_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (glm_metrics_ != nullptr) {
        glm_metrics_->http_requests->WithLabels({PathLabel(req.path), std::to_string(res.status)})
            ->Increment();
      }
    });
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      // One scrape at a time: refreshing the state gauges and rendering them
      // must not interleave with another scrape's refresh.
      std::lock_guard<std::mutex> lock(scrape_mu_);
      if (glm_metrics_ != nullptr) {
        StatusQuery query;
        query.max_history_points = 1;  // only the last step's losses
        glm_metrics_->RecordClusterState(provider_->GetStatus(query));
      }
      res.set_content(WritePrometheusText(*registry_), kPrometheusContentType);
    });
    server_.Get("/api/status", [this](const httplib::Request& req, httplib::Response& res) {
      StatusQuery query;
      if (Status s = ParseQuery(req, &query); !s.ok()) {
        res.status = 400;
        res.set_content(nlohmann::json{{"error", s.message()}}.dump(), "application/json");
        return;
      }
      nlohmann::json body = ToJson(provider_->GetStatus(query));
      body["poll_interval_ms"] = options_.poll_interval_ms;
      res.set_header("Cache-Control", "no-store");
      res.set_content(body.dump(), "application/json");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      std::string reason;
      if (provider_->IsReady(&reason)) {
        res.set_content("ready\n", "text/plain");
      } else {
        res.status = 503;
        res.set_content("not ready: " + reason + "\n", "text/plain");
      }
    });
    server_.Get(R"(/(|index\.html|static/[A-Za-z0-9._-]+))",
                [](const httplib::Request& req, httplib::Response& res) {
                  const WebAsset* asset = FindWebAsset(req.path == "/" ? "/index.html" : req.path);
                  if (asset == nullptr) {
                    res.status = 404;
                    res.set_content("not found\n", "text/plain");
                    return;
                  }
                  res.set_header("Cache-Control", "no-cache");
                  res.set_content(asset->data.data(), asset->data.size(),
                                  std::string(asset->content_type).c_str());
                });
  }

  static Status ParseQuery(const httplib::Request& req, StatusQuery* query) {
    auto parse = [&](const char* name, int64_t lo, int64_t* out) -> Status {
      if (!req.has_param(name)) return Status::Ok();
      const std::string text = req.get_param_value(name);
      try {
        size_t used = 0;
        long long v = std::stoll(text, &used);
        if (used != text.size() || v < lo) throw std::invalid_argument(name);
        *out = v;
      } catch (const std::exception&) {
        return InvalidArgumentError(std::string("query parameter ") + name + "='" + text +
                                    "' must be an integer >= " + std::to_string(lo));
      }
      return Status::Ok();
    };
    int64_t max_history = query->max_history_points;
    GLM_RETURN_IF_ERROR(parse("history_after", -1, &query->history_after_step));
    GLM_RETURN_IF_ERROR(parse("max_history", 0, &max_history));
    query->max_history_points = static_cast<int>(std::min<int64_t>(max_history, 100000));
    return Status::Ok();
  }

  const HttpServerOptions options_;
  MetricsRegistry* const registry_;
  StatusProvider* const provider_;
  GlmMetrics* const glm_metrics_;
  httplib::Server server_;
  std::mutex scrape_mu_;
  ServingThread serving_;  // after server_: stopped before it is destroyed
};

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                        MetricsRegistry* registry,
                                                        StatusProvider* provider,
                                                        GlmMetrics* glm_metrics) {
  GLM_RETURN_IF_ERROR(options.Validate());
  GLM_CHECK(registry != nullptr && provider != nullptr) << "HttpServer needs a registry and a provider";
  auto impl = std::make_unique<Impl>(options, registry, provider, glm_metrics);
  GLM_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

int HttpServer::port() const { return impl_->port(); }

std::string HttpServer::url() const {
  std::string host = impl_->options().address;
  if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  return "http://" + host + ":" + std::to_string(impl_->port());
}

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace glm::http
