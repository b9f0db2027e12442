// SentencePiece through libglm_spm_shim.so (see spm_shim.h for why it is
// loaded in a private symbol scope). The shim is found, in order, at
// $GLM_SPM_SHIM, next to the running executable, at the path of the build
// that produced this library, and on the default library path.
//
// Thread-safety: SpmProcessor's const methods may be called concurrently;
// loading the shim happens once per process (guarded).
#ifndef GLM_DATALOADER_SPM_LIBRARY_H_
#define GLM_DATALOADER_SPM_LIBRARY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace glm::dataloader {

struct SpmApi;  // the shim's function table

// A loaded SentencePiece model.
class SpmProcessor {
 public:
  static StatusOr<std::unique_ptr<SpmProcessor>> Load(std::string_view serialized_model);
  ~SpmProcessor();

  int32_t piece_size() const;
  std::string IdToPiece(int32_t id) const;
  // Appends the ids of `text` to *ids.
  void Encode(std::string_view text, std::vector<int32_t>* ids) const;
  std::string Decode(const std::vector<int32_t>& ids) const;

 private:
  SpmProcessor(const SpmApi* api, void* handle) : api_(api), handle_(handle) {}
  const SpmApi* api_;
  void* handle_;
};

// Trains a model; returns the serialized ModelProto.
StatusOr<std::string> SpmTrain(const std::vector<std::pair<std::string, std::string>>& flags,
                               const std::vector<std::string>& sentences, unsigned seed);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_SPM_LIBRARY_H_
