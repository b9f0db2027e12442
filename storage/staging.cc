#include "storage/staging.h"

#include <cinttypes>
#include <cstdio>

#include "schema/record_codec.h"

namespace glm::storage {

std::string StagingDocKey(uint32_t shard, uint64_t local) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*s%08u/%010" PRIu64, static_cast<int>(kStagingDocsPrefix.size()),
                kStagingDocsPrefix.data(), shard, local);
  return buf;
}

Status StageDocuments(SampleStore* store, uint32_t shard, uint64_t first_local,
                      const std::vector<std::string>& records) {
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = store->tokenizer_hash();
  std::vector<MetaWrite> writes;
  writes.reserve(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    StatusOr<Document> doc = schema::DecodeDocument(records[i], d);
    if (!doc.ok()) {
      return doc.status().WithContext("staged document " + std::to_string(first_local + i) + " of shard " +
                                      std::to_string(shard));
    }
    if (doc->tokens.empty()) {
      return InvalidArgumentError("staged document " + std::to_string(first_local + i) + " of shard " +
                                  std::to_string(shard) + " is empty; every document ends with its eod token");
    }
    writes.push_back({StagingDocKey(shard, first_local + i), records[i]});
  }
  if (store->GetMeta(kStagingFinalizedKey).ok()) {
    // Documents are fixed: a late rerun of a tokenize task is fine only if
    // it brings exactly what is staged.
    for (const MetaWrite& w : writes) {
      StatusOr<std::string> have = store->GetMeta(w.key);
      if (!have.ok() || *have != *w.value) {
        return FailedPreconditionError("documents were finalized; " + w.key +
                                       " differs from what is staged; HINT: start the job on a fresh store");
      }
    }
    return Status::Ok();
  }
  return store->WriteMeta(writes);
}

StatusOr<uint64_t> FinalizeStagedDocuments(SampleStore* store) {
  if (StatusOr<std::string> done = store->GetMeta(kStagingFinalizedKey); done.ok()) {
    return std::stoull(*done);
  }
  GLM_ASSIGN_OR_RETURN(auto staged, store->ScanMeta(kStagingDocsPrefix));
  if (staged.empty()) {
    return FailedPreconditionError("no staged documents to finalize; HINT: run the tokenize phase first");
  }
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = store->tokenizer_hash();
  std::vector<Document> batch;
  constexpr size_t kBatch = 512;
  for (size_t i = 0; i < staged.size(); ++i) {
    StatusOr<Document> doc = schema::DecodeDocument(staged[i].second, d);
    if (!doc.ok()) return doc.status().WithContext("meta/kv/" + staged[i].first);
    doc->id = i;
    batch.push_back(std::move(doc).value());
    if (batch.size() == kBatch || i + 1 == staged.size()) {
      GLM_RETURN_IF_ERROR(store->PutDocuments(batch));
      batch.clear();
    }
  }
  GLM_RETURN_IF_ERROR(store->BuildDocumentIndex());
  GLM_RETURN_IF_ERROR(store->PutMeta(kStagingFinalizedKey, std::to_string(staged.size())));
  return static_cast<uint64_t>(staged.size());
}

}  // namespace glm::storage
