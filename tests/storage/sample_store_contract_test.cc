// The behaviour every SampleStore implementation shares, run against the
// RocksDB store and the in-memory fake.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>

#include <unistd.h>

#include "schema/record_codec.h"
#include "storage/document_index.h"
#include "storage/in_memory_sample_store.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/synthetic.h"

namespace glm::storage {
namespace {

constexpr uint64_t kHash = 0x5eed;

struct Impl {
  std::string name;
  std::function<std::unique_ptr<SampleStore>(const std::string& dir)> make;
};

class SampleStoreContract : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("contract_" + GetParam().name + "_" +
            std::to_string(::getpid()) + "_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()).substr(0, 24) +
            std::to_string(++counter_));
    std::filesystem::remove_all(dir_);
    store_ = GetParam().make(dir_.string());
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<SampleStore> store_;
};

TEST_P(SampleStoreContract, SamplesRoundTripThroughMultiGetAndRange) {
  std::vector<Sample> batch;
  for (uint64_t i = 0; i < 50; ++i) batch.push_back(MakeSyntheticSample(Objective::kBlank, 2, i, 64));
  ASSERT_TRUE(store_->PutSamples(batch).ok());
  StatusOr<std::vector<Sample>> range = store_->GetSampleRange(Objective::kBlank, 2, 10, 20);
  ASSERT_TRUE(range.ok()) << range.status();
  ASSERT_EQ(range->size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(schema::RecordsEqual((*range)[i], batch[10 + i]));
  StatusOr<std::vector<Sample>> got =
      store_->MultiGetSamples({{Objective::kBlank, 2, 49}, {Objective::kBlank, 2, 0}});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(schema::RecordsEqual((*got)[0], batch[49]));
  EXPECT_TRUE(schema::RecordsEqual((*got)[1], batch[0]));
  EXPECT_TRUE(store_->GetSampleRange(Objective::kBlank, 2, 5, 5).ok());
}

TEST_P(SampleStoreContract, RangeDoesNotLeakIntoNeighbouringEpochsOrObjectives) {
  std::vector<Sample> batch = {MakeSyntheticSample(Objective::kBlank, 1, 0, 16),
                               MakeSyntheticSample(Objective::kBlank, 1, 1, 16),
                               MakeSyntheticSample(Objective::kBlank, 2, 2, 16),
                               MakeSyntheticSample(Objective::kSentence, 1, 2, 16)};
  ASSERT_TRUE(store_->PutSamples(batch).ok());
  StatusOr<std::vector<Sample>> r = store_->GetSampleRange(Objective::kBlank, 1, 0, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("samples/blank/epoch=1/index=2"), std::string::npos) << r.status();
}

TEST_P(SampleStoreContract, MissingSampleIsNotFoundNamingTheKey) {
  StatusOr<Sample> s = store_->GetSample({Objective::kDocument, 7, 123456789});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_NE(s.status().message().find("samples/document/epoch=7/index=123456789"), std::string::npos)
      << s.status();
}

TEST_P(SampleStoreContract, RewritingTheSameBatchIsHarmless) {
  std::vector<Sample> batch;
  for (uint64_t i = 0; i < 5; ++i) batch.push_back(MakeSyntheticSample(Objective::kSentence, 0, i, 32));
  ASSERT_TRUE(store_->PutSamples(batch).ok());
  ASSERT_TRUE(store_->PutSamples(batch).ok());
  StatusOr<std::vector<Sample>> r = store_->GetSampleRange(Objective::kSentence, 0, 0, 5);
  ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(schema::RecordsEqual((*r)[i], batch[i]));
  EXPECT_FALSE(store_->GetSample({Objective::kSentence, 0, 5}).ok());
}

TEST_P(SampleStoreContract, EncodedPutChecksEveryRecordBeforeWritingAny) {
  Sample good = MakeSyntheticSample(Objective::kBlank, 0, 1, 16);
  std::vector<std::string> records = {schema::EncodeSample(good, kHash), "garbage!"};
  Status s = store_->PutEncodedSamples(records);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_EQ(store_->GetSample(KeyOf(good)).status().code(), StatusCode::kNotFound);
  records = {schema::EncodeSample(good, kHash + 1)};
  EXPECT_EQ(store_->PutEncodedSamples(records).code(), StatusCode::kFailedPrecondition);
  records = {schema::EncodeSample(good, kHash)};
  ASSERT_TRUE(store_->PutEncodedSamples(records).ok());
  StatusOr<std::vector<std::string>> raw = store_->MultiGetEncodedSamples({KeyOf(good)});
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->front(), records.front());
}

TEST_P(SampleStoreContract, DocumentsAndTheirIndexLocateGlobalTokens) {
  std::vector<Document> docs = {MakeSyntheticDocument(0, 10), MakeSyntheticDocument(1, 0),
                                MakeSyntheticDocument(2, 5)};
  ASSERT_TRUE(store_->PutDocuments(docs).ok());
  EXPECT_EQ(store_->ListDocumentLengths().status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->BuildDocumentIndex().ok());
  StatusOr<std::vector<uint64_t>> lengths = store_->ListDocumentLengths();
  ASSERT_TRUE(lengths.ok()) << lengths.status();
  EXPECT_EQ(*lengths, (std::vector<uint64_t>{10, 0, 5}));
  DocumentIndex index(*lengths);
  EXPECT_EQ(index.total_tokens(), 15u);
  StatusOr<TokenPosition> p = index.Locate(12);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->doc_id, 2u);
  EXPECT_EQ(p->offset, 2u);
  EXPECT_EQ(index.Locate(9)->doc_id, 0u);
  EXPECT_FALSE(index.Locate(15).ok());
  StatusOr<Document> d = store_->GetDocument(2);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(schema::RecordsEqual(*d, docs[2]));
  EXPECT_EQ(store_->GetDocument(3).status().code(), StatusCode::kNotFound);
  // New documents invalidate the index.
  ASSERT_TRUE(store_->PutDocuments({MakeSyntheticDocument(3, 1)}).ok());
  EXPECT_EQ(store_->ListDocumentLengths().status().code(), StatusCode::kFailedPrecondition);
}

