// Keys of the shard store (docs/store-format.md "Keys"). Deterministic and
// big-endian, so that RocksDB's bytewise order is numeric order and a range
// scan over (objective, epoch, [i0, i1)) comes out in index order.
//
//   samples:  objective (1 byte) | epoch (4 bytes BE) | index (8 bytes BE)
//   docs:     doc id (8 bytes BE)
//   meta:     "store/..." for the store's own records, "kv/" + key for the
//             generic key-value API (SampleStore::PutMeta etc.)
//
// Thread-safety: pure functions.
#ifndef GLM_STORAGE_KEYS_H_
#define GLM_STORAGE_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "schema/records.h"

namespace glm::storage {

// Names one sample: the key of family `samples`.
struct SampleKey {
  Objective objective = Objective::kBlank;
  uint32_t epoch = 0;
  uint64_t index = 0;

  bool operator==(const SampleKey& o) const {
    return objective == o.objective && epoch == o.epoch && index == o.index;
  }
};

inline SampleKey KeyOf(const Sample& s) { return {s.objective, s.epoch, s.index}; }

inline constexpr size_t kSampleKeyBytes = 13;
inline constexpr size_t kDocKeyBytes = 8;

// Meta keys of the store's own records.
inline constexpr std::string_view kMetaInfoKey = "store/info";
inline constexpr std::string_view kMetaDocIndexKey = "store/doc_index";
// Prefix of the keys of the generic key-value API.
inline constexpr std::string_view kMetaUserPrefix = "kv/";

std::string EncodeSampleKey(const SampleKey& key);
// The first key of (objective, epoch): the lower bound of its range scans.
std::string EncodeSampleKeyPrefix(Objective objective, uint32_t epoch);
// DataLoss when `bytes` is not a 13-byte sample key with objective 0..2.
StatusOr<SampleKey> DecodeSampleKey(std::string_view bytes);

std::string EncodeDocKey(uint64_t id);
StatusOr<uint64_t> DecodeDocKey(std::string_view bytes);

// Human-readable names used in every error message and tool output:
//   "samples/blank/epoch=0/index=17", "docs/id=5".
std::string DescribeSampleKey(const SampleKey& key);
std::string DescribeDocKey(uint64_t id);
// Any key of a family, for messages about raw bytes ("meta/store/info",
// "samples/<hex>" when not a valid sample key).
std::string DescribeRawKey(std::string_view family, std::string_view key);

// "blank"/"sentence"/"document" -> Objective; InvalidArgument otherwise.
StatusOr<Objective> ParseObjective(std::string_view name);

}  // namespace glm::storage

#endif  // GLM_STORAGE_KEYS_H_
