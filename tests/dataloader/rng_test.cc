#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "dataloader/blocks.h"
#include "dataloader/hash.h"
#include "dataloader/philox.h"

namespace glm::dataloader {
namespace {

// Known-answer vectors of Random123 (kat_vectors, philox4x32 10 rounds).
TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(Philox4x32({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}),
            (PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(Philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                       {0xa4093822u, 0x299f31d0u}),
            (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(SampleRngTest, SameKeyStreamAndIndexGiveTheSameNumbers) {
  SampleRng a(42, 3, 1000), b(42, 3, 1000), c(42, 3, 1001), d(42, 4, 1000);
  bool differs_c = false, differs_d = false;
  for (int i = 0; i < 100; ++i) {
    const uint32_t x = a.NextU32();
    EXPECT_EQ(x, b.NextU32());
    differs_c |= x != c.NextU32();
    differs_d |= x != d.NextU32();
  }
  EXPECT_TRUE(differs_c);
  EXPECT_TRUE(differs_d);
}

TEST(SampleRngTest, UniformStaysInRangeAndCoversIt) {
  SampleRng rng(7, 0, 0);
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 60000; ++i) {
    const uint32_t v = rng.Uniform(6);
    ASSERT_LT(v, 6u);
    ++counts[v];
  }
  for (uint32_t v = 0; v < 6; ++v) EXPECT_NEAR(counts[v], 10000, 500) << v;
  for (int i = 0; i < 1000; ++i) {
    const int32_t v = rng.UniformInt(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    const uint64_t big = rng.Uniform64(10000000000ULL);
    ASSERT_LT(big, 10000000000ULL);
    const double d = rng.NextDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
  }
  EXPECT_EQ(rng.Uniform(1), 0u);
}

TEST(SampleRngTest, ShuffleIsAPermutation) {
  SampleRng rng(9, 0, 5);
  std::vector<int> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  rng.Shuffle(v.data(), static_cast<uint32_t>(v.size()));
  std::vector<int> sorted = v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST(HashTest, HexRoundTripsAndRejectsGarbage) {
  const uint64_t h = Hash64("glm");
  EXPECT_EQ(HashToHex(h).size(), 16u);
  auto back = HashFromHex(HashToHex(h));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, h);
  EXPECT_FALSE(HashFromHex("xyz").ok());
  EXPECT_FALSE(HashFromHex("000000000000000g").ok());
  EXPECT_NE(Hash64("a"), Hash64("b"));
  EXPECT_NE(Hash64(""), Hash64(std::string(1, '\0')));
  EXPECT_EQ(Hasher().Update("ab").Update("c").Finish(), Hash64("abc"));
}

// GLM_SPEC 2.3: normalised probabilities for k = 1..8.
TEST(SpanLengthSamplerTest, ProbabilitiesMatchTheSpec) {
  SpanLengthSampler s(3.0, 40);
  const double want[] = {0.15719, 0.23578, 0.23578, 0.17684, 0.10610, 0.05305, 0.02274, 0.00853};
  for (int k = 1; k <= 8; ++k) EXPECT_NEAR(s.Probability(k), want[k - 1], 5e-6) << k;
  EXPECT_EQ(s.Probability(0), 0.0);
  EXPECT_EQ(s.Probability(40), 0.0);
  EXPECT_GT(s.Probability(39), 0.0);
  double mean = 0;
  for (int k = 1; k < 40; ++k) mean += k * s.Probability(k);
  EXPECT_NEAR(mean, 3.157, 1e-3);
}

TEST(SpanLengthSamplerTest, DrawsFollowTheDistribution) {
  SpanLengthSampler s(3.0, 40);
  SampleRng rng(1, 0, 0);
  std::map<int, int> counts;
  const int kDraws = 200000;
  for (int i = 0; i < kDraws; ++i) {
    const int k = s.Draw(&rng);
    ASSERT_GE(k, 1);
    ASSERT_LE(k, 39);
    ++counts[k];
  }
  for (int k = 1; k <= 6; ++k) {
    EXPECT_NEAR(counts[k] / static_cast<double>(kDraws), s.Probability(k), 0.005) << k;
  }
}

}  // namespace
}  // namespace glm::dataloader
