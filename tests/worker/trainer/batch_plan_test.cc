#include "worker/trainer/batch_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "worker/trainer/lr_schedule.h"

namespace glm::trainer {
namespace {

std::vector<SampleRef> GlobalBatch(const ObjectiveMixer& mixer, int64_t step) {
  std::vector<SampleRef> out;
  for (int64_t s = 0; s < mixer.global_batch_size(); ++s) out.push_back(mixer.SlotSample(step, s));
  return out;
}

TEST(RankSliceTest, SlicesCoverGlobalBatchExactlyOnceForEveryWorldSize) {
  BatchGeometryOptions geometry{.global_batch_size = 13, .micro_batch_size = 3};
  for (int64_t world = 1; world <= 13; ++world) {
    std::vector<int> covered(13, 0);
    int64_t max_micro = 0;
    for (int64_t rank = 0; rank < world; ++rank) {
      auto slice = ComputeRankSlice(geometry, rank, world);
      ASSERT_TRUE(slice.ok()) << slice.status();
      for (int64_t s = slice->begin_slot; s < slice->end_slot; ++s) covered[s]++;
      EXPECT_EQ(slice->micro_begin.front(), slice->begin_slot);
      EXPECT_EQ(slice->micro_begin.back(), slice->end_slot);
      for (int64_t i = 0; i < slice->num_micro_batches(); ++i) {
        const int64_t n = slice->micro_begin[i + 1] - slice->micro_begin[i];
        EXPECT_GE(n, 1);
        EXPECT_LE(n, 3);
      }
      EXPECT_GE(slice->num_slots(), 13 / world);
      EXPECT_LE(slice->num_slots(), 13 / world + 1);
      max_micro = std::max(max_micro, slice->num_micro_batches());
    }
    for (int c : covered) EXPECT_EQ(c, 1) << "world " << world;
    EXPECT_EQ(max_micro, GradientAccumulationSteps(geometry, world));
  }
}

TEST(RankSliceTest, AccumulationStepsShrinkAsWorldGrows) {
  BatchGeometryOptions geometry{.global_batch_size = 32, .micro_batch_size = 4};
  EXPECT_EQ(GradientAccumulationSteps(geometry, 1), 8);
  EXPECT_EQ(GradientAccumulationSteps(geometry, 2), 4);
  EXPECT_EQ(GradientAccumulationSteps(geometry, 8), 1);
  EXPECT_EQ(GradientAccumulationSteps(geometry, 3), 3);  // 11 slots -> 4 + 4 + 3
}

TEST(RankSliceTest, RejectsBadRankAndWorldLargerThanBatch) {
  BatchGeometryOptions geometry{.global_batch_size = 4, .micro_batch_size = 2};
  EXPECT_EQ(ComputeRankSlice(geometry, 2, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ComputeRankSlice(geometry, -1, 2).status().code(), StatusCode::kInvalidArgument);
  auto too_many = ComputeRankSlice(geometry, 0, 5);
  EXPECT_EQ(too_many.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_many.status().message().find("global-batch-size"), std::string::npos);
  BatchGeometryOptions bad{.global_batch_size = 4, .micro_batch_size = 0};
  EXPECT_FALSE(ComputeRankSlice(bad, 0, 1).ok());
}

TEST(MixerTest, PresetsMatchSpecWeights) {
  EXPECT_EQ(MixerPreset("glm-large")->weights, (std::array<double, 3>{1, 0, 0}));
  EXPECT_EQ(MixerPreset("glm-doc")->weights, (std::array<double, 3>{1, 0, 1}));
  EXPECT_EQ(MixerPreset("glm-sent")->weights, (std::array<double, 3>{1, 1, 0}));
  EXPECT_EQ(MixerPreset("glm-2b")->weights, (std::array<double, 3>{0.4, 0.3, 0.3}));
  EXPECT_EQ(MixerPreset("glm-10b")->weights, (std::array<double, 3>{0.5, 0.3, 0.2}));
  auto unknown = MixerPreset("glm-huge");
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("glm-10b"), std::string::npos);
}

TEST(MixerTest, PerSampleCumulativeCountsStayWithinOneSampleOfExactRates) {
  for (const char* preset : {"glm-2b", "glm-10b", "glm-doc", "equal"}) {
    MixerOptions options = *MixerPreset(preset);
    const double sum = options.weights[0] + options.weights[1] + options.weights[2];
    for (int64_t g : {7, 8, 10, 64, 1000}) {
      auto mixer = ObjectiveMixer::Create(options, g);
      ASSERT_TRUE(mixer.ok()) << mixer.status();
      ObjectiveCounts running{};
      for (int64_t step = 0; step < 300; ++step) {
        ObjectiveCounts in_batch = mixer->CountsInBatch(step);
        EXPECT_EQ(in_batch[0] + in_batch[1] + in_batch[2], static_cast<uint64_t>(g));
        for (int o = 0; o < 3; ++o) {
          running[o] += in_batch[o];
          const double exact = static_cast<double>((step + 1) * g) * options.weights[o] / sum;
          EXPECT_LT(std::abs(static_cast<double>(running[o]) - exact), 1.0)
              << preset << " g=" << g << " step=" << step << " objective " << o;
          if (options.weights[o] == 0) {
            EXPECT_EQ(in_batch[o], 0u);
          }
        }
        EXPECT_EQ(running, mixer->ConsumedAfter(step + 1));
      }
    }
  }
}

TEST(MixerTest, ExactRatesWhenBatchDividesEvenly) {
  auto mixer = ObjectiveMixer::Create(*MixerPreset("glm-2b"), 10);
  ASSERT_TRUE(mixer.ok());
  for (int64_t step = 0; step < 50; ++step) {
    EXPECT_EQ(mixer->CountsInBatch(step), (ObjectiveCounts{4, 3, 3}));
  }
  EXPECT_EQ(mixer->ConsumedAfter(1000), (ObjectiveCounts{4000, 3000, 3000}));
}

TEST(MixerTest, EverySampleOfEveryObjectiveIsUsedOnceInOrder) {
  auto mixer = ObjectiveMixer::Create(*MixerPreset("glm-10b"), 9);
  ASSERT_TRUE(mixer.ok());
  ObjectiveCounts next{};
  for (int64_t step = 0; step < 100; ++step) {
    for (const SampleRef& ref : GlobalBatch(*mixer, step)) {
      EXPECT_EQ(ref.epoch, 0u);
      EXPECT_EQ(ref.index, next[static_cast<int>(ref.objective)]++);
    }
  }
  EXPECT_EQ(next, mixer->ConsumedAfter(100));
}

TEST(MixerTest, SlotsAreGroupedByObjectiveInsideABatch) {
  auto mixer = ObjectiveMixer::Create(*MixerPreset("glm-2b"), 10);
  ASSERT_TRUE(mixer.ok());
  std::vector<SampleRef> batch = GlobalBatch(*mixer, 3);
  for (size_t i = 1; i < batch.size(); ++i) {
    EXPECT_LE(static_cast<int>(batch[i - 1].objective), static_cast<int>(batch[i].objective));
  }
  auto runs = mixer->Runs(3, 2, 8);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].objective, Objective::kBlank);
  EXPECT_EQ(runs[0].begin_slot, 2);
  EXPECT_EQ(runs[0].count, 2);
  EXPECT_EQ(runs[0].first_index, 3u * 4 + 2);
  EXPECT_EQ(runs[1].count, 3);
  EXPECT_EQ(runs[2].objective, Objective::kDocument);
  EXPECT_EQ(runs[2].count, 1);
  EXPECT_EQ(runs[2].first_index, 3u * 3);
}

