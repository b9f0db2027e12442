#include "storage/rocksdb_sample_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <filesystem>
#include <map>

#include "common/options.h"

namespace glm::storage {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFamilyNames[] = {"meta", "docs", "samples"};

// Turns a RocksDB status into a glm Status whose message says what to do.
Status FromRocks(const rocksdb::Status& s, const std::string& context) {
  if (s.ok()) return Status::Ok();
  std::string what = context + ": " + s.ToString();
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit) {
    return ResourceExhaustedError(what + "; HINT: the disk is full: free space or move the store, "
                                          "then reopen it (committed batches are intact)");
  }
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return FailedPreconditionError(
        what + "; HINT: another process has this store open for writing: stop it, or open the store "
               "read-only or as a secondary instance");
  }
  if (s.IsCorruption()) {
    return DataLossError(what + "; HINT: run `glm store verify --store DIR` to list the bad records");
  }
  if (s.IsNotFound()) return NotFoundError(what);
  if (s.IsInvalidArgument() && s.ToString().find("does not exist") != std::string::npos) {
    return NotFoundError(what + "; HINT: check --store, or create the store by writing to it");
  }
  if (s.IsInvalidArgument() || s.IsNotSupported()) return InvalidArgumentError(what);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return UnavailableError(what);
  if (s.IsIOError()) return UnavailableError(what + "; HINT: check the disk and the directory's permissions");
  return InternalError(what);
}

StatusOr<rocksdb::CompressionType> ParseCompression(const std::string& name, const std::string& field) {
  static const std::map<std::string, rocksdb::CompressionType> kTypes = {
      {"none", rocksdb::kNoCompression},
      {"snappy", rocksdb::kSnappyCompression},
      {"lz4", rocksdb::kLZ4Compression},
      {"zstd", rocksdb::kZSTD}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) {
    return InvalidArgumentError(field + " is '" + name + "'; choose none, snappy, lz4 or zstd");
  }
  if (it->second != rocksdb::kNoCompression) {
    bool supported = false;
    for (rocksdb::CompressionType t : rocksdb::GetSupportedCompressions()) supported |= t == it->second;
    if (!supported) {
      return InvalidArgumentError(field + " '" + name + "' is not compiled into this RocksDB; choose another");
    }
  }
  return it->second;
}

rocksdb::ColumnFamilyOptions MakeFamilyOptions(const FamilyOptions& f,
                                               const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cf;
  cf.compression = ParseCompression(f.compression, "compression").value();  // validated before
  cf.write_buffer_size = f.write_buffer_bytes;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.block_size = f.block_size_bytes;
  if (f.bloom_bits_per_key > 0) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(f.bloom_bits_per_key));
  }
  table.cache_index_and_filter_blocks = false;
  // XXH3 block checksums: several times faster than this RocksDB build's
  // software CRC32C when files are written and read.
  table.checksum = rocksdb::kXXH3;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

Status ValidateFamily(const FamilyOptions& f, const std::string& name) {
  GLM_RETURN_IF_ERROR(ParseCompression(f.compression, name + "-compression").status());
  GLM_RETURN_IF_ERROR(RequireInRange(name + "-bloom-bits-per-key", f.bloom_bits_per_key, 0, 64));
  GLM_RETURN_IF_ERROR(RequireAtLeast(name + "-block-size-bytes", static_cast<int64_t>(f.block_size_bytes),
                                     int64_t{512}));
  GLM_RETURN_IF_ERROR(RequireAtLeast(name + "-write-buffer-bytes",
                                     static_cast<int64_t>(f.write_buffer_bytes), int64_t{64 << 10}));
  return Status::Ok();
}

std::string UserMetaKey(std::string_view key) {
  std::string k(kMetaUserPrefix);
  k.append(key);
  return k;
}

}  // namespace

Status StoreOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("store", path));
  if (mode == OpenMode::kSecondary && secondary_path.empty()) {
    return InvalidArgumentError("a secondary instance needs secondary_path: a directory of its own");
  }
  GLM_RETURN_IF_ERROR(ValidateFamily(meta, "meta"));
  GLM_RETURN_IF_ERROR(ValidateFamily(docs, "docs"));
  GLM_RETURN_IF_ERROR(ValidateFamily(samples, "samples"));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-background-jobs", max_background_jobs, 1));
  GLM_RETURN_IF_ERROR(RequireInRange("write-format-version",
                                     static_cast<int64_t>(write_format_version), int64_t{1},
                                     static_cast<int64_t>(schema::kStoreFormatVersion)));
  return Status::Ok();
}

