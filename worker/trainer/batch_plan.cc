#include "worker/trainer/batch_plan.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/options.h"

namespace glm::trainer {

Status BatchGeometryOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireAtLeast("global-batch-size", global_batch_size, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("micro-batch-size", micro_batch_size, 1));
  return Status::Ok();
}

StatusOr<RankSlice> ComputeRankSlice(const BatchGeometryOptions& geometry, int64_t rank,
                                     int64_t world_size) {
  GLM_RETURN_IF_ERROR(geometry.Validate());
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return InvalidArgumentError("rank " + std::to_string(rank) + " is not in a world of size " +
                                std::to_string(world_size));
  }
  const int64_t g = geometry.global_batch_size;
  if (world_size > g) {
    return InvalidArgumentError("world size " + std::to_string(world_size) +
                                " exceeds global-batch-size " + std::to_string(g) +
                                ": every trainer needs at least one sample per step; raise "
                                "global-batch-size or run fewer trainers");
  }
  const int64_t base = g / world_size;
  const int64_t extra = g % world_size;
  RankSlice slice;
  slice.begin_slot = rank * base + std::min(rank, extra);
  slice.end_slot = slice.begin_slot + base + (rank < extra ? 1 : 0);
  for (int64_t s = slice.begin_slot; s < slice.end_slot; s += geometry.micro_batch_size) {
    slice.micro_begin.push_back(s);
  }
  slice.micro_begin.push_back(slice.end_slot);
  return slice;
}

int64_t GradientAccumulationSteps(const BatchGeometryOptions& geometry, int64_t world_size) {
  const int64_t per_rank = (geometry.global_batch_size + world_size - 1) / world_size;
  return (per_rank + geometry.micro_batch_size - 1) / geometry.micro_batch_size;
}

Status MixerOptions::Validate() const {
  double sum = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    const double w = weights[o];
    if (!std::isfinite(w) || w < 0) {
      return InvalidArgumentError("objective weight for " +
                                  std::string(ObjectiveName(static_cast<Objective>(o))) +
                                  " must be a finite number >= 0, got " + std::to_string(w));
    }
    sum += w;
  }
  if (!(sum > 0)) {
    return InvalidArgumentError(
        "all objective weights are 0: enable at least one of blank, sentence, document");
  }
  return Status::Ok();
}

StatusOr<MixerOptions> MixerPreset(const std::string& name) {
  MixerOptions o;
  if (name == "glm-large" || name == "glm-base") {
    o.weights = {1, 0, 0};
  } else if (name == "glm-doc") {
    o.weights = {1, 0, 1};
  } else if (name == "glm-sent") {
    o.weights = {1, 1, 0};
  } else if (name == "glm-2b") {
    o.weights = {0.4, 0.3, 0.3};
  } else if (name == "glm-10b") {
    o.weights = {0.5, 0.3, 0.2};
  } else if (name == "equal") {
    o.weights = {1, 1, 1};
  } else {
    return InvalidArgumentError("unknown objective mix preset '" + name +
                                "'; known: glm-base, glm-large, glm-doc, glm-sent, glm-2b, "
                                "glm-10b, equal");
  }
  return o;
}

StatusOr<ObjectiveMixer> ObjectiveMixer::Create(const MixerOptions& options,
                                                int64_t global_batch_size) {
  GLM_RETURN_IF_ERROR(options.Validate());
  if (global_batch_size < 1) {
    return InvalidArgumentError("global-batch-size must be >= 1");
  }
  ObjectiveMixer m;
  m.options_ = options;
  m.global_batch_size_ = global_batch_size;

  // Quantise to parts per million; the rounding residue goes to the largest
  // weight so that the parts sum to exactly kWeightResolution.
  const double sum = options.weights[0] + options.weights[1] + options.weights[2];
  int64_t parts[kNumObjectives];
  int64_t total = 0;
  int largest = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    parts[o] = std::llround(options.weights[o] / sum * static_cast<double>(kWeightResolution));
    total += parts[o];
    if (options.weights[o] > options.weights[largest]) largest = o;
  }
  parts[largest] += static_cast<int64_t>(kWeightResolution) - total;
  uint64_t g = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    if (parts[o] < 0) parts[o] = 0;
    if (options.weights[o] > 0 && parts[o] == 0) {
      return InvalidArgumentError("objective weight for " +
                                  std::string(ObjectiveName(static_cast<Objective>(o))) +
                                  " is below the resolution of 1e-6 of the total");
    }
    g = std::gcd(g, static_cast<uint64_t>(parts[o]));
  }
  m.total_weight_ = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    m.int_weights_[o] = static_cast<uint64_t>(parts[o]) / g;
    m.total_weight_ += m.int_weights_[o];
  }

  if (options.mode == MixMode::kPerSample) {
    for (int o = 0; o < kNumObjectives; ++o) {
      if (m.int_weights_[o] > 0 &&
          static_cast<unsigned __int128>(global_batch_size) * m.int_weights_[o] < m.total_weight_) {
        return InvalidArgumentError(
            "objective " + std::string(ObjectiveName(static_cast<Objective>(o))) +
            " would get less than one sample per global batch (global-batch-size " +
            std::to_string(global_batch_size) +
            "); raise global-batch-size, raise its weight, or use the per-batch mix mode");
      }
    }
  } else {
    // Smooth weighted round-robin over one period of total_weight_ batches:
    // each objective gets exactly int_weights_[o] batches per period.
    const uint64_t period = m.total_weight_;
    m.period_.resize(period);
    m.period_prefix_.resize(period + 1);
    m.period_prefix_[0] = {0, 0, 0};
    int64_t current[kNumObjectives] = {0, 0, 0};
    for (uint64_t k = 0; k < period; ++k) {
      int best = -1;
      for (int o = 0; o < kNumObjectives; ++o) {
        if (m.int_weights_[o] == 0) continue;
        current[o] += static_cast<int64_t>(m.int_weights_[o]);
        if (best < 0 || current[o] > current[best]) best = o;
      }
      current[best] -= static_cast<int64_t>(period);
      m.period_[k] = static_cast<uint8_t>(best);
      m.period_prefix_[k + 1] = m.period_prefix_[k];
      m.period_prefix_[k + 1][best] += 1;
    }
  }
  return m;
}

