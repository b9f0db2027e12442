#include "transport/codec.h"

#include <capnp/dynamic.h>
#include <kj/exception.h>

#include <cstring>
#include <unordered_map>
#include <vector>

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

void TouchValue(const capnp::DynamicValue::Reader& value);

// Per struct type, the fields whose reading can fail: pointers (text, data,
// lists, structs) and groups. Scalars and enums live in the data section,
// which the reader bounds-checks. Built once per type and thread: reading
// them from the schema on every message tripled the cost of a decode.
struct StructPlan {
  std::vector<capnp::StructSchema::Field> checked_non_union;
  bool has_union = false;
  std::vector<bool> checked_by_index;  // by Field::getIndex(), for the union member
};

struct SchemaHash {
  size_t operator()(const capnp::StructSchema& s) const { return s.hashCode(); }
};

bool NeedsCheck(const capnp::StructSchema::Field& field) {
  capnp::schema::Field::Reader proto = field.getProto();
  if (!proto.isSlot()) return true;  // a group
  switch (proto.getSlot().getType().which()) {
    case capnp::schema::Type::TEXT:
    case capnp::schema::Type::DATA:
    case capnp::schema::Type::LIST:
    case capnp::schema::Type::STRUCT:
    case capnp::schema::Type::ANY_POINTER:
      return true;
    default:
      return false;
  }
}

const StructPlan& PlanFor(const capnp::StructSchema& schema) {
  thread_local std::unordered_map<capnp::StructSchema, StructPlan, SchemaHash> plans;
  auto it = plans.find(schema);
  if (it != plans.end()) return it->second;
  StructPlan plan;
  for (capnp::StructSchema::Field field : schema.getNonUnionFields()) {
    if (NeedsCheck(field)) plan.checked_non_union.push_back(field);
  }
  plan.has_union = schema.getUnionFields().size() > 0;
  for (capnp::StructSchema::Field field : schema.getFields()) plan.checked_by_index.push_back(NeedsCheck(field));
  return plans.emplace(schema, std::move(plan)).first->second;
}

// Reads every field the schema gives the struct that can be malformed
// (non-union fields and the active union member, into groups, nested structs
// and lists), so that a pointer of the wrong kind for its field (a list where
// a struct belongs, text that is not NUL-terminated) throws here, inside the
// try block, rather than later in a handler. Bounded by the reader's
// traversal and nesting limits.
void TouchStruct(const capnp::DynamicStruct::Reader& s) {
  const StructPlan& plan = PlanFor(s.getSchema());
  for (const capnp::StructSchema::Field& field : plan.checked_non_union) TouchValue(s.get(field));
  if (plan.has_union) {
    KJ_IF_MAYBE(field, s.which()) {
      if (plan.checked_by_index[field->getIndex()]) TouchValue(s.get(*field));
    }
  }
}

void TouchValue(const capnp::DynamicValue::Reader& value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT:
      TouchStruct(value.as<capnp::DynamicStruct>());
      break;
    case capnp::DynamicValue::LIST:
      for (capnp::DynamicValue::Reader element : value.as<capnp::DynamicList>()) TouchValue(element);
      break;
    default:  // text and data were checked by get(); nothing else holds pointers
      break;
  }
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
    TouchStruct(capnp::toDynamic(e));
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
