// CommandRegistry: runs the selected subcommand, or with --check-args its
// argument check (cmd/commands.h).
#include "cmd/commands.h"

#include <cstdio>

#include "common/cli.h"
#include "common/options.h"

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

void CommandRegistry::Add(CLI::App* command, std::function<int()> action, Check check) {
  Entry& entry = entries_[command];
  entry.action = std::move(action);
  entry.check = std::move(check);
  // No GLM_CHECK_ARGS variable: a stray one in a pod would stop every command.
  command->add_flag(
      "--check-args", entry.check_args,
      "Only check the arguments: parse them, apply GLM_* variables and --config, validate, "
      "exit 0 (OK) or 2 (the error) without starting anything");
}

void CommandRegistry::SetCheck(CLI::App* command, Check check) {
  entries_[command].check = std::move(check);
}

int CommandRegistry::RunSelected(CLI::App* root) const {
  CLI::App* app = root;
  while (!app->get_subcommands().empty()) app = app->get_subcommands().front();
  const std::string path = SelectedCommandPath(root);
  auto it = entries_.find(app);
  if (it == entries_.end() || !it->second.action) {
    std::fprintf(stderr, "%s: choose a subcommand; run '%s --help'\n", path.c_str(), path.c_str());
    return kExitUsage;
  }
  if (Status s = ApplyConfigFile(app); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), s.message().c_str());
    return kExitUsage;
  }
  const Entry& entry = it->second;
  if (!entry.check_args) return entry.action();
  if (entry.check) {
    if (Status s = entry.check(); !s.ok()) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), s.message().c_str());
      return kExitUsage;
    }
    std::printf("%s: arguments OK\n", path.c_str());
  } else {
    std::printf("%s: arguments OK (they parse; this command has no further checks)\n",
                path.c_str());
  }
  return kExitOk;
}

Status CheckEndpoint(std::string_view option, const std::string& endpoint,
                     bool allow_wildcard_port) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError(DescribeOption(option) + " '" + endpoint + "': " + why);
  };
  for (const char* scheme : {"ipc://", "inproc://"}) {
    const std::string_view s(scheme);
    if (endpoint.compare(0, s.size(), s) == 0) {
      if (endpoint.size() == s.size())
        return bad("the address after " + std::string(s) + " is empty");
      return Status::Ok();
    }
  }
  const std::string tcp = "tcp://";
  if (endpoint.compare(0, tcp.size(), tcp) != 0) {
    return bad("expected tcp://HOST:PORT (or ipc://PATH), e.g. tcp://0.0.0.0:5555");
  }
  const std::string rest = endpoint.substr(tcp.size());
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return bad("expected tcp://HOST:PORT, e.g. tcp://0.0.0.0:5555");
  const std::string port = rest.substr(colon + 1);
  if (port == "*") {
    if (allow_wildcard_port) return Status::Ok();
    return bad("a fixed port is needed here (others must know where to connect)");
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
      std::stoi(port) > 65535) {
    return bad("the port must be a number from 1 to 65535");
  }
  return Status::Ok();
}

}  // namespace glm::cmd
