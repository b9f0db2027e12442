// Helpers for the Options + Validate() pattern.
//
// Every component takes a `FooOptions` value struct whose fields have in-class
// defaults and a `Default:` comment, and whose `Status Validate() const`
// rejects bad values with a message that names the option the way the user
// wrote it (the YAML key, which is also the flag and the GLM_* variable):
//
//   Status PretrainOptions::Validate() const {
//     GLM_RETURN_IF_ERROR(RequireAtLeast("max-steps", max_steps, 1));
//     GLM_RETURN_IF_ERROR(RequireOneOf("objective", objective, {"blank", "sentence"}));
//     return Status::Ok();
//   }
#ifndef GLM_COMMON_OPTIONS_H_
#define GLM_COMMON_OPTIONS_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/status.h"

namespace glm {

// "--max-steps (GLM_MAX_STEPS, YAML key max_steps)": how a user sets option `name`.
std::string DescribeOption(std::string_view name);

Status RequireAtLeast(std::string_view name, int64_t value, int64_t minimum);
Status RequireInRange(std::string_view name, double value, double lo, double hi);
Status RequireOneOf(std::string_view name, std::string_view value,
                    std::initializer_list<std::string_view> allowed);
Status RequireNonEmpty(std::string_view name, std::string_view value);

}  // namespace glm

#endif  // GLM_COMMON_OPTIONS_H_
