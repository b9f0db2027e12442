// glm checkpoint: ask a running job's trainer group to write a checkpoint.
//
// The coordinator picks the step boundary every trainer reaches next
// (coordinator/trainer_group.h) and answers with it; with --wait the command
// then follows the coordinator's status until a trainer reports a checkpoint
// at or after that step.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "cmd/commands.h"
#include "cmd/runtime_options.h"
#include "common/cli.h"
#include "common/logging.h"
#include "common/options.h"
#include "coordinator/trainer_report.h"

namespace glm::cmd {
namespace {

struct CheckpointCommandOptions {
  std::string coordinator = "tcp://127.0.0.1:5555";  // Default: loopback port 5555
  std::string keys = "keys";                        // Default: keys ("" = plain TCP)
  std::string reason = "glm checkpoint";            // Default: "glm checkpoint"
  int64_t wait_s = 0;                               // Default: 0 = do not wait for it to be written
};

Status CheckCheckpointArgs(const CheckpointCommandOptions& o) {
  GLM_RETURN_IF_ERROR(CheckEndpoint("coordinator", o.coordinator));
  GLM_RETURN_IF_ERROR(RequireAtLeast("wait-s", o.wait_s, 0));
  return Status::Ok();
}

// The newest checkpoint step any trainer reported (-1: none).
int64_t NewestReportedCheckpoint(const nlohmann::json& status) {
  int64_t newest = -1;
  for (const auto& t : status.value("trainers", nlohmann::json::array())) {
    if (t.contains("checkpoint_step") && t["checkpoint_step"].is_number_integer()) {
      newest = std::max<int64_t>(newest, t["checkpoint_step"].get<int64_t>());
    }
  }
  return newest;
}

int RunCheckpoint(const CheckpointCommandOptions& o) {
  InitLogging("checkpoint").IgnoreError();
  if (Status s = CheckCheckpointArgs(o); !s.ok()) {
    std::fprintf(stderr, "glm checkpoint: %s\n", s.message().c_str());
    return kExitUsage;
  }
  auto reporter = coordinator::TrainerReporter::Connect(o.coordinator, o.keys, 5000);
  if (!reporter.ok()) {
    std::fprintf(stderr, "glm checkpoint: %s\n", reporter.status().message().c_str());
    return kExitUsage;
  }
  int64_t before = -1;
  if (o.wait_s > 0) {
    auto status = QueryCoordinatorStatus(o.coordinator, o.keys, 5000);
    if (status.ok()) before = NewestReportedCheckpoint(*status);
  }
  StatusOr<int64_t> at = (*reporter)->RequestCheckpoint(o.reason);
  if (!at.ok()) {
    std::fprintf(stderr, "glm checkpoint: %s\n", at.status().message().c_str());
    return kExitFailure;
  }
  if (*at >= 0) {
    std::printf("checkpoint scheduled at step %lld\n", static_cast<long long>(*at));
  } else {
    std::printf("checkpoint scheduled at the trainer group's next step boundary\n");
  }
  std::fflush(stdout);
  if (o.wait_s == 0) return kExitOk;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.wait_s);
  while (std::chrono::steady_clock::now() < deadline) {
    auto status = QueryCoordinatorStatus(o.coordinator, o.keys, 5000);
    if (status.ok()) {
      const int64_t newest = NewestReportedCheckpoint(*status);
      if ((*at >= 0 && newest >= *at) || (*at < 0 && newest > before)) {
        std::printf("checkpoint written at step %lld\n", static_cast<long long>(newest));
        return kExitOk;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  std::fprintf(stderr, "glm checkpoint: no trainer reported the checkpoint within %lld s (the step may still be "
               "running; see glm status)\n", static_cast<long long>(o.wait_s));
  return kExitFailure;
}

}  // namespace

void RegisterCheckpointCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<CheckpointCommandOptions>();
  CLI::App* sub = app->add_subcommand(
      "checkpoint", "Ask a running job's trainers to write a checkpoint at their next common step boundary");
  AddConfigOption(sub, "");
  AddOption(sub, "coordinator", &o->coordinator, "Coordinator endpoint (tcp://HOST:PORT)");
  AddOption(sub, "keys", &o->keys, "Cluster keys directory (client.pub, client.secret, server.pub); \"\" = plain TCP");
  AddOption(sub, "reason", &o->reason, "Why, for the coordinator's log");
  AddOption(sub, "wait-s", &o->wait_s, "Wait up to this long until a trainer reports the checkpoint (0 = do not wait)");
  registry->Add(sub, [o] { return RunCheckpoint(*o); }, [o] { return CheckCheckpointArgs(*o); });
}

}  // namespace glm::cmd
