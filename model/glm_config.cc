#include "model/glm_config.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace glm::model {
namespace {

struct Preset {
  const char* name;
  int64_t layers, hidden, heads, vocab, positions;
};

// GLM_SPEC.md 5.2 and the issue: paper shapes; vocabularies are the padded
// BERT (30592) and GPT-2 (50304) sizes of the released models.
constexpr Preset kPresets[] = {
    {"tiny", 2, 64, 4, 512, 128},        {"small", 4, 256, 4, 16000, 512},
    {"base", 12, 768, 12, 30592, 512},   {"large", 24, 1024, 16, 30592, 512},
    {"410m", 30, 1024, 16, 30592, 512},  {"515m", 30, 1152, 18, 30592, 512},
    {"2b", 36, 2048, 32, 50304, 1024},   {"10b", 48, 4096, 64, 50304, 1024},
};

// The ints GlmConfig reads, by JSON key.
constexpr const char* kIntKeys[] = {"num_layers", "hidden_size", "num_attention_heads", "vocab_size",
                                    "max_sequence_length"};

Status InvalidKey(const std::string& key, const std::string& what) {
  return InvalidArgumentError("config key '" + key + "': " + what);
}

StatusOr<GlmConfig> FromJsonValue(const nlohmann::json& j) {
  if (!j.is_object()) return InvalidArgumentError("model config must be a JSON object");
  GlmConfig c;
  int64_t* ints[] = {&c.num_layers, &c.hidden_size, &c.num_attention_heads, &c.vocab_size,
                     &c.max_sequence_length};
  for (size_t i = 0; i < std::size(kIntKeys); ++i) {
    auto it = j.find(kIntKeys[i]);
    if (it == j.end()) return InvalidKey(kIntKeys[i], "missing (required)");
    if (!it->is_number_integer()) return InvalidKey(kIntKeys[i], "must be an integer");
    *ints[i] = it->get<int64_t>();
  }
  auto read_double = [&](const char* key, double* out) -> Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return Status::Ok();
    if (!it->is_number()) return InvalidKey(key, "must be a number");
    *out = it->get<double>();
    return Status::Ok();
  };
  // The reference has separate embedding and output dropout; glm uses one
  // hidden dropout for both (they are equal in every released config).
  GLM_RETURN_IF_ERROR(read_double("embedding_dropout_prob", &c.hidden_dropout));
  GLM_RETURN_IF_ERROR(read_double("output_dropout_prob", &c.hidden_dropout));
  GLM_RETURN_IF_ERROR(read_double("hidden_dropout", &c.hidden_dropout));
  GLM_RETURN_IF_ERROR(read_double("attention_dropout_prob", &c.attention_dropout));
  GLM_RETURN_IF_ERROR(read_double("attention_dropout", &c.attention_dropout));
  GLM_RETURN_IF_ERROR(read_double("layernorm_epsilon", &c.layernorm_epsilon));
  GLM_RETURN_IF_ERROR(read_double("initializer_range", &c.init_std));
  if (auto it = j.find("block_position_encoding"); it != j.end() && it->is_boolean() && !it->get<bool>()) {
    return InvalidKey("block_position_encoding", "false is not supported (glm always uses 2-D positions)");
  }
  if (auto it = j.find("relative_encoding"); it != j.end() && it->is_boolean() && it->get<bool>()) {
    return InvalidKey("relative_encoding", "true is not supported");
  }
  if (auto it = j.find("attention_scale"); it != j.end() && it->is_number() && it->get<double>() != 1.0) {
    return InvalidKey("attention_scale", "only 1.0 is supported");
  }
  GLM_RETURN_IF_ERROR(c.Validate());
  return c;
}

}  // namespace

int64_t PadVocabSize(int64_t vocab) {
  return (vocab + kVocabMultiple - 1) / kVocabMultiple * kVocabMultiple;
}

