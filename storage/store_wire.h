// Internal to storage/: reading and writing the frames of the storage
// server's protocol (schema/store_rpc.capnp) safely.
//
// Thread-safety: pure functions.
#ifndef GLM_STORAGE_STORE_WIRE_H_
#define GLM_STORAGE_STORE_WIRE_H_

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "common/status.h"

namespace glm::storage::wire {

// Runs fn(reader) over the Cap'n Proto message in [data, data + size) with
// the given traversal limit, copying the bytes first when they are not
// 8-byte aligned (a ZeroMQ frame need not be). Framing errors and Cap'n
// Proto exceptions become DataLoss; fn returns a Status.
template <typename Fn>
Status ReadFrame(const void* data, size_t size, uint64_t traversal_limit_words, Fn&& fn) {
  if (size < 8 || size % 8 != 0) {
    return DataLossError("frame of " + std::to_string(size) +
                         " bytes is not a Cap'n Proto message (not a whole number of 8-byte words)");
  }
  const size_t num_words = size / 8;
  const ::capnp::word* words = static_cast<const ::capnp::word*>(data);
  std::unique_ptr<::capnp::word[]> aligned;
  if (reinterpret_cast<uintptr_t>(data) % alignof(::capnp::word) != 0) {
    aligned.reset(new ::capnp::word[num_words]);
    std::memcpy(aligned.get(), data, size);
    words = aligned.get();
  }
  try {
    ::capnp::ReaderOptions options;
    options.traversalLimitInWords = traversal_limit_words;
    options.nestingLimit = 16;
    ::capnp::FlatArrayMessageReader reader(kj::arrayPtr(words, num_words), options);
    return fn(reader);
  } catch (const kj::Exception& e) {
    return DataLossError(std::string("unreadable message: ") + e.getDescription().cStr());
  }
}

// The message as one ZeroMQ frame, without copying it again.
inline zmq::message_t ToFrame(::capnp::MessageBuilder& builder) {
  auto* flat = new kj::Array<::capnp::word>(::capnp::messageToFlatArray(builder));
  return zmq::message_t(
      flat->begin(), flat->size() * sizeof(::capnp::word),
      [](void*, void* hint) { delete static_cast<kj::Array<::capnp::word>*>(hint); }, flat);
}

}  // namespace glm::storage::wire

#endif  // GLM_STORAGE_STORE_WIRE_H_
