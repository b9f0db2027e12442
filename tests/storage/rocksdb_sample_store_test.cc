// RocksDbSampleStore beyond the shared contract: open modes and every
// failure path (corrupt, truncated, wrong tokenizer, newer format, full disk,
// locked by another process, a writer killed mid-batch).
#include "storage/rocksdb_sample_store.h"

#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "schema/record_codec.h"
#include "storage/store_tools.h"
#include "storage/synthetic.h"
#include "tests/storage/child_process.h"

namespace glm::storage {
namespace {

namespace fs = std::filesystem;
using Family = RocksDbSampleStore::Family;
constexpr uint64_t kHash = 0x5eed;

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class RocksDbSampleStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(::testing::TempDir()) /
           ("rocks_" + std::to_string(getpid()) + "_" + std::to_string(++counter));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  StoreOptions Options(OpenMode mode = OpenMode::kReadWrite) const {
    StoreOptions o;
    o.path = (dir_ / "store").string();
    o.tokenizer_hash = kHash;
    o.mode = mode;
    o.secondary_path = (dir_ / "secondary").string();
    return o;
  }
  std::unique_ptr<RocksDbSampleStore> OpenOrDie(const StoreOptions& o) {
    auto s = RocksDbSampleStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::vector<Sample> Batch(uint64_t begin, uint64_t end) {
    std::vector<Sample> v;
    for (uint64_t i = begin; i < end; ++i) v.push_back(MakeSyntheticSample(Objective::kBlank, 0, i, 64));
    return v;
  }

  fs::path dir_;
};

TEST_F(RocksDbSampleStoreTest, RecordsSurviveReopen) {
  {
    auto store = OpenOrDie(Options());
    ASSERT_TRUE(store->PutSamples(Batch(0, 10)).ok());
    ASSERT_TRUE(store->PutMeta("job", "spec").ok());
  }
  StoreOptions o = Options();
  o.tokenizer_hash = 0;  // accept the store's own
  auto store = OpenOrDie(o);
  EXPECT_EQ(store->tokenizer_hash(), kHash);
  auto r = store->GetSampleRange(Objective::kBlank, 0, 0, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(schema::RecordsEqual(r->back(), Batch(9, 10).front()));
  EXPECT_EQ(*store->GetMeta("job"), "spec");
}

TEST_F(RocksDbSampleStoreTest, KeysSortNumericallyAcrossByteBoundaries) {
  auto store = OpenOrDie(Options());
  std::vector<Sample> batch;
  for (uint64_t i : {255ull, 256ull, 1ull, 65536ull, 0ull}) {
    batch.push_back(MakeSyntheticSample(Objective::kBlank, 0, i, 8));
  }
  ASSERT_TRUE(store->PutSamples(batch).ok());
  std::vector<uint64_t> seen;
  ASSERT_TRUE(store
                  ->Scan(Family::kSamples, "",
                         [&](std::string_view key, std::string_view) {
                           seen.push_back(DecodeSampleKey(key)->index);
                           return true;
                         })
                  .ok());
  EXPECT_EQ(seen, (std::vector<uint64_t>{0, 1, 255, 256, 65536}));
}

TEST_F(RocksDbSampleStoreTest, CreatingAStoreNeedsATokenizerHash) {
  StoreOptions o = Options();
  o.tokenizer_hash = 0;
  auto s = RocksDbSampleStore::Open(o);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RocksDbSampleStoreTest, BadOptionsNameTheField) {
  StoreOptions o = Options();
  o.samples.compression = "brotli";
  auto s = RocksDbSampleStore::Open(o);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.status().message(), "samples-compression")) << s.status();
  o = Options(OpenMode::kSecondary);
  o.secondary_path.clear();
  EXPECT_EQ(RocksDbSampleStore::Open(o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RocksDbSampleStoreTest, OpeningAMissingStoreReadOnlyIsNotFound) {
  auto s = RocksDbSampleStore::Open(Options(OpenMode::kReadOnly));
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(s.status().message(), (dir_ / "store").string())) << s.status();
}

TEST_F(RocksDbSampleStoreTest, ReadOnlyInstanceReadsButRefusesWrites) {
  { ASSERT_TRUE(OpenOrDie(Options())->PutSamples(Batch(0, 3)).ok()); }
  auto ro = OpenOrDie(Options(OpenMode::kReadOnly));
  EXPECT_TRUE(ro->GetSample({Objective::kBlank, 0, 2}).ok());
  Status s = ro->PutSamples(Batch(3, 4));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ro->PutMeta("a", "b").code(), StatusCode::kFailedPrecondition);
}

TEST_F(RocksDbSampleStoreTest, SecondaryInstanceFollowsTheWriterOnRefresh) {
  auto writer = OpenOrDie(Options());
  ASSERT_TRUE(writer->PutSamples(Batch(0, 3)).ok());
  auto reader = OpenOrDie(Options(OpenMode::kSecondary));
  EXPECT_TRUE(reader->GetSample({Objective::kBlank, 0, 2}).ok());
  ASSERT_TRUE(writer->PutSamples(Batch(3, 6)).ok());
  EXPECT_EQ(reader->GetSample({Objective::kBlank, 0, 5}).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(reader->Refresh().ok());
  auto r = reader->GetSampleRange(Objective::kBlank, 0, 0, 6);
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(reader->PutSamples(Batch(0, 1)).code(), StatusCode::kFailedPrecondition);
}

TEST_F(RocksDbSampleStoreTest, CorruptRecordIsDataLossNamingTheKey) {
  auto store = OpenOrDie(Options());
  ASSERT_TRUE(store->PutSamples(Batch(0, 5)).ok());
  ASSERT_TRUE(store->PutRawForTesting(Family::kSamples, EncodeSampleKey({Objective::kBlank, 0, 3}),
                                      "\x01\x02\x03 not a record at all")
                  .ok());
  auto r = store->GetSampleRange(Objective::kBlank, 0, 0, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(r.status().message(), "samples/blank/epoch=0/index=3")) << r.status();
  EXPECT_TRUE(Contains(r.status().message(), "glm store verify")) << r.status();
  // The neighbours are intact.
  EXPECT_TRUE(store->GetSampleRange(Objective::kBlank, 0, 0, 3).ok());
  EXPECT_TRUE(store->GetSample({Objective::kBlank, 0, 4}).ok());
}

TEST_F(RocksDbSampleStoreTest, TruncatedRecordIsDataLossNamingTheKey) {
  auto store = OpenOrDie(Options());
  std::string bytes = schema::EncodeSample(Batch(7, 8).front(), kHash);
  ASSERT_TRUE(store->PutRawForTesting(Family::kSamples, EncodeSampleKey({Objective::kBlank, 0, 7}),
                                      bytes.substr(0, bytes.size() / 2))
                  .ok());
  auto r = store->GetSample({Objective::kBlank, 0, 7});
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(r.status().message(), "samples/blank/epoch=0/index=7")) << r.status();
}

TEST_F(RocksDbSampleStoreTest, RecordUnderTheWrongKeyIsDataLoss) {
  auto store = OpenOrDie(Options());
  ASSERT_TRUE(store->PutRawForTesting(Family::kSamples, EncodeSampleKey({Objective::kBlank, 0, 1}),
                                      schema::EncodeSample(Batch(2, 3).front(), kHash))
                  .ok());
  EXPECT_EQ(store->GetSample({Objective::kBlank, 0, 1}).status().code(), StatusCode::kDataLoss);
}

TEST_F(RocksDbSampleStoreTest, OpeningWithAnotherTokenizerIsFailedPrecondition) {
  { OpenOrDie(Options()); }
  StoreOptions o = Options();
  o.tokenizer_hash = 0xbad;
  auto s = RocksDbSampleStore::Open(o);
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s.status().message(), o.path)) << s.status();
  EXPECT_TRUE(Contains(s.status().message(), "0000000000005eed")) << s.status();
}

