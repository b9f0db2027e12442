#include "storage/document_index.h"

#include <algorithm>

namespace glm::storage {

DocumentIndex::DocumentIndex(std::vector<uint64_t> lengths) : lengths_(std::move(lengths)) {
  starts_.resize(lengths_.size() + 1, 0);
  for (size_t i = 0; i < lengths_.size(); ++i) starts_[i + 1] = starts_[i] + lengths_[i];
}

StatusOr<TokenPosition> DocumentIndex::Locate(uint64_t position) const {
  if (position >= total_tokens()) {
    return InvalidArgumentError("token position " + std::to_string(position) +
                                " is past the corpus of " + std::to_string(total_tokens()) + " tokens");
  }
  // The last start <= position; empty documents share their start with the
  // next one, and upper_bound skips past them.
  auto it = std::upper_bound(starts_.begin(), starts_.end(), position);
  uint64_t doc = static_cast<uint64_t>(it - starts_.begin()) - 1;
  return TokenPosition{doc, position - starts_[doc]};
}

}  // namespace glm::storage
