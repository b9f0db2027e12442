// glm keys generate: CURVE key pairs and the allow-list for a cluster.
#include <cstdio>

#include "cmd/commands.h"
#include "common/cli.h"
#include "transport/keys.h"

namespace glm::cmd {

void RegisterKeysCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* keys = app->add_subcommand("keys", "Generate CURVE key pairs for a cluster");
  keys->require_subcommand(1);
  struct Options {
    std::string output = "keys";
    bool overwrite = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* gen = keys->add_subcommand(
      "generate", "Write server.pub/.secret, client.pub/.secret and allowed_clients into a directory");
  AddOption(gen, "output", &o->output, "Directory to write the keys into");
  AddFlag(gen, "overwrite", &o->overwrite, "Replace keys already there");
  registry->Add(gen, [o] {
    Status s = transport::GenerateClusterKeys(o->output, o->overwrite);
    if (!s.ok()) {
      std::fprintf(stderr, "glm keys generate: %s\n", s.message().c_str());
      return s.code() == StatusCode::kAlreadyExists ? kExitUsage : kExitFailure;
    }
    std::printf("wrote cluster keys to %s (give the coordinator server.* and allowed_clients; workers "
                "server.pub and client.*)\n",
                o->output.c_str());
    return kExitOk;
  }, [o] { return o->output.empty() ? InvalidArgumentError("--output: the keys directory is empty") : Status::Ok(); });
}

}  // namespace glm::cmd