Status GlmConfig::Validate() const {
  if (num_layers < 1) return InvalidKey("num_layers", "must be >= 1, got " + std::to_string(num_layers));
  if (hidden_size < 1) return InvalidKey("hidden_size", "must be >= 1, got " + std::to_string(hidden_size));
  if (num_attention_heads < 1 || hidden_size % num_attention_heads != 0) {
    return InvalidKey("num_attention_heads", "must be >= 1 and divide hidden_size " +
                                                 std::to_string(hidden_size) + ", got " +
                                                 std::to_string(num_attention_heads));
  }
  if (vocab_size < 1 || vocab_size % kVocabMultiple != 0) {
    return InvalidKey("vocab_size", "must be a positive multiple of " + std::to_string(kVocabMultiple) +
                                        " (pad the tokenizer's vocabulary, e.g. to " +
                                        std::to_string(PadVocabSize(std::max<int64_t>(vocab_size, 1))) +
                                        "), got " + std::to_string(vocab_size));
  }
  if (max_sequence_length < 1) {
    return InvalidKey("max_sequence_length", "must be >= 1, got " + std::to_string(max_sequence_length));
  }
  if (!(hidden_dropout >= 0 && hidden_dropout < 1)) return InvalidKey("hidden_dropout", "must be in [0, 1)");
  if (!(attention_dropout >= 0 && attention_dropout < 1)) {
    return InvalidKey("attention_dropout", "must be in [0, 1)");
  }
  if (!(layernorm_epsilon > 0)) return InvalidKey("layernorm_epsilon", "must be > 0");
  if (!(init_std > 0)) return InvalidKey("initializer_range", "must be > 0");
  return Status::Ok();
}

int64_t GlmConfig::NumParameters() const {
  const int64_t h = hidden_size;
  return vocab_size * h + 2 * (max_sequence_length + 1) * h + num_layers * (12 * h * h + 13 * h) + 2 * h;
}

double GlmConfig::TrainingFlops(int64_t tokens, int64_t seq_len) const {
  const double t = static_cast<double>(tokens);
  return 6.0 * static_cast<double>(NumParameters()) * t +
         12.0 * static_cast<double>(num_layers) * static_cast<double>(hidden_size) *
             static_cast<double>(seq_len) * t;
}

int64_t GlmConfig::ActivationBytesPerSample(int64_t seq_len) const {
  const int64_t s = seq_len, h = hidden_size, n = num_attention_heads;
  const int64_t per_layer = 68 * s * h + 10 * n * s * s;
  // Logits of the loss positions (about a fifth of a blank-infilling sample),
  // kept with their softmax for backward: 2 x 4 bytes per entry.
  const int64_t logits = 8 * (s / 5 + 1) * vocab_size;
  return num_layers * per_layer + 16 * s * h + logits;
}

std::vector<std::string> GlmConfig::PresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

StatusOr<GlmConfig> GlmConfig::FromPreset(const std::string& name) {
  for (const Preset& p : kPresets) {
    if (name != p.name) continue;
    GlmConfig c;
    c.num_layers = p.layers;
    c.hidden_size = p.hidden;
    c.num_attention_heads = p.heads;
    c.vocab_size = p.vocab;
    c.max_sequence_length = p.positions;
    return c;
  }
  std::string known;
  for (const Preset& p : kPresets) known += std::string(known.empty() ? "" : ", ") + p.name;
  return NotFoundError("unknown model preset '" + name + "'; known presets: " + known);
}

StatusOr<GlmConfig> GlmConfig::FromJson(const std::string& json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("model config is not valid JSON");
  return FromJsonValue(j);
}

StatusOr<GlmConfig> GlmConfig::FromJsonFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read model config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  StatusOr<GlmConfig> c = FromJson(ss.str());
  if (!c.ok()) return c.status().WithContext(path);
  return c;
}

