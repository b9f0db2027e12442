// glm coordinator: the cluster coordinator on a CURVE-secured ROUTER socket.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>

#include "cmd/commands.h"
#include "cmd/runtime_options.h"
#include "common/logging.h"
#include "common/options.h"
#include "coordinator/server.h"

namespace glm::cmd {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct CoordinatorCommandOptions {
  std::string bind = "tcp://127.0.0.1:5555";  // Default: loopback port 5555
  std::string state = "runs/coordinator";      // Default: runs/coordinator
  std::string keys = "keys";                   // Default: keys
  std::string job_file;                        // Default: "" (job from flags)
  coordinator::JobOptions job;
  coordinator::CoordinatorOptions coordinator;
};

// The job: from --job-file when given, else from the job flags.
StatusOr<coordinator::JobOptions> LoadJob(const CoordinatorCommandOptions& o) {
  if (o.job_file.empty()) return o.job;
  std::ifstream in(o.job_file);
  if (!in) return NotFoundError("--job-file " + o.job_file + ": cannot read it");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  auto job = j.is_discarded() ? StatusOr<coordinator::JobOptions>(InvalidArgumentError("not JSON"))
                              : coordinator::JobOptions::FromJson(j);
  if (!job.ok()) return InvalidArgumentError("--job-file " + o.job_file + ": " + job.status().message());
  return job;
}

// --check-args: the flags and the job file, nothing started.
Status CheckCoordinatorArgs(const CoordinatorCommandOptions& o) {
  GLM_RETURN_IF_ERROR(CheckEndpoint("bind", o.bind));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("state", o.state));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("keys", o.keys));
  GLM_RETURN_IF_ERROR(o.coordinator.Validate());
  GLM_ASSIGN_OR_RETURN(coordinator::JobOptions job, LoadJob(o));
  Status s = job.Validate();
  if (!s.ok() && !o.job_file.empty()) return InvalidArgumentError("--job-file " + o.job_file + ": " + s.message());
  return s;
}

int RunCoordinator(CoordinatorCommandOptions o) {
  InitLogging("coordinator").IgnoreError();
  if (!o.job_file.empty()) {
    auto job = LoadJob(o);
    if (!job.ok()) {
      std::fprintf(stderr, "glm coordinator: %s\n", job.status().message().c_str());
      return kExitUsage;
    }
    o.job = *job;
  }
  auto keys = transport::LoadServerKeys(o.keys);
  if (!keys.ok()) {
    std::fprintf(stderr, "glm coordinator: %s\n", keys.status().message().c_str());
    return kExitUsage;
  }
  auto c = coordinator::Coordinator::Open(o.state, o.job, o.coordinator, RealClock::Get());
  if (!c.ok()) {
    std::fprintf(stderr, "glm coordinator: %s\n", c.status().message().c_str());
    return c.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  zmq::context_t context;
  auto socket = transport::ServerSocket::Bind(&context, o.bind, *keys, transport::SocketOptions());
  if (!socket.ok()) {
    std::fprintf(stderr, "glm coordinator: %s\n", socket.status().message().c_str());
    return kExitFailure;
  }
  spdlog::info("serving on {} (state {}, {} allowed client key(s))", (*socket)->endpoint(), o.state,
               keys->allowed_clients.size());
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  coordinator::CoordinatorServer server(c->get(), socket->get());
  server.Run(&g_stop);
  spdlog::info("stopping");
  return kExitOk;
}

}  // namespace

void RegisterCoordinatorCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<CoordinatorCommandOptions>();
  CLI::App* sub = app->add_subcommand("coordinator", "Run the cluster coordinator");
  AddConfigOption(sub, "");
  AddOption(sub, "bind", &o->bind, "Endpoint to bind (tcp://HOST:PORT)");
  AddOption(sub, "state", &o->state, "State directory (RocksDB); an existing one resumes its job");
  AddOption(sub, "keys", &o->keys, "Directory with server.pub, server.secret, allowed_clients");
  AddOption(sub, "job-file", &o->job_file, "JSON job description (as glm pipeline writes); overrides job flags");
  AddJobOptions(sub, &o->job);
  AddCoordinatorOptions(sub, &o->coordinator);
  registry->Add(sub, [o] { return RunCoordinator(*o); }, [o] { return CheckCoordinatorArgs(*o); });
}

}  // namespace glm::cmd
