// safetensors files (https://github.com/huggingface/safetensors), our own
// small reader and writer, and whole-model checkpoints with the reference
// parameter names. Byte layout (docs/checkpoint-format.md):
//
//   [8 bytes] N, little-endian uint64: length of the header
//   [N bytes] UTF-8 JSON object: {"<name>": {"dtype": "F32", "shape": [..],
//             "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
//   [rest]    raw little-endian tensor data; offsets are relative to the
//             start of this section
//
// Reading maps the file (mmap) and validates the whole header before any
// tensor is touched: a truncated, corrupt or inconsistent file is a DataLoss
// Status naming the tensor, never a crash.
//
// Thread-safety: a SafetensorsFile is immutable after Open and may be read
// from several threads; the model functions need external synchronisation
// of the model.
#ifndef GLM_MODEL_SAFETENSORS_H_
#define GLM_MODEL_SAFETENSORS_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "model/glm_config.h"
#include "model/glm_model.h"

namespace glm::model {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // "F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"
  std::vector<int64_t> shape;
  uint64_t begin = 0;          // byte offsets in the data section
  uint64_t end = 0;
};

// A read-only, memory-mapped safetensors file.
class SafetensorsFile {
 public:
  // NotFound if the file cannot be opened; DataLoss for a bad header.
  static StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // In header order.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* Find(const std::string& name) const;

  // A CPU tensor holding a copy of the named tensor. NotFound if absent.
  StatusOr<torch::Tensor> Read(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;  // start of the data section (inside the mapping)
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsEntry> entries_;
};

// Writes `tensors` (any order; names unique) with `metadata`, atomically
// (a temporary file renamed into place). Tensors are written contiguous, in
// their own dtype, from the CPU.
Status WriteSafetensors(const std::string& path,
                        const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                        const std::map<std::string, std::string>& metadata = {});

// --- Whole models ---

// Writes <dir>/model.safetensors (reference names, the model's dtype, the
// config in __metadata__ plus "format": "pt") and <dir>/config.json.
// Creates `dir` if needed.
Status SaveModel(GlmModel& model, const std::string& dir);

// The config for a weights file: `config_path` if non-empty, else
// config.json beside the weights, else the file's __metadata__ keys.
StatusOr<GlmConfig> ResolveConfig(const SafetensorsFile& file, const std::string& config_path);

// Copies every parameter from `file` into `model` (converting floating
// dtypes to the model's). Names may carry a "glm." prefix. Refuses, naming
// the tensor: a missing parameter, an extra tensor, a shape mismatch, a
// non-floating dtype.
Status LoadParameters(const SafetensorsFile& file, GlmModel& model);

// Opens `weights_path`, resolves the config and builds the model with
// parameters of `dtype` (converted from the file's floating dtype once).
StatusOr<GlmModel> LoadModel(const std::string& weights_path, const std::string& config_path = "",
                             torch::ScalarType dtype = torch::kFloat32);

}  // namespace glm::model

#endif  // GLM_MODEL_SAFETENSORS_H_
