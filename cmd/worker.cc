// glm worker: the node agent.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <memory>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/logging.h"
#include "coordinator/http/health_server.h"
#include "worker/agent.h"
#include "worker/glm_executors.h"

namespace glm::cmd {
namespace {

std::atomic<bool> g_drain{false};
void OnSignal(int) { g_drain = true; }

}  // namespace

struct WorkerHttpOptions {
  std::string address;        // Default: "" = no HTTP endpoint
  std::string endpoint_file;  // Default: "" = none
};

void RegisterWorkerCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<worker::AgentOptions>();
  auto http = std::make_shared<WorkerHttpOptions>();
  CLI::App* sub = app->add_subcommand("worker", "Run a node agent that hosts actors");
  AddConfigOption(sub, "");
  AddOption(sub, "coordinator", &o->coordinator, "Coordinator endpoint");
  AddOption(sub, "keys", &o->keys_dir, "Directory with server.pub, client.pub, client.secret");
  AddOption(sub, "resources", &o->resources, "Declared resources: cpu=N,gpu=N,memory=MiB");
  AddOption(sub, "node-id", &o->node_id, "Node id (\"\" = hostname-pid-random)");
  AddOption(sub, "call-timeout-ms", &o->call_timeout_ms, "Timeout of one call to the coordinator");
  AddOption(sub, "drain-timeout-ms", &o->drain_timeout_ms, "After SIGTERM: time to finish leased tasks");
  AddOption(sub, "exit-when-done", &o->exit_when_done, "Exit once the job is done");
  AddOption(sub, "busy-poll-us", &o->busy_poll_us,
            "Longest busy-poll of a coordinator call for its reply (0: always sleep, for oversubscribed CPUs)");
  AddOption(sub, "http", &http->address,
            "Serve /healthz and /readyz on HOST:PORT (e.g. 0.0.0.0:8266; port 0 = any; \"\" = off)");
  AddOption(sub, "http-endpoint-file", &http->endpoint_file, "Write http://HOST:PORT here once --http listens");
  registry->Add(sub, [o, http] {
    InitLogging("worker").IgnoreError();
    if (Status s = o->Validate(); !s.ok()) {
      std::fprintf(stderr, "glm worker: %s\n", s.message().c_str());
      return kExitUsage;
    }
    http::HttpServerOptions http_options;
    if (!http->address.empty()) {
      if (Status s = http::ParseHttpAddress(http->address, "http", &http_options); !s.ok()) {
        std::fprintf(stderr, "glm worker: %s\n", s.message().c_str());
        return kExitUsage;
      }
    } else if (!http->endpoint_file.empty()) {
      std::fprintf(stderr, "glm worker: --http-endpoint-file needs --http\n");
      return kExitUsage;
    }
    signal(SIGTERM, OnSignal);
    signal(SIGINT, OnSignal);
    worker::ExecutorRegistry executors;
    worker::RegisterTestExecutors(&executors);
    worker::RegisterGlmExecutors(&executors);
    worker::NodeAgent agent(*o, &executors);
    std::unique_ptr<http::HealthServer> health;
    if (!http->address.empty()) {
      auto started = http::HealthServer::Start(
          http_options, [&agent](std::string* reason) { return agent.Ready(reason); });
      if (!started.ok()) {
        std::fprintf(stderr, "glm worker: %s\n", started.status().message().c_str());
        return kExitFailure;
      }
      health = std::move(started).value();
      spdlog::info("health endpoints on {}/healthz and /readyz", health->url());
      if (!http->endpoint_file.empty()) {
        if (Status s = http::WriteUrlFile(http->endpoint_file, health->url()); !s.ok()) {
          std::fprintf(stderr, "glm worker: %s\n", s.message().c_str());
          return kExitFailure;
        }
      }
    }
    Status s = agent.Run(&g_drain);
    if (health != nullptr) health->Stop();
    if (!s.ok()) {
      std::fprintf(stderr, "glm worker: %s\n", s.message().c_str());
      return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? kExitUsage
                                                                                          : kExitFailure;
    }
    return kExitOk;
  }, [o, http] {
    GLM_RETURN_IF_ERROR(CheckEndpoint("coordinator", o->coordinator));
    if (!http->address.empty()) {
      http::HttpServerOptions http_options;
      GLM_RETURN_IF_ERROR(http::ParseHttpAddress(http->address, "http", &http_options));
    }
    return o->Validate();
  });
}

}  // namespace glm::cmd
