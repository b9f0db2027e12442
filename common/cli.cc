#include "common/cli.h"

namespace glm {

CLI::Option* AddFlag(CLI::App* app, const std::string& name, bool* value,
                     const std::string& help) {
  return app->add_flag("--" + name, *value, help)->envname(EnvNameFor(name))->capture_default_str();
}

void AddConfigOption(CLI::App* app, const std::string& default_path) {
  app->add_option("--config", "YAML config file; flags and GLM_* variables override its values")
      ->envname("GLM_CONFIG")
      ->default_str(default_path)
      ->option_text(default_path.empty() ? "FILE" : "FILE [" + default_path + "]");
}

Status ApplyConfigFile(CLI::App* app) {
  CLI::Option* config = app->get_option_no_throw("--config");
  if (config == nullptr) return Status::Ok();
  std::string path = config->count() > 0 ? config->as<std::string>() : config->get_default_str();
  if (path.empty()) return Status::Ok();
  GLM_ASSIGN_OR_RETURN(std::vector<ConfigEntry> entries, LoadYamlConfig(path));
  for (ConfigEntry& entry : entries) {
    CLI::Option* opt = app->get_option_no_throw("--" + entry.key);
    if (opt == nullptr || entry.key == "config" || entry.key == "help") {
      return InvalidArgumentError(path + ": unknown key '" + entry.key + "' for '" +
                                  app->get_name() + "'; run with --help to see the options");
    }
    if (opt->count() > 0) continue;  // a flag or GLM_* variable already set it
    try {
      opt->add_result(entry.values);
      opt->run_callback();
    } catch (const CLI::ParseError& e) {
      return InvalidArgumentError(path + ": bad value for '" + entry.key + "': " + e.what());
    }
  }
  return Status::Ok();
}

}  // namespace glm
