// glm bench coordinator: one real coordinator (RocksDB state, CURVE ROUTER
// socket, its own thread) against many simulated workers, each heartbeating
// at 1 Hz and holding a lease at all times (lease, hold task-ms, TaskDone,
// lease again). Simulated workers are multiplexed over a few DEALER sockets
// (the coordinator keys nodes by node id, not by socket). Prints the
// coordinator thread's CPU use and the lease round-trip latency.
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/logging.h"
#include "common/options.h"
#include "coordinator/server.h"

namespace glm::cmd {
namespace {
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now().time_since_epoch()).count();
}

struct CoordBenchOptions {
  int64_t workers = 1000;     // Default: 1000 simulated workers
  double seconds = 10;        // Default: 10 s measured after registration
  int64_t task_ms = 1000;     // Default: each lease held 1000 ms
  int64_t sockets = 4;        // Default: 4 simulator threads/sockets

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("workers", workers, 1));
    GLM_RETURN_IF_ERROR(RequireInRange("seconds", seconds, 1, 3600));
    GLM_RETURN_IF_ERROR(RequireAtLeast("task-ms", task_ms, 0));
    GLM_RETURN_IF_ERROR(RequireAtLeast("sockets", sockets, 1));
    return Status::Ok();
  }
};

struct SimResult {
  std::vector<int64_t> lease_latency_us;
  uint64_t leases = 0;
  uint64_t heartbeats = 0;
  uint64_t done = 0;
  std::atomic<uint64_t> registered{0};
};

void Simulate(const std::string& endpoint, const transport::ClientKeys& keys, int64_t first, int64_t count,
              const CoordBenchOptions& o, std::atomic<int64_t>* measure_from_us, const std::atomic<int64_t>* end_us, SimResult* out) {
  zmq::context_t context;
  auto socket = transport::ClientSocket::Connect(&context, endpoint, keys, transport::SocketOptions());
  GLM_CHECK(socket.ok()) << socket.status();
  auto& s = **socket;
  struct Node {
    std::string id;
    int64_t next_hb_us = 0;
    uint64_t lease = 0;
    std::string task;
    int64_t task_end_us = 0;
    bool pending = false;
    int64_t next_try_us = 0;
  };
  std::vector<Node> nodes(static_cast<size_t>(count));
  std::mt19937 rng(static_cast<uint32_t>(first));
  uint64_t next_req = 1;
  std::map<uint64_t, std::pair<size_t, int64_t>> lease_requests;  // req -> (node, sent)
  // Register every node (retrying until the handshake is up).
  for (int64_t i = 0; i < count; ++i) {
    nodes[static_cast<size_t>(i)].id = "sim-" + std::to_string(first + i);
    transport::EnvelopeBuilder b(next_req++);
    auto r = b.envelope().initRegister();
    r.setNodeId(nodes[static_cast<size_t>(i)].id);
    r.initResources().setCpu(1);
    r.setHostname("sim");
    auto reply = s.Call(b, 10000);
    GLM_CHECK(reply.ok()) << "register: " << reply.status();
    ++out->registered;
    // Real workers are not phase-locked: spread first heartbeats over a
    // second and first leases over one task length.
    nodes[static_cast<size_t>(i)].next_hb_us = NowUs() + static_cast<int64_t>(rng() % 1000000);
    nodes[static_cast<size_t>(i)].next_try_us =
        NowUs() + (o.task_ms > 0 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(o.task_ms * 1000)) : 0);
  }
  auto send_lease = [&](size_t i, int64_t now) {
    transport::EnvelopeBuilder b(next_req);
    auto l = b.envelope().initLeaseRequest();
    l.setNodeId(nodes[i].id);
    l.setActorId("pipeline/" + nodes[i].id + "/0");
    l.initTaskKinds(1).set(0, "noop");
    if (s.Send(b).ok()) {
      lease_requests[next_req] = {i, now};
      nodes[i].pending = true;
    }
    ++next_req;
  };
  while (NowUs() < end_us->load()) {
    int64_t now = NowUs();
    for (size_t i = 0; i < nodes.size(); ++i) {
      Node& n = nodes[i];
      if (now >= n.next_hb_us) {
        transport::EnvelopeBuilder b(next_req++);
        auto h = b.envelope().initHeartbeat();
        h.setNodeId(n.id);
        if (n.lease) h.initHeldLeases(1).set(0, n.lease);
        s.Send(b).IgnoreError();
        n.next_hb_us += 1000000;
        if (now >= measure_from_us->load()) ++out->heartbeats;
      }
      if (n.lease && now >= n.task_end_us) {
        transport::EnvelopeBuilder b(next_req++);
        auto d = b.envelope().initTaskDone();
        d.setNodeId(n.id);
        d.setTaskId(n.task);
        d.setLeaseId(n.lease);
        s.Send(b).IgnoreError();
        n.lease = 0;
        if (now >= measure_from_us->load()) ++out->done;
      }
      if (!n.lease && !n.pending && now >= n.next_try_us) send_lease(i, now);
    }
    auto reply = s.Receive(1);
    while (reply) {
      auto e = reply->envelope();
      if (e.isLeaseReply()) {
        auto it = lease_requests.find(e.getRequestId());
        if (it != lease_requests.end()) {
          int64_t t = NowUs();
          Node& n = nodes[it->second.first];
          n.pending = false;
          if (it->second.second >= measure_from_us->load()) out->lease_latency_us.push_back(t - it->second.second);
          auto lr = e.getLeaseReply();
          if (lr.isTask()) {
            n.lease = lr.getTask().getLeaseId();
            n.task = lr.getTask().getId().cStr();
            n.task_end_us = t + o.task_ms * 1000;
            if (it->second.second >= measure_from_us->load()) ++out->leases;
          } else if (lr.isRetryAfterMs()) {
            n.next_try_us = t + lr.getRetryAfterMs() * 1000;
          } else {
            n.next_try_us = t + 1000000;
          }
          lease_requests.erase(it);
        }
      }
      reply = s.Receive(0);
    }
  }
}

