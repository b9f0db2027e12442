// SampleStore: where tokenized documents and GLM samples live between the
// data pipeline and the trainers, and where the coordinator may keep small
// state. Three families (docs/store-format.md):
//   meta     the store's info (format version, tokenizer hash), the document
//            index, and a generic key-value space for other components
//   docs     tokenized documents by id
//   samples  samples by (objective, epoch, index)
//
// Implementations: RocksDbSampleStore (storage/rocksdb_sample_store.h, the
// real one), InMemorySampleStore (storage/in_memory_sample_store.h, a fake
// for unit tests of other components) and StoreClient
// (storage/store_client.h, the read side through a StoreServer).
//
// Writes are batches: each Put* call is atomic (all of it or nothing is
// visible, also after a crash). Keys are derived from what a record is, so a
// retried task that writes the same records again overwrites them with the
// same bytes: exactly-once under retries.
//
// Errors name the key (e.g. "samples/blank/epoch=0/index=17") and say what
// to do: NotFound (missing key), DataLoss (corrupt or truncated record; run
// `glm store verify`), FailedPrecondition (newer format version, another
// tokenizer, read-only store), ResourceExhausted (disk full), Unavailable
// (server away).
//
// Thread-safety: every method of every implementation may be called
// concurrently from several threads unless the implementation says otherwise.
#ifndef GLM_STORAGE_SAMPLE_STORE_H_
#define GLM_STORAGE_SAMPLE_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "schema/records.h"
#include "storage/keys.h"

namespace glm::storage {

// One write of a meta batch: a put, or a delete when `value` is empty.
struct MetaWrite {
  std::string key;
  std::optional<std::string> value;  // nullopt = delete `key`
};

class SampleStore {
 public:
  virtual ~SampleStore() = default;

  // The tokenizer hash every record of this store carries.
  virtual uint64_t tokenizer_hash() const = 0;

  // --- docs -------------------------------------------------------------
  // Writes documents as one atomic batch and invalidates the document index.
  virtual Status PutDocuments(const std::vector<Document>& docs) = 0;
  // NotFound naming the id when absent.
  virtual StatusOr<Document> GetDocument(uint64_t id) = 0;
  // Scans the docs family and stores the cumulative-length index in meta.
  // FailedPrecondition when ids are not dense 0..N-1 (names the first gap).
  virtual Status BuildDocumentIndex() = 0;
  // lengths[i] = tokens of document i, from the index that
  // BuildDocumentIndex() stored; FailedPrecondition when there is none.
  virtual StatusOr<std::vector<uint64_t>> ListDocumentLengths() = 0;

  // --- samples ----------------------------------------------------------
  // Writes samples as one atomic batch.
  virtual Status PutSamples(const std::vector<Sample>& samples) = 0;
  // Writes encoded SampleRecords (schema/record_codec.h) as one atomic
  // batch after checking that each decodes with this store's tokenizer.
  virtual Status PutEncodedSamples(const std::vector<std::string>& records) = 0;
  // Every key must exist: NotFound names the first missing one.
  virtual StatusOr<std::vector<Sample>> MultiGetSamples(const std::vector<SampleKey>& keys) = 0;
  // Samples (objective, epoch, [begin, end)) in index order, in one scan;
  // every index must exist (NotFound names the first missing one).
  virtual StatusOr<std::vector<Sample>> GetSampleRange(Objective objective, uint32_t epoch,
                                                       uint64_t begin, uint64_t end) = 0;
  // The same two reads returning the stored bytes, undecoded (what the
  // storage server sends on); each record's framing is not checked here.
  virtual StatusOr<std::vector<std::string>> MultiGetEncodedSamples(
      const std::vector<SampleKey>& keys) = 0;
  virtual StatusOr<std::vector<std::string>> GetEncodedSampleRange(Objective objective,
                                                                   uint32_t epoch, uint64_t begin,
                                                                   uint64_t end) = 0;

  // The same two reads handing each stored record to `fn(position, bytes)`
  // in order, without copying it where the implementation can (the view is
  // valid only during the call). Stops at fn's first error and returns it.
  // The defaults call the two methods above.
  using RecordVisitor = std::function<Status(size_t position, std::string_view record)>;
  virtual Status VisitEncodedSamples(const std::vector<SampleKey>& keys, const RecordVisitor& fn) {
    GLM_ASSIGN_OR_RETURN(std::vector<std::string> records, MultiGetEncodedSamples(keys));
    for (size_t i = 0; i < records.size(); ++i) GLM_RETURN_IF_ERROR(fn(i, records[i]));
    return Status::Ok();
  }
  virtual Status VisitEncodedSampleRange(Objective objective, uint32_t epoch, uint64_t begin, uint64_t end,
                                         const RecordVisitor& fn) {
    GLM_ASSIGN_OR_RETURN(std::vector<std::string> records, GetEncodedSampleRange(objective, epoch, begin, end));
    for (size_t i = 0; i < records.size(); ++i) GLM_RETURN_IF_ERROR(fn(i, records[i]));
    return Status::Ok();
  }

  StatusOr<Sample> GetSample(const SampleKey& key) {
    GLM_ASSIGN_OR_RETURN(std::vector<Sample> v, MultiGetSamples({key}));
    return std::move(v.front());
  }

  // --- generic key-value on meta (coordinator state etc.) ----------------
  // Keys live in their own namespace ("kv/" + key in the meta family), apart
  // from the store's own records.
  virtual Status PutMeta(std::string_view key, std::string_view value) = 0;
  virtual StatusOr<std::string> GetMeta(std::string_view key) = 0;  // NotFound when absent
  virtual Status DeleteMeta(std::string_view key) = 0;               // OK when absent
  // Every (key, value) whose key starts with `prefix`, in key order.
  virtual StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      std::string_view prefix) = 0;
  // Applies all writes atomically, in order.
  virtual Status WriteMeta(const std::vector<MetaWrite>& writes) = 0;
};

}  // namespace glm::storage

#endif  // GLM_STORAGE_SAMPLE_STORE_H_
