#include "storage/in_memory_sample_store.h"

namespace glm::storage {

schema::DecodeOptions InMemorySampleStore::decode_options() const {
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = tokenizer_hash_;
  return d;
}

Status InMemorySampleStore::PutDocuments(const std::vector<Document>& docs) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Document& d : docs) docs_[EncodeDocKey(d.id)] = schema::EncodeDocument(d, tokenizer_hash_);
  doc_lengths_.reset();
  return Status::Ok();
}

StatusOr<Document> InMemorySampleStore::GetDocument(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = docs_.find(EncodeDocKey(id));
  if (it == docs_.end()) return NotFoundError("no document " + DescribeDocKey(id) + " in the in-memory store");
  StatusOr<Document> doc = schema::DecodeDocument(it->second, decode_options());
  if (!doc.ok()) return doc.status().WithContext(DescribeDocKey(id));
  return doc;
}

Status InMemorySampleStore::BuildDocumentIndex() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> lengths;
  for (const auto& [key, value] : docs_) {
    GLM_ASSIGN_OR_RETURN(uint64_t id, DecodeDocKey(key));
    if (id != lengths.size()) {
      return FailedPreconditionError("documents are not dense: " + DescribeDocKey(lengths.size()) +
                                     " is missing (next is " + DescribeDocKey(id) + ")");
    }
    StatusOr<uint64_t> n = schema::DecodedDocumentLength(value, decode_options());
    if (!n.ok()) return n.status().WithContext(DescribeDocKey(id));
    lengths.push_back(*n);
  }
  doc_lengths_ = std::move(lengths);
  return Status::Ok();
}

StatusOr<std::vector<uint64_t>> InMemorySampleStore::ListDocumentLengths() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!doc_lengths_) {
    return FailedPreconditionError(
        "the in-memory store has no document index; HINT: call BuildDocumentIndex() after writing the "
        "documents");
  }
  return *doc_lengths_;
}

Status InMemorySampleStore::PutSamples(const std::vector<Sample>& samples) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Sample& s : samples) samples_[EncodeSampleKey(KeyOf(s))] = schema::EncodeSample(s, tokenizer_hash_);
  return Status::Ok();
}

Status InMemorySampleStore::PutEncodedSamples(const std::vector<std::string>& records) {
  std::vector<std::pair<std::string, std::string>> batch;
  Sample scratch;
  for (size_t i = 0; i < records.size(); ++i) {
    Status s = schema::DecodeSampleInto(records[i], decode_options(), &scratch);
    if (!s.ok()) return s.WithContext("sample " + std::to_string(i) + " of the batch; nothing was written");
    batch.emplace_back(EncodeSampleKey(KeyOf(scratch)), records[i]);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [k, v] : batch) samples_[k] = std::move(v);
  return Status::Ok();
}

StatusOr<std::vector<std::string>> InMemorySampleStore::MultiGetEncodedSamples(
    const std::vector<SampleKey>& keys) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.reserve(keys.size());
  for (const SampleKey& k : keys) {
    auto it = samples_.find(EncodeSampleKey(k));
    if (it == samples_.end()) return NotFoundError("no sample " + DescribeSampleKey(k) + " in the in-memory store");
    out.push_back(it->second);
  }
  return out;
}

StatusOr<std::vector<std::string>> InMemorySampleStore::GetEncodedSampleRange(Objective objective,
                                                                              uint32_t epoch,
                                                                              uint64_t begin,
                                                                              uint64_t end) {
  std::vector<SampleKey> keys;
  for (uint64_t i = begin; i < end; ++i) keys.push_back({objective, epoch, i});
  return MultiGetEncodedSamples(keys);
}

StatusOr<std::vector<Sample>> InMemorySampleStore::MultiGetSamples(const std::vector<SampleKey>& keys) {
  GLM_ASSIGN_OR_RETURN(std::vector<std::string> encoded, MultiGetEncodedSamples(keys));
  std::vector<Sample> out(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    Status s = schema::DecodeSampleInto(encoded[i], decode_options(), &out[i]);
    if (!s.ok()) return s.WithContext(DescribeSampleKey(keys[i]) + " in the in-memory store");
  }
  return out;
}

StatusOr<std::vector<Sample>> InMemorySampleStore::GetSampleRange(Objective objective, uint32_t epoch,
                                                                  uint64_t begin, uint64_t end) {
  std::vector<SampleKey> keys;
  for (uint64_t i = begin; i < end; ++i) keys.push_back({objective, epoch, i});
  return MultiGetSamples(keys);
}

Status InMemorySampleStore::PutMeta(std::string_view key, std::string_view value) {
  return WriteMeta({{std::string(key), std::string(value)}});
}

StatusOr<std::string> InMemorySampleStore::GetMeta(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_.find(std::string(key));
  if (it == meta_.end()) return NotFoundError("no meta key '" + std::string(key) + "' in the in-memory store");
  return it->second;
}

Status InMemorySampleStore::DeleteMeta(std::string_view key) { return WriteMeta({{std::string(key), std::nullopt}}); }

StatusOr<std::vector<std::pair<std::string, std::string>>> InMemorySampleStore::ScanMeta(
    std::string_view prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = meta_.lower_bound(std::string(prefix)); it != meta_.end(); ++it) {
    if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
    out.emplace_back(it->first, it->second);
  }
  return out;
}

Status InMemorySampleStore::WriteMeta(const std::vector<MetaWrite>& writes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const MetaWrite& w : writes) {
    if (w.value) {
      meta_[w.key] = *w.value;
    } else {
      meta_.erase(w.key);
    }
  }
  return Status::Ok();
}

void InMemorySampleStore::PutRawSampleForTesting(const SampleKey& key, std::string bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  samples_[EncodeSampleKey(key)] = std::move(bytes);
}

size_t InMemorySampleStore::num_samples() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_.size();
}

}  // namespace glm::storage
