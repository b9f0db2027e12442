#include "dataloader/hash.h"

#include <cstdio>

namespace glm::dataloader {

Hasher& Hasher::Update(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = state_;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  state_ = h;
  length_ += size;
  return *this;
}

Hasher& Hasher::UpdateU64(uint64_t v) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(v >> (8 * i));
  return Update(bytes, 8);
}

std::string HashToHex(uint64_t hash) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

StatusOr<uint64_t> HashFromHex(std::string_view hex) {
  if (hex.size() != 16) {
    return InvalidArgumentError("a hash is 16 hex digits, got '" + std::string(hex) + "'");
  }
  uint64_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return InvalidArgumentError("a hash is 16 hex digits, got '" + std::string(hex) + "'");
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace glm::dataloader