const char* RocksDbSampleStore::FamilyName(Family f) { return kFamilyNames[static_cast<int>(f)]; }

StatusOr<std::unique_ptr<RocksDbSampleStore>> RocksDbSampleStore::Open(const StoreOptions& options) {
  GLM_RETURN_IF_ERROR(options.Validate());
  const std::string where = "store " + options.path;
  if (options.mode != OpenMode::kReadWrite || !options.create_if_missing) {
    if (!fs::exists(fs::path(options.path) / "CURRENT")) {
      return NotFoundError("no store at " + options.path +
                           " (no CURRENT file); HINT: check --store, or run the pipeline that writes it");
    }
  }

  if (options.mode == OpenMode::kReadWrite && options.create_if_missing && options.env == nullptr) {
    std::error_code ec;
    fs::create_directories(options.path, ec);
    if (ec) {
      return FailedPreconditionError("cannot create the store directory " + options.path + ": " +
                                     ec.message() + "; HINT: check --store and its permissions");
    }
  }
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.mode == OpenMode::kReadWrite && options.create_if_missing;
  db_options.create_missing_column_families = options.mode == OpenMode::kReadWrite;
  db_options.max_background_jobs = options.max_background_jobs;
  db_options.keep_log_file_num = 3;
  if (options.env != nullptr) db_options.env = options.env;
  if (options.mode == OpenMode::kSecondary) db_options.max_open_files = -1;

  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {"meta", MakeFamilyOptions(options.meta, cache)},
      {"docs", MakeFamilyOptions(options.docs, cache)},
      {"samples", MakeFamilyOptions(options.samples, cache)}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  switch (options.mode) {
    case OpenMode::kReadWrite:
      s = rocksdb::DB::Open(rocksdb::Options(db_options, rocksdb::ColumnFamilyOptions()), options.path,
                            families, &handles, &raw);
      break;
    case OpenMode::kReadOnly:
      s = rocksdb::DB::OpenForReadOnly(db_options, options.path, families, &handles, &raw);
      break;
    case OpenMode::kSecondary:
      s = rocksdb::DB::OpenAsSecondary(db_options, options.path, options.secondary_path, families,
                                       &handles, &raw);
      break;
  }
  GLM_RETURN_IF_ERROR(FromRocks(s, "opening " + where));
  std::unique_ptr<RocksDbSampleStore> store(
      new RocksDbSampleStore(options, std::unique_ptr<rocksdb::DB>(raw), std::move(handles)));
  GLM_RETURN_IF_ERROR(store->InitInfo());
  return store;
}

RocksDbSampleStore::RocksDbSampleStore(StoreOptions options, std::unique_ptr<rocksdb::DB> db,
                                       std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : options_(std::move(options)), db_(std::move(db)), handles_(std::move(handles)) {}

RocksDbSampleStore::~RocksDbSampleStore() {
  for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close().PermitUncheckedError();
}

Status RocksDbSampleStore::InitInfo() {
  const std::string info_file = options_.path + " (meta/" + std::string(kMetaInfoKey) + ")";
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(Family::kMeta), kMetaInfoKey, &value);
  if (s.IsNotFound()) {
    if (options_.mode != OpenMode::kReadWrite) {
      return FailedPreconditionError("store " + options_.path +
                                     " has no store info: it was never initialised by a writer");
    }
    if (options_.tokenizer_hash == 0) {
      return InvalidArgumentError("creating store " + options_.path +
                                  " needs the tokenizer hash (StoreOptions::tokenizer_hash)");
    }
    info_.format_version = options_.write_format_version;
    info_.tokenizer_hash = options_.tokenizer_hash;
    info_.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    info_.description = options_.description;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Put(wo, handle(Family::kMeta), kMetaInfoKey, schema::EncodeStoreInfo(info_)),
                     "initialising " + info_file);
  }
  GLM_RETURN_IF_ERROR(FromRocks(s, "reading " + info_file));
  StatusOr<schema::StoreInfo> info = schema::DecodeStoreInfo(value);
  if (!info.ok()) return info.status().WithContext(info_file);
  info_ = *info;
  if (options_.tokenizer_hash != 0 && options_.tokenizer_hash != info_.tokenizer_hash) {
    char buf[200];
    std::snprintf(buf, sizeof(buf), " holds records of tokenizer hash %016llx, not %016llx",
                  static_cast<unsigned long long>(info_.tokenizer_hash),
                  static_cast<unsigned long long>(options_.tokenizer_hash));
    return FailedPreconditionError("store " + options_.path + buf +
                                   "; HINT: use the tokenizer it was built with, or write a new store");
  }
  if (options_.mode == OpenMode::kReadWrite &&
      info_.format_version < options_.write_format_version) {
    // This writer adds records of its own version (packed samples): say so,
    // so that a glm older than this one refuses the store instead of failing
    // on the first packed record. Records already there stay as they are.
    info_.format_version = options_.write_format_version;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    GLM_RETURN_IF_ERROR(
        FromRocks(db_->Put(wo, handle(Family::kMeta), kMetaInfoKey, schema::EncodeStoreInfo(info_)),
                  "upgrading the format version of " + info_file));
  }
  return Status::Ok();
}

