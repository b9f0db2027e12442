// The SentencePiece side of spm_shim.h. Compiled into libglm_spm_shim.so only.
#include "dataloader/spm_shim.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

void SetError(const std::string& message, char* err, size_t err_size) {
  if (err == nullptr || err_size == 0) return;
  const size_t n = std::min(message.size(), err_size - 1);
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

class SentencesIterator : public sentencepiece::SentenceIterator {
 public:
  SentencesIterator(const char* const* sentences, const size_t* sizes, size_t count)
      : sentences_(sentences), sizes_(sizes), count_(count) {
    Load();
  }
  bool done() const override { return i_ >= count_; }
  void Next() override {
    ++i_;
    Load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  void Load() {
    if (i_ < count_) value_.assign(sentences_[i_], sizes_[i_]);
  }
  const char* const* sentences_;
  const size_t* sizes_;
  size_t count_;
  size_t i_ = 0;
  std::string value_;
};

}  // namespace

extern "C" {

int glm_spm_abi(void) { return GLM_SPM_SHIM_ABI; }

void* glm_spm_load(const char* model, size_t model_size, char* err, size_t err_size) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto status = sp->LoadFromSerializedProto(std::string(model, model_size));
  if (!status.ok()) {
    SetError(status.ToString(), err, err_size);
    delete sp;
    return nullptr;
  }
  return sp;
}

void glm_spm_free(void* processor) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(processor);
}

int glm_spm_piece_size(const void* processor) {
  return static_cast<const sentencepiece::SentencePieceProcessor*>(processor)->GetPieceSize();
}

size_t glm_spm_id_to_piece(const void* processor, int id, char* buf, size_t cap) {
  const std::string& piece =
      static_cast<const sentencepiece::SentencePieceProcessor*>(processor)->IdToPiece(id);
  if (cap > 0) std::memcpy(buf, piece.data(), std::min(cap, piece.size()));
  return piece.size();
}

int glm_spm_encode(const void* processor, const char* text, size_t size, int32_t** ids,
                   size_t* count) {
  std::vector<int> out;
  auto status = static_cast<const sentencepiece::SentencePieceProcessor*>(processor)->Encode(
      std::string_view(text, size), &out);
  if (!status.ok()) return 1;
  *count = out.size();
  *ids = static_cast<int32_t*>(std::malloc(std::max<size_t>(1, out.size()) * sizeof(int32_t)));
  if (*ids == nullptr) return 2;
  for (size_t i = 0; i < out.size(); ++i) (*ids)[i] = out[i];
  return 0;
}

int glm_spm_decode(const void* processor, const int32_t* ids, size_t count, char** text,
                   size_t* size) {
  std::vector<int> in(ids, ids + count);
  std::string out;
  auto status =
      static_cast<const sentencepiece::SentencePieceProcessor*>(processor)->Decode(in, &out);
  if (!status.ok()) return 1;
  *size = out.size();
  *text = static_cast<char*>(std::malloc(std::max<size_t>(1, out.size())));
  if (*text == nullptr) return 2;
  std::memcpy(*text, out.data(), out.size());
  return 0;
}

int glm_spm_train(const char* const* keys, const char* const* values, size_t num_flags,
                  const char* const* sentences, const size_t* sizes, size_t num_sentences,
                  unsigned seed, char** model, size_t* model_size, char* err, size_t err_size) {
  std::unordered_map<std::string, std::string> args;
  for (size_t i = 0; i < num_flags; ++i) args[keys[i]] = values[i];
  sentencepiece::SetRandomGeneratorSeed(seed);
  SentencesIterator it(sentences, sizes, num_sentences);
  std::string out;
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &out);
  if (!status.ok()) {
    SetError(status.ToString(), err, err_size);
    return 1;
  }
  *model_size = out.size();
  *model = static_cast<char*>(std::malloc(std::max<size_t>(1, out.size())));
  if (*model == nullptr) return 2;
  std::memcpy(*model, out.data(), out.size());
  return 0;
}

void glm_spm_free_buffer(void* buffer) { std::free(buffer); }

}  // extern "C"
