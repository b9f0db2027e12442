#include "schema/record_codec.h"

#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include <random>

#include "schema/store.capnp.h"

namespace glm::schema {
namespace {

Sample MakeSample(uint64_t index, int n) {
  Sample s;
  s.objective = Objective::kSentence;
  s.epoch = 3;
  s.index = index;
  for (int i = 0; i < n; ++i) s.source.push_back(1000 + i);
  s.spans = {{2, 5}, {7, 9}};
  s.suffix_layout = true;
  const int S = n + 4;
  for (int i = 0; i < S; ++i) {
    s.tokens.push_back(i * 7);
    s.targets.push_back(i * 11);
    s.loss_mask.push_back(i % 3 == 0);
    s.position_ids.push_back(i);
    s.block_position_ids.push_back(i % 5);
  }
  s.sep = n - 3;
  return s;
}

Document MakeDocument(uint64_t id, int n) {
  Document d;
  d.id = id;
  for (int i = 0; i < n; ++i) {
    d.tokens.push_back(i * 3 - 5);
    d.sentence_end.push_back(i % 4 == 3);
  }
  return d;
}

TEST(RecordCodec, SampleRoundTripsEveryField) {
  Sample s = MakeSample(42, 100);
  std::string bytes = EncodeSample(s, 0xabc);
  StatusOr<Sample> back = DecodeSample(bytes, {.expected_tokenizer_hash = 0xabc});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(RecordsEqual(s, *back));
}

TEST(RecordCodec, EmptySampleRoundTrips) {
  Sample s;
  StatusOr<Sample> back = DecodeSample(EncodeSample(s, 1));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(RecordsEqual(s, *back));
}

TEST(RecordCodec, DocumentRoundTripsAndReportsLength) {
  Document d = MakeDocument(7, 333);
  std::string bytes = EncodeDocument(d, 5);
  StatusOr<Document> back = DecodeDocument(bytes, {.expected_tokenizer_hash = 5});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(RecordsEqual(d, *back));
  StatusOr<uint64_t> n = DecodedDocumentLength(bytes);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 333u);
}

TEST(RecordCodec, StoreInfoAndDocIndexRoundTrip) {
  StoreInfo info{kStoreFormatVersion, 99, 1234, "job x"};
  StatusOr<StoreInfo> back = DecodeStoreInfo(EncodeStoreInfo(info));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->tokenizer_hash, 99u);
  EXPECT_EQ(back->created_unix_ms, 1234);
  EXPECT_EQ(back->description, "job x");
  std::vector<uint64_t> lengths = {3, 0, 1ull << 40};
  StatusOr<std::vector<uint64_t>> l = DecodeDocIndex(EncodeDocIndex(lengths, 99));
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(*l, lengths);
}

TEST(RecordCodec, DecodesFromUnalignedBytes) {
  Sample s = MakeSample(1, 50);
  std::string bytes = EncodeSample(s, 1);
  std::string shifted = "x" + bytes;
  StatusOr<Sample> back = DecodeSample(std::string_view(shifted).substr(1));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(RecordsEqual(s, *back));
}

TEST(RecordCodec, WrongTokenizerHashIsFailedPrecondition) {
  std::string bytes = EncodeSample(MakeSample(1, 10), 0x1111);
  StatusOr<Sample> back = DecodeSample(bytes, {.expected_tokenizer_hash = 0x2222});
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(back.status().message().find("0000000000001111"), std::string::npos) << back.status();
}

TEST(RecordCodec, NewerFormatVersionIsFailedPreconditionNamingVersions) {
  std::string bytes = EncodeDocument(MakeDocument(1, 10), 1, kStoreFormatVersion + 1);
  StatusOr<Document> back = DecodeDocument(bytes);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(back.status().message().find("format version " + std::to_string(kStoreFormatVersion + 1)),
            std::string::npos)
      << back.status();
}

