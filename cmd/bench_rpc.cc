// glm bench rpc: actor round trips per second over the real transport
// (CURVE-encrypted ZeroMQ on loopback, one Cap'n Proto Envelope each way,
// decoded with the same limits as the coordinator).
//
//   sync_1_1:   one caller, one callee, one ClientSocket::Call at a time
//   async_1_1:  one caller, one callee, `window` calls in flight (pipelined)
//   async_n_n:  n callers each calling its own callee, `window` in flight each
//
// Callees run on their own threads with their own ROUTER socket and ZAP
// handler; callers on their own threads with a DEALER socket. Ray's
// published numbers (m5.16xlarge, 64 vCPU) are printed alongside.
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/clock.h"
#include "common/options.h"
#include "transport/socket.h"

namespace glm::cmd {
namespace {
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

struct RpcOptions {
  double seconds = 3;       // Default: 3 s per measurement
  int64_t window = 64;      // Default: 64 calls in flight per async caller
  int64_t n = 4;            // Default: 4 callers and 4 callees for n:n
  int64_t payload_bytes = 0;  // Default: 0 (empty call)
  int64_t busy_poll_us = transport::BusyPollOptions().spin_us;  // Default: the transport's (100)

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireInRange("seconds", seconds, 0.1, 600));
    GLM_RETURN_IF_ERROR(RequireAtLeast("window", window, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("n", n, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("payload-bytes", payload_bytes, 0));
    GLM_RETURN_IF_ERROR(RequireInRange("busy-poll-us", busy_poll_us, 0, 1000000));
    return Status::Ok();
  }
};

class Callee {
 public:
  explicit Callee(const transport::ServerKeys& keys) {
    auto s = transport::ServerSocket::Bind(&context_, "tcp://127.0.0.1:*", keys, transport::SocketOptions());
    GLM_CHECK(s.ok()) << s.status();
    socket_ = std::move(s).value();
    thread_ = std::thread([this] {
      while (!stop_) {
        auto in = socket_->Receive(20);
        if (!in) continue;
        do {
          auto e = in->message->envelope();
          if (e.isPing()) {
            transport::EnvelopeBuilder reply(e.getRequestId());
            auto pong = reply.envelope().initPong();
            pong.setId(e.getPing().getId());
            pong.setPayload(e.getPing().getPayload());
            socket_->Send(in->peer, reply).IgnoreError();
          }
          in = socket_->Receive(0);
        } while (in);
      }
    });
  }
  ~Callee() {
    stop_ = true;
    thread_.join();
    socket_.reset();
  }
  std::string endpoint() const { return socket_->endpoint(); }

 private:
  zmq::context_t context_;
  std::unique_ptr<transport::ServerSocket> socket_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Runs one caller for `seconds`; returns completed calls. window 1 is the
// synchronous API (Call); more, Send and Receive with that many in flight.
uint64_t RunCaller(const std::string& endpoint, const transport::ClientKeys& keys,
                   const transport::SocketOptions& options, int64_t window, int64_t payload_bytes, double seconds) {
  zmq::context_t context;
  auto client = transport::ClientSocket::Connect(&context, endpoint, keys, options);
  GLM_CHECK(client.ok()) << client.status();
  std::string payload(static_cast<size_t>(payload_bytes), 'x');
  uint64_t next_id = 1;
  auto make = [&](uint64_t id) {
    auto b = std::make_unique<transport::EnvelopeBuilder>(id);
    auto ping = b->envelope().initPing();
    ping.setId(id);
    ping.setPayload(kj::arrayPtr(reinterpret_cast<const capnp::byte*>(payload.data()), payload.size()));
    return b;
  };
  // Warm up: wait for the handshake.
  {
    auto b = make(next_id++);
    GLM_CHECK((*client)->Call(*b, 10000).ok()) << "bench callee did not answer";
  }
  uint64_t done = 0;
  int64_t in_flight = 0;
  auto end = SteadyClock::now() + std::chrono::duration<double>(seconds);
  if (window == 1) {
    while (SteadyClock::now() < end) {
      auto b = make(next_id++);
      auto reply = (*client)->Call(*b, 1000);
      GLM_CHECK(reply.ok() && (*reply)->envelope().isPong()) << "bench callee did not answer a call";
      ++done;
    }
    return done;
  }
  while (SteadyClock::now() < end) {
    while (in_flight < window) {
      auto b = make(next_id++);
      if (!(*client)->Send(*b).ok()) break;
      ++in_flight;
    }
    auto reply = (*client)->Receive(1000);
    if (reply && reply->envelope().isPong()) {
      --in_flight;
      ++done;
    }
  }
  // Drain what is still in flight so sockets close cleanly.
  while (in_flight > 0 && (*client)->Receive(200)) --in_flight;
  return done;
}

int RunRpc(const RpcOptions& o) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench rpc: %s\n", s.message().c_str());
    return kExitUsage;
  }
  fs::path dir = fs::temp_directory_path() / ("glm_bench_rpc_" + std::to_string(getpid()));
  if (Status s = transport::GenerateClusterKeys(dir.string(), true); !s.ok()) {
    std::fprintf(stderr, "glm bench rpc: %s\n", s.message().c_str());
    return kExitFailure;
  }
  transport::ServerKeys server_keys = transport::LoadServerKeys(dir.string()).value();
  transport::ClientKeys client_keys = transport::LoadClientKeys(dir.string()).value();
  fs::remove_all(dir);

