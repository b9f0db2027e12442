// schema/packing.h against Cap'n Proto's own packed encoding, on both code
// paths (BMI2 where the CPU has it, and the portable one).
#include "schema/packing.h"

#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include <cstring>
#include <random>

namespace glm::schema {
namespace {

// What capnp::_::PackedOutputStream (used by capnp::writePackedMessage) writes.
std::string CapnpPack(const std::vector<uint64_t>& words) {
  std::vector<kj::byte> out(MaxPackedBytes(words.size()));
  kj::ArrayOutputStream array(kj::arrayPtr(out.data(), out.size()));
  {
    ::capnp::_::PackedOutputStream packed(array);
    packed.write(words.data(), words.size() * 8);
  }
  return std::string(reinterpret_cast<const char*>(array.getArray().begin()),
                     array.getArray().size());
}

// Random words of a few shapes: dense, half-zero (token ids), sparse, zero runs.
std::vector<uint64_t> RandomWords(std::mt19937_64& rng, int shape) {
  std::vector<uint64_t> w(rng() % 900);
  for (uint64_t& x : w) {
    const uint64_t r = rng();
    switch (shape) {
      case 0:
        x = r;
        break;
      case 1:
        x = r & 0x0000ffff0000ffffull;
        break;
      case 2:
        x = r % 3 == 0 ? 0 : (r & rng() & rng());
        break;
      default:
        x = 0;
        for (int b = 0; b < 8; ++b) {
          if (rng() % 4 != 0) x |= (rng() & 0xff) << (8 * b);
        }
    }
  }
  if (shape == 2 && w.size() > 600)
    std::fill(w.begin() + 10, w.begin() + 590, 0);  // a run over 255
  return w;
}

class PackingTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { SetPackingPortableForTesting(GetParam()); }
  void TearDown() override { SetPackingPortableForTesting(false); }
};

TEST_P(PackingTest, PacksByteForByteLikeCapnpAndUnpacksCapnpOutput) {
  std::mt19937_64 rng(11);
  std::vector<uint64_t> buffer;
  for (int trial = 0; trial < 400; ++trial) {
    const std::vector<uint64_t> words = RandomWords(rng, trial % 4);
    std::string mine = "prefix";
    PackWords(words.data(), words.size(), &mine);
    const std::string reference = CapnpPack(words);
    ASSERT_EQ(mine.substr(6), reference) << "trial " << trial << ", " << words.size() << " words";
    StatusOr<size_t> n = UnpackWords(reference, 1 << 20, &buffer);
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_EQ(*n, words.size());
    EXPECT_EQ(std::memcmp(buffer.data(), words.data(), words.size() * 8), 0) << "trial " << trial;
  }
}

TEST_P(PackingTest, EveryTruncationIsDataLossNeverACrash) {
  std::mt19937_64 rng(5);
  std::vector<uint64_t> buffer;
  for (int shape = 0; shape < 4; ++shape) {
    std::vector<uint64_t> words = RandomWords(rng, shape);
    words.push_back(0x1122334455667788ull);  // ends inside a word when cut short
    std::string packed;
    PackWords(words.data(), words.size(), &packed);
    int data_loss = 0;
    for (size_t cut = 0; cut < packed.size(); ++cut) {
      StatusOr<size_t> n = UnpackWords(std::string_view(packed).substr(0, cut), 1 << 20, &buffer);
      // A cut between two words is a valid shorter input; anything else is DataLoss.
      if (!n.ok()) {
        EXPECT_EQ(n.status().code(), StatusCode::kDataLoss) << n.status();
        EXPECT_NE(n.status().message().find("truncated"), std::string::npos) << n.status();
        ++data_loss;
      } else {
        EXPECT_LT(*n, words.size());
      }
    }
    EXPECT_GT(data_loss, 0);
  }
}

TEST_P(PackingTest, ZeroRunBombIsDataLossNotAnAllocation) {
  std::string bomb;
  for (int i = 0; i < 1000; ++i) bomb += std::string("\x00\xff", 2);  // 256,000 zero words
  std::vector<uint64_t> buffer;
  StatusOr<size_t> n = UnpackWords(bomb, 10000, &buffer);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(n.status().message().find("more than 10000 words"), std::string::npos) << n.status();
  EXPECT_LE(buffer.size(), 10000u);
  ASSERT_TRUE(UnpackWords(bomb, 256000, &buffer).ok());
}

TEST_P(PackingTest, EmptyInputIsNoWords) {
  std::string packed;
  PackWords(nullptr, 0, &packed);
  EXPECT_TRUE(packed.empty());
  std::vector<uint64_t> buffer;
  StatusOr<size_t> n = UnpackWords("", 100, &buffer);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
}

INSTANTIATE_TEST_SUITE_P(BothPaths, PackingTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Portable" : "Native";
                         });

}  // namespace
}  // namespace glm::schema