TEST(RecordCodec, TruncatedRecordIsDataLoss) {
  std::string bytes = EncodeSample(MakeSample(1, 200), 1);
  for (size_t cut : {size_t{0}, size_t{3}, size_t{8}, size_t{16}, bytes.size() / 2, bytes.size() - 8,
                     bytes.size() - 1}) {
    StatusOr<Sample> back = DecodeSample(std::string_view(bytes).substr(0, cut));
    ASSERT_FALSE(back.ok()) << "cut at " << cut;
    EXPECT_EQ(back.status().code(), StatusCode::kDataLoss) << back.status();
  }
}

TEST(RecordCodec, TrailingBytesAreDataLoss) {
  std::string bytes = EncodeSample(MakeSample(1, 20), 1) + std::string(8, '\0');
  EXPECT_EQ(DecodeSample(bytes).status().code(), StatusCode::kDataLoss);
}

TEST(RecordCodec, GarbageNeverCrashesAndIsNeverMistakenForARecord) {
  std::mt19937_64 rng(7);
  std::string valid = EncodeSample(MakeSample(9, 64), 1);
  int ok = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes;
    if (trial % 2 == 0) {
      bytes.resize(8 * (rng() % 64));
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = valid;
      for (int f = 0; f < 4; ++f) bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    }
    StatusOr<Sample> s = DecodeSample(bytes);
    if (s.ok()) {
      ++ok;  // a flip inside token data is still a well-formed record
    } else {
      EXPECT_TRUE(s.status().code() == StatusCode::kDataLoss ||
                  s.status().code() == StatusCode::kFailedPrecondition)
          << s.status();
    }
    EXPECT_FALSE(DecodeDocument(bytes).ok() && trial % 2 == 0 && bytes.size() < 8);
  }
  EXPECT_LT(ok, 3000);
}

