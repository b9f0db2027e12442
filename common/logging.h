// Logging for every glm process: spdlog, one stderr sink, one line format.
//
//   glm::InitLogging("coordinator", "info");
//   spdlog::info("leased shard {} to {}", shard, node);
//
// Lines look like `12:01:02.345 coordinator I leased shard 3 to w1` so that
// the interleaved output of a local cluster stays readable. The level comes
// from the argument, overridden by GLM_LOG_LEVEL (trace, debug, info, warn,
// error, off).
//
// Thread-safety: InitLogging once at start, before other threads; spdlog's
// logging calls are then safe from any thread.
#ifndef GLM_COMMON_LOGGING_H_
#define GLM_COMMON_LOGGING_H_

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/status.h"

namespace glm {

// Sets the default logger's name (shown in every line), format and level.
// Returns InvalidArgument for an unknown level name.
Status InitLogging(std::string_view component, std::string_view level = "info");

}  // namespace glm

#endif  // GLM_COMMON_LOGGING_H_
