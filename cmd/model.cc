// glm model info and glm forward.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cmd/model_commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "model/batch.h"
#include "model/glm_config.h"
#include "model/glm_model.h"
#include "model/loss.h"
#include "model/safetensors.h"

namespace glm::cmd {
namespace {

// --- glm model info ---

struct ModelInfoOptions {
  std::string preset = "small";  // Default: small
  std::string config;            // Default: "" = use --preset; else a config.json
  int64_t seq_len = 0;           // Default: 0 = max_sequence_length of the model

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("seq-len", seq_len, 0));
    return Status::Ok();
  }
};

int RunModelInfo(const ModelInfoOptions& options) {
  if (Status s = options.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm model info: %s\n", s.message().c_str());
    return kExitUsage;
  }
  StatusOr<model::GlmConfig> config =
      options.config.empty() ? model::GlmConfig::FromPreset(options.preset) : model::GlmConfig::FromJsonFile(options.config);
  if (!config.ok()) {
    std::fprintf(stderr, "glm model info: %s\n", config.status().message().c_str());
    return kExitUsage;
  }
  const model::GlmConfig& c = *config;
  const int64_t seq = options.seq_len > 0 ? options.seq_len : c.max_sequence_length;
  const int64_t params = c.NumParameters();
  const int64_t activations = c.ActivationBytesPerSample(seq);
  nlohmann::ordered_json j;
  j["preset"] = options.config.empty() ? options.preset : "";
  j["num_layers"] = c.num_layers;
  j["hidden_size"] = c.hidden_size;
  j["num_attention_heads"] = c.num_attention_heads;
  j["vocab_size"] = c.vocab_size;
  j["max_sequence_length"] = c.max_sequence_length;
  j["parameters"] = params;
  j["parameters_millions"] = static_cast<double>(params) / 1e6;
  j["seq_len"] = seq;
  j["weights_bytes_float32"] = 4 * params;
  j["training_state_bytes"] = c.StateBytes();
  j["activation_bytes_per_sample"] = activations;
  j["training_flops_per_token"] = c.TrainingFlops(1, seq);
  std::cout << j.dump() << std::endl;
  std::fprintf(stderr,
               "%s: %.1fM parameters; float32 training state (weights, grads, AdamW) %.2f GiB; "
               "activations ~%.1f MiB per sample of %lld tokens\n",
               options.config.empty() ? options.preset.c_str() : options.config.c_str(),
               static_cast<double>(params) / 1e6, static_cast<double>(c.StateBytes()) / (1 << 30),
               static_cast<double>(activations) / (1 << 20), static_cast<long long>(seq));
  return kExitOk;
}

// --- glm forward ---

struct ForwardOptions {
  std::string weights;          // Default: "" (required) model.safetensors
  std::string config;           // Default: "" = config.json beside the weights, or its metadata
  std::string input;            // Default: "" (required) SAMPLE.json
  std::string output;           // Default: "" (required) OUT.safetensors
  bool grads = false;           // Default: false; write grad.<name> for every parameter
  std::string dtype = "float32";  // Default: float32

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireNonEmpty("weights", weights));
    GLM_RETURN_IF_ERROR(RequireNonEmpty("input", input));
    GLM_RETURN_IF_ERROR(RequireNonEmpty("output", output));
    GLM_RETURN_IF_ERROR(RequireOneOf("dtype", dtype, {"float32", "float64"}));
    return Status::Ok();
  }
};

// Reads a 1-D or 2-D integer array field as (B, S) int64.
StatusOr<torch::Tensor> ReadMatrix(const nlohmann::json& j, const std::string& key, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return InvalidArgumentError("input has no '" + key + "'");
    return torch::Tensor();
  }
  std::vector<std::vector<int64_t>> rows;
  try {
    if (it->is_array() && !it->empty() && it->front().is_array()) {
      rows = it->get<std::vector<std::vector<int64_t>>>();
    } else {
      rows.push_back(it->get<std::vector<int64_t>>());
    }
  } catch (const nlohmann::json::exception&) {
    return InvalidArgumentError("'" + key + "' must be an array of integers or of integer arrays");
  }
  if (rows.empty() || rows[0].empty()) return InvalidArgumentError("'" + key + "' is empty");
  const auto seq = static_cast<int64_t>(rows[0].size());
  torch::Tensor t = torch::empty({static_cast<int64_t>(rows.size()), seq}, torch::kInt64);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (static_cast<int64_t>(rows[r].size()) != seq) {
      return InvalidArgumentError("'" + key + "' rows must all have the same length");
    }
    for (int64_t c = 0; c < seq; ++c) t[static_cast<int64_t>(r)][c] = rows[r][static_cast<size_t>(c)];
  }
  return t;
}