Status RocksDbSampleStore::CheckWritable() const {
  if (options_.mode != OpenMode::kReadWrite) {
    return FailedPreconditionError("store " + options_.path +
                                   " is open read-only / as a secondary; writes go through the writer");
  }
  return Status::Ok();
}

schema::DecodeOptions RocksDbSampleStore::decode_options() const {
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = info_.tokenizer_hash;
  d.traversal_limit_words = options_.traversal_limit_words;
  return d;
}

Status RocksDbSampleStore::PutDocuments(const std::vector<Document>& docs) {
  GLM_RETURN_IF_ERROR(CheckWritable());
  rocksdb::WriteBatch batch;
  for (const Document& d : docs) {
    batch.Put(handle(Family::kDocs), EncodeDocKey(d.id), schema::EncodeDocument(d, info_.tokenizer_hash));
  }
  batch.Delete(handle(Family::kMeta), kMetaDocIndexKey);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  Status s = FromRocks(db_->Write(wo, &batch),
                       "writing " + std::to_string(docs.size()) + " documents to store " + options_.path);
  // After the write: a reader that cached the old index meanwhile must not keep it.
  std::lock_guard<std::mutex> lock(doc_index_mu_);
  doc_lengths_.reset();
  ++doc_generation_;
  return s;
}

StatusOr<Document> RocksDbSampleStore::GetDocument(uint64_t id) {
  rocksdb::PinnableSlice value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(Family::kDocs), EncodeDocKey(id), &value);
  if (s.IsNotFound()) {
    return NotFoundError("no document " + DescribeDocKey(id) + " in store " + options_.path);
  }
  GLM_RETURN_IF_ERROR(FromRocks(s, "reading " + DescribeDocKey(id)));
  StatusOr<Document> doc = schema::DecodeDocument(value.ToStringView(), decode_options());
  if (!doc.ok()) return doc.status().WithContext(DescribeDocKey(id) + " in store " + options_.path);
  if (doc->id != id) {
    return DataLossError(DescribeDocKey(id) + " holds document id " + std::to_string(doc->id) +
                         "; HINT: run `glm store verify`");
  }
  return doc;
}

Status RocksDbSampleStore::BuildDocumentIndex() {
  GLM_RETURN_IF_ERROR(CheckWritable());
  std::vector<uint64_t> lengths;
  Status inner;
  schema::DecodeOptions d = decode_options();
  GLM_RETURN_IF_ERROR(Scan(Family::kDocs, "", [&](std::string_view key, std::string_view value) {
    StatusOr<uint64_t> id = DecodeDocKey(key);
    if (!id.ok()) {
      inner = id.status();
      return false;
    }
    if (*id != lengths.size()) {
      inner = FailedPreconditionError("documents are not dense: " + DescribeDocKey(lengths.size()) +
                                      " is missing (next is " + DescribeDocKey(*id) +
                                      "); HINT: finish tokenizing before building the index");
      return false;
    }
    StatusOr<uint64_t> n = schema::DecodedDocumentLength(value, d);
    if (!n.ok()) {
      inner = n.status().WithContext(DescribeDocKey(*id));
      return false;
    }
    lengths.push_back(*n);
    return true;
  }));
  GLM_RETURN_IF_ERROR(inner);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  GLM_RETURN_IF_ERROR(FromRocks(db_->Put(wo, handle(Family::kMeta), kMetaDocIndexKey,
                                         schema::EncodeDocIndex(lengths, info_.tokenizer_hash)),
                                "writing the document index"));
  std::lock_guard<std::mutex> lock(doc_index_mu_);
  doc_lengths_ = std::move(lengths);
  return Status::Ok();
}

