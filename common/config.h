// Config files: YAML, flattened to option names, read by the CLI.
//
// A glm config is a YAML mapping. Nested mappings flatten with '-', and '_'
// reads as '-', so
//
//   model:
//     preset: small
//   max_steps: 300
//
// sets the options `--model-preset` and `--max-steps`. Precedence, highest
// first: a flag on the command line, its GLM_* environment variable
// (`--max-steps` <-> GLM_MAX_STEPS), the config file, the built-in default.
//
// Thread-safety: pure functions.
#ifndef GLM_COMMON_CONFIG_H_
#define GLM_COMMON_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace glm {

struct ConfigEntry {
  std::string key;                  // flattened option name, e.g. "model-preset"
  std::vector<std::string> values;  // one for a scalar, several for a sequence
};

// Parses YAML text; `source` names it in error messages (usually the path).
StatusOr<std::vector<ConfigEntry>> ParseYamlConfig(std::string_view text, std::string_view source);

// Reads and parses a YAML file. NotFound if it does not exist.
StatusOr<std::vector<ConfigEntry>> LoadYamlConfig(const std::string& path);

// "max-steps" -> "GLM_MAX_STEPS".
std::string EnvNameFor(std::string_view option_name);

}  // namespace glm

#endif  // GLM_COMMON_CONFIG_H_
