#include "coordinator/http/observability_bench.h"

#include <httplib.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/options.h"
#include "coordinator/http/coordinator_status.h"
#include "coordinator/http/fake_status_provider.h"
#include "coordinator/http/glm_metrics.h"
#include "coordinator/http/http_server.h"
#include "coordinator/http/prometheus_text.h"
#include "coordinator/server.h"
#include "transport/keys.h"
#include "transport/socket.h"

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

coordinator::TrainerReport BenchReport(int64_t step, int64_t rank, int64_t world) {
  coordinator::TrainerReport r;
  r.trainer_id = "trainer/" + std::to_string(rank);
  r.rank = rank;
  r.world_size = world;
  r.step = step;
  r.loss = 3.0;
  r.objective_loss = {2.9, 3.0, 3.1};
  r.objective_samples = {16 * step, 16 * step, 16 * step};
  r.lr = 1e-4;
  r.tokens_per_s = 20000;
  r.data_wait_ms = 1;
  r.allreduce_ms = 5;
  r.step_ms = 300;
  return r;
}

// The real coordinator: what publishing a snapshot costs its thread, and
// what one trainer report costs a trainer.
Status BenchCoordinator(const ObservabilityBenchOptions& o, std::vector<nlohmann::json>* out) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("glm_bench_publish_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(dir, ignored);
    }
  } cleanup{dir};
  coordinator::JobOptions job;
  job.noop_tasks = o.publish_tasks;
  GLM_ASSIGN_OR_RETURN(auto c, coordinator::Coordinator::Open((dir / "state").string(), job,
                                                              coordinator::CoordinatorOptions(), RealClock::Get()));
  const int kNodes = 64, kRanks = 8;
  for (int n = 0; n < kNodes; ++n) c->Register("node-" + std::to_string(n), {4, 0, 16384}, "host", 1);
  // Finish every task, so the snapshot walks all of them.
  for (int64_t done = 0; done < o.publish_tasks;) {
    coordinator::LeaseResult r = c->Lease("node-0", "a", {"noop"});
    if (r.kind != coordinator::LeaseResult::kTask) {
      c->Tick();
      continue;
    }
    c->TaskDone("node-0", r.task.id, r.task.lease_id, 1, 0);
    ++done;
  }
  MetricsRegistry registry;
  GlmMetrics metrics(&registry);
  CoordinatorStatusProvider provider(&metrics);
  const int publishes = 50;
  double json_s = 0, publish_s = 0;
  for (int i = 0; i < publishes; ++i) {
    for (int r = 0; r < kRanks; ++r) {
      GLM_RETURN_IF_ERROR(c->ReportTrainer(BenchReport(i + 1, r, kRanks)));
    }
    auto start = Clock::now();
    nlohmann::json status = c->StatusJson();
    json_s += SecondsSince(start);
    start = Clock::now();
    provider.Publish(*c, status);
    publish_s += SecondsSince(start);
  }
  out->push_back({{"bench", "metrics"}, {"case", "coordinator_publish"}, {"tasks", o.publish_tasks},
                  {"nodes", kNodes}, {"trainer_ranks", kRanks}, {"status_json_ms", json_s * 1e3 / publishes},
                  {"publish_ms", publish_s * 1e3 / publishes},
                  {"coordinator_thread_share_at_500ms", (json_s + publish_s) / publishes / 0.5}});

  // One report round trip: TrainerReporter -> CoordinatorServer (CURVE) -> ack.
  GLM_RETURN_IF_ERROR(transport::GenerateClusterKeys((dir / "keys").string(), false));
  GLM_ASSIGN_OR_RETURN(auto server_keys, transport::LoadServerKeys((dir / "keys").string()));
  zmq::context_t context;
  GLM_ASSIGN_OR_RETURN(auto socket, transport::ServerSocket::Bind(&context, "tcp://127.0.0.1:*", server_keys,
                                                                  transport::SocketOptions()));
  coordinator::CoordinatorServer server(c.get(), socket.get());
  std::atomic<bool> stop{false};
  std::thread serve([&] { server.Run(&stop); });
  auto reporter = coordinator::TrainerReporter::Connect(socket->endpoint(), (dir / "keys").string(), 5000);
  Status status = reporter.status();
  double report_s = 0;
  if (status.ok()) {
    status = (*reporter)->Report(BenchReport(1000, 0, 1));  // handshake outside the timing
    auto start = Clock::now();
    for (int i = 0; i < o.reports && status.ok(); ++i) status = (*reporter)->Report(BenchReport(1001 + i, 0, 1));
    report_s = SecondsSince(start);
  }
  stop = true;
  serve.join();
  GLM_RETURN_IF_ERROR(status);
  out->push_back({{"bench", "metrics"}, {"case", "trainer_report_round_trip"}, {"reports", o.reports},
                  {"mean_us", report_s * 1e6 / o.reports}});
  return Status::Ok();
}

}  // namespace

Status ObservabilityBenchOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireAtLeast("updates", updates, 1000));
  GLM_RETURN_IF_ERROR(RequireInRange("threads", threads, 1, 256));
  GLM_RETURN_IF_ERROR(RequireAtLeast("history-steps", history_steps, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("requests", requests, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("publish-tasks", publish_tasks, int64_t{1}));
  GLM_RETURN_IF_ERROR(RequireAtLeast("reports", reports, 1));
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
  GLM_RETURN_IF_ERROR(BenchCoordinator(o, &out));
  return out;
}

}  // namespace glm::http
