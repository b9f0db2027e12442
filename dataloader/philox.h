// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3", SC'11; the Random123 generator).
//
// A Philox block is a pure function of a 128-bit counter and a 64-bit key, so
// the numbers for sample i depend on i alone, never on which thread made it
// or what it made before. SampleRng walks one stream: key = the per-(job,
// objective, epoch) key, counter = (block, stream, index low, index high).
//
// Thread-safety: Philox4x32 is pure; a SampleRng is a value owned by one
// thread.
#ifndef GLM_DATALOADER_PHILOX_H_
#define GLM_DATALOADER_PHILOX_H_

#include <array>
#include <cstdint>

namespace glm::dataloader {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// One Philox4x32-10 block: 4 random 32-bit words for (counter, key).
inline PhiloxCounter Philox4x32(PhiloxCounter ctr, PhiloxKey key) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kW0;
      key[1] += kW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kM0) * ctr[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * ctr[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
  }
  return ctr;
}

// A stream of random numbers for one (key, stream, index).
class SampleRng {
 public:
  SampleRng(uint64_t key, uint32_t stream, uint64_t index)
      : key_{static_cast<uint32_t>(key), static_cast<uint32_t>(key >> 32)},
        ctr_{0, stream, static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32)} {}

  uint32_t NextU32() {
    if (pos_ == 4) {
      buf_ = Philox4x32(ctr_, key_);
      ++ctr_[0];
      pos_ = 0;
    }
    return buf_[pos_++];
  }

  uint64_t NextU64() {
    const uint64_t hi = NextU32();
    return (hi << 32) | NextU32();
  }

  // Uniform in [0, n), n >= 1, unbiased (Lemire's multiply-and-reject).
  uint32_t Uniform(uint32_t n) {
    uint64_t m = static_cast<uint64_t>(NextU32()) * n;
    uint32_t low = static_cast<uint32_t>(m);
    if (low < n) {
      const uint32_t threshold = static_cast<uint32_t>(-n) % n;
      while (low < threshold) {
        m = static_cast<uint64_t>(NextU32()) * n;
        low = static_cast<uint32_t>(m);
      }
    }
    return static_cast<uint32_t>(m >> 32);
  }

  // Uniform in [0, n) for 64-bit n >= 1, unbiased.
  uint64_t Uniform64(uint64_t n) {
    if (n <= 0xffffffffULL) return Uniform(static_cast<uint32_t>(n));
    __uint128_t m = static_cast<__uint128_t>(NextU64()) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<__uint128_t>(NextU64()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

  // Uniform integer in [lo, hi] (inclusive), lo <= hi.
  int32_t UniformInt(int32_t lo, int32_t hi) {
    return lo + static_cast<int32_t>(Uniform(static_cast<uint32_t>(hi - lo) + 1u));
  }

  // Uniform double in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

  // True with probability p (p <= 0: never, p >= 1: always).
  bool Bernoulli(double p) { return NextDouble() < p; }

  // Uniform random permutation (Fisher-Yates, from the back).
  template <typename T>
  void Shuffle(T* data, uint32_t size) {
    for (uint32_t i = size; i > 1; --i) {
      const uint32_t j = Uniform(i);
      T tmp = data[i - 1];
      data[i - 1] = data[j];
      data[j] = tmp;
    }
  }

 private:
  PhiloxKey key_;
  PhiloxCounter ctr_;
  PhiloxCounter buf_{};
  int pos_ = 4;
};

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_PHILOX_H_
