// A C interface to SentencePiece, built as its own shared library
// (libglm_spm_shim.so) and loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND).
//
// Why: Debian's libsentencepiece embeds (and exports) its own copy of
// protobuf-lite 3.14, while LibTorch loads libprotobuf 3.21. Linked into one
// process, the two copies interpose each other's symbols and the process
// crashes in a static initialiser before main(). Loading SentencePiece in a
// private symbol scope keeps the copies apart. Only plain C types cross the
// boundary; buffers the shim allocates are released with glm_spm_free_buffer.
//
// Thread-safety: a processor may be used by many threads at once for
// encode/decode/piece lookups; training is reentrant.
#ifndef GLM_DATALOADER_SPM_SHIM_H_
#define GLM_DATALOADER_SPM_SHIM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GLM_SPM_SHIM_ABI 1

// Returns GLM_SPM_SHIM_ABI.
int glm_spm_abi(void);

// Loads a serialized model; NULL on error (message in err).
void* glm_spm_load(const char* model, size_t model_size, char* err, size_t err_size);
void glm_spm_free(void* processor);
int glm_spm_piece_size(const void* processor);
// Copies piece `id` into buf (truncated to cap) and returns its full length.
size_t glm_spm_id_to_piece(const void* processor, int id, char* buf, size_t cap);
// Encodes text; *ids is a malloc'd array of *count ids. 0 on success.
int glm_spm_encode(const void* processor, const char* text, size_t size, int32_t** ids,
                   size_t* count);
// Decodes ids; *text is a malloc'd buffer of *size bytes. 0 on success.
int glm_spm_decode(const void* processor, const int32_t* ids, size_t count, char** text,
                   size_t* size);
// Trains on `num_sentences` sentences with SentencePiece flags given as
// key/value pairs (keys[i] = values[i]). *model is a malloc'd serialized
// model. 0 on success, else message in err.
int glm_spm_train(const char* const* keys, const char* const* values, size_t num_flags,
                  const char* const* sentences, const size_t* sizes, size_t num_sentences,
                  unsigned seed, char** model, size_t* model_size, char* err, size_t err_size);
void glm_spm_free_buffer(void* buffer);

#ifdef __cplusplus
}
#endif

#endif  // GLM_DATALOADER_SPM_SHIM_H_