TEST_F(RocksDbSampleStoreTest, RecordOfAnotherTokenizerIsFailedPreconditionNamingTheKey) {
  auto store = OpenOrDie(Options());
  ASSERT_TRUE(store->PutRawForTesting(Family::kSamples, EncodeSampleKey({Objective::kBlank, 0, 0}),
                                      schema::EncodeSample(Batch(0, 1).front(), 0xbad))
                  .ok());
  auto r = store->GetSample({Objective::kBlank, 0, 0});
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(r.status().message(), "samples/blank/epoch=0/index=0")) << r.status();
}

TEST_F(RocksDbSampleStoreTest, NewerFormatVersionIsFailedPrecondition) {
  auto store = OpenOrDie(Options());
  ASSERT_TRUE(store->PutRawForTesting(Family::kDocs, EncodeDocKey(4),
                                      schema::EncodeDocument(MakeSyntheticDocument(4, 9), kHash,
                                                             schema::kStoreFormatVersion + 1))
                  .ok());
  auto d = store->GetDocument(4);
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(d.status().message(), "docs/id=4")) << d.status();
  // A store created by a newer glm refuses to open.
  schema::StoreInfo info;
  info.format_version = schema::kStoreFormatVersion + 1;
  info.tokenizer_hash = kHash;
  ASSERT_TRUE(store->PutRawForTesting(Family::kMeta, kMetaInfoKey, schema::EncodeStoreInfo(info)).ok());
  store.reset();
  auto s = RocksDbSampleStore::Open(Options());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s.status().message(), "store/info")) << s.status();
}

