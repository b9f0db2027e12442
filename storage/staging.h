// Document staging: how the tokenize phase of the pipeline gets dense,
// deterministic document ids without any coordination between tokenizer
// actors (docs/store-format.md "Staged documents").
//
// A tokenizer actor only knows its own shard, so it cannot know the global id
// of its documents. It stages them in the meta family under
//   kv/staging/docs/<shard:08>/<local:010>   (local = index within the shard)
// (a rerun rewrites the same keys with the same bytes). Once every shard is
// tokenized, FinalizeStagedDocuments numbers the staged documents 0..N-1 in
// key order, which is (shard, local) order = corpus order, writes them to the
// docs family, builds the document index and records N under
// kv/staging/finalized. It is idempotent: a second call returns N from the
// marker. Both run inside the process that owns the store (the storage
// server); remote callers use StoreClient::StageDocuments / FinalizeDocuments.
//
// Thread-safety: as the store's own methods; FinalizeStagedDocuments must not
// run concurrently with itself on one store (the storage server serialises
// requests).
#ifndef GLM_STORAGE_STAGING_H_
#define GLM_STORAGE_STAGING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "storage/sample_store.h"

namespace glm::storage {

inline constexpr std::string_view kStagingDocsPrefix = "staging/docs/";
inline constexpr std::string_view kStagingFinalizedKey = "staging/finalized";

// The meta key of a staged document.
std::string StagingDocKey(uint32_t shard, uint64_t local);

// Stages encoded DocumentRecords (their ids are ignored) as documents
// first_local, first_local+1, ... of `shard`, in one atomic batch.
// FailedPrecondition after FinalizeStagedDocuments (the store's documents
// are fixed) unless the records are already staged identically.
Status StageDocuments(SampleStore* store, uint32_t shard, uint64_t first_local,
                      const std::vector<std::string>& records);

// Staged documents -> docs 0..N-1 and the document index; returns N.
// Idempotent. FailedPrecondition when nothing is staged.
StatusOr<uint64_t> FinalizeStagedDocuments(SampleStore* store);

}  // namespace glm::storage

#endif  // GLM_STORAGE_STAGING_H_
