#include "dataloader/document_source.h"

#include <algorithm>
#include <string>

#include "dataloader/hash.h"

namespace glm::dataloader {

uint64_t ComputeManifestHash(const std::vector<Document>& documents) {
  Hasher h;
  h.Update("glm-manifest-v1");
  h.UpdateU64(documents.size());
  for (const Document& d : documents) {
    h.UpdateU64(d.tokens.size());
    h.Update(d.tokens.data(), d.tokens.size() * sizeof(int32_t));
  }
  return h.Finish();
}

InMemoryDocumentSource::InMemoryDocumentSource(std::vector<Document> documents)
    : documents_(std::move(documents)) {
  ends_.reserve(documents_.size());
  uint64_t end = 0;
  for (size_t i = 0; i < documents_.size(); ++i) {
    GLM_CHECK(!documents_[i].tokens.empty()) << "document " << i << " is empty (no eod token)";
    documents_[i].id = i;
    end += documents_[i].tokens.size();
    ends_.push_back(end);
  }
  manifest_hash_ = ComputeManifestHash(documents_);
}

StatusOr<uint64_t> InMemoryDocumentSource::FindDocument(uint64_t position) const {
  if (position >= total_tokens()) {
    return InvalidArgumentError("token position " + std::to_string(position) +
                                " is past the corpus end " + std::to_string(total_tokens()));
  }
  // First document whose end is past `position` (bisect_right on the ends).
  auto it = std::upper_bound(ends_.begin(), ends_.end(), position);
  return static_cast<uint64_t>(it - ends_.begin());
}

Status InMemoryDocumentSource::ReadDocument(uint64_t id, std::vector<int32_t>* /*scratch*/,
                                            DocumentView* view) const {
  if (id >= documents_.size()) {
    return NotFoundError("no document " + std::to_string(id) + " (the corpus has " +
                         std::to_string(documents_.size()) + ")");
  }
  view->tokens = documents_[id].tokens.data();
  view->size = documents_[id].tokens.size();
  return Status::Ok();
}

}  // namespace glm::dataloader