TEST(MixerTest, GlobalBatchDoesNotDependOnWorldSize) {
  auto mixer = ObjectiveMixer::Create(*MixerPreset("glm-10b"), 12);
  ASSERT_TRUE(mixer.ok());
  BatchGeometryOptions geometry{.global_batch_size = 12, .micro_batch_size = 2};
  for (int64_t step : {0, 5, 77}) {
    const std::vector<SampleRef> expected = GlobalBatch(*mixer, step);
    for (int64_t world : {1, 2, 3, 5}) {
      std::vector<SampleRef> assembled;
      for (int64_t rank = 0; rank < world; ++rank) {
        RankSlice slice = *ComputeRankSlice(geometry, rank, world);
        for (const ObjectiveRun& run : mixer->Runs(step, slice.begin_slot, slice.end_slot)) {
          for (int64_t i = 0; i < run.count; ++i) {
            assembled.push_back(mixer->ToSampleRef(run.objective, run.first_index + i));
          }
        }
      }
      EXPECT_EQ(assembled, expected) << "step " << step << " world " << world;
    }
  }
}

TEST(MixerTest, PerBatchModeGivesWholeBatchesAtExactRates) {
  MixerOptions options = *MixerPreset("glm-10b");
  options.mode = MixMode::kPerBatch;
  auto mixer = ObjectiveMixer::Create(options, 4);
  ASSERT_TRUE(mixer.ok()) << mixer.status();
  ObjectiveCounts batches{};
  for (int64_t step = 0; step < 1000; ++step) {
    ObjectiveCounts c = mixer->CountsInBatch(step);
    int nonzero = 0;
    for (int o = 0; o < 3; ++o) {
      if (c[o] > 0) {
        ++nonzero;
        EXPECT_EQ(c[o], 4u);
        batches[o]++;
      }
    }
    EXPECT_EQ(nonzero, 1);
    for (int o = 0; o < 3; ++o) {
      const double exact = (step + 1) * options.weights[o];
      EXPECT_LT(std::abs(static_cast<double>(batches[o]) - exact), 1.0) << step;
    }
  }
  EXPECT_EQ(batches, (ObjectiveCounts{500, 300, 200}));
  EXPECT_EQ(mixer->ConsumedAfter(1000), (ObjectiveCounts{2000, 1200, 800}));
  // Indices continue per objective across batches.
  ObjectiveCounts next{};
  for (int64_t step = 0; step < 20; ++step) {
    for (const SampleRef& ref : GlobalBatch(*mixer, step)) {
      EXPECT_EQ(ref.index, next[static_cast<int>(ref.objective)]++);
    }
  }
}

