#include "transport/codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace glm::transport {
namespace {

std::vector<uint8_t> EncodeRegister(const std::string& node_id, uint16_t version = kWireVersion) {
  EnvelopeBuilder b(42);
  b.envelope().setVersion(version);
  auto r = b.envelope().initRegister();
  r.setNodeId(node_id);
  r.initResources().setCpu(2);
  kj::Array<capnp::word> words = b.Encode();
  auto bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

TEST(CodecTest, RoundTripsAnEnvelope) {
  std::vector<uint8_t> bytes = EncodeRegister("node-a");
  auto decoded = DecodeEnvelope(bytes.data(), bytes.size(), DecodeLimits());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  auto e = (*decoded)->envelope();
  EXPECT_EQ(e.getRequestId(), 42u);
  ASSERT_TRUE(e.isRegister());
  EXPECT_EQ(std::string(e.getRegister().getNodeId().cStr()), "node-a");
  EXPECT_EQ(e.getRegister().getResources().getCpu(), 2.0);
}

TEST(CodecTest, DecodesFromAnUnalignedBuffer) {
  std::vector<uint8_t> bytes = EncodeRegister("unaligned");
  std::vector<uint8_t> shifted(bytes.size() + 3);
  std::memcpy(shifted.data() + 3, bytes.data(), bytes.size());
  auto decoded = DecodeEnvelope(shifted.data() + 3, bytes.size(), DecodeLimits());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(std::string((*decoded)->envelope().getRegister().getNodeId().cStr()), "unaligned");
}

TEST(CodecTest, RejectsOversizedMessages) {
  std::vector<uint8_t> bytes = EncodeRegister(std::string(1000, 'x'));
  DecodeLimits limits;
  limits.max_message_bytes = 256;
  auto decoded = DecodeEnvelope(bytes.data(), bytes.size(), limits);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("exceeds the limit"), std::string::npos);
}

TEST(CodecTest, RejectsTruncatedMessages) {
  std::vector<uint8_t> bytes = EncodeRegister("node-a");
  for (size_t cut = 0; cut < bytes.size(); cut += 8) {
    auto decoded = DecodeEnvelope(bytes.data(), cut, DecodeLimits());
    EXPECT_FALSE(decoded.ok()) << "cut at " << cut;
  }
}

TEST(CodecTest, RejectsAnotherWireVersion) {
  std::vector<uint8_t> bytes = EncodeRegister("node-a", kWireVersion + 1);
  auto decoded = DecodeEnvelope(bytes.data(), bytes.size(), DecodeLimits());
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("wire version"), std::string::npos);
}

TEST(CodecTest, EnforcesTheTraversalLimit) {
  std::vector<uint8_t> bytes = EncodeRegister(std::string(4000, 'x'));
  DecodeLimits limits;
  limits.traversal_limit_words = 64;
  auto decoded = DecodeEnvelope(bytes.data(), bytes.size(), limits);
  EXPECT_FALSE(decoded.ok());
}

TEST(CodecTest, RandomBytesAreRejectedOrDecodedNeverFatal) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> valid = EncodeRegister("node-a");
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> bytes = valid;
    // Flip a few random bytes of a valid message.
    for (int k = 0; k < 4; ++k) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    auto decoded = DecodeEnvelope(bytes.data(), bytes.size(), DecodeLimits());
    if (!decoded.ok()) ++rejected;
  }
  EXPECT_GT(rejected, 0);
}

// Found by the fuzzer (fuzz_decoder.cc): a well-formed message whose
// `register` pointer is a list, not a struct. Reading the field threw in the
// handler; the decoder must refuse it instead.
TEST(CodecTest, RejectsAPointerOfTheWrongKindForItsField) {
  const uint8_t bytes[] = {0x0, 0x0, 0x0, 0x0, 0x3, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0,  0x0, 0x1, 0x0, 0x1, 0x0,
                           0x1, 0x0, 0x0, 0x0, 0x0, 0x63, 0x0, 0x0, 0x1, 0x0, 0x0, 0x63, 0x0, 0x0, 0x0, 0x0};
  auto decoded = DecodeEnvelope(bytes, sizeof bytes, DecodeLimits());
  ASSERT_FALSE(decoded.ok()) << "decoded a " << EnvelopeKindName((*decoded)->envelope().which());
  EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("malformed message"), std::string::npos) << decoded.status();
}

// Every field of a decoded message can be read without an exception: the
// handlers rely on it.
TEST(CodecTest, EveryFieldOfWhatDecodesCanBeRead) {
  std::mt19937_64 rng(11);
  std::vector<uint8_t> valid = EncodeRegister("node-a");
  int decoded_count = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> bytes = valid;
    for (int k = 0; k < 2; ++k) bytes[8 + rng() % (bytes.size() - 8)] = static_cast<uint8_t>(rng());
    auto decoded = DecodeEnvelope(bytes.data(), bytes.size(), DecodeLimits());
    if (!decoded.ok()) continue;
    ++decoded_count;
    auto e = (*decoded)->envelope();
    if (!e.isRegister()) continue;
    kj::Maybe<kj::Exception> thrown = kj::runCatchingExceptions([&] {
      auto r = e.getRegister();
      (void)r.getNodeId().size();
      (void)r.getResources().getCpu();
    });
    EXPECT_TRUE(thrown == nullptr) << "message " << i << " decoded but a field read threw";
  }
  EXPECT_GT(decoded_count, 0);
}

}  // namespace
}  // namespace glm::transport
