#include <cstdio>

#include "cmd/commands.h"
#include "common/cli.h"

namespace glm::cmd {

void RegisterPlannedCommand(CLI::App* app, const std::string& name, const std::string& description,
                            CommandRegistry* registry) {
  CLI::App* sub = app->add_subcommand(name, description + " [not built yet]");
  sub->allow_extras();
  registry->Add(sub, [name] {
    std::fprintf(stderr,
                 "glm %s: this command is part of glm's design but is not built yet.\n"
                 "See README.md for the commands that work today.\n",
                 name.c_str());
    return kExitUsage;
  }, [name] {
    return UnimplementedError("glm " + name + " is part of glm's design but is not built yet");
  });
}

}  // namespace glm::cmd
