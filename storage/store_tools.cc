#include "storage/store_tools.h"

#include <openssl/evp.h>

#include <array>
#include <cstring>

#include "schema/record_codec.h"

namespace glm::storage {
namespace {

using Family = RocksDbSampleStore::Family;

schema::DecodeOptions StoreDecodeOptions(const RocksDbSampleStore& store) {
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = store.tokenizer_hash();
  d.traversal_limit_words = store.options().traversal_limit_words;
  return d;
}

// Adds SHA-256(bytes) to the four-lane sum.
void Accumulate(const std::string& bytes, std::array<uint64_t, 4>* lanes) {
  unsigned char hash[32];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), hash, &len, EVP_sha256(), nullptr);
  for (int i = 0; i < 4; ++i) {
    uint64_t v;
    std::memcpy(&v, hash + 8 * i, 8);
    (*lanes)[i] += v;
  }
}

}  // namespace

StatusOr<VerifyReport> VerifyStore(RocksDbSampleStore* store) {
  VerifyReport report;
  if (Status s = store->VerifyChecksums(); !s.ok()) report.problems.push_back(s.message());
  const schema::DecodeOptions d = StoreDecodeOptions(*store);

  Status scan = store->Scan(Family::kMeta, "", [&](std::string_view key, std::string_view value) {
    ++report.num_records;
    Status s;
    if (key == kMetaInfoKey) {
      s = schema::DecodeStoreInfo(value, d).status();
    } else if (key == kMetaDocIndexKey) {
      s = schema::DecodeDocIndex(value, d).status();
    }
    if (!s.ok()) report.problems.push_back(DescribeRawKey("meta", key) + ": " + s.message());
    return true;
  });
  if (!scan.ok()) report.problems.push_back(scan.message());

  Document doc;
  scan = store->Scan(Family::kDocs, "", [&](std::string_view key, std::string_view value) {
    ++report.num_records;
    StatusOr<uint64_t> id = DecodeDocKey(key);
    if (!id.ok()) {
      report.problems.push_back(DescribeRawKey("docs", key) + ": " + id.status().message());
      return true;
    }
    StatusOr<Document> got = schema::DecodeDocument(value, d);
    if (!got.ok()) {
      report.problems.push_back(DescribeDocKey(*id) + ": " + got.status().message());
    } else if (got->id != *id) {
      report.problems.push_back(DescribeDocKey(*id) + ": holds document id " + std::to_string(got->id));
    }
    return true;
  });
  if (!scan.ok()) report.problems.push_back(scan.message());

  Sample sample;
  scan = store->Scan(Family::kSamples, "", [&](std::string_view key, std::string_view value) {
    ++report.num_records;
    StatusOr<SampleKey> k = DecodeSampleKey(key);
    if (!k.ok()) {
      report.problems.push_back(DescribeRawKey("samples", key) + ": " + k.status().message());
      return true;
    }
    Status s = schema::DecodeSampleInto(value, d, &sample);
    if (!s.ok()) {
      report.problems.push_back(DescribeSampleKey(*k) + ": " + s.message());
    } else if (!(KeyOf(sample) == *k)) {
      report.problems.push_back(DescribeSampleKey(*k) + ": holds " + DescribeSampleKey(KeyOf(sample)));
    }
    return true;
  });
  if (!scan.ok()) report.problems.push_back(scan.message());
  return report;
}

StatusOr<StoreDigest> DigestStore(RocksDbSampleStore* store) {
  std::array<uint64_t, 4> lanes = {0, 0, 0, 0};
  StoreDigest digest;
  const schema::DecodeOptions d = StoreDecodeOptions(*store);
  Status inner;
  GLM_RETURN_IF_ERROR(store->Scan(Family::kDocs, "", [&](std::string_view key, std::string_view value) {
    StatusOr<Document> doc = schema::DecodeDocument(value, d);
    if (!doc.ok()) {
      inner = doc.status().WithContext(DescribeRawKey("docs", key));
      return false;
    }
    Accumulate(schema::CanonicalBytes(*doc), &lanes);
    ++digest.num_documents;
    return true;
  }));
  GLM_RETURN_IF_ERROR(inner);
  Sample sample;
  GLM_RETURN_IF_ERROR(store->Scan(Family::kSamples, "", [&](std::string_view key, std::string_view value) {
    Status s = schema::DecodeSampleInto(value, d, &sample);
    if (!s.ok()) {
      inner = s.WithContext(DescribeRawKey("samples", key));
      return false;
    }
    Accumulate(schema::CanonicalBytes(sample), &lanes);
    ++digest.num_samples;
    return true;
  }));
  GLM_RETURN_IF_ERROR(inner);
  char hex[65];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(hex + 16 * i, 17, "%016llx", static_cast<unsigned long long>(lanes[i]));
  }
  digest.hex.assign(hex, 64);
  return digest;
}

Status ForEachSample(RocksDbSampleStore* store, std::optional<Objective> objective,
                     const std::function<bool(const Sample&)>& fn) {
  const schema::DecodeOptions d = StoreDecodeOptions(*store);
  std::string start;
  if (objective) start = EncodeSampleKeyPrefix(*objective, 0);
  Status inner;
  Sample sample;
  GLM_RETURN_IF_ERROR(store->Scan(Family::kSamples, start, [&](std::string_view key, std::string_view value) {
    if (objective && (key.empty() || static_cast<uint8_t>(key[0]) != static_cast<uint8_t>(*objective))) {
      return false;
    }
    Status s = schema::DecodeSampleInto(value, d, &sample);
    if (!s.ok()) {
      inner = s.WithContext(DescribeRawKey("samples", key) + "; HINT: run `glm store verify`");
      return false;
    }
    return fn(sample);
  }));
  return inner;
}

}  // namespace glm::storage
