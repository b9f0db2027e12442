// glm: one binary, one subcommand per job. `glm --help` lists them.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "cmd/commands.h"
#include "cmd/model_commands.h"
#include "model/torch_env.h"

namespace glm::cmd {
// Data pipeline commands (cmd/tokenizer.cc, cmd/corrupt.cc, cmd/bench_corrupt.cc).
void RegisterTokenizerCommand(CLI::App* app, CommandRegistry* registry);
void RegisterStoreServeCommand(CLI::App* app, CommandRegistry* registry);
void RegisterCorruptCommand(CLI::App* app, CommandRegistry* registry);
void RegisterBenchCorruptCommand(CLI::App* app, CommandRegistry* registry);
// cmd/bench_trainer.cc: glm bench trainer-checkpoint / trainer-dp.
void RegisterBenchTrainer(CLI::App* app, CommandRegistry* registry);
// cmd/train.cc: glm train and glm pretrain.
void RegisterTrainCommands(CLI::App* app, CommandRegistry* registry);
// cmd/interop.cc: glm export and glm import (HuggingFace THUDM/glm layout).
void RegisterExportCommand(CLI::App* app, CommandRegistry* registry);
void RegisterImportCommand(CLI::App* app, CommandRegistry* registry);
// cmd/infill.cc, cmd/eval.cc, cmd/finetune.cc: using a trained model.
void RegisterInfillCommand(CLI::App* app, CommandRegistry* registry);
void RegisterEvalCommand(CLI::App* app, CommandRegistry* registry);
void RegisterFinetuneCommand(CLI::App* app, CommandRegistry* registry);
}  // namespace glm::cmd

namespace {

// Commands that never multiply matrices: they skip the BLAS re-exec, which
// costs a second LibTorch load at start-up (seconds on a busy machine).
bool NeedsFastBlas(int argc, char** argv) {
  if (argc < 2) return false;
  // --check-args starts nothing: no second LibTorch load for it.
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--check-args") return false;
  }
  std::string command = argv[1];
  for (const char* light : {"coordinator", "keys", "status", "store", "tokenizer", "corrupt",
                            "pipeline", "plot", "checkpoint", "export", "import", "--help", "-h"}) {
    if (command == light) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (NeedsFastBlas(argc, argv)) glm::model::ReexecWithFasterBlasKernelIfNeeded(argv);
  CLI::App app{
      "glm: pretrain GLM language models (General Language Model, autoregressive blank\n"
      "infilling; Du et al., ACL 2022) with a Ray-style actor runtime: a coordinator,\n"
      "tokenizer and span-corruption actors over a RocksDB shard store, and data-parallel\n"
      "trainers. Run `glm COMMAND --help` for a command's options; every option can also\n"
      "be set by its GLM_* environment variable or in the YAML file given by --config."};
  app.name("glm");
  app.require_subcommand(1);
  app.fallthrough(false);
  app.get_formatter()->column_width(34);

  glm::cmd::CommandRegistry registry;
  glm::cmd::RegisterTrainCommands(&app, &registry);
  glm::cmd::RegisterPipelineCommand(&app, &registry);
  glm::cmd::RegisterCoordinatorCommand(&app, &registry);
  glm::cmd::RegisterWorkerCommand(&app, &registry);
  glm::cmd::RegisterStatusCommand(&app, &registry);
  glm::cmd::RegisterCheckpointCommand(&app, &registry);
  glm::cmd::RegisterKeysCommand(&app, &registry);
  glm::cmd::RegisterModelCommand(&app, &registry);
  glm::cmd::RegisterForwardCommand(&app, &registry);
  glm::cmd::RegisterStoreCommand(&app, &registry);
  glm::cmd::RegisterStoreServeCommand(&app, &registry);
  glm::cmd::RegisterTokenizerCommand(&app, &registry);
  glm::cmd::RegisterCorruptCommand(&app, &registry);
  glm::cmd::RegisterInfillCommand(&app, &registry);
  glm::cmd::RegisterEvalCommand(&app, &registry);
  glm::cmd::RegisterFinetuneCommand(&app, &registry);
  glm::cmd::RegisterExportCommand(&app, &registry);
  glm::cmd::RegisterImportCommand(&app, &registry);
  glm::cmd::RegisterPlotCommand(&app, &registry);
  glm::cmd::RegisterBenchCommand(&app, &registry);
  glm::cmd::RegisterBenchTrainCommand(&app, &registry);
  glm::cmd::RegisterBenchStore(&app, &registry);
  glm::cmd::RegisterBenchCorruptCommand(&app, &registry);
  glm::cmd::RegisterBenchRuntimeCommands(&app, &registry);
  glm::cmd::RegisterBenchTrainer(&app, &registry);
  glm::cmd::RegisterBenchMetricsCommand(&app, &registry);
  glm::cmd::RegisterVersionCommand(&app, &registry);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Bad flags or values: say what, and where to look.
    std::fprintf(stderr, "glm: %s\nRun '%s --help' to see the options, their defaults and variables.\n",
                 e.what(), glm::cmd::SelectedCommandPath(&app).c_str());
    return glm::cmd::kExitUsage;
  }
  return registry.RunSelected(&app);
}
