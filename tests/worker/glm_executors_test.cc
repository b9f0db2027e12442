// The "glm" executors in process, against a real StoreServer and RocksDB
// store on loopback: tokenize tasks in any order and repeated, then corrupt
// tasks repeated, give exactly the documents and samples that
// TokenizeCorpus + SampleFactory give directly. Failure paths: bad params,
// a store made with another tokenizer, no storage server.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <zmq.hpp>

#include "dataloader/document_source.h"
#include "dataloader/tokenizer.h"
#include "schema/record_codec.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_server.h"
#include "worker/glm_executors.h"

namespace glm::worker {
namespace {

namespace fs = std::filesystem;

class GlmExecutorsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("glm_executors_test_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_ / "corpus");
    const char* sentences[] = {"The state of the Union is strong.", "Congress shall meet at least once a year.",
                               "Peace with all nations is our first wish!", "The public debt was reduced.",
                               "Treaties were concluded with several tribes.", "The mint coined gold and silver."};
    for (int f = 0; f < 3; ++f) {
      std::ofstream out(*root_ / "corpus" / ("doc" + std::to_string(f) + ".txt"));
      for (int para = 0; para < 8 + 3 * f; ++para) {
        for (int s = 0; s < 3 + para % 4; ++s) out << sentences[(f * 5 + para * 3 + s) % 6] << " ";
        out << "\n\n";
      }
    }
    dataloader::TokenizerTrainOptions o;
    o.corpus.paths = {(*root_ / "corpus").string()};
    o.output_dir = (*root_ / "tok").string();
    o.vocab_size = 120;
    auto r = dataloader::TrainTokenizer(o, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }

  void SetUp() override {
    auto tok = dataloader::GlmTokenizer::Load((*root_ / "tok").string());
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::move(tok).value();
    OpenStore(tokenizer_->hash());
    RegisterGlmExecutors(&registry_);
  }
  void TearDown() override {
    server_.reset();
    store_.reset();
    fs::remove_all(*root_ / "store");
  }
  void OpenStore(uint64_t hash) {
    server_.reset();
    store_.reset();
    fs::remove_all(*root_ / "store");
    storage::StoreOptions so;
    so.path = (*root_ / "store").string();
    so.tokenizer_hash = hash;
    auto store = storage::RocksDbSampleStore::Open(so);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
    auto server = storage::StoreServer::Start(store_.get(), &context_, {});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value();
  }
  JobSpec Job() const {
    JobSpec job;
    job.seed = 77;
    job.executor = "glm";
    job.params = {{"store", server_->endpoint()}, {"tokenizer", (*root_ / "tok").string()}, {"seq_len", "48"}};
    return job;
  }
  StatusOr<TaskResult> RunTask(const JobSpec& job, const TaskSpec& task) {
    ExecutorContext context("node-a", job, nullptr);
    GLM_ASSIGN_OR_RETURN(auto executor, registry_.Create("glm", task.kind, context));
    return executor->Run(task, context);
  }
  static TaskSpec Tokenize(uint32_t shard) {
    TaskSpec t;
    t.kind = "tokenize";
    t.shard_index = shard;
    t.shard_path = (*root_ / "corpus" / ("doc" + std::to_string(shard) + ".txt")).string();
    return t;
  }
  static TaskSpec Corrupt(Objective o, uint64_t begin, uint64_t end) {
    TaskSpec t;
    t.kind = "corrupt";
    t.objective = static_cast<int>(o);
    t.begin = begin;
    t.end = end;
    return t;
  }

  static fs::path* root_;
  zmq::context_t context_;
  std::unique_ptr<dataloader::GlmTokenizer> tokenizer_;
  std::unique_ptr<storage::RocksDbSampleStore> store_;
  std::unique_ptr<storage::StoreServer> server_;
  ExecutorRegistry registry_;
};
fs::path* GlmExecutorsTest::root_ = nullptr;

TEST_F(GlmExecutorsTest, ShardsInAnyOrderAndRerunsGiveTheInProcessDocumentsAndSamples) {
  const JobSpec job = Job();
  for (uint32_t shard : {2u, 0u, 1u, 2u}) {
    auto r = RunTask(job, Tokenize(shard));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_GT(r->output_count, 0u);
    EXPECT_EQ(r->output_bytes, fs::file_size(Tokenize(shard).shard_path));
  }
  for (int rep = 0; rep < 2; ++rep) {
    for (Objective o : {Objective::kBlank, Objective::kSentence, Objective::kDocument}) {
      auto r = RunTask(job, Corrupt(o, 5, 21));
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->output_count, 16u);
    }
  }
  // The same, built directly.
  dataloader::CorpusOptions c;
  c.paths = {(*root_ / "corpus").string()};
  dataloader::CorpusStats stats;
  auto docs = dataloader::TokenizeCorpus(c, *tokenizer_, &stats);
  ASSERT_TRUE(docs.ok()) << docs.status();
  auto lengths = store_->ListDocumentLengths();
  ASSERT_TRUE(lengths.ok()) << lengths.status();
  ASSERT_EQ(lengths->size(), docs->size());
  for (uint64_t i = 0; i < docs->size(); ++i) {
    auto got = store_->GetDocument(i);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(schema::RecordsEqual(*got, (*docs)[i])) << "document " << i;
  }
  dataloader::InMemoryDocumentSource source(*docs);
  dataloader::SampleOptions so;
  so.seed = 77;
  so.seq_length = 48;
  dataloader::SampleFactory factory(&source, tokenizer_->vocab(), so);
  for (Objective o : {Objective::kBlank, Objective::kSentence, Objective::kDocument}) {
    auto stored = store_->GetSampleRange(o, 0, 5, 21);
    ASSERT_TRUE(stored.ok()) << stored.status();
    for (uint64_t i = 5; i < 21; ++i) {
      auto want = factory.Make(o, 0, i);
      ASSERT_TRUE(want.ok());
      EXPECT_TRUE(schema::RecordsEqual((*stored)[i - 5], *want)) << ObjectiveName(o) << " " << i;
    }
    EXPECT_FALSE(store_->GetSampleRange(o, 0, 0, 6).ok());  // only [5, 21) was asked for
  }
}

TEST_F(GlmExecutorsTest, BadParamsAreInvalidArgumentNamingTheParam) {
  JobSpec job = Job();
  job.params["seq_len"] = "long";
  auto r = RunTask(job, Tokenize(0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("seq_len"), std::string::npos) << r.status();
  job = Job();
  job.params.erase("store");
  r = RunTask(job, Tokenize(0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("store"), std::string::npos) << r.status();
}

TEST_F(GlmExecutorsTest, StoreOfAnotherTokenizerIsFailedPrecondition) {
  OpenStore(tokenizer_->hash() ^ 1);
  auto r = RunTask(Job(), Tokenize(0));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("tokenizer"), std::string::npos) << r.status();
}

TEST_F(GlmExecutorsTest, NoStorageServerIsUnavailableSoTheTaskIsRetried) {
  JobSpec job = Job();
  job.params["store"] = "tcp://127.0.0.1:1";  // nothing listens there
  job.params["store_timeout_ms"] = "300";
  ExecutorContext context("node-a", job, nullptr);
  auto created = registry_.Create("glm", "tokenize", context);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kUnavailable) << created.status();
}

TEST_F(GlmExecutorsTest, CorruptBeforeAnyTokenizeIsFailedPrecondition) {
  auto r = RunTask(Job(), Corrupt(Objective::kBlank, 0, 4));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status();
}

}  // namespace
}  // namespace glm::worker
