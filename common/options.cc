#include "common/options.h"

#include <sstream>

#include "common/config.h"

namespace glm {

std::string DescribeOption(std::string_view name) {
  std::string key(name);
  for (char& c : key) {
    if (c == '-') c = '_';
  }
  return "--" + std::string(name) + " (" + EnvNameFor(name) + ", YAML key " + key + ")";
}

Status RequireAtLeast(std::string_view name, int64_t value, int64_t minimum) {
  if (value >= minimum) return Status::Ok();
  std::ostringstream os;
  os << "invalid " << name << " = " << value << ": it must be at least " << minimum
     << "; set " << DescribeOption(name);
  return InvalidArgumentError(os.str());
}

Status RequireInRange(std::string_view name, double value, double lo, double hi) {
  if (value >= lo && value <= hi) return Status::Ok();
  std::ostringstream os;
  os << "invalid " << name << " = " << value << ": it must be in [" << lo << ", " << hi
     << "]; set " << DescribeOption(name);
  return InvalidArgumentError(os.str());
}

Status RequireOneOf(std::string_view name, std::string_view value,
                    std::initializer_list<std::string_view> allowed) {
  for (std::string_view a : allowed) {
    if (a == value) return Status::Ok();
  }
  std::ostringstream os;
  os << "invalid " << name << " = '" << value << "': it must be one of";
  for (std::string_view a : allowed) os << " " << a;
  os << "; set " << DescribeOption(name);
  return InvalidArgumentError(os.str());
}

Status RequireNonEmpty(std::string_view name, std::string_view value) {
  if (!value.empty()) return Status::Ok();
  return InvalidArgumentError("missing " + std::string(name) + "; set " + DescribeOption(name));
}

}  // namespace glm
