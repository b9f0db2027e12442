#include <cstdio>

#include "cmd/commands.h"
#include "common/cli.h"

namespace glm::cmd {

std::string SelectedCommandPath(const CLI::App* root) {
  std::string path = root->get_name();
  const CLI::App* app = root;
  while (true) {
    auto selected = app->get_subcommands();
    if (selected.empty()) break;
    app = selected.front();
    path += " " + app->get_name();
  }
  return path;
}

int CommandRegistry::RunSelected(CLI::App* root) const {
  CLI::App* app = root;
  while (!app->get_subcommands().empty()) app = app->get_subcommands().front();
  auto it = actions_.find(app);
  if (it == actions_.end()) {
    std::fprintf(stderr, "%s: choose a subcommand; run '%s --help'\n",
                 SelectedCommandPath(root).c_str(), SelectedCommandPath(root).c_str());
    return kExitUsage;
  }
  if (Status s = ApplyConfigFile(app); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", SelectedCommandPath(root).c_str(), s.message().c_str());
    return kExitUsage;
  }
  return it->second();
}

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
  });
}

}  // namespace glm::cmd
