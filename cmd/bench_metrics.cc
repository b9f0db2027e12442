// glm bench metrics: the observability layer's costs (hot-path metric
// updates against a bare atomic, /metrics rendering, loopback HTTP serving).
#include <cstdio>
#include <iostream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "coordinator/http/observability_bench.h"

namespace glm::cmd {

void RegisterBenchMetricsCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* bench = app->get_subcommand("bench");
  auto options = std::make_shared<http::ObservabilityBenchOptions>();
  CLI::App* sub = bench->add_subcommand(
      "metrics", "Cost of recording metrics on the hot path and of serving /metrics and /api/status");
  AddConfigOption(sub, "");
  AddOption(sub, "updates", &options->updates, "Metric updates per hot-path measurement");
  AddOption(sub, "threads", &options->threads, "Threads for the contended measurement");
  AddOption(sub, "history-steps", &options->history_steps, "Steps of history behind /api/status");
  AddOption(sub, "requests", &options->requests, "HTTP requests per endpoint");
  AddOption(sub, "publish-tasks", &options->publish_tasks, "Finished tasks behind each coordinator snapshot");
  AddOption(sub, "reports", &options->reports, "Trainer reports for the round-trip measurement");
  registry->Add(sub, [options] {
    if (Status s = options->Validate(); !s.ok()) {
      std::fprintf(stderr, "glm bench metrics: %s\n", s.message().c_str());
      return kExitUsage;
    }
    auto results = http::RunObservabilityBench(*options);
    if (!results.ok()) {
      std::fprintf(stderr, "glm bench metrics: %s\n", results.status().message().c_str());
      return kExitFailure;
    }
    for (const auto& j : *results) std::cout << j.dump() << std::endl;
    return kExitOk;
  });
}

}  // namespace glm::cmd