double ThreadCpuSeconds(pthread_t thread) {
  clockid_t cid;
  if (pthread_getcpuclockid(thread, &cid) != 0) return 0;
  timespec ts{};
  clock_gettime(cid, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int RunCoordBench(const CoordBenchOptions& o) {
  InitLogging("bench", "warn").IgnoreError();
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench coordinator: %s\n", s.message().c_str());
    return kExitUsage;
  }
  fs::path dir = fs::temp_directory_path() / ("glm_bench_coord_" + std::to_string(getpid()));
  fs::remove_all(dir);
  GLM_CHECK(transport::GenerateClusterKeys((dir / "keys").string(), true).ok());
  auto server_keys = transport::LoadServerKeys((dir / "keys").string()).value();
  auto client_keys = transport::LoadClientKeys((dir / "keys").string()).value();
  coordinator::JobOptions job;
  job.noop_tasks = 1000000000;
  coordinator::CoordinatorOptions copts;
  copts.node_timeout_ms = 10000;
  copts.lease_ms = std::max<int64_t>(10000, 4 * o.task_ms);
  auto c = coordinator::Coordinator::Open((dir / "state").string(), job, copts, RealClock::Get());
  if (!c.ok()) {
    std::fprintf(stderr, "glm bench coordinator: %s\n", c.status().message().c_str());
    return kExitFailure;
  }
  zmq::context_t context;
  auto socket = transport::ServerSocket::Bind(&context, "tcp://127.0.0.1:*", server_keys, transport::SocketOptions());
  GLM_CHECK(socket.ok()) << socket.status();
  coordinator::CoordinatorServer server(c->get(), socket->get());
  std::atomic<bool> stop{false};
  std::thread server_thread([&] { server.Run(&stop); });

  std::atomic<int64_t> measure_from{INT64_MAX};
  std::vector<SimResult> results(static_cast<size_t>(o.sockets));
  std::vector<std::thread> sims;
  // Registration happens first (serially per socket); the measured window
  // starts one second after everyone registered, to let leases settle.
  int64_t per = (o.workers + o.sockets - 1) / o.sockets;
  int64_t start_reg = NowUs();
  std::atomic<int64_t> planned_end{NowUs() + static_cast<int64_t>((o.seconds + 120) * 1e6)};
  for (int64_t k = 0; k < o.sockets; ++k) {
    int64_t first = k * per;
    int64_t count = std::min(per, o.workers - first);
    if (count <= 0) break;
    sims.emplace_back([&, k, first, count] {
      Simulate((*socket)->endpoint(), client_keys, first, count, o, &measure_from, &planned_end, &results[static_cast<size_t>(k)]);
    });
  }
  // Wait for registration.
  while (true) {
    uint64_t registered = 0;
    for (auto& r : results) registered += r.registered;
    if (registered >= static_cast<uint64_t>(o.workers)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double register_s = (NowUs() - start_reg) / 1e6;
  std::this_thread::sleep_for(std::chrono::seconds(1));
  measure_from = NowUs();
  double cpu0 = ThreadCpuSeconds(server_thread.native_handle());
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  double cpu1 = ThreadCpuSeconds(server_thread.native_handle());
  int64_t measured_us = NowUs() - measure_from.load();
  planned_end = NowUs();  // stops the simulators
  for (auto& t : sims) t.join();
  stop = true;
  server_thread.join();
  std::vector<int64_t> lat;
  uint64_t leases = 0, heartbeats = 0, done = 0;
  for (auto& r : results) {
    lat.insert(lat.end(), r.lease_latency_us.begin(), r.lease_latency_us.end());
    leases += r.leases;
    heartbeats += r.heartbeats;
    done += r.done;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    if (lat.empty()) return 0.0;
    return lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))] / 1000.0;
  };
  double secs = measured_us / 1e6;
  nlohmann::json j = {{"bench", "coordinator"},
                      {"workers", o.workers},
                      {"task_ms", o.task_ms},
                      {"seconds", secs},
                      {"register_all_s", register_s},
                      {"leases", leases},
                      {"leases_per_s", leases / secs},
                      {"tasks_done_per_s", done / secs},
                      {"heartbeats_per_s", heartbeats / secs},
                      {"lease_latency_ms", {{"p50", pct(0.5)}, {"p99", pct(0.99)}, {"max", lat.empty() ? 0.0 : lat.back() / 1000.0}}},
                      {"coordinator_cpu_percent", 100.0 * (cpu1 - cpu0) / secs},
                      {"dropped", (*socket)->num_dropped()}};
  std::cout << j.dump() << std::endl;
  c->reset();
  fs::remove_all(dir);
  return kExitOk;
}

}  // namespace

int RunBenchCoordinator(CLI::App* bench, CommandRegistry* registry) {
  auto o = std::make_shared<CoordBenchOptions>();
  CLI::App* sub = bench->add_subcommand(
      "coordinator", "Simulated workers (1 Hz heartbeats, continuous leases) against one coordinator: CPU and lease latency");
  AddConfigOption(sub, "");
  AddOption(sub, "workers", &o->workers, "Simulated workers");
  AddOption(sub, "seconds", &o->seconds, "Measured seconds");
  AddOption(sub, "task-ms", &o->task_ms, "How long each simulated task holds its lease");
  AddOption(sub, "sockets", &o->sockets, "Simulator threads (each one DEALER socket)");
  registry->Add(sub, [o] { return RunCoordBench(*o); });
  return 0;
}

}  // namespace glm::cmd