StatusOr<std::vector<uint64_t>> RocksDbSampleStore::ListDocumentLengths() {
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(doc_index_mu_);
    if (doc_lengths_) return *doc_lengths_;
    generation = doc_generation_;
  }
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(Family::kMeta), kMetaDocIndexKey, &value);
  if (s.IsNotFound()) {
    return FailedPreconditionError("store " + options_.path +
                                   " has no document index; HINT: call BuildDocumentIndex() after "
                                   "writing the documents");
  }
  GLM_RETURN_IF_ERROR(FromRocks(s, "reading meta/" + std::string(kMetaDocIndexKey)));
  StatusOr<std::vector<uint64_t>> lengths = schema::DecodeDocIndex(value, decode_options());
  if (!lengths.ok()) return lengths.status().WithContext("meta/" + std::string(kMetaDocIndexKey));
  std::lock_guard<std::mutex> lock(doc_index_mu_);
  if (generation == doc_generation_) doc_lengths_ = *lengths;  // else documents were written meanwhile
  return lengths;
}

Status RocksDbSampleStore::PutSamples(const std::vector<Sample>& samples) {
  GLM_RETURN_IF_ERROR(CheckWritable());
  size_t estimate = 64;
  for (const Sample& s : samples) {
    estimate += 160 + 4 * (s.source.size() + 4 * s.tokens.size() + 2 * s.spans.size()) + s.loss_mask.size();
  }
  rocksdb::WriteBatch batch(estimate);
  std::string value;
  for (const Sample& s : samples) {
    schema::EncodeSampleTo(s, info_.tokenizer_hash, &value, options_.write_format_version);
    batch.Put(handle(Family::kSamples), EncodeSampleKey(KeyOf(s)), value);
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return FromRocks(db_->Write(wo, &batch),
                   "writing " + std::to_string(samples.size()) + " samples to store " + options_.path);
}

Status RocksDbSampleStore::PutEncodedSamples(const std::vector<std::string>& records) {
  GLM_RETURN_IF_ERROR(CheckWritable());
  size_t estimate = 64;
  for (const std::string& r : records) estimate += r.size() + 32;
  rocksdb::WriteBatch batch(estimate);
  schema::DecodeOptions d = decode_options();
  Sample scratch;
  for (size_t i = 0; i < records.size(); ++i) {
    Status s = schema::DecodeSampleInto(records[i], d, &scratch);
    if (!s.ok()) return s.WithContext("sample " + std::to_string(i) + " of the batch; nothing was written");
    batch.Put(handle(Family::kSamples), EncodeSampleKey(KeyOf(scratch)), records[i]);
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return FromRocks(db_->Write(wo, &batch),
                   "writing " + std::to_string(records.size()) + " samples to store " + options_.path);
}

Status RocksDbSampleStore::VisitEncodedSamples(const std::vector<SampleKey>& keys, const RecordVisitor& fn) {
  const size_t n = keys.size();
  std::vector<std::string> encoded(n);
  for (size_t i = 0; i < n; ++i) encoded[i] = EncodeSampleKey(keys[i]);
  std::vector<rocksdb::Slice> slices(encoded.begin(), encoded.end());
  std::vector<rocksdb::PinnableSlice> values(n);
  std::vector<rocksdb::Status> statuses(n);
  db_->MultiGet(rocksdb::ReadOptions(), handle(Family::kSamples), n, slices.data(), values.data(),
                statuses.data());
  for (size_t i = 0; i < n; ++i) {
    if (statuses[i].IsNotFound()) {
      return NotFoundError("no sample " + DescribeSampleKey(keys[i]) + " in store " + options_.path +
                           "; HINT: the pipeline has not produced it yet");
    }
    GLM_RETURN_IF_ERROR(FromRocks(statuses[i], "reading " + DescribeSampleKey(keys[i])));
  }
  for (size_t i = 0; i < n; ++i) GLM_RETURN_IF_ERROR(fn(i, values[i].ToStringView()));
  return Status::Ok();
}

Status RocksDbSampleStore::VisitEncodedSampleRange(Objective objective, uint32_t epoch, uint64_t begin,
                                                   uint64_t end, const RecordVisitor& fn) {
  if (end <= begin) return Status::Ok();
  const std::string lower = EncodeSampleKey({objective, epoch, begin});
  const std::string upper = EncodeSampleKey({objective, epoch, end});
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handle(Family::kSamples)));
  uint64_t expected = begin;
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const std::string want = EncodeSampleKey({objective, epoch, expected});
    if (it->key() != rocksdb::Slice(want)) break;
    GLM_RETURN_IF_ERROR(fn(expected - begin, it->value().ToStringView()));
    ++expected;
  }
  GLM_RETURN_IF_ERROR(FromRocks(it->status(), "scanning samples from " +
                                                  DescribeSampleKey({objective, epoch, expected})));
  if (expected != end) {
    return NotFoundError("no sample " + DescribeSampleKey({objective, epoch, expected}) + " in store " +
                         options_.path + " (asked for indices [" + std::to_string(begin) + ", " +
                         std::to_string(end) + ")); HINT: the pipeline has not produced it yet");
  }
  return Status::Ok();
}

