#include "model/hf_interop.h"

#include <torch/torch.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/options.h"
#include "model/safetensors.h"

namespace glm::model {
namespace {

namespace fs = std::filesystem;

using NamedTensorList = std::vector<std::pair<std::string, torch::Tensor>>;

// The glm tokenizer's files (dataloader/tokenizer.h). tokenizer.json is glm's
// metadata, not a HuggingFace `tokenizers` file, so the export renames it.
constexpr const char* kTokenizerModel = "tokenizer.model";
constexpr const char* kTokenizerMeta = "tokenizer.json";
constexpr const char* kHfTokenizerMeta = "glm_tokenizer.json";

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

StatusOr<torch::ScalarType> ParseDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float16") return torch::kFloat16;
  if (name == "bfloat16") return torch::kBFloat16;
  return InvalidArgumentError("dtype '" + name + "': use float32, float16 or bfloat16");
}

StatusOr<std::string> TorchDtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return std::string("float32");
    case torch::kFloat16:
      return std::string("float16");
    case torch::kBFloat16:
      return std::string("bfloat16");
    case torch::kFloat64:
      return std::string("float64");
    default:
      return InvalidArgumentError("tensors of dtype " + std::string(c10::toString(t)) +
                                  " cannot be exported");
  }
}

// An output directory must be new or empty: export and import never mix
// their files with someone else's.
Status PrepareOutput(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      return FailedPreconditionError(flag + " " + dir + " exists and is not a directory");
    if (!fs::is_empty(dir, ec)) {
      return FailedPreconditionError(flag + " " + dir +
                                     " is not empty; choose a new directory (nothing was written)");
    }
  }
  fs::create_directories(dir, ec);
  if (ec) return InternalError("cannot create " + dir + ": " + ec.message());
  return Status::Ok();
}

Status CopyFile(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return InternalError("cannot copy " + from.string() + " to " + to.string() + ": " +
                         ec.message());
  return Status::Ok();
}

Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return InternalError("cannot write " + path.string());
  return Status::Ok();
}

std::string ReferenceName(const std::string& name) {
  const std::string prefix = kHfPrefix;
  return name.compare(0, prefix.size(), prefix) == 0 ? name.substr(prefix.size()) : name;
}

// Orders `tensors` (reference names) as the model's parameters and checks
// names, shapes and dtypes against `config`. `where` names the source.
StatusOr<NamedTensorList> CheckTensors(const GlmConfig& config,
                                       std::map<std::string, torch::Tensor> by_name,
                                       const std::string& where) {
  NamedTensorList out;
  for (const auto& [name, shape] : ExpectedTensorShapes(config)) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return InvalidArgumentError(where + ": tensor '" + name + "' is missing (the config says " +
                                  std::to_string(config.num_layers) + " layers, hidden size " +
                                  std::to_string(config.hidden_size) + ")");
    }
    const torch::Tensor& t = it->second;
    const std::vector<int64_t> got(t.sizes().begin(), t.sizes().end());
    if (got != shape) {
      return InvalidArgumentError(where + ": tensor '" + name + "' has shape " + ShapeString(got) +
                                  ", the config needs " + ShapeString(shape));
    }
    if (!t.is_floating_point()) {
      return InvalidArgumentError(where + ": tensor '" + name + "' has dtype " +
                                  std::string(c10::toString(t.scalar_type())) +
                                  "; parameters must be floating point");
    }
    out.emplace_back(name, t);
    by_name.erase(it);
  }
  if (!by_name.empty()) {
    return InvalidArgumentError(where + ": tensor '" + by_name.begin()->first +
                                "' is not a parameter of the GLM model (" +
                                std::to_string(by_name.size()) + " unexpected tensor(s))");
  }
  return out;
}

// Adds the tensors of one safetensors file to `by_name` (reference names).
Status ReadAllTensors(const SafetensorsFile& file, std::map<std::string, torch::Tensor>* by_name) {
  for (const SafetensorsEntry& e : file.entries()) {
    const std::string name = ReferenceName(e.name);
    GLM_ASSIGN_OR_RETURN(torch::Tensor t, file.Read(e.name));
    if (!by_name->emplace(name, std::move(t)).second) {
      return InvalidArgumentError(file.path() + ": tensor '" + name +
                                  "' appears twice (with and without '" + std::string(kHfPrefix) +
                                  "', or in two shards)");
    }
  }
  return Status::Ok();
}

