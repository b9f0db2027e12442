// HuggingFace interop: a glm model checkpoint <-> a directory that the
// THUDM/glm modeling code on the HuggingFace hub (THUDM/glm-large,
// glm-10b, ...: configuration_glm.py, modeling_glm.py) loads.
//
// The two layouts hold the same tensors with the same shapes, dtypes and
// bytes; only names and the config file differ (docs/interop.md):
//
//   glm checkpoint (model/safetensors.h)     HuggingFace directory
//   model.safetensors                         model.safetensors
//     word_embeddings.weight                    glm.word_embeddings.weight
//     transformer.layers.0....                  glm.transformer.layers.0....
//     __metadata__: format=pt + GlmConfig        __metadata__: format=pt + GlmConfig
//   config.json (GlmConfig::ToJson)           config.json: GLMConfig's keys, auto_map
//   tokenizer.model, tokenizer.json           tokenizer.model, glm_tokenizer.json
//                                             pytorch_model.bin (optional)
//
// "glm." is GLMPreTrainedModel.base_model_prefix: GLMForConditionalGeneration
// and GLMForMultipleChoice hold the GLMModel as `self.glm`, and AutoModel
// (GLMModel) strips the prefix when loading. Export never changes a value:
// the tensors are copied byte for byte (unless a dtype is asked for), so
// export followed by import gives bit-identical tensors and an equal config.
//
// Thread-safety: the functions are reentrant; they share no state.
#ifndef GLM_MODEL_HF_INTEROP_H_
#define GLM_MODEL_HF_INTEROP_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "model/glm_config.h"

namespace glm::model {

// The parameter-name prefix of the HuggingFace GLM wrappers.
inline constexpr const char* kHfPrefix = "glm.";
// The hub repository whose configuration_glm.py / modeling_glm.py the
// exported config.json's auto_map names ("<repo>--<module>.<class>").
inline constexpr const char* kHfCodeRepo = "THUDM/glm-large";

// Every parameter of `config`'s model with its shape, reference names (no
// prefix), in the reference order (= ParameterNames(config)).
std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensorShapes(
    const GlmConfig& config);

// config.json for the HuggingFace GLM code: GLMConfig's keys (num_layers,
// vocab_size, hidden_size, num_attention_heads, embedding_dropout_prob,
// attention_dropout_prob, output_dropout_prob, max_sequence_length,
// checkpoint_activations, checkpoint_num_layers, parallel_output,
// relative_encoding, block_position_encoding, output_predict, spell_length,
// spell_func, attention_scale, initializer_range, pool_token), plus
// architectures, model_type "glm", auto_map, torch_dtype and glm's
// layernorm_epsilon. GlmConfig::FromJson reads it back to an equal config.
// `torch_dtype`: "float32", "float16" or "bfloat16".
std::string HfConfigJson(const GlmConfig& config, const std::string& torch_dtype);

struct HfExportOptions {
  // Default: "" (required). A glm checkpoint directory (model.safetensors and
  // config.json, e.g. <workdir>/checkpoints/step-N) or a .safetensors file.
  std::string checkpoint;
  // Default: "" (required). Created; must not exist or be empty.
  std::string output;
  // Default: "" = the checkpoint directory if it holds tokenizer.model, else
  // <checkpoint>/../../tokenizer (a pretrain workdir's tokenizer), else none.
  // "none" exports no tokenizer.
  std::string tokenizer;
  // Default: "" = keep the checkpoint's dtype. Else float32, float16 or
  // bfloat16 (converted; the round trip is then exact only for float32).
  std::string dtype;
  // Default: false. Also write pytorch_model.bin (torch::pickle_save of a
  // {name: tensor} dict, the zip format torch.load reads).
  bool pytorch_bin = false;

  Status Validate() const;
};

struct HfExportResult {
  GlmConfig config;
  std::string dtype;  // torch_dtype written
  int64_t tensors = 0;
  int64_t bytes = 0;                  // tensor bytes written to model.safetensors
  std::string tokenizer_from;         // directory the tokenizer was copied from; "" if none
  std::vector<std::string> files;     // files written, relative to the output directory
  std::vector<std::string> warnings;  // e.g. a layernorm_epsilon the HF code ignores
};

// Writes the HuggingFace directory. Refuses, naming the file or tensor: no
// weights, a config glm cannot read, a missing/extra/misshapen tensor, an
// output directory that is not empty.
StatusOr<HfExportResult> ExportHf(const HfExportOptions& options);

struct HfImportOptions {
  // Default: "" (required). A HuggingFace GLM directory: config.json and
  // model.safetensors or model.safetensors.index.json (+ shards).
  std::string input;
  // Default: "" (required). The glm checkpoint directory to write; created;
  // must not exist or be empty.
  std::string output;

  Status Validate() const;
};

struct HfImportResult {
  GlmConfig config;
  int64_t tensors = 0;
  int64_t bytes = 0;
  bool tokenizer = false;          // tokenizer.model (+ tokenizer.json) written
  std::vector<std::string> files;  // relative to the output directory
};

// Reads a HuggingFace GLM directory into the glm checkpoint layout
// (model.safetensors with reference names and the GlmConfig in __metadata__,
// config.json; the tokenizer files if the input has them). Names may carry
// the "glm." prefix or not (a bare GLMModel's save_pretrained). Refuses,
// naming the key or tensor: a config glm cannot run (relative_encoding,
// attention_scale != 1, ...), a missing/extra/duplicated/misshapen tensor, a
// non-floating dtype.
StatusOr<HfImportResult> ImportHf(const HfImportOptions& options);

}  // namespace glm::model

#endif  // GLM_MODEL_HF_INTEROP_H_
