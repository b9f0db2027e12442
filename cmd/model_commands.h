// The model commands of the glm binary (cmd/model.cc, cmd/bench_train.cc):
//
//   glm model info --preset P        parameters and memory of a preset
//   glm forward --weights W ...      the model on explicit inputs (golden tests, interop)
//   glm bench train --preset P ...   training-step speed: tokens/s, GFLOP/s, MFU
#ifndef GLM_CMD_MODEL_COMMANDS_H_
#define GLM_CMD_MODEL_COMMANDS_H_

#include <CLI/CLI.hpp>

#include "cmd/commands.h"

namespace glm::cmd {

void RegisterModelCommand(CLI::App* app, CommandRegistry* registry);
void RegisterForwardCommand(CLI::App* app, CommandRegistry* registry);
// Adds "train" under the existing "bench" subcommand: call after RegisterBenchCommand.
void RegisterBenchTrainCommand(CLI::App* app, CommandRegistry* registry);

}  // namespace glm::cmd

#endif  // GLM_CMD_MODEL_COMMANDS_H_
