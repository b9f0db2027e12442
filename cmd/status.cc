// glm status: a running job's nodes, actors, tasks by state, samples per
// objective and throughput.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cmd/commands.h"
#include "cmd/runtime_options.h"
#include "transport/socket.h"

namespace glm::cmd {

StatusOr<nlohmann::json> QueryCoordinatorStatus(const std::string& endpoint, const std::string& keys_dir,
                                                int timeout_ms) {
  GLM_ASSIGN_OR_RETURN(transport::ClientKeys keys, transport::LoadClientKeys(keys_dir));
  zmq::context_t context;
  GLM_ASSIGN_OR_RETURN(auto socket,
                       transport::ClientSocket::Connect(&context, endpoint, keys, transport::SocketOptions()));
  transport::EnvelopeBuilder b(1);
  b.envelope().initStatusRequest();
  auto reply = socket->Call(b, timeout_ms);
  if (!reply.ok()) {
    return UnavailableError("no answer from the coordinator at " + endpoint + " within " +
                            std::to_string(timeout_ms) + " ms (is it running? are the keys the cluster's?)");
  }
  if (!(*reply)->envelope().isStatusReply()) return InternalError("unexpected reply to a status request");
  nlohmann::json j = nlohmann::json::parse((*reply)->envelope().getStatusReply().getJson().cStr(), nullptr, false);
  if (j.is_discarded()) return DataLossError("coordinator status is not JSON");
  return j;
}

namespace {

void PrintHuman(const nlohmann::json& j) {
  std::printf("job %s  phase %s%s  uptime %.0f s\n", j.value("job_id", "").c_str(), j.value("phase", "").c_str(),
              j.value("done", false) ? " (done)" : "", j.value("uptime_s", 0.0));
  std::printf("nodes %zu  actors %d\n", j["nodes"].size(), j.value("actors", 0));
  for (const auto& n : j["nodes"]) {
    std::printf("  %-32s %-11s cpu %-4g gpu %-3g actors %d  seen %lld ms ago\n", n.value("id", "").c_str(),
                n.value("state", "").c_str(), n.value("cpu", 0.0), n.value("gpu", 0.0), n.value("actors", 0),
                static_cast<long long>(n.value("last_seen_ms_ago", int64_t{0})));
  }
  std::printf("tasks:\n");
  for (const auto& [kind, states] : j["tasks"].items()) {
    std::printf("  %-9s", kind.c_str());
    for (const auto& [state, count] : states.items()) std::printf(" %s %lld", state.c_str(), count.get<long long>());
    std::printf("\n");
  }
  std::printf("documents %llu  samples", j.value("documents", 0ull));
  for (const auto& [o, n] : j["samples"].items()) std::printf(" %s %llu", o.c_str(), n.get<unsigned long long>());
  std::printf("\nproduced step %lld, consumed step %lld\n", j.value("produced_step", -1ll),
              j.value("consumed_step", -1ll));
  std::printf("throughput %.1f tasks/s, %.2f MB/s of corpus\n", j.value("tasks_per_s", 0.0),
              j.value("corpus_bytes_per_s", 0.0) / 1e6);
  if (j.contains("trainers") && !j["trainers"].empty()) {
    std::printf("trainers:\n");
    for (const auto& t : j["trainers"]) {
      auto num = [&](const char* key) { return t[key].is_number() ? t[key].get<double>() : NAN; };
      std::printf("  %-12s rank %lld/%lld  step %lld/%lld  loss %.4f  lr %.3g  %.0f tokens/s  data wait %.1f ms"
                  "  reported %lld ms ago\n",
                  t.value("id", "").c_str(), t.value("rank", 0ll), t.value("world_size", 0ll), t.value("step", 0ll),
                  t.value("max_steps", 0ll), num("loss"), num("lr"), num("tokens_per_s"), num("data_wait_ms"),
                  t.value("last_report_ms_ago", 0ll));
    }
  }
  if (!j["dead_letters"].empty()) {
    std::printf("dead letters:\n");
    for (const auto& d : j["dead_letters"]) {
      std::printf("  %s after %d attempts: %s\n", d.value("task", "").c_str(), d.value("attempts", 0),
                  d.value("reason", "").c_str());
    }
  }
  if (j.contains("transport")) {
    const auto& t = j["transport"];
    std::printf("transport: received %llu, dropped %llu malformed + %llu unexpected, refused %llu peer(s)\n",
                t.value("received", 0ull), t.value("dropped_malformed", 0ull), t.value("dropped_unexpected", 0ull),
                t.value("refused_peers", 0ull));
  }
}

}  // namespace

void RegisterStatusCommand(CLI::App* app, CommandRegistry* registry) {
  struct Options {
    std::string coordinator = "tcp://127.0.0.1:5555";
    std::string keys = "keys";
    bool json = false;
    double watch = 0;
    int timeout_ms = 3000;
  };
  auto o = std::make_shared<Options>();
  CLI::App* sub = app->add_subcommand("status", "Show a running job's nodes, actors and tasks");
  AddConfigOption(sub, "");
  AddOption(sub, "coordinator", &o->coordinator, "Coordinator endpoint");
  AddOption(sub, "keys", &o->keys, "Directory with server.pub, client.pub, client.secret");
  AddFlag(sub, "json", &o->json, "Print the status as one JSON line");
  AddOption(sub, "watch", &o->watch, "Refresh every this many seconds (0 = once)");
  AddOption(sub, "timeout-ms", &o->timeout_ms, "How long to wait for the coordinator");
  registry->Add(sub, [o] {
    while (true) {
      auto j = QueryCoordinatorStatus(o->coordinator, o->keys, o->timeout_ms);
      if (!j.ok()) {
        std::fprintf(stderr, "glm status: %s\n", j.status().message().c_str());
        return j.status().code() == StatusCode::kNotFound ? kExitUsage : kExitFailure;
      }
      if (o->watch > 0 && !o->json && isatty(1)) std::printf("\033[H\033[2J");
      if (o->json) std::cout << j->dump() << std::endl;
      else PrintHuman(*j);
      std::fflush(stdout);
      if (o->watch <= 0) return kExitOk;
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(o->watch * 1000)));
    }
  });
}

}  // namespace glm::cmd
