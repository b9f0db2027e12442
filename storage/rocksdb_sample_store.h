// RocksDbSampleStore: the SampleStore on a RocksDB database with column
// families meta / docs / samples (layout: docs/store-format.md).
//
//   StoreOptions options;
//   options.path = "/data/store";
//   options.tokenizer_hash = tokenizer.hash();
//   GLM_ASSIGN_OR_RETURN(auto store, RocksDbSampleStore::Open(options));
//   GLM_RETURN_IF_ERROR(store->PutSamples(batch));
//
// Open modes: one read-write process per directory (RocksDB's LOCK file;
// a second writer gets FailedPrecondition naming it); any number of
// colocated readers may open the same directory read-only (a snapshot as of
// open) or as a secondary instance that follows the writer on Refresh().
//
// Lifetime: owns the database; destroying the store closes it. Records
// committed by a Put* call survive a crash of the process (kill -9) once the
// call returned; with sync_writes also a crash of the machine.
//
// Thread-safety: all methods are thread-safe.
#ifndef GLM_STORAGE_ROCKSDB_SAMPLE_STORE_H_
#define GLM_STORAGE_ROCKSDB_SAMPLE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "schema/record_codec.h"
#include "storage/sample_store.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
class Cache;
}  // namespace rocksdb

namespace glm::storage {

enum class OpenMode {
  kReadWrite,  // the one writer; creates the store if missing
  kReadOnly,   // a fixed view as of open; no writes
  kSecondary,  // follows the writer's progress on Refresh(); no writes
};

// The tuning of one column family.
struct FamilyOptions {
  // Block compression: "none", "snappy", "lz4" or "zstd".
  std::string compression = "lz4";
  // Bloom filter bits per key for point reads; 0 = no filter. Default: 10
  // (about 1% false positives).
  int bloom_bits_per_key = 10;
  // Uncompressed size of a data block. Default: 16 KiB.
  uint64_t block_size_bytes = 16 << 10;
  // Memtable size before a flush. Default: 64 MiB.
  uint64_t write_buffer_bytes = 64ull << 20;
};

struct StoreOptions {
  // Directory of the database. Required.
  std::string path;
  // Default: kReadWrite.
  OpenMode mode = OpenMode::kReadWrite;
  // kSecondary only: a directory of this reader's own (its info log). Required there.
  std::string secondary_path;
  // kReadWrite: create the store when `path` has none. Default: true.
  bool create_if_missing = true;
  // The tokenizer every record carries. Creating a store requires it (non
  // zero); opening an existing one with a different non-zero value is
  // FailedPrecondition. Default: 0 = accept the store's own.
  uint64_t tokenizer_hash = 0;
  // Free text stored at creation (e.g. the job name). Default: empty.
  std::string description;
  // LRU cache of uncompressed blocks, shared by the three families.
  // Default: 256 MiB.
  uint64_t block_cache_bytes = 256ull << 20;
  // Per-family tuning. Defaults: meta uncompressed with 4 KiB blocks and
  // small memtables; docs and samples LZ4 with 16 KiB blocks.
  FamilyOptions meta{"none", 10, 4 << 10, 4ull << 20};
  FamilyOptions docs{"lz4", 10, 16 << 10, 64ull << 20};
  FamilyOptions samples{"lz4", 10, 16 << 10, 64ull << 20};
  // fsync the write-ahead log at every batch. Default: false (a committed
  // batch survives a process crash but not a power loss).
  bool sync_writes = false;
  // RocksDB background flush/compaction threads. Default: 2.
  int max_background_jobs = 2;
  // kReadWrite: the record format version this writer writes (samples packed
  // from 2 on), and the least version it leaves in store/info (an older
  // store's is raised to it on open). 1 writes what a version-1 glm reads
  // (benchmarks compare the two). Default: schema::kStoreFormatVersion.
  uint32_t write_format_version = schema::kStoreFormatVersion;
  // Decode limits for every record read. Default: see DecodeOptions.
  uint64_t traversal_limit_words = schema::DecodeOptions{}.traversal_limit_words;
  // RocksDB environment: tests inject faults (a full disk) here; not owned,
  // must outlive the store. Default: nullptr = rocksdb::Env::Default().
  rocksdb::Env* env = nullptr;

  // InvalidArgument naming the field when a value is unusable.
  Status Validate() const;
};

// A counted record set, for `glm store stats`.
struct StoreStats {
  uint64_t num_meta = 0;
  uint64_t num_docs = 0;
  uint64_t num_doc_tokens = 0;
  uint64_t num_samples = 0;
  // (objective, epoch) -> number of samples.
  std::vector<std::tuple<Objective, uint32_t, uint64_t>> samples_by_epoch;
  uint64_t bytes_on_disk = 0;              // every file under the store directory
  uint64_t sst_bytes[3] = {0, 0, 0};       // live SST bytes of meta, docs, samples
};

class RocksDbSampleStore : public SampleStore {
 public:
  enum class Family { kMeta = 0, kDocs = 1, kSamples = 2 };
  static const char* FamilyName(Family f);

