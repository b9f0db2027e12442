#include "dataloader/spm_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "dataloader/spm_shim.h"

namespace glm::dataloader {

struct SpmApi {
  decltype(&glm_spm_abi) abi;
  decltype(&glm_spm_load) load;
  decltype(&glm_spm_free) free_processor;
  decltype(&glm_spm_piece_size) piece_size;
  decltype(&glm_spm_id_to_piece) id_to_piece;
  decltype(&glm_spm_encode) encode;
  decltype(&glm_spm_decode) decode;
  decltype(&glm_spm_train) train;
  decltype(&glm_spm_free_buffer) free_buffer;
};

namespace {

constexpr const char* kShimName = "libglm_spm_shim.so";

std::string ExecutableDir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

StatusOr<const SpmApi*> LoadApi() {
  static std::once_flag once;
  static SpmApi api;
  static Status status;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("GLM_SPM_SHIM"); env != nullptr && *env != '\0') {
      candidates.push_back(env);
    }
    const std::string exe_dir = ExecutableDir();
    if (!exe_dir.empty()) candidates.push_back(exe_dir + "/" + kShimName);
#ifdef GLM_SPM_SHIM_PATH
    candidates.push_back(GLM_SPM_SHIM_PATH);
#endif
    candidates.push_back(kShimName);
    void* lib = nullptr;
    std::string errors;
    for (const std::string& path : candidates) {
      // RTLD_DEEPBIND: SentencePiece and its embedded protobuf resolve to
      // themselves, not to LibTorch's libprotobuf (spm_shim.h).
      lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (lib != nullptr) break;
      const char* e = ::dlerror();
      errors += "\n  " + path + ": " + (e ? e : "not loadable");
    }
    if (lib == nullptr) {
      status = FailedPreconditionError(
          std::string("cannot load the SentencePiece shim ") + kShimName + ":" + errors +
          "\nHINT: build it (cmake --build build --target glm_spm_shim), keep it next to the glm "
          "binary, or set GLM_SPM_SHIM to its path");
      return;
    }
    auto sym = [&](const char* name) { return ::dlsym(lib, name); };
    api.abi = reinterpret_cast<decltype(api.abi)>(sym("glm_spm_abi"));
    api.load = reinterpret_cast<decltype(api.load)>(sym("glm_spm_load"));
    api.free_processor = reinterpret_cast<decltype(api.free_processor)>(sym("glm_spm_free"));
    api.piece_size = reinterpret_cast<decltype(api.piece_size)>(sym("glm_spm_piece_size"));
    api.id_to_piece = reinterpret_cast<decltype(api.id_to_piece)>(sym("glm_spm_id_to_piece"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("glm_spm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(sym("glm_spm_decode"));
    api.train = reinterpret_cast<decltype(api.train)>(sym("glm_spm_train"));
    api.free_buffer = reinterpret_cast<decltype(api.free_buffer)>(sym("glm_spm_free_buffer"));
    if (!api.abi || !api.load || !api.free_processor || !api.piece_size || !api.id_to_piece ||
        !api.encode || !api.decode || !api.train || !api.free_buffer ||
        api.abi() != GLM_SPM_SHIM_ABI) {
      status = FailedPreconditionError(std::string(kShimName) +
                                       " is from another glm version (rebuild it)");
    }
  });
  if (!status.ok()) return status;
  return &api;
}

}  // namespace

StatusOr<std::unique_ptr<SpmProcessor>> SpmProcessor::Load(std::string_view serialized_model) {
  GLM_ASSIGN_OR_RETURN(const SpmApi* api, LoadApi());
  char err[512] = {0};
  void* handle = api->load(serialized_model.data(), serialized_model.size(), err, sizeof(err));
  if (handle == nullptr) return DataLossError(std::string("not a SentencePiece model: ") + err);
  return std::unique_ptr<SpmProcessor>(new SpmProcessor(api, handle));
}

SpmProcessor::~SpmProcessor() { api_->free_processor(handle_); }

int32_t SpmProcessor::piece_size() const { return api_->piece_size(handle_); }

std::string SpmProcessor::IdToPiece(int32_t id) const {
  char buf[256];
  const size_t n = api_->id_to_piece(handle_, id, buf, sizeof(buf));
  if (n <= sizeof(buf)) return std::string(buf, n);
  std::string piece(n, '\0');
  api_->id_to_piece(handle_, id, piece.data(), n);
  return piece;
}

void SpmProcessor::Encode(std::string_view text, std::vector<int32_t>* ids) const {
  int32_t* out = nullptr;
  size_t count = 0;
  if (api_->encode(handle_, text.data(), text.size(), &out, &count) != 0) return;
  ids->insert(ids->end(), out, out + count);
  api_->free_buffer(out);
}

std::string SpmProcessor::Decode(const std::vector<int32_t>& ids) const {
  char* out = nullptr;
  size_t size = 0;
  if (api_->decode(handle_, ids.data(), ids.size(), &out, &size) != 0) return "";
  std::string text(out, size);
  api_->free_buffer(out);
  return text;
}

StatusOr<std::string> SpmTrain(const std::vector<std::pair<std::string, std::string>>& flags,
                               const std::vector<std::string>& sentences, unsigned seed) {
  GLM_ASSIGN_OR_RETURN(const SpmApi* api, LoadApi());
  std::vector<const char*> keys, values, texts;
  std::vector<size_t> sizes;
  for (const auto& [k, v] : flags) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  for (const std::string& s : sentences) {
    texts.push_back(s.data());
    sizes.push_back(s.size());
  }
  char* model = nullptr;
  size_t model_size = 0;
  char err[1024] = {0};
  if (api->train(keys.data(), values.data(), keys.size(), texts.data(), sizes.data(), texts.size(),
                 seed, &model, &model_size, err, sizeof(err)) != 0) {
    return InvalidArgumentError(std::string("SentencePiece training failed: ") + err);
  }
  std::string out(model, model_size);
  api->free_buffer(model);
  return out;
}

}  // namespace glm::dataloader
