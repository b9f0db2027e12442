#include "transport/codec.h"

#include <kj/exception.h>

#include <cstring>

namespace glm::transport {
namespace {

capnp::ReaderOptions ToReaderOptions(const DecodeLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = limits.nesting_limit;
  return options;
}

// Highest union discriminant this build knows (Envelope::PONG).
constexpr int kLastKnownKind = static_cast<int>(wire::Envelope::CHECKPOINT_REPLY);

// Walks every field of the envelope so that a malformed pointer deep inside
// fails here, inside the try block, rather than later in a handler.
void TouchAll(wire::Envelope::Reader e) {
  capnp::MessageSize size = e.totalSize();
  (void)size;
}

}  // namespace

DecodedEnvelope::DecodedEnvelope(kj::Array<capnp::word> words, const DecodeLimits& limits)
    : words_(kj::mv(words)),
      reader_(words_.asPtr(), ToReaderOptions(limits)),
      envelope_(reader_.getRoot<wire::Envelope>()) {}

StatusOr<std::unique_ptr<DecodedEnvelope>> DecodeEnvelope(const void* data, size_t size,
                                                           const DecodeLimits& limits) {
  if (size > limits.max_message_bytes) {
    return InvalidArgumentError("message of " + std::to_string(size) + " bytes exceeds the limit of " +
                                std::to_string(limits.max_message_bytes));
  }
  if (size == 0 || size % sizeof(capnp::word) != 0) {
    return InvalidArgumentError("message of " + std::to_string(size) +
                                " bytes is not a whole number of 8-byte words");
  }
  // Copy into word-aligned memory: zmq_msg_data has no alignment guarantee.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(size / sizeof(capnp::word));
  std::memcpy(words.begin(), data, size);
  std::string error;
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&]() {
    // Validate the segment table before constructing the reader: a bogus
    // table makes FlatArrayMessageReader throw, which we catch, but also
    // check that the message spans exactly the bytes we were given.
    size_t expected = capnp::expectedSizeInWordsFromPrefix(words.asPtr());
    if (expected != words.size()) {
      error = "segment table says " + std::to_string(expected * 8) + " bytes, message has " +
              std::to_string(size);
    }
  });
  KJ_IF_MAYBE(e, exception) {
    return InvalidArgumentError(std::string("malformed segment table: ") + e->getDescription().cStr());
  }
  if (!error.empty()) return InvalidArgumentError(error);

  std::unique_ptr<DecodedEnvelope> decoded;
  int which = 0;
  uint16_t version = 0;
  exception = kj::runCatchingExceptions([&]() {
    decoded = std::make_unique<DecodedEnvelope>(kj::mv(words), limits);
    wire::Envelope::Reader e = decoded->envelope();
    version = e.getVersion();
    which = static_cast<int>(e.which());
    TouchAll(e);
  });
  KJ_IF_MAYBE(e, exception) {
    return InvalidArgumentError(std::string("malformed message: ") + e->getDescription().cStr());
  }
  if (version != kWireVersion) {
    return InvalidArgumentError("wire version " + std::to_string(version) + ", this build speaks " +
                                std::to_string(kWireVersion));
  }
  if (which < 0 || which > kLastKnownKind) {
    return InvalidArgumentError("unknown message kind " + std::to_string(which));
  }
  return decoded;
}

EnvelopeBuilder::EnvelopeBuilder(uint64_t request_id)
    : envelope_(message_.initRoot<wire::Envelope>()) {
  envelope_.setVersion(kWireVersion);
  envelope_.setRequestId(request_id);
}

kj::Array<capnp::word> EnvelopeBuilder::Encode() { return capnp::messageToFlatArray(message_); }

const char* EnvelopeKindName(wire::Envelope::Which which) {
  switch (which) {
    case wire::Envelope::REGISTER: return "register";
    case wire::Envelope::REGISTER_ACK: return "registerAck";
    case wire::Envelope::HEARTBEAT: return "heartbeat";
    case wire::Envelope::HEARTBEAT_ACK: return "heartbeatAck";
    case wire::Envelope::LEASE_REQUEST: return "leaseRequest";
    case wire::Envelope::LEASE_REPLY: return "leaseReply";
    case wire::Envelope::TASK_DONE: return "taskDone";
    case wire::Envelope::TASK_FAILED: return "taskFailed";
    case wire::Envelope::ACTOR_FAILED: return "actorFailed";
    case wire::Envelope::CONSUMED: return "consumed";
    case wire::Envelope::ACK: return "ack";
    case wire::Envelope::STATUS_REQUEST: return "statusRequest";
    case wire::Envelope::STATUS_REPLY: return "statusReply";
    case wire::Envelope::PING: return "ping";
    case wire::Envelope::PONG: return "pong";
    case wire::Envelope::TRAINER_SYNC: return "trainerSync";
    case wire::Envelope::TRAINER_SYNC_REPLY: return "trainerSyncReply";
    case wire::Envelope::CHECKPOINT_REQUEST: return "checkpointRequest";
    case wire::Envelope::CHECKPOINT_REPLY: return "checkpointReply";
  }
  return "unknown";
}

}  // namespace glm::transport
