// Cap'n Proto's standard packed encoding ("packing", capnproto.org/encoding.html)
// of a run of 8-byte words, written and read about 2x faster than
// capnp::writePackedMessage / PackedMessageReader of Cap'n Proto 0.9, which
// move one byte at a time (measured per CPU-second on a 512-token
// SampleRecord: pack 510k vs 230k records/s, unpack 322k vs 170k; see
// docs/benchmarks.md). The shard store packs every SampleRecord it writes
// and unpacks every one it reads.
//
// Each word becomes a tag byte (bit i set = byte i of the word is non-zero)
// followed by its non-zero bytes; tag 0x00 is followed by a count of further
// all-zero words, tag 0xff by a count of further words copied verbatim. The
// output of PackWords is read by capnp::PackedMessageReader and vice versa.
//
// Thread-safety: reentrant.
#ifndef GLM_SCHEMA_PACKING_H_
#define GLM_SCHEMA_PACKING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace glm::schema {

// The most bytes PackWords can append for `num_words` words.
inline size_t MaxPackedBytes(size_t num_words) { return num_words * 10 + 16; }

// Appends the packed encoding of words[0, num_words) to *out.
void PackWords(const uint64_t* words, size_t num_words, std::string* out);

// Unpacks all of `packed` to the front of *buffer and returns the number of
// words. The buffer grows as needed and never shrinks (its size is a
// capacity: a loop reusing one buffer allocates nothing). DataLoss when the
// input ends inside a word or a run, or when it would unpack to more than
// `max_words` words (a bomb of zero runs).
StatusOr<size_t> UnpackWords(std::string_view packed, size_t max_words,
                             std::vector<uint64_t>* buffer);

// For tests: forces the portable code path even where the CPU has BMI2.
void SetPackingPortableForTesting(bool portable);

}  // namespace glm::schema

#endif  // GLM_SCHEMA_PACKING_H_
