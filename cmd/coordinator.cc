// glm coordinator: the cluster coordinator on a CURVE-secured ROUTER socket.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cmd/commands.h"
#include "cmd/runtime_options.h"
#include "common/logging.h"
#include "common/options.h"
#include "coordinator/http/coordinator_status.h"
#include "coordinator/http/http_server.h"
#include "coordinator/server.h"
#include "coordinator/trainer_group.h"
#include "worker/trainer/communicator.h"

namespace glm::cmd {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

struct CoordinatorCommandOptions {
  std::string bind = "tcp://127.0.0.1:5555";  // Default: loopback port 5555
  std::string state = "runs/coordinator";      // Default: runs/coordinator
  std::string keys = "keys";                   // Default: keys
  std::string job_file;                        // Default: "" (job from flags)
  std::string http;                            // Default: "" = no HTTP server
  std::string http_endpoint_file;              // Default: "" = none
  int http_poll_interval_ms = 1000;            // Default: 1000 (dashboard polling)
  int publish_interval_ms = 500;               // Default: 500 (snapshots for HTTP)
  coordinator::JobOptions job;
  coordinator::CoordinatorOptions coordinator;
  // The trainer group (coordinator/trainer_group.h). min_world_size is
  // --trainers; store_port is --rendezvous-port.
  coordinator::TrainerGroupOptions group;
  // Default: 0 = any free port; -1 = host no rendezvous store. Give a fixed
  // port when the coordinator may restart mid-run (trainers keep using it).
  int rendezvous_port = 0;
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
  GLM_RETURN_IF_ERROR(o.group.Validate());
  if (o.rendezvous_port < -1 || o.rendezvous_port > 65535) {
    return InvalidArgumentError("--rendezvous-port must be in [-1, 65535], got " + std::to_string(o.rendezvous_port));
  }
  if (std::error_code ec; !o.coordinator.run_dir.empty() && std::filesystem::exists(o.coordinator.run_dir, ec) &&
                          !std::filesystem::is_directory(o.coordinator.run_dir, ec)) {
    return InvalidArgumentError("--run-dir " + o.coordinator.run_dir + " exists and is not a directory");
  }
  if (!o.http.empty()) {
    http::HttpServerOptions http_options;
    GLM_RETURN_IF_ERROR(http::ParseHttpAddress(o.http, "http", &http_options));
  }
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
  // HTTP first (before the state loads): /healthz answers at once and
  // /readyz says "not ready" until the server loop publishes its first
  // snapshot. Off the data path: its threads read published snapshots only.
  http::HttpServerOptions http_options;
  http_options.poll_interval_ms = o.http_poll_interval_ms;
  if (!o.http.empty()) {
    if (Status s = http::ParseHttpAddress(o.http, "http", &http_options); !s.ok()) {
      std::fprintf(stderr, "glm coordinator: %s\n", s.message().c_str());
      return kExitUsage;
    }
  } else if (!o.http_endpoint_file.empty()) {
    std::fprintf(stderr, "glm coordinator: --http-endpoint-file needs --http\n");
    return kExitUsage;
  }
  if (o.publish_interval_ms < 10) {
    std::fprintf(stderr, "glm coordinator: --publish-interval-ms must be >= 10\n");
    return kExitUsage;
  }
  http::MetricsRegistry registry;
  http::GlmMetrics metrics(&registry);
  http::CoordinatorStatusProvider provider(&metrics);
  std::unique_ptr<http::HttpServer> http_server;
  if (!o.http.empty()) {
    auto started = http::HttpServer::Start(http_options, &registry, &provider, &metrics);
    if (!started.ok()) {
      std::fprintf(stderr, "glm coordinator: %s\n", started.status().message().c_str());
      return started.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
    }
    http_server = std::move(started).value();
    spdlog::info("dashboard and metrics on {}/ (/metrics, /api/status, /healthz, /readyz)", http_server->url());
    if (!o.http_endpoint_file.empty()) {
      if (Status s = http::WriteUrlFile(o.http_endpoint_file, http_server->url()); !s.ok()) {
        std::fprintf(stderr, "glm coordinator: %s\n", s.message().c_str());
        return kExitFailure;
      }
    }
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
  if (!o.coordinator.run_dir.empty()) {
    spdlog::info("per-step metrics to {}/tensorboard/ and {}/coordinator-metrics.jsonl", o.coordinator.run_dir,
                 o.coordinator.run_dir);
  }
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  coordinator::ServerOptions server_options;
  if (http_server != nullptr) {
    server_options.publish_interval_ms = o.publish_interval_ms;
    server_options.publish = [&provider](const coordinator::Coordinator& coordinator, const nlohmann::json& status) {
      provider.Publish(coordinator, status);
    };
  }
  // The trainer group, and the c10d store its generations rendezvous in.
  coordinator::TrainerGroupOptions group_options = o.group;
  std::unique_ptr<trainer::StoreServer> rendezvous;
  if (o.rendezvous_port >= 0) {
    auto started = trainer::StoreServer::Start(o.rendezvous_port, 120000);
    if (!started.ok()) {
      std::fprintf(stderr, "glm coordinator: rendezvous store on port %d: %s\n", o.rendezvous_port,
                   started.status().message().c_str());
      return kExitFailure;
    }
    rendezvous = std::move(started).value();
    group_options.store_port = rendezvous->port();
    spdlog::info("trainer group: rendezvous store on port {}; the first generation waits for {} trainer(s)",
                 rendezvous->port(), group_options.min_world_size);
  }
  coordinator::TrainerGroup group(group_options, RealClock::Get());
  server_options.trainer_group = &group;
  coordinator::CoordinatorServer server(c->get(), socket->get(), server_options);
  server.Run(&g_stop);
  spdlog::info("stopping");
  provider.SetNotReady("stopping");
  if (http_server != nullptr) http_server->Stop();
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
  AddOption(sub, "http", &o->http,
            "Serve the dashboard, /metrics, /api/status, /healthz, /readyz on HOST:PORT "
            "(e.g. 127.0.0.1:8265, 0.0.0.0:8265; port 0 = any free port; \"\" = off)");
  AddOption(sub, "http-endpoint-file", &o->http_endpoint_file, "Write http://HOST:PORT here once --http listens");
  AddOption(sub, "http-poll-interval-ms", &o->http_poll_interval_ms, "How often the dashboard page polls");
  AddOption(sub, "publish-interval-ms", &o->publish_interval_ms,
            "How often the coordinator hands a status snapshot to the HTTP server");
  AddOption(sub, "trainers", &o->group.min_world_size, "Trainers the trainer group's first generation waits for");
  AddOption(sub, "trainer-timeout-ms", &o->group.member_timeout_ms,
            "A trainer silent this long after its group's collective failed is presumed dead");
  AddOption(sub, "rendezvous-port", &o->rendezvous_port,
            "Port of the c10d store the trainer group rendezvouses in (0 = any free port, -1 = none)");
  AddOption(sub, "rendezvous-host", &o->group.store_host,
            "Host trainers reach the rendezvous store at (\"\" = the host they reach the coordinator at)");
  AddJobOptions(sub, &o->job);
  AddCoordinatorOptions(sub, &o->coordinator);
  AddOption(sub, "run-dir", &o->coordinator.run_dir,
            "Write trainer rank 0's per-step metrics to DIR/tensorboard/events.out.tfevents.* (TensorBoard) and "
            "DIR/coordinator-metrics.jsonl (\"\" = off)");
  registry->Add(sub, [o] { return RunCoordinator(*o); }, [o] { return CheckCoordinatorArgs(*o); });
}

}  // namespace glm::cmd