  transport::SocketOptions caller_options;
  caller_options.busy_poll.spin_us = static_cast<int>(o.busy_poll_us);
  auto measure = [&](int64_t pairs, int64_t window) {
    std::vector<std::unique_ptr<Callee>> callees;
    for (int64_t i = 0; i < pairs; ++i) callees.push_back(std::make_unique<Callee>(server_keys));
    std::vector<uint64_t> counts(static_cast<size_t>(pairs));
    std::vector<std::thread> callers;
    auto start = SteadyClock::now();
    for (int64_t i = 0; i < pairs; ++i) {
      callers.emplace_back([&, i] {
        counts[static_cast<size_t>(i)] =
            RunCaller(callees[static_cast<size_t>(i)]->endpoint(), client_keys, caller_options, window,
                      o.payload_bytes, o.seconds);
      });
    }
    for (auto& t : callers) t.join();
    double elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
    uint64_t total = 0;
    for (uint64_t c : counts) total += c;
    // The warm-up handshake is outside the timed loop; elapsed includes it,
    // so use the timed seconds for the rate.
    (void)elapsed;
    return total / o.seconds;
  };
  // CPU of the whole process (caller, callee, both I/O threads) per sync
  // call: what busy polling costs.
  const double cpu_before = ProcessCpuSeconds();
  double sync = measure(1, 1);
  const double sync_cpu_us_per_call = 1e6 * (ProcessCpuSeconds() - cpu_before) / std::max(1.0, sync * o.seconds);
  double async = measure(1, o.window);
  double nn = measure(o.n, o.window);
  const double ray_sync = 2012, ray_async = 8664, ray_nn = 27376;
  nlohmann::json j = {{"bench", "rpc"},
                      {"transport", "zeromq+curve, capnp envelopes, tcp loopback"},
                      {"seconds_each", o.seconds},
                      {"window", o.window},
                      {"n", o.n},
                      {"payload_bytes", o.payload_bytes},
                      {"busy_poll_us", o.busy_poll_us},
                      {"sync_1_1_calls_per_s", sync},
                      {"sync_1_1_cpu_us_per_call", sync_cpu_us_per_call},
                      {"async_1_1_calls_per_s", async},
                      {"async_n_n_calls_per_s", nn},
                      {"vs_ray", {{"sync_1_1", sync / ray_sync}, {"async_1_1", async / ray_async}, {"async_n_n", nn / ray_nn}}},
                      {"hardware_threads", std::thread::hardware_concurrency()}};
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

}  // namespace

int RunBenchCoordinator(CLI::App* bench, CommandRegistry* registry);  // bench_coordinator.cc

void RegisterBenchRuntimeCommands(CLI::App* app, CommandRegistry* registry) {
  CLI::App* bench = app->get_subcommand("bench");
  auto o = std::make_shared<RpcOptions>();
  CLI::App* sub = bench->add_subcommand(
      "rpc", "Actor round trips per second on loopback (CURVE ZeroMQ + Cap'n Proto): 1:1 sync, 1:1 async, n:n async");
  AddConfigOption(sub, "");
  AddOption(sub, "seconds", &o->seconds, "Seconds per measurement");
  AddOption(sub, "window", &o->window, "Calls in flight per async caller");
  AddOption(sub, "n", &o->n, "Callers (and callees) in the n:n measurement");
  AddOption(sub, "payload-bytes", &o->payload_bytes, "Bytes carried by each call and its reply");
  AddOption(sub, "busy-poll-us", &o->busy_poll_us,
            "Longest busy-poll of a synchronous call before it sleeps (0: never; transport/readable_waiter.h)");
  registry->Add(sub, [o] { return RunRpc(*o); });
  RunBenchCoordinator(bench, registry);
}

}  // namespace glm::cmd