TEST_F(RocksDbSampleStoreTest, VersionOneStoreIsReadAsIsAndUpgradedOnlyByAWriter) {
  // A store as a version-1 glm left it: store/info says 1, samples unpacked.
  {
    auto store = OpenOrDie(Options());
    schema::StoreInfo info = store->info();
    info.format_version = 1;
    ASSERT_TRUE(
        store->PutRawForTesting(Family::kMeta, kMetaInfoKey, schema::EncodeStoreInfo(info)).ok());
    for (const Sample& s : Batch(0, 4)) {
      ASSERT_TRUE(store
                      ->PutRawForTesting(Family::kSamples, EncodeSampleKey(KeyOf(s)),
                                         schema::EncodeSample(s, kHash, 1))
                      .ok());
    }
  }
  {
    auto reader = OpenOrDie(Options(OpenMode::kReadOnly));
    EXPECT_EQ(reader->info().format_version, 1u);
    auto got = reader->GetSampleRange(Objective::kBlank, 0, 0, 4);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(schema::RecordsEqual((*got)[2], Batch(2, 3).front()));
  }
  {
    auto writer = OpenOrDie(Options());
    EXPECT_EQ(writer->info().format_version, schema::kStoreFormatVersion);
    ASSERT_TRUE(writer->PutSamples(Batch(4, 8)).ok());
    auto got = writer->GetSampleRange(Objective::kBlank, 0, 0, 8);  // both encodings
    ASSERT_TRUE(got.ok()) << got.status();
    std::vector<Sample> want = Batch(0, 8);
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_TRUE(schema::RecordsEqual((*got)[i], want[i])) << i;
    auto raw =
        writer->MultiGetEncodedSamples({{Objective::kBlank, 0, 1}, {Objective::kBlank, 0, 5}});
    ASSERT_TRUE(raw.ok());
    EXPECT_FALSE(schema::IsPackedRecord((*raw)[0]));  // old records are left as they are
    EXPECT_TRUE(schema::IsPackedRecord((*raw)[1]));
  }
  auto reader = OpenOrDie(Options(OpenMode::kReadOnly));
  EXPECT_EQ(reader->info().format_version, schema::kStoreFormatVersion);
}

TEST_F(RocksDbSampleStoreTest, WriterOfFormatVersionOneWritesWhatVersionOneReads) {
  StoreOptions o = Options();
  o.write_format_version = 1;
  {
    auto store = OpenOrDie(o);
    EXPECT_EQ(store->info().format_version, 1u);
    ASSERT_TRUE(store->PutSamples(Batch(0, 2)).ok());
    auto raw = store->MultiGetEncodedSamples({{Objective::kBlank, 0, 1}});
    ASSERT_TRUE(raw.ok());
    EXPECT_FALSE(schema::IsPackedRecord((*raw)[0]));
  }
  o.write_format_version = schema::kStoreFormatVersion + 1;
  auto bad = RocksDbSampleStore::Open(o);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status().message(), "write-format-version")) << bad.status();
}

// A file system whose writes fail with "no space" once `full` is set.
class FullDiskFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FullDiskFileSystem(std::shared_ptr<rocksdb::FileSystem> target)
      : rocksdb::FileSystemWrapper(std::move(target)) {}
  const char* Name() const override { return "FullDiskFileSystem"; }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, std::atomic<bool>* full)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(f)), full_(full) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* d) override {
      if (*full_) return rocksdb::IOStatus::NoSpace("simulated full disk");
      return target()->Append(data, o, d);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* d) override {
      if (*full_) return rocksdb::IOStatus::NoSpace("simulated full disk");
      return target()->Append(data, o, v, d);
    }

   private:
    std::atomic<bool>* full_;
  };

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* d) override {
    if (full) return rocksdb::IOStatus::NoSpace("simulated full disk creating " + name);
    std::unique_ptr<rocksdb::FSWritableFile> f;
    rocksdb::IOStatus s = target()->NewWritableFile(name, o, &f, d);
    if (s.ok()) result->reset(new File(std::move(f), &full));
    return s;
  }

  std::atomic<bool> full{false};
};

