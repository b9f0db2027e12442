// Document staging (storage/staging.h) through a real StoreServer and
// StoreClient on loopback with a real RocksDB store: what the pipeline's
// tokenize executors and the first corrupt executor do.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <zmq.hpp>

#include "schema/record_codec.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/staging.h"
#include "storage/store_client.h"
#include "storage/store_server.h"
#include "storage/synthetic.h"

namespace glm::storage {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kHash = 0x5eed;

class StagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(::testing::TempDir()) / ("staging_" + std::to_string(getpid()) + "_" + std::to_string(++counter));
    fs::remove_all(dir_);
    StoreOptions o;
    o.path = dir_.string();
    o.tokenizer_hash = kHash;
    auto s = RocksDbSampleStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(s).value();
    auto server = StoreServer::Start(store_.get(), &context_, {});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
    StoreClientOptions co;
    co.endpoint = server_->endpoint();
    co.timeout_ms = 3000;
    co.max_records_per_request = 2;  // every shard below takes several requests
    auto c = StoreClient::Connect(&context_, co);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(c).value();
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  fs::path dir_;
  zmq::context_t context_;
  std::unique_ptr<RocksDbSampleStore> store_;
  std::unique_ptr<StoreServer> server_;
  std::unique_ptr<StoreClient> client_;
};

// Documents of two shards; ids are what a tokenizer actor would give (local).
std::vector<Document> ShardDocs(uint64_t seed, size_t n) {
  std::vector<Document> docs;
  for (size_t i = 0; i < n; ++i) docs.push_back(MakeSyntheticDocument(seed * 100 + i, 5 + (seed * 7 + i) % 11));
  return docs;
}

TEST_F(StagingTest, ShardsStagedInAnyOrderFinalizeToDenseIdsInShardOrder) {
  const auto shard0 = ShardDocs(0, 3), shard1 = ShardDocs(1, 5);
  ASSERT_TRUE(client_->StageDocuments(1, shard1).ok());  // shard 1 finishes first
  ASSERT_TRUE(client_->StageDocuments(0, shard0).ok());
  ASSERT_TRUE(client_->StageDocuments(1, shard1).ok());  // a rerun of shard 1
  auto n = client_->FinalizeDocuments();
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(*n, 8u);
  auto docs = client_->GetDocuments({0, 1, 2, 3, 4, 5, 6, 7});
  ASSERT_TRUE(docs.ok()) << docs.status();
  std::vector<Document> expected = shard0;
  expected.insert(expected.end(), shard1.begin(), shard1.end());
  auto lengths = client_->ListDocumentLengths();
  ASSERT_TRUE(lengths.ok()) << lengths.status();
  ASSERT_EQ(lengths->size(), 8u);
  for (uint64_t i = 0; i < 8; ++i) {
    expected[i].id = i;
    EXPECT_TRUE(schema::RecordsEqual((*docs)[i], expected[i])) << "document " << i;
    EXPECT_EQ((*lengths)[i], expected[i].tokens.size());
  }
}

TEST_F(StagingTest, FinalizeIsIdempotentAndFixesTheDocuments) {
  ASSERT_TRUE(client_->StageDocuments(0, ShardDocs(0, 3)).ok());
  ASSERT_EQ(*client_->FinalizeDocuments(), 3u);
  // A late rerun of the same tokenize task is harmless ...
  EXPECT_TRUE(client_->StageDocuments(0, ShardDocs(0, 3)).ok());
  EXPECT_EQ(*client_->FinalizeDocuments(), 3u);
  // ... but documents that differ from the finalized ones are refused.
  Status s = client_->StageDocuments(0, ShardDocs(7, 3));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(*client_->FinalizeDocuments(), 3u);
  EXPECT_EQ(store_->ListDocumentLengths()->size(), 3u);
}

TEST_F(StagingTest, FinalizeWithNothingStagedIsFailedPrecondition) {
  auto n = client_->FinalizeDocuments();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kFailedPrecondition) << n.status();
  EXPECT_NE(n.status().message().find("tokenize"), std::string::npos) << n.status();
}

TEST_F(StagingTest, EmptyDocumentIsRefusedAndNothingOfTheBatchIsStaged) {
  std::vector<Document> docs = ShardDocs(0, 2);
  docs.push_back(Document{});
  // One request holds documents 2..3 here (max 2 per request): the first
  // request lands, the second is refused whole.
  Status s = client_->StageDocuments(0, docs);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("document 2 of shard 0"), std::string::npos) << s;
  auto staged = store_->ScanMeta(kStagingDocsPrefix);
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(staged->size(), 2u);
}

TEST_F(StagingTest, DocumentLengthsBeforeFinalizeAreFailedPrecondition) {
  ASSERT_TRUE(client_->StageDocuments(0, ShardDocs(0, 3)).ok());
  auto lengths = client_->ListDocumentLengths();
  ASSERT_FALSE(lengths.ok());
  EXPECT_EQ(lengths.status().code(), StatusCode::kFailedPrecondition) << lengths.status();
}

}  // namespace
}  // namespace glm::storage
