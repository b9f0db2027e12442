// libFuzzer target over the wire decoder: any bytes must either decode into
// a valid Envelope or be rejected with a Status; never crash, hang or leak.
#include <cstddef>
#include <cstdint>

#include "transport/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  glm::transport::DecodeLimits limits;
  limits.max_message_bytes = 1 << 16;
  auto decoded = glm::transport::DecodeEnvelope(data, size, limits);
  if (decoded.ok()) {
    // Read the union the way the handlers do.
    auto e = (*decoded)->envelope();
    (void)glm::transport::EnvelopeKindName(e.which());
    if (e.isRegister()) (void)e.getRegister().getNodeId().size();
  }
  return 0;
}
