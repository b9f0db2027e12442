// The subcommands of the `glm` binary. Each Register* adds one subcommand (and
// its own subcommands) to the root app and registers the action to run when
// it is the one selected: after parsing, main() applies the selected
// subcommand's --config file and runs its action, whose return value is the
// process exit code.
//
// Exit codes: 0 success, 1 the command ran and failed, 2 bad usage (a bad
// flag or config value; the message says what to change).
//
// --check-args: every registered command also takes `--check-args`, a dry
// run: parse the flags, apply GLM_* variables and the --config file, run the
// command's check (its options' Validate(), and reading the config files its
// flags name, e.g. the coordinator's --job-file), print "... arguments OK"
// and exit 0, or print the error and exit 2, without starting anything or
// touching state, data or keys directories. The Kubernetes tests run every
// container command line of k8s/ through it (docs/kubernetes.md).
#ifndef GLM_CMD_COMMANDS_H_
#define GLM_CMD_COMMANDS_H_

#include <CLI/CLI.hpp>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace glm::cmd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Maps each runnable subcommand to its action and its argument check.
// Thread-safety: main thread only. The registry must outlive parsing (the
// --check-args flags point into it).
class CommandRegistry {
 public:
  // What --check-args runs after parsing and the --config file: OK, or the
  // error to print (exit 2). A null check means parsing is the only check.
  using Check = std::function<Status()>;

  // Registers `command`'s action and check, and adds its --check-args flag.
  void Add(CLI::App* command, std::function<int()> action, Check check = nullptr);
  // Sets the check of a command added before (e.g. by another file).
  void SetCheck(CLI::App* command, Check check);

  // Finds the deepest selected subcommand under `root`, applies its --config
  // file and runs its action (with --check-args: its check). Usage problems
  // print a message and return 2.
  int RunSelected(CLI::App* root) const;

 private:
  struct Entry {
    std::function<int()> action;
    Check check;
    bool check_args = false;  // set by the command's --check-args flag
  };
  std::map<const CLI::App*, Entry> entries_;  // node-stable: flags point at check_args
};

// InvalidArgument naming `option` unless `endpoint` is a ZeroMQ endpoint
// glm binds or connects to: tcp://HOST:PORT (PORT a number or "*" where
// `allow_wildcard_port`), ipc://PATH or inproc://NAME.
Status CheckEndpoint(std::string_view option, const std::string& endpoint, bool allow_wildcard_port = false);

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
void RegisterCheckpointCommand(CLI::App* app, CommandRegistry* registry);  // cmd/checkpoint.cc
void RegisterPipelineCommand(CLI::App* app, CommandRegistry* registry);
// `glm bench rpc` and `glm bench coordinator` (bench_rpc.cc, bench_coordinator.cc);
// call after RegisterBenchCommand.
void RegisterBenchRuntimeCommands(CLI::App* app, CommandRegistry* registry);
void RegisterPlotCommand(CLI::App* app, CommandRegistry* registry);  // cmd/plot.cc
// `glm bench metrics` (cmd/bench_metrics.cc); call after RegisterBenchCommand.
void RegisterBenchMetricsCommand(CLI::App* app, CommandRegistry* registry);


}  // namespace glm::cmd

#endif  // GLM_CMD_COMMANDS_H_