std::string GlmConfig::ToJson() const {
  nlohmann::ordered_json j;
  j["architectures"] = {"GLMModel"};
  j["model_type"] = "glm";
  j["num_layers"] = num_layers;
  j["hidden_size"] = hidden_size;
  j["num_attention_heads"] = num_attention_heads;
  j["vocab_size"] = vocab_size;
  j["max_sequence_length"] = max_sequence_length;
  j["embedding_dropout_prob"] = hidden_dropout;
  j["attention_dropout_prob"] = attention_dropout;
  j["output_dropout_prob"] = hidden_dropout;
  j["layernorm_epsilon"] = layernorm_epsilon;
  j["initializer_range"] = init_std;
  j["block_position_encoding"] = true;
  j["relative_encoding"] = false;
  j["attention_scale"] = 1.0;
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

Status GlmConfig::WriteJsonFile(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  out << ToJson();
  out.close();
  if (!out) return InternalError("cannot write model config " + path);
  return Status::Ok();
}

std::map<std::string, std::string> GlmConfig::ToMetadata() const {
  std::ostringstream eps, hd, ad, sd;
  for (std::ostringstream* s : {&eps, &hd, &ad, &sd}) s->precision(17);
  eps << layernorm_epsilon;
  hd << hidden_dropout;
  ad << attention_dropout;
  sd << init_std;
  return {{"num_layers", std::to_string(num_layers)},
          {"hidden_size", std::to_string(hidden_size)},
          {"num_attention_heads", std::to_string(num_attention_heads)},
          {"vocab_size", std::to_string(vocab_size)},
          {"max_sequence_length", std::to_string(max_sequence_length)},
          {"layernorm_epsilon", eps.str()},
          {"hidden_dropout", hd.str()},
          {"attention_dropout", ad.str()},
          {"initializer_range", sd.str()}};
}

StatusOr<GlmConfig> GlmConfig::FromMetadata(const std::map<std::string, std::string>& metadata) {
  nlohmann::json j = nlohmann::json::object();
  for (const char* key : kIntKeys) {
    auto it = metadata.find(key);
    if (it == metadata.end()) continue;
    char* end = nullptr;
    long long v = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0') return InvalidKey(key, "metadata value '" + it->second + "' is not an integer");
    j[key] = static_cast<int64_t>(v);
  }
  for (const char* key : {"layernorm_epsilon", "hidden_dropout", "attention_dropout", "initializer_range"}) {
    auto it = metadata.find(key);
    if (it == metadata.end()) continue;
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0') return InvalidKey(key, "metadata value '" + it->second + "' is not a number");
    j[key] = v;
  }
  return FromJsonValue(j);
}

StatusOr<GlmConfig> GlmConfig::FromYamlFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return NotFoundError("cannot read model preset file " + path);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(path + ": malformed YAML: " + e.what());
  }
  if (!root.IsMap()) return InvalidArgumentError(path + ": must be a YAML mapping");
  nlohmann::json j = nlohmann::json::object();
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      bool is_int = false;
      for (const char* k : kIntKeys) is_int = is_int || key == k;
      if (is_int) {
        j[key] = kv.second.as<int64_t>();
      } else if (kv.second.IsScalar()) {
        try {
          j[key] = kv.second.as<double>();
        } catch (const YAML::Exception&) {
          j[key] = kv.second.as<std::string>();
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(path + ": " + e.what());
  }
  StatusOr<GlmConfig> c = FromJsonValue(j);
  if (!c.ok()) return c.status().WithContext(path);
  return c;
}

bool GlmConfig::operator==(const GlmConfig& o) const {
  return num_layers == o.num_layers && hidden_size == o.hidden_size &&
         num_attention_heads == o.num_attention_heads && vocab_size == o.vocab_size &&
         max_sequence_length == o.max_sequence_length && hidden_dropout == o.hidden_dropout &&
         attention_dropout == o.attention_dropout && layernorm_epsilon == o.layernorm_epsilon &&
         init_std == o.init_std;
}

}  // namespace glm::model