TEST(MixerTest, EpochsSplitPerObjectiveIndex) {
  MixerOptions options;
  options.weights = {1, 0, 0};
  options.samples_per_epoch = {5, 0, 0};
  auto mixer = ObjectiveMixer::Create(options, 4);
  ASSERT_TRUE(mixer.ok());
  EXPECT_EQ(mixer->SlotSample(1, 0), (SampleRef{Objective::kBlank, 0, 4}));
  EXPECT_EQ(mixer->SlotSample(1, 1), (SampleRef{Objective::kBlank, 1, 0}));
  EXPECT_EQ(mixer->SlotSample(3, 3), (SampleRef{Objective::kBlank, 3, 0}));
}

TEST(MixerTest, RejectsBadWeightsAndTooSmallBatches) {
  MixerOptions zero;
  zero.weights = {0, 0, 0};
  EXPECT_EQ(ObjectiveMixer::Create(zero, 8).status().code(), StatusCode::kInvalidArgument);
  MixerOptions negative;
  negative.weights = {1, -1, 0};
  EXPECT_FALSE(ObjectiveMixer::Create(negative, 8).ok());
  MixerOptions nan;
  nan.weights = {1, std::nan(""), 0};
  EXPECT_FALSE(ObjectiveMixer::Create(nan, 8).ok());
  MixerOptions skewed;
  skewed.weights = {0.95, 0.05, 0};
  auto small = ObjectiveMixer::Create(skewed, 10);
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("per-batch"), std::string::npos);
  EXPECT_TRUE(ObjectiveMixer::Create(skewed, 20).ok());
  skewed.mode = MixMode::kPerBatch;
  EXPECT_TRUE(ObjectiveMixer::Create(skewed, 10).ok());
}

