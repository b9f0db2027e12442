// DocumentSource: the tokenized corpus as the sample builder sees it.
//
// Documents are numbered 0..N-1 (the corpus manifest's order) and laid end to
// end, each ending with its end-of-document token: global token position p
// lies in the document d with start(d) <= p < start(d) + size(d). Raw samples
// pick documents by a uniform global position (GLM_SPEC.md 1.2), so a
// document's chance is proportional to its length.
//
//   DocumentSource            the interface (SampleFactory uses only this)
//   InMemoryDocumentSource    every document in memory: tests, `glm corrupt`
//   (storage/)                the RocksDB-backed one, from the storage engineer
//
// Thread-safety: implementations must allow concurrent const calls (the
// corruption actors call them from many threads).
#ifndef GLM_DATALOADER_DOCUMENT_SOURCE_H_
#define GLM_DATALOADER_DOCUMENT_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "schema/records.h"

namespace glm::dataloader {

// A read-only window on one document's tokens (ending with the eod token).
// Valid until the next ReadDocument call with the same scratch buffer, or for
// as long as the source lives when the source owns the tokens.
struct DocumentView {
  const int32_t* tokens = nullptr;
  size_t size = 0;
};

class DocumentSource {
 public:
  virtual ~DocumentSource() = default;

  virtual uint64_t num_documents() const = 0;
  // Sum of all document lengths (eod tokens included).
  virtual uint64_t total_tokens() const = 0;
  // Names the exact document collection; part of every sample's RNG key.
  virtual uint64_t manifest_hash() const = 0;

  // The id of the document holding global token position `position`
  // (< total_tokens()); OutOfRange-style InvalidArgument otherwise.
  virtual StatusOr<uint64_t> FindDocument(uint64_t position) const = 0;

  // Points *view at document `id`'s tokens. A source that does not keep the
  // tokens in memory copies them into *scratch and points there.
  virtual Status ReadDocument(uint64_t id, std::vector<int32_t>* scratch,
                             DocumentView* view) const = 0;
};

// All documents in memory. Immutable after construction.
class InMemoryDocumentSource : public DocumentSource {
 public:
  // Takes the documents in manifest order and renumbers their ids 0..N-1.
  // Every document must be non-empty (it ends with its eod token).
  explicit InMemoryDocumentSource(std::vector<Document> documents);

  uint64_t num_documents() const override { return documents_.size(); }
  uint64_t total_tokens() const override { return ends_.empty() ? 0 : ends_.back(); }
  uint64_t manifest_hash() const override { return manifest_hash_; }
  StatusOr<uint64_t> FindDocument(uint64_t position) const override;
  Status ReadDocument(uint64_t id, std::vector<int32_t>* scratch,
                      DocumentView* view) const override;

  const Document& document(uint64_t id) const { return documents_[id]; }
  const std::vector<Document>& documents() const { return documents_; }

 private:
  std::vector<Document> documents_;
  std::vector<uint64_t> ends_;  // ends_[d] = start(d) + size(d)
  uint64_t manifest_hash_ = 0;
};

// The manifest hash of a document list: its count and every document's tokens
// in order (docs/data-pipeline.md). Storage computes the same for its manifest.
uint64_t ComputeManifestHash(const std::vector<Document>& documents);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_DOCUMENT_SOURCE_H_