TEST_P(SampleStoreContract, DocumentIndexRefusesGaps) {
  ASSERT_TRUE(store_->PutDocuments({MakeSyntheticDocument(0, 3), MakeSyntheticDocument(2, 3)}).ok());
  Status s = store_->BuildDocumentIndex();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("docs/id=1"), std::string::npos) << s;
}

TEST_P(SampleStoreContract, MetaKeyValueScansByPrefixAndAppliesBatches) {
  ASSERT_TRUE(store_->PutMeta("lease/2", "b").ok());
  ASSERT_TRUE(store_->PutMeta("lease/1", "a").ok());
  ASSERT_TRUE(store_->PutMeta("node/1", "n").ok());
  EXPECT_EQ(*store_->GetMeta("lease/1"), "a");
  EXPECT_EQ(store_->GetMeta("nope").status().code(), StatusCode::kNotFound);
  auto scan = store_->ScanMeta("lease/");
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->size(), 2u);
  EXPECT_EQ((*scan)[0].first, "lease/1");
  EXPECT_EQ((*scan)[1].second, "b");
  ASSERT_TRUE(store_->WriteMeta({{"lease/1", std::nullopt}, {"lease/3", "c"}}).ok());
  scan = store_->ScanMeta("lease/");
  ASSERT_EQ(scan->size(), 2u);
  EXPECT_EQ((*scan)[0].first, "lease/2");
  EXPECT_EQ((*scan)[1].first, "lease/3");
  ASSERT_TRUE(store_->DeleteMeta("node/1").ok());
  ASSERT_TRUE(store_->DeleteMeta("node/1").ok());
  EXPECT_EQ(store_->ScanMeta("")->size(), 2u);  // the store's own records are not visible
}

INSTANTIATE_TEST_SUITE_P(
    Implementations, SampleStoreContract,
    ::testing::Values(
        Impl{"rocksdb",
             [](const std::string& dir) -> std::unique_ptr<SampleStore> {
               StoreOptions o;
               o.path = dir;
               o.tokenizer_hash = kHash;
               auto s = RocksDbSampleStore::Open(o);
               EXPECT_TRUE(s.ok()) << s.status();
               return s.ok() ? std::move(s).value() : nullptr;
             }},
        Impl{"in_memory",
             [](const std::string&) -> std::unique_ptr<SampleStore> {
               return std::make_unique<InMemorySampleStore>(kHash);
             }}),
    [](const ::testing::TestParamInfo<Impl>& info) { return info.param.name; });

}  // namespace
}  // namespace glm::storage