// Hand-computed values: lr_max = 1e-3, D = 100, warmup 0.1 -> W = 10, r = 0.1.
TEST(LrScheduleTest, WarmupStartsAtZeroAndRisesLinearly) {
  LrScheduleOptions o{.lr = 1e-3,
                      .decay_steps = 100,
                      .warmup_fraction = 0.1,
                      .style = DecayStyle::kCosine,
                      .decay_ratio = 0.1};
  ASSERT_TRUE(o.Validate().ok());
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 0.0);
  EXPECT_DOUBLE_EQ(LearningRate(o, 1), 1e-4);
  EXPECT_DOUBLE_EQ(LearningRate(o, 5), 5e-4);
  EXPECT_DOUBLE_EQ(LearningRate(o, 10), 1e-3);
}

TEST(LrScheduleTest, CosineDecayMatchesHandComputedValues) {
  LrScheduleOptions o{.lr = 1e-3,
                      .decay_steps = 100,
                      .warmup_fraction = 0.1,
                      .style = DecayStyle::kCosine,
                      .decay_ratio = 0.1};
  // t = 55: progress 0.5, cos(pi/2) = 0 -> 1e-3 * (0.1 + 0.9 * 0.5) = 5.5e-4.
  EXPECT_NEAR(LearningRate(o, 55), 5.5e-4, 1e-15);
  // t = 32.5 is not an integer; t = 40: progress 1/3, cos(pi/3) = 0.5 -> 0.1 + 0.9*0.75 = 0.775.
  EXPECT_NEAR(LearningRate(o, 40), 7.75e-4, 1e-15);
  EXPECT_NEAR(LearningRate(o, 100), 1e-4, 1e-15);
  EXPECT_NEAR(LearningRate(o, 500), 1e-4, 1e-15);  // constant r * lr after D
}

TEST(LrScheduleTest, LinearDecayMatchesHandComputedValuesAndIsNotClamped) {
  LrScheduleOptions o{.lr = 1e-3,
                      .decay_steps = 100,
                      .warmup_fraction = 0.1,
                      .style = DecayStyle::kLinear,
                      .decay_ratio = 0.1};
  EXPECT_NEAR(LearningRate(o, 55), 1e-3 * (1 - 0.9 * 0.5), 1e-15);
  EXPECT_NEAR(LearningRate(o, 100), 1e-4, 1e-15);
  EXPECT_NEAR(LearningRate(o, 110), 1e-3 * (1 - 0.9 * 100.0 / 90.0), 1e-15);
}

TEST(LrScheduleTest, GlmBaseSettings) {
  // GLM-Base: lr 4e-4, D = 120k, warmup 0.05 -> W = 6000, cosine to 0.05.
  LrScheduleOptions o{.lr = 4e-4,
                      .decay_steps = 120000,
                      .warmup_fraction = 0.05,
                      .style = DecayStyle::kCosine,
                      .decay_ratio = 0.05};
  EXPECT_DOUBLE_EQ(LearningRate(o, 3000), 2e-4);
  EXPECT_DOUBLE_EQ(LearningRate(o, 6000), 4e-4);
  EXPECT_NEAR(LearningRate(o, 63000), 4e-4 * (0.05 + 0.95 * 0.5), 1e-15);
}

TEST(LrScheduleTest, NoWarmupAndConstantStyle) {
  LrScheduleOptions o{.lr = 2e-3,
                      .decay_steps = 10,
                      .warmup_fraction = 0.0,
                      .style = DecayStyle::kConstant,
                      .decay_ratio = 0.1};
  EXPECT_DOUBLE_EQ(LearningRate(o, 0), 2e-3);
  EXPECT_DOUBLE_EQ(LearningRate(o, 99), 2e-3);
  EXPECT_EQ(ParseDecayStyle("cosine").value(), DecayStyle::kCosine);
  EXPECT_FALSE(ParseDecayStyle("exponential").ok());
  LrScheduleOptions bad = o;
  bad.warmup_fraction = 1.5;
  EXPECT_FALSE(bad.Validate().ok());
}

}  // namespace
}  // namespace glm::trainer
