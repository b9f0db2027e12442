// The subcommands of the `glm` binary. Each Register* adds one subcommand (and
// its own subcommands) to the root app and registers the action to run when
// it is the one selected: after parsing, main() applies the selected
// subcommand's --config file and runs its action, whose return value is the
// process exit code.
//
// Exit codes: 0 success, 1 the command ran and failed, 2 bad usage (a bad
// flag or config value; the message says what to change).
#ifndef GLM_CMD_COMMANDS_H_
#define GLM_CMD_COMMANDS_H_

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <string>

namespace glm::cmd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Maps each runnable subcommand to its action.
class CommandRegistry {
 public:
  void Add(CLI::App* command, std::function<int()> action) { actions_[command] = std::move(action); }

  // Finds the deepest selected subcommand under `root`, applies its --config
  // file and runs its action. Usage problems print a message and return 2.
  int RunSelected(CLI::App* root) const;

 private:
  std::map<const CLI::App*, std::function<int()>> actions_;
};

// "glm bench gemm" for the deepest selected subcommand.
std::string SelectedCommandPath(const CLI::App* root);

void RegisterVersionCommand(CLI::App* app, CommandRegistry* registry);
void RegisterBenchCommand(CLI::App* app, CommandRegistry* registry);
// cmd/store.cc: `glm store stats|verify|digest|export`.
void RegisterStoreCommand(CLI::App* app, CommandRegistry* registry);
// cmd/bench_store.cc: `glm bench store` (call after RegisterBenchCommand).
void RegisterBenchStore(CLI::App* app, CommandRegistry* registry);
// The runtime's commands (coordinator.cc, worker.cc, keys.cc, status.cc, pipeline.cc).
void RegisterCoordinatorCommand(CLI::App* app, CommandRegistry* registry);
void RegisterWorkerCommand(CLI::App* app, CommandRegistry* registry);
void RegisterKeysCommand(CLI::App* app, CommandRegistry* registry);
void RegisterStatusCommand(CLI::App* app, CommandRegistry* registry);
void RegisterPipelineCommand(CLI::App* app, CommandRegistry* registry);
// `glm bench rpc` and `glm bench coordinator` (bench_rpc.cc, bench_coordinator.cc);
// call after RegisterBenchCommand.
void RegisterBenchRuntimeCommands(CLI::App* app, CommandRegistry* registry);
void RegisterPlotCommand(CLI::App* app, CommandRegistry* registry);  // cmd/plot.cc
// `glm bench metrics` (cmd/bench_metrics.cc); call after RegisterBenchCommand.
void RegisterBenchMetricsCommand(CLI::App* app, CommandRegistry* registry);

// A subcommand that is part of glm's design but not built yet: it shows in
// `glm --help` with its purpose, and running it says so and exits 2.
void RegisterPlannedCommand(CLI::App* app, const std::string& name, const std::string& description,
                            CommandRegistry* registry);

}  // namespace glm::cmd

#endif  // GLM_CMD_COMMANDS_H_
