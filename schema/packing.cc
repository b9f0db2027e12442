#include "schema/packing.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

namespace glm::schema {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "packing assumes a little-endian host");

// 0x01 in every byte of w that is non-zero, 0x00 elsewhere.
inline uint64_t NonZeroByteBits(uint64_t w) {
  uint64_t t = w | (w >> 4);
  t |= t >> 2;
  t |= t >> 1;
  return t & 0x0101010101010101ull;
}

// The tag of a word from its NonZeroByteBits: bit k set when byte k is
// non-zero. The multiplier moves the 0x01 of byte k to bit 56 + k, without carries.
inline unsigned TagOf(uint64_t bits) {
  return static_cast<unsigned>((bits * 0x0102040810204080ull) >> 56);
}

// kByteMask[tag]: 0xff in the bytes whose tag bit is set.
constexpr std::array<uint64_t, 256> MakeByteMasks() {
  std::array<uint64_t, 256> m{};
  for (unsigned tag = 0; tag < 256; ++tag) {
    for (unsigned k = 0; k < 8; ++k) {
      if (tag & (1u << k)) m[tag] |= 0xffull << (8 * k);
    }
  }
  return m;
}
constexpr std::array<uint64_t, 256> kByteMask = MakeByteMasks();

std::atomic<bool> g_force_portable{false};

Status Truncated(size_t offset, const char* what) {
  return DataLossError("packed record ends inside " + std::string(what) + " at byte " +
                       std::to_string(offset) + " (truncated or not a packed record)");
}

// Grows *buffer to at least `need` words (doubling), or DataLoss past max_words.
Status EnsureWords(size_t need, size_t max_words, std::vector<uint64_t>* buffer) {
  if (need > max_words) {
    return DataLossError("packed record unpacks to more than " + std::to_string(max_words) +
                         " words (corrupt, or over the traversal limit)");
  }
  if (need > buffer->size())
    buffer->resize(std::max(need, std::min(max_words, 2 * buffer->size() + 64)));
  return Status::Ok();
}

namespace portable {
#define GLM_PACKING_BMI2 0
#include "schema/packing_impl.inc"
#undef GLM_PACKING_BMI2
}  // namespace portable

#if defined(__x86_64__) && defined(__GNUC__)
#define GLM_HAVE_BMI2_PATH 1
#pragma GCC push_options
#pragma GCC target("bmi2,popcnt")
namespace bmi2 {
#define GLM_PACKING_BMI2 1
#include "schema/packing_impl.inc"
#undef GLM_PACKING_BMI2
}  // namespace bmi2
#pragma GCC pop_options
#else
#define GLM_HAVE_BMI2_PATH 0
#endif

bool UseBmi2() {
#if GLM_HAVE_BMI2_PATH
  // AMD before Zen 3 has PDEP/PEXT in microcode (tens to hundreds of cycles
  // each): the portable loop is faster there.
  static const bool has = __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt") &&
                          !__builtin_cpu_is("znver1") && !__builtin_cpu_is("znver2");
  return has && !g_force_portable.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

}  // namespace

void PackWords(const uint64_t* words, size_t num_words, std::string* out) {
  const size_t start = out->size();
  out->resize(start + MaxPackedBytes(num_words));
  uint8_t* const base = reinterpret_cast<uint8_t*>(out->data()) + start;
  uint8_t* end = nullptr;
#if GLM_HAVE_BMI2_PATH
  if (UseBmi2()) end = bmi2::Pack(words, num_words, base);
#endif
  if (end == nullptr) end = portable::Pack(words, num_words, base);
  out->resize(start + (end - base));
}

StatusOr<size_t> UnpackWords(std::string_view packed, size_t max_words,
                             std::vector<uint64_t>* buffer) {
#if GLM_HAVE_BMI2_PATH
  if (UseBmi2()) return bmi2::Unpack(packed, max_words, buffer);
#endif
  return portable::Unpack(packed, max_words, buffer);
}

void SetPackingPortableForTesting(bool portable) { g_force_portable.store(portable); }

}  // namespace glm::schema
