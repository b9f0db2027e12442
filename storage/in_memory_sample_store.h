// InMemorySampleStore: a SampleStore in std::maps, for unit tests of the
// components that use a store (dataloader, coordinator, worker). Same keys,
// same encoded records and same errors as RocksDbSampleStore; nothing
// survives the object.
//
// Thread-safety: all methods are thread-safe (one mutex).
#ifndef GLM_STORAGE_IN_MEMORY_SAMPLE_STORE_H_
#define GLM_STORAGE_IN_MEMORY_SAMPLE_STORE_H_

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "schema/record_codec.h"
#include "storage/sample_store.h"

namespace glm::storage {

class InMemorySampleStore : public SampleStore {
 public:
  explicit InMemorySampleStore(uint64_t tokenizer_hash) : tokenizer_hash_(tokenizer_hash) {}

  uint64_t tokenizer_hash() const override { return tokenizer_hash_; }

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

  Status PutMeta(std::string_view key, std::string_view value) override;
  StatusOr<std::string> GetMeta(std::string_view key) override;
  Status DeleteMeta(std::string_view key) override;
  StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(
      std::string_view prefix) override;
  Status WriteMeta(const std::vector<MetaWrite>& writes) override;

  // Tests: plant raw bytes under a sample key.
  void PutRawSampleForTesting(const SampleKey& key, std::string bytes);
  size_t num_samples() const;

 private:
  schema::DecodeOptions decode_options() const;

  const uint64_t tokenizer_hash_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> docs_;     // doc key -> DocumentRecord
  std::map<std::string, std::string> samples_;  // sample key -> SampleRecord
  std::map<std::string, std::string> meta_;     // user key -> value
  std::optional<std::vector<uint64_t>> doc_lengths_;
};

}  // namespace glm::storage

#endif  // GLM_STORAGE_IN_MEMORY_SAMPLE_STORE_H_
