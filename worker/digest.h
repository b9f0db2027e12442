// Digest of a job's output: the union of every node's output database under
// <output_dir>/nodes/, as a set of (key, value). A key written twice (a
// retried or duplicated task) must hold the same bytes both times, else
// DataLoss: that would break exactly-once. The digest is SHA-256 over the
// sorted records (8-byte little-endian key length, key, 8-byte value
// length, value), so it is independent of which node wrote what.
//
// Call only when no process writes the output any more.
#ifndef GLM_WORKER_DIGEST_H_
#define GLM_WORKER_DIGEST_H_

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"

namespace glm::worker {

struct OutputDigest {
  std::string sha256_hex;
  uint64_t num_records = 0;
  std::map<std::string, uint64_t> records_by_prefix;  // "doc", "sample/blank", ...
  uint64_t num_node_stores = 0;
};

StatusOr<OutputDigest> DigestOutput(const std::string& output_dir);

}  // namespace glm::worker

#endif  // GLM_WORKER_DIGEST_H_
