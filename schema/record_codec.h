// Conversions between the plain records of schema/records.h and their stored
// and wire form: Cap'n Proto messages of schema/store.capnp, one message
// (segment table + segments) per record. SampleRecords of format version 2
// are written in Cap'n Proto's standard packed encoding (schema/packing.h:
// about 37% of the unpacked size for 512-token samples); every other record,
// and samples of version 1, unpacked. Readers take either encoding of any
// record, told apart by its first byte (docs/store-format.md).
//
//   std::string bytes = EncodeSample(sample, tokenizer_hash);
//   StatusOr<Sample> s = DecodeSample(bytes, {.expected_tokenizer_hash = h});
//
// Encoding copies each token array with one memcpy into the message (then
// packs it); decoding unpacks into a per-thread buffer, checks the framing, applies Cap'n Proto
// traversal and nesting limits and copies the arrays back in bulk. Decoding never crashes on
// garbage: it returns
//   DataLoss            the bytes are not a valid record (corrupt, truncated,
//                       inconsistent lengths, spans out of range),
//   FailedPrecondition  a newer format version than this build reads, or a
//                       tokenizer hash other than the expected one.
// Messages say what is wrong but not where the bytes came from: callers add
// the key or file with Status::WithContext.
//
// Thread-safety: all functions are reentrant.
#ifndef GLM_SCHEMA_RECORD_CODEC_H_
#define GLM_SCHEMA_RECORD_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "schema/records.h"

namespace glm::schema {

// The version of schema/store.capnp this build writes and the newest it reads.
// History (docs/store-format.md): 1 = first version; 2 = SampleRecords are
// written packed (the schema is unchanged; version-1 stores stay readable).
inline constexpr uint32_t kStoreFormatVersion = 2;

// The first format version whose SampleRecords are packed.
inline constexpr uint32_t kFirstPackedSampleVersion = 2;

struct DecodeOptions {
  // The tokenizer hash every record must carry.
  // Default: 0 = accept any hash (tools that inspect a store).
  uint64_t expected_tokenizer_hash = 0;
  // Cap'n Proto traversal limit: the most 8-byte words a decode may read.
  // Default: 8M words = 64 MiB, far above any real record.
  uint64_t traversal_limit_words = 8ull << 20;
  // Cap'n Proto nesting limit. Default: 16 (records nest at most 3 deep).
  int nesting_limit = 16;
};

// What a store is: its creation record (meta key "store/info").
struct StoreInfo {
  uint32_t format_version = kStoreFormatVersion;
  uint64_t tokenizer_hash = 0;
  int64_t created_unix_ms = 0;
  std::string description;
};

// Encoders. `format_version` is what the record says, and for samples also
// the encoding: packed from kFirstPackedSampleVersion on, unpacked before.
// Production code keeps the default, except a StoreClient writing to an older
// server (it writes what that server reads); tests write records of the past
// and the future with it.
std::string EncodeDocument(const Document& doc, uint64_t tokenizer_hash,
                           uint32_t format_version = kStoreFormatVersion);
std::string EncodeSample(const Sample& sample, uint64_t tokenizer_hash,
                         uint32_t format_version = kStoreFormatVersion);
// Like EncodeSample, into *out (its capacity is reused: no allocation in a
// loop that encodes into the same string).
void EncodeSampleTo(const Sample& sample, uint64_t tokenizer_hash, std::string* out,
                    uint32_t format_version = kStoreFormatVersion);
std::string EncodeStoreInfo(const StoreInfo& info);
std::string EncodeDocIndex(const std::vector<uint64_t>& lengths, uint64_t tokenizer_hash);

// Decoders; see the file comment for the errors. Each takes a record in
// either encoding.
StatusOr<Document> DecodeDocument(std::string_view bytes, const DecodeOptions& options = {});
StatusOr<Sample> DecodeSample(std::string_view bytes, const DecodeOptions& options = {});
StatusOr<StoreInfo> DecodeStoreInfo(std::string_view bytes, const DecodeOptions& options = {});
StatusOr<std::vector<uint64_t>> DecodeDocIndex(std::string_view bytes,
                                               const DecodeOptions& options = {});
// Like DecodeSample, into an existing value whose vectors' capacity is reused.
Status DecodeSampleInto(std::string_view bytes, const DecodeOptions& options, Sample* out);

// Whether an encoded record is in the packed encoding (by its first byte; an
// empty input is not).
bool IsPackedRecord(std::string_view bytes);

// The number of tokens of an encoded document, read without copying them.
StatusOr<uint64_t> DecodedDocumentLength(std::string_view bytes, const DecodeOptions& options = {});

// Bytes of the canonical content of a record, independent of how its message
// was laid out: what `glm store digest` hashes. Two records with equal fields
// give equal bytes.
std::string CanonicalBytes(const Document& doc);
std::string CanonicalBytes(const Sample& sample);

// Value equality of records (all fields).
bool RecordsEqual(const Document& a, const Document& b);
bool RecordsEqual(const Sample& a, const Sample& b);

}  // namespace glm::schema

#endif  // GLM_SCHEMA_RECORD_CODEC_H_
