#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>
#include <memory>
#include <string>

namespace glm {

Status InitLogging(std::string_view component, std::string_view level) {
  std::string level_name(level);
  if (const char* env = std::getenv("GLM_LOG_LEVEL"); env != nullptr && *env != '\0') {
    level_name = env;
  }
  spdlog::level::level_enum parsed = spdlog::level::from_str(level_name);
  // from_str maps unknown names to "off"; only accept "off" when asked for.
  if (parsed == spdlog::level::off && level_name != "off") {
    return InvalidArgumentError("unknown log level '" + level_name +
                                "'; use trace, debug, info, warn, error or off");
  }
  // Not registered: InitLogging may run again (tests) without name clashes.
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(std::string(component), std::move(sink));
  logger->set_pattern(std::string("%H:%M:%S.%e ") + std::string(component) + " %^%L%$ %v");
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

}  // namespace glm