Status CheckRange(const torch::Tensor& t, const std::string& key, int64_t lo, int64_t hi) {
  const int64_t mn = t.min().item<int64_t>(), mx = t.max().item<int64_t>();
  if (mn < lo || mx > hi) {
    return InvalidArgumentError("'" + key + "' values must be in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], found " + std::to_string(mn) + ".." + std::to_string(mx));
  }
  return Status::Ok();
}

StatusOr<model::Batch> ReadSample(const std::string& path, const model::GlmConfig& c) {
  std::ifstream in(path);
  if (!in) return NotFoundError("cannot read input " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgumentError(path + ": not a JSON object");
  model::Batch b;
  GLM_ASSIGN_OR_RETURN(b.tokens, ReadMatrix(j, "tokens", true));
  GLM_ASSIGN_OR_RETURN(b.position_ids, ReadMatrix(j, "position_ids", true));
  GLM_ASSIGN_OR_RETURN(b.block_position_ids, ReadMatrix(j, "block_position_ids", true));
  GLM_ASSIGN_OR_RETURN(b.targets, ReadMatrix(j, "targets", false));
  GLM_ASSIGN_OR_RETURN(torch::Tensor loss_mask, ReadMatrix(j, "loss_mask", false));
  const int64_t rows = b.tokens.size(0), seq = b.tokens.size(1);
  for (const auto& [t, key] : {std::pair{b.position_ids, "position_ids"},
                               std::pair{b.block_position_ids, "block_position_ids"},
                               std::pair{b.targets, "targets"}, std::pair{loss_mask, "loss_mask"}}) {
    if (t.defined() && t.sizes() != b.tokens.sizes()) {
      return InvalidArgumentError(std::string("'") + key + "' must have the shape of 'tokens'");
    }
  }
  GLM_RETURN_IF_ERROR(CheckRange(b.tokens, "tokens", 0, c.vocab_size - 1));
  GLM_RETURN_IF_ERROR(CheckRange(b.position_ids, "position_ids", 0, c.max_sequence_length));
  GLM_RETURN_IF_ERROR(CheckRange(b.block_position_ids, "block_position_ids", 0, c.max_sequence_length));
  if (b.targets.defined()) GLM_RETURN_IF_ERROR(CheckRange(b.targets, "targets", 0, c.vocab_size - 1));
  auto sep = j.find("sep");
  if (sep == j.end()) return InvalidArgumentError("input has no 'sep'");
  std::vector<int64_t> seps;
  try {
    if (sep->is_array()) {
      seps = sep->get<std::vector<int64_t>>();
    } else {
      seps.assign(static_cast<size_t>(rows), sep->get<int64_t>());
    }
  } catch (const nlohmann::json::exception&) {
    return InvalidArgumentError("'sep' must be an integer or one integer per row");
  }
  if (static_cast<int64_t>(seps.size()) != rows) return InvalidArgumentError("'sep' needs one value per row");
  b.sep = torch::tensor(seps, torch::kInt64);
  GLM_RETURN_IF_ERROR(CheckRange(b.sep, "sep", 0, seq));
  if (b.targets.defined()) {
    b.loss_mask = loss_mask.defined() ? loss_mask.to(torch::kFloat32) : torch::ones({rows, seq}, torch::kFloat32);
  } else if (loss_mask.defined()) {
    return InvalidArgumentError("'loss_mask' given without 'targets'");
  }
  b.objective = torch::zeros({rows}, torch::kInt64);
  return b;
}

int RunForward(const ForwardOptions& options) {
  auto fail = [](const Status& s, int code) {
    std::fprintf(stderr, "glm forward: %s\n", s.message().c_str());
    return code;
  };
  if (Status s = options.Validate(); !s.ok()) return fail(s, kExitUsage);
  try {
    const auto dtype = options.dtype == "float64" ? torch::kFloat64 : torch::kFloat32;
    StatusOr<model::GlmModel> model = model::LoadModel(options.weights, options.config, dtype);
    if (!model.ok()) return fail(model.status(), kExitFailure);
    model::GlmModel m = *model;
    m->eval();
    StatusOr<model::Batch> batch = ReadSample(options.input, m->config());
    if (!batch.ok()) return fail(batch.status().WithContext(options.input), kExitFailure);
    if (options.grads && !batch->targets.defined()) {
      return fail(InvalidArgumentError("--grads needs 'targets' in the input (the gradient is of the loss)"),
                  kExitUsage);
    }
    std::vector<std::pair<std::string, torch::Tensor>> out;
    torch::Tensor logits = m->forward(batch->tokens, batch->position_ids, batch->block_position_ids, batch->sep);
    out.emplace_back("logits", logits.detach().to(dtype));  // (B, S, V)
    if (batch->targets.defined()) {
      model::LossOutput loss = model::LossFromLogits(logits, *batch);
      out.emplace_back("loss", loss.loss.detach().to(dtype));
      if (options.grads) {
        loss.loss.backward();
        for (const auto& p : m->named_parameters()) {
          torch::Tensor g = p.value().grad();
          out.emplace_back("grad." + p.key(), g.defined() ? g.to(dtype) : torch::zeros_like(p.value()));
        }
      }
    }
    std::map<std::string, std::string> metadata = {{"dtype", options.dtype}};
    if (Status s = model::WriteSafetensors(options.output, out, metadata); !s.ok()) return fail(s, kExitFailure);
    nlohmann::ordered_json j = {{"output", options.output},
                                {"batch", batch->tokens.size(0)},
                                {"seq_len", batch->tokens.size(1)},
                                {"dtype", options.dtype}};
    if (batch->targets.defined()) j["loss"] = out[1].second.item<double>();
    std::cout << j.dump() << std::endl;
    return kExitOk;
  } catch (const c10::Error& e) {
    return fail(InternalError(std::string("LibTorch error: ") + e.what_without_backtrace()), kExitFailure);
  }
}

}  // namespace

void RegisterModelCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* model = app->add_subcommand("model", "Model presets: parameters and memory");
  model->require_subcommand(1);
  auto info = std::make_shared<ModelInfoOptions>();
  CLI::App* sub = model->add_subcommand("info", "Parameter count and memory per sample of a preset (one JSON line)");
  AddConfigOption(sub, "");
  AddOption(sub, "preset", &info->preset,
            "Model preset: tiny, small, base, large, 410m, 515m, 2b, 10b (configs/models/)");
  AddOption(sub, "model-config", &info->config, "A config.json instead of --preset");
  AddOption(sub, "seq-len", &info->seq_len, "Sequence length for the memory estimate (0 = the model's maximum)");
  registry->Add(sub, [info] { return RunModelInfo(*info); });
}

void RegisterForwardCommand(CLI::App* app, CommandRegistry* registry) {
  auto options = std::make_shared<ForwardOptions>();
  CLI::App* sub = app->add_subcommand(
      "forward",
      "Run the model on explicit inputs (SAMPLE.json: tokens, position_ids, block_position_ids, sep, optional "
      "targets and loss_mask) and write logits, loss and optionally gradients to a safetensors file");
  AddOption(sub, "weights", &options->weights, "model.safetensors (reference parameter names)");
  // --config here is the model's config.json, not a YAML options file: once
  // parsed, its result is cleared so the generic YAML handling skips it (the
  // bound value stays).
  CLI::Option* config = sub->add_option("--config", options->config,
                                        "Model config.json (default: config.json beside the weights, else the "
                                        "weights' metadata)");
  sub->callback([config] { config->clear(); });
  AddOption(sub, "input", &options->input, "SAMPLE.json");
  AddOption(sub, "output", &options->output, "OUT.safetensors to write");
  AddFlag(sub, "grads", &options->grads, "Also write grad.<parameter name> of the loss (needs targets)");
  AddOption(sub, "dtype", &options->dtype, "float32 or float64");
  registry->Add(sub, [options] { return RunForward(*options); });
}

}  // namespace glm::cmd