TEST_F(RocksDbSampleStoreTest, FullDiskIsResourceExhaustedAndKeepsCommittedBatches) {
  auto fs = std::make_shared<FullDiskFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  fs::create_directories(dir_ / "store");
  StoreOptions o = Options();
  o.env = env.get();
  {
    auto store = OpenOrDie(o);
    ASSERT_TRUE(store->PutSamples(Batch(0, 20)).ok());
    fs->full = true;
    Status s = store->PutSamples(Batch(20, 40));
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s;
    EXPECT_TRUE(Contains(s.message(), "disk is full")) << s;
    EXPECT_TRUE(Contains(s.message(), o.path)) << s;
    // What was committed is still readable from the same instance.
    EXPECT_TRUE(store->GetSampleRange(Objective::kBlank, 0, 0, 20).ok());
    fs->full = false;
  }
  // After space comes back, a reopen finds every committed batch intact and
  // nothing of the failed one.
  auto store = OpenOrDie(o);
  auto r = store->GetSampleRange(Objective::kBlank, 0, 0, 20);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(store->GetSample({Objective::kBlank, 0, 20}).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->PutSamples(Batch(20, 40)).ok());
}

TEST_F(RocksDbSampleStoreTest, StoreLockedByAnotherProcessIsFailedPreconditionWithAHint) {
  testing::ChildProcess child({STORE_WRITER_HELPER, (dir_ / "store").string(), "hold"});
  std::string line;
  ASSERT_TRUE(child.ReadLine(&line));
  ASSERT_EQ(line, "ready");
  auto s = RocksDbSampleStore::Open(Options());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition) << s.status();
  EXPECT_TRUE(Contains(s.status().message(), "another process")) << s.status();
  EXPECT_TRUE(Contains(s.status().message(), "LOCK")) << s.status();
  // Colocated readers are still welcome.
  EXPECT_TRUE(RocksDbSampleStore::Open(Options(OpenMode::kReadOnly)).ok());
  EXPECT_TRUE(RocksDbSampleStore::Open(Options(OpenMode::kSecondary)).ok());
}

TEST_F(RocksDbSampleStoreTest, WriterKilledMidBatchLeavesEveryCommittedBatchIntact) {
  constexpr int kBatch = 50;
  uint64_t last_committed = 0;
  {
    testing::ChildProcess child({STORE_WRITER_HELPER, (dir_ / "store").string(), "write",
                                 std::to_string(kBatch)});
    std::string line;
    int seen = 0;
    while (seen < 30 && child.ReadLine(&line)) {
      ASSERT_EQ(line.rfind("committed ", 0), 0u) << line;
      last_committed = std::stoull(line.substr(10));
      ++seen;
    }
    ASSERT_EQ(seen, 30);
    int status = child.Kill(SIGKILL);  // in the middle of a later batch
    EXPECT_TRUE(WIFSIGNALED(status));
  }
  auto store = OpenOrDie(Options());
  // Every batch the writer reported is there, field for field.
  for (uint64_t b = 0; b <= last_committed; ++b) {
    auto r = store->GetSampleRange(Objective::kBlank, 0, b * kBatch, (b + 1) * kBatch);
    ASSERT_TRUE(r.ok()) << "batch " << b << ": " << r.status();
    EXPECT_TRUE(schema::RecordsEqual(r->back(), MakeSyntheticSample(Objective::kBlank, 0,
                                                                    (b + 1) * kBatch - 1, 64)));
  }
  // Batches are atomic: a later batch is either whole or absent.
  uint64_t count = 0;
  ASSERT_TRUE(store
                  ->Scan(Family::kSamples, "",
                         [&](std::string_view, std::string_view value) {
                           EXPECT_TRUE(schema::DecodeSample(value).ok());
                           ++count;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(count % kBatch, 0u);
  EXPECT_GE(count, (last_committed + 1) * kBatch);
  auto report = VerifyStore(store.get());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->problems.front();
}

}  // namespace
}  // namespace glm::storage
