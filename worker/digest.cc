#include "worker/digest.h"

#include <openssl/evp.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <memory>

namespace glm::worker {
namespace fs = std::filesystem;

StatusOr<OutputDigest> DigestOutput(const std::string& output_dir) {
  fs::path nodes = fs::path(output_dir) / "nodes";
  std::error_code ec;
  if (!fs::is_directory(nodes, ec)) return NotFoundError("no node stores under " + nodes.string());
  std::map<std::string, std::string> records;
  OutputDigest digest;
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(nodes, ec)) {
    if (entry.is_directory()) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    rocksdb::Options options;
    rocksdb::DB* raw = nullptr;
    // A normal open replays the WAL of a node that was killed mid-write.
    rocksdb::Status s = rocksdb::DB::Open(options, dir.string(), &raw);
    if (!s.ok()) return DataLossError("cannot open node store " + dir.string() + ": " + s.ToString());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      std::string key = it->key().ToString();
      std::string value = it->value().ToString();
      auto [pos, inserted] = records.emplace(key, value);
      if (!inserted && pos->second != value) {
        return DataLossError("key " + key + " holds different values in two node stores (last: " +
                             dir.string() + "): outputs are not deterministic");
      }
    }
    ++digest.num_node_stores;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const auto& [key, value] : records) {
    uint64_t klen = key.size(), vlen = value.size();
    EVP_DigestUpdate(ctx, &klen, 8);
    EVP_DigestUpdate(ctx, key.data(), key.size());
    EVP_DigestUpdate(ctx, &vlen, 8);
    EVP_DigestUpdate(ctx, value.data(), value.size());
    size_t slash = key.find('/');
    std::string prefix = key.substr(0, slash);
    if (prefix == "sample" && slash != std::string::npos) {
      size_t second = key.find('/', slash + 1);
      prefix = key.substr(0, second);
    }
    ++digest.records_by_prefix[prefix];
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex(ctx, md, &md_len);
  EVP_MD_CTX_free(ctx);
  static const char* hex = "0123456789abcdef";
  for (unsigned i = 0; i < md_len; ++i) {
    digest.sha256_hex += hex[md[i] >> 4];
    digest.sha256_hex += hex[md[i] & 15];
  }
  digest.num_records = records.size();
  return digest;
}

}  // namespace glm::worker
