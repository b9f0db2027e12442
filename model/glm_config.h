// GlmConfig: the hyperparameters of one GLM model (GLM_SPEC.md section 3).
//
// One value struct, written into every checkpoint as config.json with the
// HuggingFace THUDM/glm keys (num_layers, hidden_size, num_attention_heads,
// vocab_size, max_sequence_length, embedding_dropout_prob,
// attention_dropout_prob, output_dropout_prob, ...), so the reference's hub
// configs load unchanged. Presets: tiny (tests), small (the CPU demo) and the
// paper's base, large, 410m, 515m, 2b, 10b; the same presets are YAML files in
// configs/models/ (a test keeps them equal).
//
// No LibTorch here: the coordinator and `glm model info` use it without
// tensors. Thread-safety: a plain value.
#ifndef GLM_MODEL_GLM_CONFIG_H_
#define GLM_MODEL_GLM_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace glm::model {

// The vocabulary is padded to a multiple of this (GLM_SPEC.md section 4).
inline constexpr int64_t kVocabMultiple = 128;

// Rounds `vocab` up to a multiple of kVocabMultiple.
int64_t PadVocabSize(int64_t vocab);

struct GlmConfig {
  int64_t num_layers = 2;           // Default: 2 (L, transformer blocks)
  int64_t hidden_size = 64;         // Default: 64 (H)
  int64_t num_attention_heads = 4;  // Default: 4 (N; H % N == 0, head size d = H / N)
  int64_t vocab_size = 512;         // Default: 512 (V, a multiple of 128; the padded vocabulary)
  int64_t max_sequence_length = 128;  // Default: 128 (P; position tables have P + 1 rows)
  double hidden_dropout = 0.1;      // Default: 0.1 (embedding and block-output dropout)
  double attention_dropout = 0.1;   // Default: 0.1 (dropout on attention probabilities)
  double layernorm_epsilon = 1e-5;  // Default: 1e-5
  double init_std = 0.02;           // Default: 0.02 (N(0, std); output projections / sqrt(2L))

  // Checks every field; the message names the JSON key.
  Status Validate() const;

  int64_t head_size() const { return hidden_size / num_attention_heads; }

  // V H + 2 (P+1) H + L (12 H^2 + 13 H) + 2 H (GLM_SPEC.md 3.6).
  int64_t NumParameters() const;

  // Model FLOPs of one training step (forward + backward) on `tokens`
  // tokens in sequences of `seq_len`: 6 * params * tokens for the matrix
  // products with the weights (the tied output projection included, the
  // embedding lookups excluded) plus 12 L H S per token for attention scores
  // and context (forward 4 L H S, backward twice that).
  double TrainingFlops(int64_t tokens, int64_t seq_len) const;

  // Estimated float32 training memory of one sample of `seq_len` tokens:
  // activations kept for backward (per layer ~ 68 S H + 10 N S^2 bytes, the
  // Megatron-LM estimate doubled for float32) plus the logits of the loss
  // positions. Parameters, gradients and AdamW state (16 bytes per parameter)
  // are reported separately by StateBytes().
  int64_t ActivationBytesPerSample(int64_t seq_len) const;
  int64_t StateBytes() const { return 16 * NumParameters(); }

  // Presets: tiny, small, base, large, 410m, 515m, 2b, 10b. NotFound names
  // the known presets.
  static StatusOr<GlmConfig> FromPreset(const std::string& name);
  static std::vector<std::string> PresetNames();

  // config.json (HuggingFace THUDM/glm keys). Unknown keys are ignored (the
  // hub files carry many); missing required keys and bad values are
  // InvalidArgument naming the key.
  static StatusOr<GlmConfig> FromJson(const std::string& json_text);
  static StatusOr<GlmConfig> FromJsonFile(const std::string& path);
  std::string ToJson() const;  // pretty-printed, newline-terminated
  Status WriteJsonFile(const std::string& path) const;

  // The same keys as flat strings (safetensors __metadata__).
  std::map<std::string, std::string> ToMetadata() const;
  static StatusOr<GlmConfig> FromMetadata(const std::map<std::string, std::string>& metadata);

  // A YAML preset file (configs/models/*.yaml): the JSON keys as YAML.
  static StatusOr<GlmConfig> FromYamlFile(const std::string& path);

  bool operator==(const GlmConfig& o) const;
  bool operator!=(const GlmConfig& o) const { return !(*this == o); }
};

}  // namespace glm::model

#endif  // GLM_MODEL_GLM_CONFIG_H_
