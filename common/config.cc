#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <sstream>

namespace glm {
namespace {

std::string NormaliseKey(std::string key) {
  for (char& c : key) {
    if (c == '_') c = '-';
  }
  return key;
}

Status Flatten(const YAML::Node& node, const std::string& prefix, std::string_view source,
               std::vector<ConfigEntry>* out) {
  for (const auto& item : node) {
    if (!item.first.IsScalar()) {
      return InvalidArgumentError(std::string(source) + ": a key under '" + prefix +
                                  "' is not a plain name");
    }
    std::string key = NormaliseKey(item.first.as<std::string>());
    if (!prefix.empty()) key = prefix + "-" + key;
    const YAML::Node& value = item.second;
    switch (value.Type()) {
      case YAML::NodeType::Map:
        GLM_RETURN_IF_ERROR(Flatten(value, key, source, out));
        break;
      case YAML::NodeType::Sequence: {
        ConfigEntry entry{key, {}};
        for (const auto& element : value) {
          if (!element.IsScalar()) {
            return InvalidArgumentError(std::string(source) + ": '" + key +
                                        "' must be a list of plain values");
          }
          entry.values.push_back(element.as<std::string>());
        }
        out->push_back(std::move(entry));
        break;
      }
      case YAML::NodeType::Scalar:
        out->push_back({key, {value.as<std::string>()}});
        break;
      case YAML::NodeType::Null:
        break;  // `key:` with nothing: leave the default
      default:
        return InvalidArgumentError(std::string(source) + ": '" + key + "' has no value");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<ConfigEntry>> ParseYamlConfig(std::string_view text, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    std::ostringstream os;
    os << source << ":" << (e.mark.line + 1) << ":" << (e.mark.column + 1)
       << ": not valid YAML: " << e.msg;
    return InvalidArgumentError(os.str());
  }
  std::vector<ConfigEntry> entries;
  if (root.IsNull()) return entries;  // an empty file is an empty config
  if (!root.IsMap()) {
    return InvalidArgumentError(std::string(source) +
                                ": a glm config must be a YAML mapping of option: value");
  }
  GLM_RETURN_IF_ERROR(Flatten(root, "", source, &entries));
  return entries;
}

StatusOr<std::vector<ConfigEntry>> LoadYamlConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot open config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return ParseYamlConfig(text.str(), path);
}

std::string EnvNameFor(std::string_view option_name) {
  std::string env = "GLM_";
  for (char c : option_name) {
    env += (c == '-' || c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return env;
}

}  // namespace glm
