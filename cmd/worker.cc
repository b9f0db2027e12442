// glm worker: the node agent.
#include <signal.h>

#include <atomic>
#include <cstdio>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/logging.h"
#include "worker/agent.h"
#include "worker/glm_executors.h"

namespace glm::cmd {
namespace {

std::atomic<bool> g_drain{false};
void OnSignal(int) { g_drain = true; }

}  // namespace

void RegisterWorkerCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<worker::AgentOptions>();
  CLI::App* sub = app->add_subcommand("worker", "Run a node agent that hosts actors");
  AddConfigOption(sub, "");
  AddOption(sub, "coordinator", &o->coordinator, "Coordinator endpoint");
  AddOption(sub, "keys", &o->keys_dir, "Directory with server.pub, client.pub, client.secret");
  AddOption(sub, "resources", &o->resources, "Declared resources: cpu=N,gpu=N,memory=MiB");
  AddOption(sub, "node-id", &o->node_id, "Node id (\"\" = hostname-pid-random)");
  AddOption(sub, "call-timeout-ms", &o->call_timeout_ms, "Timeout of one call to the coordinator");
  AddOption(sub, "drain-timeout-ms", &o->drain_timeout_ms, "After SIGTERM: time to finish leased tasks");
  AddOption(sub, "exit-when-done", &o->exit_when_done, "Exit once the job is done");
  registry->Add(sub, [o] {
    InitLogging("worker").IgnoreError();
    if (Status s = o->Validate(); !s.ok()) {
      std::fprintf(stderr, "glm worker: %s\n", s.message().c_str());
      return kExitUsage;
    }
    signal(SIGTERM, OnSignal);
    signal(SIGINT, OnSignal);
    worker::ExecutorRegistry executors;
    worker::RegisterTestExecutors(&executors);
    worker::RegisterGlmExecutors(&executors);
    worker::NodeAgent agent(*o, &executors);
    Status s = agent.Run(&g_drain);
    if (!s.ok()) {
      std::fprintf(stderr, "glm worker: %s\n", s.message().c_str());
      return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? kExitUsage
                                                                                          : kExitFailure;
    }
    return kExitOk;
  }, [o] {
    GLM_RETURN_IF_ERROR(CheckEndpoint("coordinator", o->coordinator));
    return o->Validate();
  });
}

}  // namespace glm::cmd