int64_t TensorBytes(const NamedTensorList& tensors) {
  int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel() * static_cast<int64_t>(t.element_size());
  return n;
}

std::map<std::string, std::string> WeightsMetadata(const GlmConfig& config) {
  std::map<std::string, std::string> metadata = config.ToMetadata();
  metadata["format"] = "pt";  // transformers refuses a safetensors file without it
  return metadata;
}

// The tokenizer directory to export from, or "" for none.
StatusOr<std::string> FindTokenizer(const HfExportOptions& o, const fs::path& checkpoint_dir) {
  if (o.tokenizer == "none") return std::string();
  if (!o.tokenizer.empty()) {
    if (!fs::exists(fs::path(o.tokenizer) / kTokenizerModel)) {
      return NotFoundError(
          "--tokenizer " + o.tokenizer + " has no " + kTokenizerModel +
          "; pass a glm tokenizer directory (e.g. <workdir>/tokenizer) or --tokenizer none");
    }
    return o.tokenizer;
  }
  for (const fs::path& dir :
       {checkpoint_dir, checkpoint_dir.parent_path().parent_path() / "tokenizer"}) {
    if (!dir.empty() && fs::exists(dir / kTokenizerModel)) return dir.lexically_normal().string();
  }
  return std::string();
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensorShapes(const GlmConfig& c) {
  const int64_t h = c.hidden_size, p = c.max_sequence_length + 1;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {
      {"word_embeddings.weight", {c.vocab_size, h}},
      {"transformer.position_embeddings.weight", {p, h}},
      {"transformer.block_position_embeddings.weight", {p, h}},
  };
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string l = "transformer.layers." + std::to_string(i) + ".";
    out.push_back({l + "input_layernorm.weight", {h}});
    out.push_back({l + "input_layernorm.bias", {h}});
    out.push_back({l + "attention.query_key_value.weight", {3 * h, h}});
    out.push_back({l + "attention.query_key_value.bias", {3 * h}});
    out.push_back({l + "attention.dense.weight", {h, h}});
    out.push_back({l + "attention.dense.bias", {h}});
    out.push_back({l + "post_attention_layernorm.weight", {h}});
    out.push_back({l + "post_attention_layernorm.bias", {h}});
    out.push_back({l + "mlp.dense_h_to_4h.weight", {4 * h, h}});
    out.push_back({l + "mlp.dense_h_to_4h.bias", {4 * h}});
    out.push_back({l + "mlp.dense_4h_to_h.weight", {h, 4 * h}});
    out.push_back({l + "mlp.dense_4h_to_h.bias", {h}});
  }
  out.push_back({"transformer.final_layernorm.weight", {h}});
  out.push_back({"transformer.final_layernorm.bias", {h}});
  return out;
}

std::string HfConfigJson(const GlmConfig& c, const std::string& torch_dtype) {
  const std::string repo = kHfCodeRepo;
  nlohmann::ordered_json j;
  j["architectures"] = {"GLMForConditionalGeneration"};
  j["model_type"] = "glm";
  // transformers resolves "<repo>--<module>.<class>" by fetching that module
  // from the hub repository (trust_remote_code=True).
  j["auto_map"] = {{"AutoConfig", repo + "--configuration_glm.GLMConfig"},
                   {"AutoModel", repo + "--modeling_glm.GLMModel"},
                   {"AutoModelForSeq2SeqLM", repo + "--modeling_glm.GLMForConditionalGeneration"},
                   {"AutoModelForMultipleChoice", repo + "--modeling_glm.GLMForMultipleChoice"}};
  j["num_layers"] = c.num_layers;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_attention_heads"] = c.num_attention_heads;
  j["embedding_dropout_prob"] = c.hidden_dropout;
  j["attention_dropout_prob"] = c.attention_dropout;
  j["output_dropout_prob"] = c.hidden_dropout;
  j["max_sequence_length"] = c.max_sequence_length;
  j["max_memory_length"] = 0;
  j["checkpoint_activations"] = false;
  j["checkpoint_num_layers"] = 1;
  j["parallel_output"] = true;
  j["relative_encoding"] = false;
  j["block_position_encoding"] = true;
  j["output_predict"] = true;  // logits through the tied word embeddings
  j["spell_length"] = nullptr;
  j["spell_func"] = "lstm";
  j["attention_scale"] = 1.0;
  j["initializer_range"] = c.init_std;
  j["pool_token"] = "cls";
  j["layernorm_epsilon"] = c.layernorm_epsilon;  // glm's; the HF code always uses 1e-5
  j["torch_dtype"] = torch_dtype;
  return j.dump(2) + "\n";
}