StatusOr<std::vector<std::string>> RocksDbSampleStore::MultiGetEncodedSamples(
    const std::vector<SampleKey>& keys) {
  std::vector<std::string> out(keys.size());
  GLM_RETURN_IF_ERROR(VisitEncodedSamples(keys, [&](size_t i, std::string_view v) {
    out[i].assign(v);
    return Status::Ok();
  }));
  return out;
}

StatusOr<std::vector<std::string>> RocksDbSampleStore::GetEncodedSampleRange(Objective objective,
                                                                             uint32_t epoch,
                                                                             uint64_t begin,
                                                                             uint64_t end) {
  std::vector<std::string> out(end > begin ? end - begin : 0);
  GLM_RETURN_IF_ERROR(VisitEncodedSampleRange(objective, epoch, begin, end, [&](size_t i, std::string_view v) {
    out[i].assign(v);
    return Status::Ok();
  }));
  return out;
}

namespace {
// Decodes one record read under keys[i] into (*out)[i], checking the key.
Status DecodeAt(size_t i, std::string_view bytes, const std::vector<SampleKey>& keys,
                const schema::DecodeOptions& d, const std::string& where, std::vector<Sample>* out) {
  Status s = schema::DecodeSampleInto(bytes, d, &(*out)[i]);
  if (!s.ok()) {
    return s.WithContext(DescribeSampleKey(keys[i]) + " in " + where +
                         "; HINT: run `glm store verify` to list every bad record");
  }
  if (!(KeyOf((*out)[i]) == keys[i])) {
    return DataLossError(DescribeSampleKey(keys[i]) + " in " + where + " holds " +
                         DescribeSampleKey(KeyOf((*out)[i])) + "; HINT: run `glm store verify`");
  }
  return Status::Ok();
}
}  // namespace

StatusOr<std::vector<Sample>> RocksDbSampleStore::MultiGetSamples(const std::vector<SampleKey>& keys) {
  std::vector<Sample> out(keys.size());
  const schema::DecodeOptions d = decode_options();
  const std::string where = "store " + options_.path;
  GLM_RETURN_IF_ERROR(VisitEncodedSamples(
      keys, [&](size_t i, std::string_view v) { return DecodeAt(i, v, keys, d, where, &out); }));
  return out;
}

StatusOr<std::vector<Sample>> RocksDbSampleStore::GetSampleRange(Objective objective, uint32_t epoch,
                                                                 uint64_t begin, uint64_t end) {
  std::vector<SampleKey> keys;
  keys.reserve(end > begin ? end - begin : 0);
  for (uint64_t i = begin; i < end; ++i) keys.push_back({objective, epoch, i});
  std::vector<Sample> out(keys.size());
  const schema::DecodeOptions d = decode_options();
  const std::string where = "store " + options_.path;
  GLM_RETURN_IF_ERROR(VisitEncodedSampleRange(objective, epoch, begin, end, [&](size_t i, std::string_view v) {
    return DecodeAt(i, v, keys, d, where, &out);
  }));
  return out;
}

Status RocksDbSampleStore::PutMeta(std::string_view key, std::string_view value) {
  return WriteMeta({{std::string(key), std::string(value)}});
}

StatusOr<std::string> RocksDbSampleStore::GetMeta(std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(Family::kMeta), UserMetaKey(key), &value);
  if (s.IsNotFound()) return NotFoundError("no meta key '" + std::string(key) + "' in store " + options_.path);
  GLM_RETURN_IF_ERROR(FromRocks(s, "reading meta key '" + std::string(key) + "'"));
  return value;
}

Status RocksDbSampleStore::DeleteMeta(std::string_view key) {
  return WriteMeta({{std::string(key), std::nullopt}});
}

