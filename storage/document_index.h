// Cumulative-length index over the documents of a store: maps a global token
// position (documents concatenated in id order) to (document id, offset).
// Built from SampleStore::ListDocumentLengths(); what a dataloader
// DocumentSource adapter needs besides SampleStore::GetDocument().
//
// Thread-safety: immutable after construction; const methods may be called
// concurrently.
#ifndef GLM_STORAGE_DOCUMENT_INDEX_H_
#define GLM_STORAGE_DOCUMENT_INDEX_H_

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace glm::storage {

struct TokenPosition {
  uint64_t doc_id = 0;  // the document holding the token
  uint64_t offset = 0;  // the token's position inside that document
};

class DocumentIndex {
 public:
  // lengths[i] = number of tokens of document i.
  explicit DocumentIndex(std::vector<uint64_t> lengths);

  uint64_t num_documents() const { return lengths_.size(); }
  uint64_t total_tokens() const { return starts_.empty() ? 0 : starts_.back(); }
  uint64_t length(uint64_t doc_id) const { return lengths_.at(doc_id); }
  // Global position of the first token of `doc_id`.
  uint64_t start(uint64_t doc_id) const { return starts_.at(doc_id); }

  // OutOfRange-like InvalidArgument when position >= total_tokens().
  StatusOr<TokenPosition> Locate(uint64_t position) const;

 private:
  std::vector<uint64_t> lengths_;
  std::vector<uint64_t> starts_;  // num_documents + 1 prefix sums
};

}  // namespace glm::storage

#endif  // GLM_STORAGE_DOCUMENT_INDEX_H_