TEST(RecordCodec, InconsistentLengthsAreDataLoss) {
  Sample s = MakeSample(1, 20);
  s.targets.pop_back();
  EXPECT_EQ(DecodeSample(EncodeSample(s, 1)).status().code(), StatusCode::kDataLoss);
  Sample t = MakeSample(1, 20);
  t.spans.push_back({5, 100});
  StatusOr<Sample> back = DecodeSample(EncodeSample(t, 1));
  EXPECT_EQ(back.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(back.status().message().find("span 2"), std::string::npos) << back.status();
  Document d = MakeDocument(1, 5);
  d.sentence_end.pop_back();
  EXPECT_EQ(DecodeDocument(EncodeDocument(d, 1)).status().code(), StatusCode::kDataLoss);
}

TEST(RecordCodec, CanonicalBytesIgnoreTokenizerHashButNotContent) {
  Sample a = MakeSample(1, 20), b = MakeSample(1, 20);
  EXPECT_EQ(CanonicalBytes(a), CanonicalBytes(b));
  b.tokens[3] += 1;
  EXPECT_NE(CanonicalBytes(a), CanonicalBytes(b));
}

TEST(RecordCodec, SamplesArePackedSmallerAndRoundTrip) {
  Sample s = MakeSample(42, 460);
  std::string packed = EncodeSample(s, 0xabc);
  std::string unpacked = EncodeSample(s, 0xabc, 1);
  EXPECT_TRUE(IsPackedRecord(packed));
  EXPECT_FALSE(IsPackedRecord(unpacked));
  EXPECT_LT(packed.size(), unpacked.size() * 6 / 10);
  StatusOr<Sample> back = DecodeSample(packed, {.expected_tokenizer_hash = 0xabc});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(RecordsEqual(s, *back));
  // Other records stay unpacked: an older glm must read store/info to refuse a newer store.
  EXPECT_FALSE(IsPackedRecord(EncodeDocument(MakeDocument(1, 50), 1)));
  EXPECT_FALSE(IsPackedRecord(EncodeStoreInfo(StoreInfo{kStoreFormatVersion, 1, 2, "x"})));
}

TEST(RecordCodec, VersionOneUnpackedSamplesStillDecode) {
  Sample s = MakeSample(7, 100);
  std::string v1 = EncodeSample(s, 5, 1);
  ASSERT_FALSE(IsPackedRecord(v1));
  StatusOr<Sample> back = DecodeSample(v1, {.expected_tokenizer_hash = 5});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(RecordsEqual(s, *back));
  // Unaligned, as RocksDB may hand it out.
  std::string shifted = "x" + v1;
  back = DecodeSample(std::string_view(shifted).substr(1));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(RecordsEqual(s, *back));
}

TEST(RecordCodec, PackedSampleIsCapnpStandardPacking) {
  Sample s = MakeSample(3, 64);
  std::string packed = EncodeSample(s, 9);
  kj::ArrayInputStream in(
      kj::arrayPtr(reinterpret_cast<const kj::byte*>(packed.data()), packed.size()));
  ::capnp::PackedMessageReader reader(in);
  auto r = reader.getRoot<capnp::SampleRecord>();
  EXPECT_EQ(r.getFormatVersion(), kStoreFormatVersion);
  EXPECT_EQ(r.getTokenizerHash(), 9u);
  EXPECT_EQ(r.getIndex(), 3u);
  ASSERT_EQ(r.getTokens().size(), s.tokens.size());
  EXPECT_EQ(r.getTokens()[10], s.tokens[10]);
  EXPECT_EQ(r.getSep(), s.sep);
}

TEST(RecordCodec, EncodingAndVersionFieldAreIndependent) {
  // Readers take a version-1 record packed and a version-2 one unpacked alike.
  Sample s = MakeSample(11, 30);
  ::capnp::MallocMessageBuilder builder;
  auto r = builder.initRoot<capnp::SampleRecord>();
  r.setFormatVersion(1);
  r.setIndex(11);
  kj::VectorOutputStream out;
  ::capnp::writePackedMessage(out, builder);
  std::string packed_v1(reinterpret_cast<const char*>(out.getArray().begin()),
                        out.getArray().size());
  ASSERT_TRUE(IsPackedRecord(packed_v1));
  StatusOr<Sample> back = DecodeSample(packed_v1);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->index, 11u);
  ::capnp::MallocMessageBuilder builder2;
  auto r2 = builder2.initRoot<capnp::SampleRecord>();
  r2.setFormatVersion(2);
  r2.setIndex(12);
  kj::Array<::capnp::word> flat = ::capnp::messageToFlatArray(builder2);
  std::string unpacked_v2(reinterpret_cast<const char*>(flat.begin()), flat.size() * 8);
  back = DecodeSample(unpacked_v2);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->index, 12u);
}

TEST(RecordCodec, NewerFormatVersionOfAPackedSampleIsFailedPrecondition) {
  std::string bytes = EncodeSample(MakeSample(1, 10), 1, kStoreFormatVersion + 1);
  ASSERT_TRUE(IsPackedRecord(bytes));
  StatusOr<Sample> back = DecodeSample(bytes);
  EXPECT_EQ(back.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(
      back.status().message().find("format version " + std::to_string(kStoreFormatVersion + 1)),
      std::string::npos)
      << back.status();
}

TEST(RecordCodec, EveryTruncationOfAPackedSampleIsDataLoss) {
  std::string bytes = EncodeSample(MakeSample(1, 200), 1);
  ASSERT_TRUE(IsPackedRecord(bytes));
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    StatusOr<Sample> back = DecodeSample(std::string_view(bytes).substr(0, cut));
    ASSERT_FALSE(back.ok()) << "cut at " << cut;
    ASSERT_EQ(back.status().code(), StatusCode::kDataLoss)
        << "cut at " << cut << ": " << back.status();
  }
}

TEST(RecordCodec, PackedRecordThatUnpacksPastTheTraversalLimitIsDataLoss) {
  std::string bomb = "\x10\x01";  // segment table: one segment of 1 word ... then zero runs
  for (int i = 0; i < 100; ++i) bomb += std::string("\x00\xff", 2);
  StatusOr<Sample> back = DecodeSample(bomb, {.traversal_limit_words = 1000});
  EXPECT_EQ(back.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(back.status().message().find("more than"), std::string::npos) << back.status();
}

}  // namespace
}  // namespace glm::schema