Status HfExportOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("checkpoint", checkpoint));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("output", output));
  if (!dtype.empty()) GLM_RETURN_IF_ERROR(ParseDtype(dtype).status());
  return Status::Ok();
}

Status HfImportOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("input", input));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("output", output));
  return Status::Ok();
}

StatusOr<HfExportResult> ExportHf(const HfExportOptions& o) {
  GLM_RETURN_IF_ERROR(o.Validate());
  fs::path weights = o.checkpoint;
  if (fs::is_directory(weights)) weights /= "model.safetensors";
  if (!fs::exists(weights)) {
    return NotFoundError(
        "no weights at " + weights.string() +
        "; --checkpoint takes a glm checkpoint directory (e.g. <workdir>/checkpoints/step-N) "
        "or its model.safetensors");
  }
  const fs::path checkpoint_dir = weights.parent_path();
  GLM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(weights.string()));
  GLM_ASSIGN_OR_RETURN(GlmConfig config, ResolveConfig(*file, ""));
  std::map<std::string, torch::Tensor> by_name;
  GLM_RETURN_IF_ERROR(ReadAllTensors(*file, &by_name));
  GLM_ASSIGN_OR_RETURN(NamedTensorList tensors,
                       CheckTensors(config, std::move(by_name), weights.string()));
  GLM_ASSIGN_OR_RETURN(std::string tokenizer_dir, FindTokenizer(o, checkpoint_dir));

  HfExportResult result;
  result.config = config;
  if (!o.dtype.empty()) {
    GLM_ASSIGN_OR_RETURN(torch::ScalarType target, ParseDtype(o.dtype));
    for (auto& [name, t] : tensors) t = t.to(target);
  }
  GLM_ASSIGN_OR_RETURN(result.dtype, TorchDtypeName(tensors.front().second.scalar_type()));
  for (const auto& [name, t] : tensors) {
    if (t.scalar_type() != tensors.front().second.scalar_type()) {
      return InvalidArgumentError(
          weights.string() + ": tensor '" + name +
          "' has a different dtype from the others; pass --dtype to convert all");
    }
  }
  if (config.layernorm_epsilon != 1e-5) {
    result.warnings.push_back("layernorm_epsilon is " + std::to_string(config.layernorm_epsilon) +
                              "; the HuggingFace GLM code always uses 1e-5");
  }

  GLM_RETURN_IF_ERROR(PrepareOutput(o.output, "--output"));
  const fs::path out = o.output;
  NamedTensorList hf;
  for (const auto& [name, t] : tensors) hf.emplace_back(kHfPrefix + name, t);
  GLM_RETURN_IF_ERROR(
      WriteSafetensors((out / "model.safetensors").string(), hf, WeightsMetadata(config)));
  result.files.push_back("model.safetensors");
  GLM_RETURN_IF_ERROR(WriteText(out / "config.json", HfConfigJson(config, result.dtype)));
  result.files.push_back("config.json");
  if (o.pytorch_bin) {
    c10::Dict<std::string, torch::Tensor> dict;
    for (const auto& [name, t] : hf) dict.insert(name, t.contiguous());
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
    std::ofstream bin(out / "pytorch_model.bin", std::ios::binary | std::ios::trunc);
    bin.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    bin.close();
    if (!bin) return InternalError("cannot write " + (out / "pytorch_model.bin").string());
    result.files.push_back("pytorch_model.bin");
  }
  if (!tokenizer_dir.empty()) {
    GLM_RETURN_IF_ERROR(CopyFile(fs::path(tokenizer_dir) / kTokenizerModel, out / kTokenizerModel));
    result.files.push_back(kTokenizerModel);
    if (fs::exists(fs::path(tokenizer_dir) / kTokenizerMeta)) {
      GLM_RETURN_IF_ERROR(
          CopyFile(fs::path(tokenizer_dir) / kTokenizerMeta, out / kHfTokenizerMeta));
      result.files.push_back(kHfTokenizerMeta);
    }
    result.tokenizer_from = tokenizer_dir;
  }
  result.tensors = static_cast<int64_t>(hf.size());
  result.bytes = TensorBytes(hf);
  return result;
}

