// Content hashes used to name what produced a sample: the tokenizer hash, the
// corpus manifest hash and the per-sample RNG keys are all built from these.
// The definitions are part of glm's formats (docs/data-pipeline.md): changing
// them changes every sample, so they never change.
//
// Thread-safety: pure functions.
#ifndef GLM_DATALOADER_HASH_H_
#define GLM_DATALOADER_HASH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace glm::dataloader {

// SplitMix64's finaliser: a bijective 64-bit mixer.
constexpr uint64_t Mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Order-sensitive combination of two hashes.
constexpr uint64_t HashCombine(uint64_t a, uint64_t b) { return Mix64(a ^ Mix64(b)); }

// Streaming content hash: FNV-1a 64 over the bytes, finished with Mix64 and
// the byte count. Hash64(s) == Hasher().Update(s).Finish().
class Hasher {
 public:
  Hasher& Update(const void* data, size_t size);
  Hasher& Update(std::string_view bytes) { return Update(bytes.data(), bytes.size()); }
  // Little-endian 8 bytes.
  Hasher& UpdateU64(uint64_t v);
  uint64_t Finish() const { return Mix64(state_ ^ Mix64(length_)); }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;  // FNV-1a offset basis
  uint64_t length_ = 0;
};

inline uint64_t Hash64(std::string_view bytes) { return Hasher().Update(bytes).Finish(); }

// 16 lower-case hex digits, the form hashes take in JSON and file names.
std::string HashToHex(uint64_t hash);
// Parses HashToHex's output; InvalidArgument otherwise.
StatusOr<uint64_t> HashFromHex(std::string_view hex);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_HASH_H_
