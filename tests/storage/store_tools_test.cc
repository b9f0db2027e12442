#include "storage/store_tools.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "schema/record_codec.h"
#include "storage/synthetic.h"

namespace glm::storage {
namespace {

namespace fs = std::filesystem;
using Family = RocksDbSampleStore::Family;

class StoreToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(::testing::TempDir()) / ("tools_" + std::to_string(getpid()) + "_" + std::to_string(++counter));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<RocksDbSampleStore> Open(const std::string& name) {
    StoreOptions o;
    o.path = (dir_ / name).string();
    o.tokenizer_hash = 77;
    auto s = RocksDbSampleStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(s).value();
  }
  std::vector<Sample> Samples() {
    std::vector<Sample> v;
    for (int o = 0; o < 3; ++o) {
      for (uint64_t i = 0; i < 20; ++i) v.push_back(MakeSyntheticSample(static_cast<Objective>(o), 1, i, 32));
    }
    return v;
  }
  fs::path dir_;
};

TEST_F(StoreToolsTest, VerifyPassesOnAGoodStoreAndNamesEveryBadKey) {
  auto store = Open("a");
  ASSERT_TRUE(store->PutSamples(Samples()).ok());
  ASSERT_TRUE(store->PutDocuments({MakeSyntheticDocument(0, 10), MakeSyntheticDocument(1, 4)}).ok());
  ASSERT_TRUE(store->BuildDocumentIndex().ok());
  auto report = VerifyStore(store.get());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
  EXPECT_EQ(report->num_records, 60u + 2 + 2);

  ASSERT_TRUE(store->PutRawForTesting(Family::kSamples, EncodeSampleKey({Objective::kSentence, 1, 4}), "xx").ok());
  ASSERT_TRUE(store->PutRawForTesting(Family::kDocs, EncodeDocKey(1),
                                      schema::EncodeDocument(MakeSyntheticDocument(1, 4), 78)).ok());
  ASSERT_TRUE(store->PutRawForTesting(Family::kSamples, "short", "yy").ok());
  report = VerifyStore(store.get());
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 3u);
  std::string all;
  for (const auto& p : report->problems) all += p + "\n";
  EXPECT_NE(all.find("samples/sentence/epoch=1/index=4"), std::string::npos) << all;
  EXPECT_NE(all.find("docs/id=1"), std::string::npos) << all;
  EXPECT_NE(all.find("samples/0x73686f7274"), std::string::npos) << all;
}

TEST_F(StoreToolsTest, DigestDependsOnContentNotOnWriteOrderOrBatching) {
  std::vector<Sample> samples = Samples();
  auto a = Open("a");
  ASSERT_TRUE(a->PutSamples(samples).ok());
  ASSERT_TRUE(a->PutDocuments({MakeSyntheticDocument(0, 10)}).ok());
  auto b = Open("b");
  std::shuffle(samples.begin(), samples.end(), std::mt19937(3));
  for (const Sample& s : samples) ASSERT_TRUE(b->PutSamples({s}).ok());
  ASSERT_TRUE(b->PutSamples(samples).ok());  // a retry rewrites the same keys
  ASSERT_TRUE(b->PutDocuments({MakeSyntheticDocument(0, 10)}).ok());
  ASSERT_TRUE(b->Flush().ok());
  auto da = DigestStore(a.get()), db = DigestStore(b.get());
  ASSERT_TRUE(da.ok() && db.ok());
  EXPECT_EQ(da->hex, db->hex);
  EXPECT_EQ(da->hex.size(), 64u);
  EXPECT_EQ(da->num_samples, 60u);
  EXPECT_EQ(da->num_documents, 1u);
  Sample changed = samples[0];
  changed.loss_mask[0] ^= 1;
  ASSERT_TRUE(b->PutSamples({changed}).ok());
  EXPECT_NE(DigestStore(b.get())->hex, da->hex);
}

TEST_F(StoreToolsTest, DigestIsTheSameForPackedAndVersionOneUnpackedRecords) {
  std::vector<Sample> samples = Samples();
  auto a = Open("a");
  ASSERT_TRUE(a->PutSamples(samples).ok());  // packed (format version 2)
  auto b = Open("b");
  std::vector<std::string> v1;
  for (const Sample& s : samples) v1.push_back(schema::EncodeSample(s, 77, 1));
  ASSERT_FALSE(schema::IsPackedRecord(v1[0]));
  ASSERT_TRUE(b->PutEncodedSamples(v1).ok());  // as a version-1 writer left them
  auto c = Open("c");
  ASSERT_TRUE(c->PutEncodedSamples({v1.begin(), v1.begin() + 30}).ok());  // half of each
  ASSERT_TRUE(c->PutSamples({samples.begin() + 30, samples.end()}).ok());
  auto da = DigestStore(a.get()), db = DigestStore(b.get()), dc = DigestStore(c.get());
  ASSERT_TRUE(da.ok() && db.ok() && dc.ok());
  EXPECT_EQ(da->hex, db->hex);
  EXPECT_EQ(da->hex, dc->hex);
  EXPECT_EQ(db->num_samples, 60u);
  auto report = VerifyStore(c.get());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok()) << report->problems.front();
}

TEST_F(StoreToolsTest, ForEachSampleFiltersByObjectiveInKeyOrder) {
  auto store = Open("a");
  ASSERT_TRUE(store->PutSamples(Samples()).ok());
  std::vector<uint64_t> seen;
  ASSERT_TRUE(ForEachSample(store.get(), Objective::kSentence, [&](const Sample& s) {
                EXPECT_EQ(s.objective, Objective::kSentence);
                seen.push_back(s.index);
                return true;
              }).ok());
  ASSERT_EQ(seen.size(), 20u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  int all = 0;
  ASSERT_TRUE(ForEachSample(store.get(), std::nullopt, [&](const Sample&) { return ++all < 45; }).ok());
  EXPECT_EQ(all, 45);
}

TEST_F(StoreToolsTest, StatsCountRecordsPerFamilyAndEpoch) {
  auto store = Open("a");
  ASSERT_TRUE(store->PutSamples(Samples()).ok());
  ASSERT_TRUE(store->PutSamples({MakeSyntheticSample(Objective::kBlank, 2, 0, 8)}).ok());
  ASSERT_TRUE(store->PutDocuments({MakeSyntheticDocument(0, 10), MakeSyntheticDocument(1, 5)}).ok());
  ASSERT_TRUE(store->Flush().ok());
  auto stats = store->ComputeStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->num_samples, 61u);
  EXPECT_EQ(stats->num_docs, 2u);
  EXPECT_EQ(stats->num_doc_tokens, 15u);
  ASSERT_EQ(stats->samples_by_epoch.size(), 4u);
  EXPECT_EQ(stats->samples_by_epoch[1], std::make_tuple(Objective::kBlank, 2u, uint64_t{1}));
  EXPECT_GT(stats->bytes_on_disk, 0u);
  EXPECT_GT(stats->sst_bytes[2], 0u);
}

}  // namespace
}  // namespace glm::storage
