// CLI11 glue: each option declared once, with its help, default, GLM_* env
// variable and YAML key, and a YAML `--config` file for any subcommand.
//
//   int64_t steps = 300;
//   AddOption(sub, "max-steps", &steps, "optimizer steps to run");
//   AddConfigOption(sub, "configs/default.yaml");
//   ... app.parse(argc, argv); ...
//   Status s = ApplyConfigFile(leaf_subcommand);
//
// gives `--max-steps` (help shows "[300]" and "(Env:GLM_MAX_STEPS)"), read
// from `max_steps:` in the YAML file named by `--config`. Precedence, highest
// first: flag, GLM_* variable, config file, built-in default.
//
// Thread-safety: use from the main thread while building and parsing the CLI.
#ifndef GLM_COMMON_CLI_H_
#define GLM_COMMON_CLI_H_

#include <CLI/CLI.hpp>

#include <string>

#include "common/config.h"
#include "common/status.h"

namespace glm {

// Adds `--name` bound to *value, with its default captured into the help and
// GLM_<NAME> as its environment variable.
template <typename T>
CLI::Option* AddOption(CLI::App* app, const std::string& name, T* value, const std::string& help) {
  return app->add_option("--" + name, *value, help)
      ->envname(EnvNameFor(name))
      ->capture_default_str();
}

// Adds a boolean `--name` flag with GLM_<NAME>.
CLI::Option* AddFlag(CLI::App* app, const std::string& name, bool* value, const std::string& help);

// Adds `--config FILE` (GLM_CONFIG). An empty default means no file unless
// one is given.
void AddConfigOption(CLI::App* app, const std::string& default_path);

// After parsing: if `app` has a --config file, sets every option the file
// names that was not given as a flag or GLM_* variable. InvalidArgument for
// an unknown key, a bad value or malformed YAML; NotFound for a missing file.
Status ApplyConfigFile(CLI::App* app);

}  // namespace glm

#endif  // GLM_COMMON_CLI_H_
