#include "coordinator/http/observability_bench.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/options.h"
#include "coordinator/http/fake_status_provider.h"
#include "coordinator/http/glm_metrics.h"
#include "coordinator/http/http_server.h"
#include "coordinator/http/prometheus_text.h"

namespace glm::http {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// ns per update of `body(i)` run `n` times on each of `threads` threads.
template <typename Body>
double NanosPerUpdate(int threads, int64_t n, Body body) {
  std::vector<std::thread> workers;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready++;
      while (!go) {
      }
      for (int64_t i = 0; i < n; ++i) body(t, i);
    });
  }
  while (ready < threads) {
  }
  auto start = Clock::now();
  go = true;
  for (auto& w : workers) w.join();
  return SecondsSince(start) * 1e9 / double(n);
}

}  // namespace

Status ObservabilityBenchOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireAtLeast("updates", updates, 1000));
  GLM_RETURN_IF_ERROR(RequireInRange("threads", threads, 1, 256));
  GLM_RETURN_IF_ERROR(RequireAtLeast("history-steps", history_steps, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("requests", requests, 1));
  return Status::Ok();
}

StatusOr<std::vector<nlohmann::json>> RunObservabilityBench(const ObservabilityBenchOptions& o) {
  GLM_RETURN_IF_ERROR(o.Validate());
  std::vector<nlohmann::json> out;
  MetricsRegistry registry;
  GlmMetrics metrics(&registry);

  // Hot path, one thread: bare atomic add vs Counter, Gauge, Histogram.
  {
    std::atomic<uint64_t> bare{0};
    Counter* counter = metrics.samples_produced->WithLabels({"blank"});
    const double bare_ns = NanosPerUpdate(1, o.updates, [&](int, int64_t) { bare.fetch_add(1, std::memory_order_relaxed); });
    const double counter_ns = NanosPerUpdate(1, o.updates, [&](int, int64_t) { counter->Increment(); });
    const double gauge_ns = NanosPerUpdate(1, o.updates, [&](int, int64_t i) { metrics.trainer_step->Set(double(i)); });
    const double hist_ns = NanosPerUpdate(1, o.updates, [&](int, int64_t i) {
      metrics.data_wait_seconds->Observe(double(i & 1023) * 1e-5);
    });
    const int64_t lookups = std::max<int64_t>(1000, o.updates / 20);
    const double lookup_ns = NanosPerUpdate(1, lookups, [&](int, int64_t) {
      metrics.samples_produced->WithLabels({"document"})->Increment();
    });
    out.push_back({{"bench", "metrics"}, {"case", "hot_path_1_thread"}, {"updates", o.updates},
                   {"atomic_add_ns", bare_ns}, {"counter_increment_ns", counter_ns},
                   {"gauge_set_ns", gauge_ns}, {"histogram_observe_ns", hist_ns},
                   {"with_labels_lookup_and_increment_ns", lookup_ns},
                   {"counter_vs_atomic", counter_ns / bare_ns}});
  }
  // Contended: all threads on one counter vs each on its own child.
  {
    const int64_t per_thread = std::max<int64_t>(1000, o.updates / o.threads);
    std::atomic<uint64_t> bare{0};
    Counter* shared = metrics.samples_consumed->WithLabels({"blank"});
    std::vector<Counter*> own;
    for (int t = 0; t < o.threads; ++t) own.push_back(metrics.actor_restarts->WithLabels({"t" + std::to_string(t)}));
    const double bare_ns = NanosPerUpdate(o.threads, per_thread, [&](int, int64_t) { bare.fetch_add(1, std::memory_order_relaxed); });
    const double shared_ns = NanosPerUpdate(o.threads, per_thread, [&](int, int64_t) { shared->Increment(); });
    const double own_ns = NanosPerUpdate(o.threads, per_thread, [&](int t, int64_t) { own[t]->Increment(); });
    out.push_back({{"bench", "metrics"}, {"case", "hot_path_contended"}, {"threads", o.threads},
                   {"updates_per_thread", per_thread}, {"atomic_add_shared_ns", bare_ns},
                   {"counter_shared_ns", shared_ns}, {"counter_per_thread_child_ns", own_ns},
                   {"shared_counter_vs_atomic", shared_ns / bare_ns}});
  }

  // Rendering and serving, with a simulated job behind the provider.
  FakeStatusProvider provider;
  for (int s = 0; s < o.history_steps; ++s) provider.SimulateStep(int64_t(s) * 1000);
  {
    auto start = Clock::now();
    std::string text;
    const int renders = 200;
    for (int i = 0; i < renders; ++i) {
      StatusQuery q;
      q.max_history_points = 1;
      metrics.RecordClusterState(provider.GetStatus(q));
      text = WritePrometheusText(registry);
    }
    out.push_back({{"bench", "metrics"}, {"case", "render_metrics_text"},
                   {"mean_us", SecondsSince(start) * 1e6 / renders}, {"bytes", text.size()}});
  }
  HttpServerOptions server_options;
  server_options.port = 0;
  GLM_ASSIGN_OR_RETURN(auto server, HttpServer::Start(server_options, &registry, &provider, &metrics));
  httplib::Client client("127.0.0.1", server->port());
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  struct Endpoint {
    const char* name;
    std::string path;
  };
  const std::vector<Endpoint> endpoints = {
      {"metrics", "/metrics"},
      {"status_full_history", "/api/status"},
      {"status_incremental", "/api/status?history_after=" + std::to_string(o.history_steps - 1)},
      {"dashboard_page", "/"},
  };
  for (const Endpoint& e : endpoints) {
    size_t bytes = 0;
    auto start = Clock::now();
    for (int i = 0; i < o.requests; ++i) {
      auto res = client.Get(e.path.c_str());
      if (!res || res->status != 200) {
        return InternalError(std::string("GET ") + e.path + " failed during the benchmark");
      }
      bytes = res->body.size();
    }
    out.push_back({{"bench", "metrics"}, {"case", std::string("http_") + e.name},
                   {"requests", o.requests}, {"history_steps", o.history_steps},
                   {"mean_ms", SecondsSince(start) * 1e3 / o.requests}, {"bytes", bytes}});
  }
  server->Stop();
  return out;
}

}  // namespace glm::http