ObjectiveCounts ObjectiveMixer::Apportion(uint64_t n) const {
  ObjectiveCounts counts{};
  uint64_t rem[kNumObjectives] = {0, 0, 0};
  uint64_t assigned = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    const unsigned __int128 q = static_cast<unsigned __int128>(n) * int_weights_[o];
    counts[o] = static_cast<uint64_t>(q / total_weight_);
    rem[o] = static_cast<uint64_t>(q % total_weight_);
    assigned += counts[o];
  }
  // Largest remainders first; ties go to the lower objective index.
  for (uint64_t left = n - assigned; left > 0; --left) {
    int best = -1;
    for (int o = 0; o < kNumObjectives; ++o) {
      if (rem[o] > 0 && (best < 0 || rem[o] > rem[best])) best = o;
    }
    GLM_CHECK(best >= 0) << "largest remainder ran out of remainders";
    counts[best] += 1;
    rem[best] = 0;
  }
  return counts;
}

ObjectiveCounts ObjectiveMixer::BatchesBefore(int64_t k) const {
  const uint64_t period = period_.size();
  const uint64_t full = static_cast<uint64_t>(k) / period;
  const uint64_t partial = static_cast<uint64_t>(k) % period;
  ObjectiveCounts counts{};
  for (int o = 0; o < kNumObjectives; ++o) {
    counts[o] = full * int_weights_[o] + period_prefix_[partial][o];
  }
  return counts;
}

ObjectiveCounts ObjectiveMixer::ConsumedAfter(int64_t num_steps) const {
  const uint64_t g = static_cast<uint64_t>(global_batch_size_);
  if (options_.mode == MixMode::kPerSample) {
    return Apportion(static_cast<uint64_t>(num_steps) * g);
  }
  ObjectiveCounts counts = BatchesBefore(num_steps);
  for (auto& c : counts) c *= g;
  return counts;
}

ObjectiveCounts ObjectiveMixer::CountsInBatch(int64_t step) const {
  const ObjectiveCounts before = ConsumedAfter(step);
  const ObjectiveCounts after = ConsumedAfter(step + 1);
  ObjectiveCounts counts{};
  for (int o = 0; o < kNumObjectives; ++o) counts[o] = after[o] - before[o];
  return counts;
}

std::vector<ObjectiveRun> ObjectiveMixer::Runs(int64_t step, int64_t begin_slot,
                                               int64_t end_slot) const {
  GLM_CHECK(0 <= begin_slot && begin_slot <= end_slot && end_slot <= global_batch_size_)
      << "slots [" << begin_slot << ", " << end_slot << ") outside a global batch of "
      << global_batch_size_;
  const ObjectiveCounts before = ConsumedAfter(step);
  const ObjectiveCounts in_batch = CountsInBatch(step);
  std::vector<ObjectiveRun> runs;
  int64_t group_start = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    const int64_t group_end = group_start + static_cast<int64_t>(in_batch[o]);
    const int64_t b = std::max(begin_slot, group_start);
    const int64_t e = std::min(end_slot, group_end);
    if (b < e) {
      ObjectiveRun run;
      run.objective = static_cast<Objective>(o);
      run.begin_slot = b;
      run.count = e - b;
      run.first_index = before[o] + static_cast<uint64_t>(b - group_start);
      runs.push_back(run);
    }
    group_start = group_end;
  }
  return runs;
}

SampleRef ObjectiveMixer::ToSampleRef(Objective objective, uint64_t cumulative_index) const {
  const uint64_t per_epoch = options_.samples_per_epoch[static_cast<int>(objective)];
  SampleRef ref;
  ref.objective = objective;
  if (per_epoch == 0) {
    ref.epoch = 0;
    ref.index = cumulative_index;
  } else {
    ref.epoch = static_cast<uint32_t>(cumulative_index / per_epoch);
    ref.index = cumulative_index % per_epoch;
  }
  return ref;
}

SampleRef ObjectiveMixer::SlotSample(int64_t step, int64_t slot) const {
  const std::vector<ObjectiveRun> runs = Runs(step, slot, slot + 1);
  GLM_CHECK(runs.size() == 1) << "slot " << slot << " of step " << step << " has no objective";
  return ToSampleRef(runs[0].objective, runs[0].first_index);
}

}  // namespace glm::trainer
