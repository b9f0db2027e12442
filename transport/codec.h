// Codec: one Envelope (schema/wire/wire.capnp) per ZeroMQ message part.
//
// Encoding writes a Cap'n Proto flat array (unpacked). Decoding is the only
// place untrusted bytes are read, so it is defensive:
//   * size-limited: a part larger than max_message_bytes is rejected (the
//     sockets also set ZMQ_MAXMSGSIZE, which makes libzmq drop the peer);
//   * alignment-safe: ZeroMQ gives no alignment guarantee, so the bytes are
//     copied into a word-aligned buffer before Cap'n Proto reads them;
//   * traversal- and nesting-limited (ReaderOptions), and every Cap'n Proto
//     exception is caught here and returned as a Status;
//   * schema-checked: every pointer field of the message (active union
//     members, nested structs, lists, text) is read once here, so a handler
//     reading a field of a decoded envelope does not throw;
//   * versioned: an envelope of another major version or with an unknown
//     union member is rejected.
// A rejected message is the caller's to drop and count; it is never fatal.
//
// Thread-safety: functions are reentrant; a DecodedEnvelope is used by one
// thread at a time.
#ifndef GLM_TRANSPORT_CODEC_H_
#define GLM_TRANSPORT_CODEC_H_

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "schema/wire/wire.capnp.h"

namespace glm::transport {

// Protocol major version carried in every Envelope.version.
inline constexpr uint16_t kWireVersion = 1;

struct DecodeLimits {
  // Largest accepted message part. Default: 16 MiB.
  size_t max_message_bytes = 16u << 20;
  // Cap'n Proto traversal limit in 8-byte words (guards amplification).
  // Default: 4 Mi words (32 MiB of traversal).
  uint64_t traversal_limit_words = 4u << 20;
  // Cap'n Proto nesting limit. Default: 16 (the schema nests at most 5).
  int nesting_limit = 16;
};

// A decoded, validated envelope. Owns the aligned copy of the bytes.
class DecodedEnvelope {
 public:
  DecodedEnvelope(kj::Array<capnp::word> words, const DecodeLimits& limits);
  wire::Envelope::Reader envelope() { return envelope_; }

 private:
  kj::Array<capnp::word> words_;
  capnp::FlatArrayMessageReader reader_;
  wire::Envelope::Reader envelope_;
};

// Decodes `size` bytes at `data` (any alignment). InvalidArgument for too
// large, truncated, malformed, traversal-limit or wrong-version input; the
// message says which.
StatusOr<std::unique_ptr<DecodedEnvelope>> DecodeEnvelope(const void* data, size_t size,
                                                           const DecodeLimits& limits);

// A builder with the version already set: fill in the union, then Encode.
class EnvelopeBuilder {
 public:
  explicit EnvelopeBuilder(uint64_t request_id = 0);
  wire::Envelope::Builder envelope() { return envelope_; }
  // The flat-array bytes of the message.
  kj::Array<capnp::word> Encode();

 private:
  capnp::MallocMessageBuilder message_;
  wire::Envelope::Builder envelope_;
};

// "leaseRequest", "heartbeat", ...: for logs and counters.
const char* EnvelopeKindName(wire::Envelope::Which which);

}  // namespace glm::transport

#endif  // GLM_TRANSPORT_CODEC_H_
