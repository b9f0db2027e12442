#include "storage/keys.h"

namespace glm::storage {
namespace {

void PutBigEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(std::string_view bytes) {
  uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

std::string Hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

}  // namespace

std::string EncodeSampleKey(const SampleKey& key) {
  std::string out;
  out.reserve(kSampleKeyBytes);
  PutBigEndian(static_cast<uint8_t>(key.objective), 1, &out);
  PutBigEndian(key.epoch, 4, &out);
  PutBigEndian(key.index, 8, &out);
  return out;
}

std::string EncodeSampleKeyPrefix(Objective objective, uint32_t epoch) {
  return EncodeSampleKey({objective, epoch, 0});
}

StatusOr<SampleKey> DecodeSampleKey(std::string_view bytes) {
  if (bytes.size() != kSampleKeyBytes) {
    return DataLossError("sample key of " + std::to_string(bytes.size()) + " bytes (expected " +
                         std::to_string(kSampleKeyBytes) + "): " + Hex(bytes));
  }
  uint64_t objective = GetBigEndian(bytes.substr(0, 1));
  if (objective >= static_cast<uint64_t>(kNumObjectives)) {
    return DataLossError("sample key with objective " + std::to_string(objective) + ": " + Hex(bytes));
  }
  return SampleKey{static_cast<Objective>(objective), static_cast<uint32_t>(GetBigEndian(bytes.substr(1, 4))),
                   GetBigEndian(bytes.substr(5, 8))};
}

std::string EncodeDocKey(uint64_t id) {
  std::string out;
  out.reserve(kDocKeyBytes);
  PutBigEndian(id, 8, &out);
  return out;
}

StatusOr<uint64_t> DecodeDocKey(std::string_view bytes) {
  if (bytes.size() != kDocKeyBytes) {
    return DataLossError("document key of " + std::to_string(bytes.size()) + " bytes (expected 8): " +
                         Hex(bytes));
  }
  return GetBigEndian(bytes);
}

std::string DescribeSampleKey(const SampleKey& key) {
  return "samples/" + std::string(ObjectiveName(key.objective)) + "/epoch=" + std::to_string(key.epoch) +
         "/index=" + std::to_string(key.index);
}

std::string DescribeDocKey(uint64_t id) { return "docs/id=" + std::to_string(id); }

std::string DescribeRawKey(std::string_view family, std::string_view key) {
  if (family == "samples") {
    StatusOr<SampleKey> k = DecodeSampleKey(key);
    if (k.ok()) return DescribeSampleKey(*k);
  } else if (family == "docs") {
    StatusOr<uint64_t> id = DecodeDocKey(key);
    if (id.ok()) return DescribeDocKey(*id);
  } else if (family == "meta") {
    bool printable = true;
    for (unsigned char c : key) printable = printable && c >= 0x20 && c < 0x7f;
    if (printable) return "meta/" + std::string(key);
  }
  return std::string(family) + "/0x" + Hex(key);
}

StatusOr<Objective> ParseObjective(std::string_view name) {
  for (int i = 0; i < kNumObjectives; ++i) {
    if (name == ObjectiveName(static_cast<Objective>(i))) return static_cast<Objective>(i);
  }
  return InvalidArgumentError("unknown objective '" + std::string(name) +
                              "'; choose blank, sentence or document");
}

}  // namespace glm::storage
