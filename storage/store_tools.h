// The checks behind `glm store verify` and `glm store digest`, and sample
// iteration for `glm store export`, over a RocksDbSampleStore.
//
// Thread-safety: each function reads the store through its own iterators and
// may run concurrently with writers (it sees some consistent prefix of them).
#ifndef GLM_STORAGE_STORE_TOOLS_H_
#define GLM_STORAGE_STORE_TOOLS_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/rocksdb_sample_store.h"

namespace glm::storage {

struct VerifyReport {
  uint64_t num_records = 0;           // records decoded (all families)
  std::vector<std::string> problems;  // one line per bad key or file, naming it
  bool ok() const { return problems.empty(); }
};

// RocksDB's block checksums of every file, then a decode of every record
// with the store's tokenizer and a check that each record sits under its
// own key. Problems are collected, not returned as the first error: the
// Status is non-OK only when the store cannot be read at all.
StatusOr<VerifyReport> VerifyStore(RocksDbSampleStore* store);

struct StoreDigest {
  std::string hex;           // 64 hex digits
  uint64_t num_documents = 0;
  uint64_t num_samples = 0;
};

// An order-independent digest of every document and sample: the sum, in
// four 64-bit lanes mod 2^64, of SHA-256(CanonicalBytes(record)). Equal
// record sets give equal digests however, in what order and by how many
// writers they were written. DataLoss naming the key on an unreadable record.
StatusOr<StoreDigest> DigestStore(RocksDbSampleStore* store);

// Calls fn for every sample in key order (objective, epoch, index), of one
// objective when `objective` is set; stops when fn returns false. DataLoss
// naming the key on an unreadable record.
Status ForEachSample(RocksDbSampleStore* store, std::optional<Objective> objective,
                     const std::function<bool(const Sample&)>& fn);

}  // namespace glm::storage

#endif  // GLM_STORAGE_STORE_TOOLS_H_