  // Opens (or creates) the store. Errors:
  //   InvalidArgument     bad options,
  //   NotFound            no store at `path` (read-only/secondary, or
  //                       create_if_missing = false),
  //   FailedPrecondition  locked by another writer, a newer format, or
  //                       another tokenizer,
  //   DataLoss            corrupt files or store info,
  //   ResourceExhausted   no space to create it.
  static StatusOr<std::unique_ptr<RocksDbSampleStore>> Open(const StoreOptions& options);

  ~RocksDbSampleStore() override;
  RocksDbSampleStore(const RocksDbSampleStore&) = delete;
  RocksDbSampleStore& operator=(const RocksDbSampleStore&) = delete;

  uint64_t tokenizer_hash() const override { return info_.tokenizer_hash; }
  const schema::StoreInfo& info() const { return info_; }
  const StoreOptions& options() const { return options_; }

  Status PutDocuments(const std::vector<Document>& docs) override;
  StatusOr<Document> GetDocument(uint64_t id) override;
  Status BuildDocumentIndex() override;
  StatusOr<std::vector<uint64_t>> ListDocumentLengths() override;

  Status PutSamples(const std::vector<Sample>& samples) override;
  Status PutEncodedSamples(const std::vector<std::string>& records) override;
  StatusOr<std::vector<Sample>> MultiGetSamples(const std::vector<SampleKey>& keys) override;
  StatusOr<std::vector<Sample>> GetSampleRange(Objective objective, uint32_t epoch, uint64_t begin,
                                               uint64_t end) override;
  StatusOr<std::vector<std::string>> MultiGetEncodedSamples(
      const std::vector<SampleKey>& keys) override;
  StatusOr<std::vector<std::string>> GetEncodedSampleRange(Objective objective, uint32_t epoch,
                                                           uint64_t begin, uint64_t end) override;
  // Zero-copy: `fn` sees RocksDB's pinned block or iterator memory.
  Status VisitEncodedSamples(const std::vector<SampleKey>& keys, const RecordVisitor& fn) override;
  Status VisitEncodedSampleRange(Objective objective, uint32_t epoch, uint64_t begin, uint64_t end,
                                 const RecordVisitor& fn) override;

  Status PutMeta(std::string_view key, std::string_view value) override;
  StatusOr<std::string> GetMeta(std::string_view key) override;
  Status DeleteMeta(std::string_view key) override;
  StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      std::string_view prefix) override;
  Status WriteMeta(const std::vector<MetaWrite>& writes) override;

  // kSecondary: catches up with the writer. A no-op in the other modes.
  Status Refresh();
  // Flushes memtables to SST files (tools, tests, benchmarks).
  Status Flush();

  // --- for the tools of storage/store_tools.h and tests -----------------
  // Calls fn(key, value) for every record of `family` in key order, from
  // `start` (inclusive, empty = first); stops early when fn returns false.
  // Returns an iterator error (corrupt block) as DataLoss naming the family
  // and the last good key.
  Status Scan(Family family, std::string_view start,
              const std::function<bool(std::string_view, std::string_view)>& fn);
  // RocksDB's own check of every block checksum of every file.
  Status VerifyChecksums();
  // Counts records and bytes (scans every key).
  StatusOr<StoreStats> ComputeStats();
  // Writes `value` under `key` unchecked. Tests use it to plant corrupt
  // records; no production caller.
  Status PutRawForTesting(Family family, std::string_view key, std::string_view value);

 private:
  RocksDbSampleStore(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
                     std::vector<rocksdb::ColumnFamilyHandle*> handles);
  Status InitInfo();
  Status CheckWritable() const;
  schema::DecodeOptions decode_options() const;
  rocksdb::ColumnFamilyHandle* handle(Family f) const { return handles_[static_cast<int>(f) + 1]; }

  const StoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  // default, meta, docs, samples; owned, destroyed before db_.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  schema::StoreInfo info_;
  std::mutex doc_index_mu_;
  // Cached ListDocumentLengths() result; reset by PutDocuments and Refresh,
  // which also bump the generation so that a read begun before them does not
  // cache what they invalidated.
  std::optional<std::vector<uint64_t>> doc_lengths_;
  uint64_t doc_generation_ = 0;
};

}  // namespace glm::storage

#endif  // GLM_STORAGE_ROCKSDB_SAMPLE_STORE_H_