StatusOr<std::vector<std::pair<std::string, std::string>>> RocksDbSampleStore::ScanMeta(
    std::string_view prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string start = UserMetaKey(prefix);
  GLM_RETURN_IF_ERROR(Scan(Family::kMeta, start, [&](std::string_view key, std::string_view value) {
    if (key.substr(0, start.size()) != start) return false;
    out.emplace_back(std::string(key.substr(kMetaUserPrefix.size())), std::string(value));
    return true;
  }));
  return out;
}

Status RocksDbSampleStore::WriteMeta(const std::vector<MetaWrite>& writes) {
  GLM_RETURN_IF_ERROR(CheckWritable());
  rocksdb::WriteBatch batch;
  for (const MetaWrite& w : writes) {
    if (w.value) {
      batch.Put(handle(Family::kMeta), UserMetaKey(w.key), *w.value);
    } else {
      batch.Delete(handle(Family::kMeta), UserMetaKey(w.key));
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  return FromRocks(db_->Write(wo, &batch), "writing " + std::to_string(writes.size()) +
                                               " meta keys to store " + options_.path);
}

Status RocksDbSampleStore::Refresh() {
  if (options_.mode != OpenMode::kSecondary) return Status::Ok();
  Status s = FromRocks(db_->TryCatchUpWithPrimary(), "catching up with the writer of " + options_.path);
  std::lock_guard<std::mutex> lock(doc_index_mu_);
  doc_lengths_.reset();
  ++doc_generation_;
  return s;
}

Status RocksDbSampleStore::Flush() {
  if (options_.mode != OpenMode::kReadWrite) return Status::Ok();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> hs(handles_.begin() + 1, handles_.end());
  return FromRocks(db_->Flush(fo, hs), "flushing store " + options_.path);
}

Status RocksDbSampleStore::Scan(Family family, std::string_view start,
                                const std::function<bool(std::string_view, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, handle(family)));
  std::string last_good;
  for (start.empty() ? it->SeekToFirst() : it->Seek(rocksdb::Slice(start.data(), start.size()));
       it->Valid(); it->Next()) {
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) return Status::Ok();
    last_good = it->key().ToString();
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), std::string("scanning family ") + FamilyName(family) + " of " +
                                       options_.path + " after " +
                                       (last_good.empty() ? std::string("its start")
                                                          : DescribeRawKey(FamilyName(family), last_good)));
  }
  return Status::Ok();
}

Status RocksDbSampleStore::VerifyChecksums() {
  return FromRocks(db_->VerifyChecksum(), "checking the block checksums of " + options_.path);
}

StatusOr<StoreStats> RocksDbSampleStore::ComputeStats() {
  StoreStats stats;
  GLM_RETURN_IF_ERROR(Scan(Family::kMeta, "", [&](std::string_view, std::string_view) {
    ++stats.num_meta;
    return true;
  }));
  schema::DecodeOptions d;
  GLM_RETURN_IF_ERROR(Scan(Family::kDocs, "", [&](std::string_view, std::string_view value) {
    ++stats.num_docs;
    StatusOr<uint64_t> n = schema::DecodedDocumentLength(value, d);
    if (n.ok()) stats.num_doc_tokens += *n;
    return true;
  }));
  std::map<std::pair<int, uint32_t>, uint64_t> by_epoch;
  GLM_RETURN_IF_ERROR(Scan(Family::kSamples, "", [&](std::string_view key, std::string_view) {
    ++stats.num_samples;
    StatusOr<SampleKey> k = DecodeSampleKey(key);
    if (k.ok()) ++by_epoch[{static_cast<int>(k->objective), k->epoch}];
    return true;
  }));
  for (const auto& [k, n] : by_epoch) {
    stats.samples_by_epoch.emplace_back(static_cast<Objective>(k.first), k.second, n);
  }
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(options_.path, ec)) {
    if (entry.is_regular_file(ec)) stats.bytes_on_disk += entry.file_size(ec);
  }
  for (int f = 0; f < 3; ++f) {
    uint64_t v = 0;
    if (db_->GetIntProperty(handles_[f + 1], "rocksdb.live-sst-files-size", &v)) stats.sst_bytes[f] = v;
  }
  return stats;
}

Status RocksDbSampleStore::PutRawForTesting(Family family, std::string_view key, std::string_view value) {
  GLM_RETURN_IF_ERROR(CheckWritable());
  return FromRocks(db_->Put(rocksdb::WriteOptions(), handle(family), rocksdb::Slice(key.data(), key.size()),
                            rocksdb::Slice(value.data(), value.size())),
                   "raw write");
}

}  // namespace glm::storage
