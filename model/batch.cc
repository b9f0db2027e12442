#include "model/batch.h"

#include <algorithm>
#include <string>

namespace glm::model {
namespace {

std::string Describe(const Sample& s, size_t row) {
  return "sample " + std::to_string(row) + " (objective " + std::string(ObjectiveName(s.objective)) +
         ", epoch " + std::to_string(s.epoch) + ", index " + std::to_string(s.index) + ")";
}

}  // namespace

Batch Batch::To(const torch::Device& device) const {
  Batch b;
  b.tokens = tokens.to(device);
  b.position_ids = position_ids.to(device);
  b.block_position_ids = block_position_ids.to(device);
  b.sep = sep.to(device);
  b.targets = targets.to(device);
  b.loss_mask = loss_mask.to(device);
  b.objective = objective.to(device);
  return b;
}

StatusOr<Batch> CollateSamples(const std::vector<Sample>& samples) {
  if (samples.empty()) return InvalidArgumentError("CollateSamples: no samples");
  int64_t seq = 0;
  for (size_t r = 0; r < samples.size(); ++r) {
    const Sample& s = samples[r];
    const size_t n = s.tokens.size();
    if (n == 0) return InvalidArgumentError(Describe(s, r) + " has no tokens");
    if (s.targets.size() != n) return InvalidArgumentError(Describe(s, r) + ": targets length differs from tokens");
    if (s.loss_mask.size() != n) return InvalidArgumentError(Describe(s, r) + ": loss_mask length differs from tokens");
    if (s.position_ids.size() != n) {
      return InvalidArgumentError(Describe(s, r) + ": position_ids length differs from tokens");
    }
    if (s.block_position_ids.size() != n) {
      return InvalidArgumentError(Describe(s, r) + ": block_position_ids length differs from tokens");
    }
    if (s.sep < 0 || static_cast<size_t>(s.sep) > n) {
      return InvalidArgumentError(Describe(s, r) + ": sep " + std::to_string(s.sep) + " outside [0, " +
                                  std::to_string(n) + "]");
    }
    seq = std::max<int64_t>(seq, static_cast<int64_t>(n));
  }
  const auto rows = static_cast<int64_t>(samples.size());
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  Batch b;
  b.tokens = torch::zeros({rows, seq}, i64);
  b.position_ids = torch::zeros({rows, seq}, i64);
  b.block_position_ids = torch::zeros({rows, seq}, i64);
  b.targets = torch::zeros({rows, seq}, i64);
  b.loss_mask = torch::zeros({rows, seq}, torch::kFloat32);
  b.sep = torch::zeros({rows}, i64);
  b.objective = torch::zeros({rows}, i64);
  auto tok = b.tokens.accessor<int64_t, 2>();
  auto pos = b.position_ids.accessor<int64_t, 2>();
  auto blk = b.block_position_ids.accessor<int64_t, 2>();
  auto tgt = b.targets.accessor<int64_t, 2>();
  auto msk = b.loss_mask.accessor<float, 2>();
  auto sep = b.sep.accessor<int64_t, 1>();
  auto obj = b.objective.accessor<int64_t, 1>();
  for (int64_t r = 0; r < rows; ++r) {
    const Sample& s = samples[static_cast<size_t>(r)];
    for (size_t j = 0; j < s.tokens.size(); ++j) {
      const auto c = static_cast<int64_t>(j);
      tok[r][c] = s.tokens[j];
      pos[r][c] = s.position_ids[j];
      blk[r][c] = s.block_position_ids[j];
      tgt[r][c] = s.targets[j];
      msk[r][c] = s.loss_mask[j] != 0 ? 1.0f : 0.0f;
    }
    sep[r] = s.sep;
    obj[r] = static_cast<int64_t>(s.objective);
  }
  return b;
}

}  // namespace glm::model