StatusOr<HfImportResult> ImportHf(const HfImportOptions& o) {
  GLM_RETURN_IF_ERROR(o.Validate());
  const fs::path in = o.input;
  if (!fs::is_directory(in)) {
    return NotFoundError("--input " + o.input +
                         " is not a directory; pass a HuggingFace GLM directory (config.json + "
                         "model.safetensors)");
  }
  if (!fs::exists(in / "config.json")) {
    return NotFoundError(o.input +
                         " has no config.json; a HuggingFace GLM directory holds config.json and "
                         "model.safetensors");
  }
  GLM_ASSIGN_OR_RETURN(GlmConfig config, GlmConfig::FromJsonFile((in / "config.json").string()));

  // model.safetensors, or shards listed by model.safetensors.index.json.
  std::vector<fs::path> shards;
  if (fs::exists(in / "model.safetensors")) {
    shards.push_back(in / "model.safetensors");
  } else if (fs::exists(in / "model.safetensors.index.json")) {
    const fs::path index_path = in / "model.safetensors.index.json";
    std::ifstream index_in(index_path);
    nlohmann::json index = nlohmann::json::parse(index_in, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return DataLossError(index_path.string() +
                           ": not a safetensors index (no \"weight_map\" object)");
    }
    std::set<std::string> files;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string())
        return DataLossError(index_path.string() + ": weight_map['" + name +
                             "'] is not a file name");
      files.insert(file.get<std::string>());
    }
    for (const std::string& f : files) shards.push_back(in / f);
  } else if (fs::exists(in / "pytorch_model.bin")) {
    return UnimplementedError(
        o.input +
        " has only pytorch_model.bin; glm imports safetensors. Convert it first, e.g. "
        "python3 -c \"import torch, safetensors.torch as st; "
        "st.save_file(torch.load('pytorch_model.bin'), 'model.safetensors', {'format': 'pt'})\"");
  } else {
    return NotFoundError(o.input + " has no model.safetensors or model.safetensors.index.json");
  }
  std::map<std::string, torch::Tensor> by_name;
  for (const fs::path& shard : shards) {
    GLM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(shard.string()));
    GLM_RETURN_IF_ERROR(ReadAllTensors(*file, &by_name));
  }
  GLM_ASSIGN_OR_RETURN(NamedTensorList tensors, CheckTensors(config, std::move(by_name), o.input));

  GLM_RETURN_IF_ERROR(PrepareOutput(o.output, "--output"));
  const fs::path out = o.output;
  HfImportResult result;
  result.config = config;
  GLM_RETURN_IF_ERROR(
      WriteSafetensors((out / "model.safetensors").string(), tensors, WeightsMetadata(config)));
  result.files.push_back("model.safetensors");
  GLM_RETURN_IF_ERROR(config.WriteJsonFile((out / "config.json").string()));
  result.files.push_back("config.json");
  if (fs::exists(in / kTokenizerModel)) {
    GLM_RETURN_IF_ERROR(CopyFile(in / kTokenizerModel, out / kTokenizerModel));
    result.files.push_back(kTokenizerModel);
    if (fs::exists(in / kHfTokenizerMeta)) {
      GLM_RETURN_IF_ERROR(CopyFile(in / kHfTokenizerMeta, out / kTokenizerMeta));
      result.files.push_back(kTokenizerMeta);
    }
    result.tokenizer = true;
  }
  result.tensors = static_cast<int64_t>(tensors.size());
  result.bytes = TensorBytes(tensors);
  return result;
}

}  // namespace glm::model
