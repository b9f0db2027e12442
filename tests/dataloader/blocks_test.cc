#include <gtest/gtest.h>

#include "dataloader/blocks.h"

namespace glm::dataloader {
namespace {

// The reference's BERT ids (GLM_SPEC 2.8, 4): [CLS] 101, [SEP] 102 (the
// example's end of document), [MASK] 103, sop 30522, eop 30523.
SpecialTokenIds BertIds() {
  SpecialTokenIds ids;
  ids.pad = 0;
  ids.cls = 101;
  ids.eod = 102;
  ids.sep = 102;
  ids.mask = 103;
  ids.unk = 100;
  ids.sop = 30522;
  ids.eop = 30523;
  ids.gmask = 30524;
  ids.smask = 30525;
  ids.dblock = 30526;
  return ids;
}

TEST(BuildBlockSampleTest, ReproducesTheSpecWorkedExampleTokenForToken) {
  const std::vector<int32_t> x = {101, 7, 8, 9, 10, 11, 12, 13, 14, 15, 102};
  const std::vector<Span> spans = {{6, 9}, {2, 4}};  // Part-B order: second span first
  SampleRng rng(0, 0, 0);
  std::vector<int32_t> order;
  Sample s;
  BuildBlockSample(x.data(), static_cast<int32_t>(x.size()), spans, 103, BertIds(), 0.0, &rng,
                   &order, &s);
  const int32_t sop = 30522, eop = 30523;
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{101, 7, 103, 10, 11, 103, 15, 102, sop, 12, 13, 14,
                                            sop, 8, 9}));
  EXPECT_EQ(s.targets, (std::vector<int32_t>{101, 7, 103, 10, 11, 103, 15, 102, 12, 13, 14, eop,
                                             8, 9, eop}));
  EXPECT_EQ(s.loss_mask, (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(s.position_ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 5, 5, 5, 5, 2, 2, 2}));
  EXPECT_EQ(s.block_position_ids,
            (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 1, 2, 3}));
  EXPECT_EQ(s.sep, 8);
  EXPECT_EQ(s.spans, spans);
}

TEST(BuildSuffixSampleTest, ReproducesTheSpecSuffixExample) {
  const std::vector<int32_t> x = {101, 7, 8, 9, 10, 11, 12, 13, 14, 102};  // n = 10
  Sample s;
  BuildSuffixSample(x.data(), 10, 4, 30524, BertIds(), &s);
  const int32_t g = 30524, sop = 30522;
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{101, 7, 8, 9, 10, 11, g, sop, 12, 13, 14}));
  EXPECT_EQ(s.targets, (std::vector<int32_t>{101, 7, 8, 9, 10, 11, g, 12, 13, 14, 102}));
  EXPECT_EQ(s.position_ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6}));
  EXPECT_EQ(s.block_position_ids, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}));
  EXPECT_EQ(s.loss_mask, (std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(s.sep, 7);
  EXPECT_EQ(s.spans, (std::vector<Span>{{6, 10}}));
}

TEST(BuildSuffixSampleTest, NoLossOnAPackedDocumentsClsInTheSuffix) {
  const std::vector<int32_t> x = {101, 7, 102, 101, 8, 102};
  Sample s;
  BuildSuffixSample(x.data(), 6, 4, 30524, BertIds(), &s);
  // D = 2: targets x[2:6] = 102 101 8 102; the [CLS] target has no loss.
  EXPECT_EQ(s.loss_mask, (std::vector<uint8_t>{0, 0, 0, 1, 0, 1, 1}));
}

TEST(BuildBlockSampleTest, DBlockReplacesOnlyPartBInputsAfterSop) {
  const std::vector<int32_t> x = {101, 7, 8, 9, 10, 11, 12, 13, 14, 15, 102};
  SampleRng rng(0, 0, 0);
  std::vector<int32_t> order;
  Sample s;
  BuildBlockSample(x.data(), 11, {{2, 9}}, 103, BertIds(), 1.0, &rng, &order, &s);
  EXPECT_EQ(s.tokens, (std::vector<int32_t>{101, 7, 103, 15, 102, 30522, 30526, 30526, 30526,
                                            30526, 30526, 30526, 30526}));
  // Targets unchanged.
  EXPECT_EQ(s.targets[5], 8);
  EXPECT_EQ(s.targets.back(), 30523);
}

TEST(ComputeRegionsTest, ExcludesClsEodAndTheLastTokenSortedByLength) {
  const SpecialTokenIds ids = BertIds();
  // [CLS] a b c [eod] [CLS] d e f g h [eod] [CLS] i j   (truncated last document)
  const std::vector<int32_t> x = {101, 1, 2, 3, 102, 101, 4, 5, 6, 7, 8, 102, 101, 9, 10};
  std::vector<Region> r;
  ComputeRegions(x.data(), static_cast<int32_t>(x.size()), ids, &r);
  ASSERT_EQ(r.size(), 3u);
  // Last document: offset 13, tokens 9 (10 is the last token, excluded).
  EXPECT_EQ(r[0].offset, 13);
  EXPECT_EQ(r[0].length, 1);
  EXPECT_EQ(r[1].offset, 1);
  EXPECT_EQ(r[1].length, 3);
  EXPECT_EQ(r[2].offset, 6);
  EXPECT_EQ(r[2].length, 5);
}

TEST(ComputeRegionsTest, SampleEndingWithEodHasAnEmptyTailRegion) {
  const std::vector<int32_t> x = {101, 1, 2, 3, 102};
  std::vector<Region> r;
  ComputeRegions(x.data(), 5, BertIds(), &r);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].length, 0);
  EXPECT_EQ(r[1].offset, 1);
  EXPECT_EQ(r[1].length, 3);
}

TEST(ComputeRegionsTest, TiesKeepReverseDocumentOrder) {
  const std::vector<int32_t> x = {101, 1, 2, 102, 101, 3, 4, 102};
  std::vector<Region> r;
  ComputeRegions(x.data(), 8, BertIds(), &r);
  ASSERT_EQ(r.size(), 3u);
  // Enumerated from the end: (8,0), (5,2), (1,2); sorted stably by length.
  EXPECT_EQ(r[1].offset, 5);
  EXPECT_EQ(r[2].offset, 1);  // the earlier document counts as "longest"
}

TEST(PlaceSpansTest, ShorterRegionsTakeTheirShareAndTheLongestTheRest) {
  // Regions of 20 (15% = 3) and 100.
  std::vector<Region> regions = {{1, 20}, {30, 100}};
  std::vector<int32_t> lengths = {2, 2, 5, 1};
  std::vector<Span> spans;
  std::vector<int32_t> scratch;
  SampleRng rng(3, 0, 0);
  const int32_t placed = PlaceSpans(regions, lengths, 0.15, &rng, &spans, &scratch);
  EXPECT_EQ(placed, 4);
  ASSERT_EQ(spans.size(), 4u);
  // First region: only the first length fits its budget of 3 (2 + 2 > 3).
  EXPECT_GE(spans[0].first, 1);
  EXPECT_LE(spans[0].second, 21);
  for (int i = 1; i < 4; ++i) {
    EXPECT_GE(spans[i].first, 30);
    EXPECT_LE(spans[i].second, 130);
    EXPECT_EQ(spans[i].second - spans[i].first, lengths[i]);
  }
  // In list order left to right with a gap.
  EXPECT_GT(spans[2].first, spans[1].second);
  EXPECT_GT(spans[3].first, spans[2].second);
}

TEST(PlaceSpansTest, ReportsWhenTheLengthsDoNotFit) {
  std::vector<Region> regions = {{1, 5}};
  std::vector<int32_t> lengths = {3, 3};  // 3 + 3 + 1 gap > 5
  std::vector<Span> spans;
  std::vector<int32_t> scratch;
  SampleRng rng(3, 0, 0);
  EXPECT_EQ(PlaceSpans(regions, lengths, 0.15, &rng, &spans, &scratch), 1);
}

TEST(PlaceSpansTest, ExactFitUsesEveryTokenWithSingleGaps) {
  std::vector<Region> regions = {{10, 7}};
  std::vector<int32_t> lengths = {2, 2, 1};  // 5 tokens + 2 gaps = 7: no freedom
  std::vector<Span> spans;
  std::vector<int32_t> scratch;
  SampleRng rng(5, 0, 0);
  ASSERT_EQ(PlaceSpans(regions, lengths, 0.15, &rng, &spans, &scratch), 3);
  EXPECT_EQ(spans, (std::vector<Span>{{10, 12}, {13, 15}, {16, 17}}));
}

TEST(SentenceSpansTest, FollowsTheSpecScan) {
  VocabInfo vocab;
  vocab.ids = BertIds();
  vocab.ends_sentence.assign(200, 0);
  vocab.ends_sentence[50] = 1;  // "."
  // [CLS] a b . c . d [eod] [CLS] e . f
  const std::vector<int32_t> x = {101, 1, 2, 50, 3, 50, 4, 102, 101, 5, 50, 6};
  std::vector<Span> spans;
  SentenceSpans(x.data(), static_cast<int32_t>(x.size()), vocab, &spans);
  // "d" before the eod is not a candidate; the second document's [CLS] lies
  // inside its first sentence; the trailing fragment "f" is one.
  EXPECT_EQ(spans, (std::vector<Span>{{1, 4}, {4, 6}, {8, 11}, {11, 12}}));
}

TEST(PieceEndsSentenceTest, PunctuationAndFullWidthMarks) {
  EXPECT_TRUE(PieceEndsSentence("."));
  EXPECT_TRUE(PieceEndsSentence("\u2581U.S"));
  EXPECT_TRUE(PieceEndsSentence("?"));
  EXPECT_TRUE(PieceEndsSentence("!\""));
  EXPECT_TRUE(PieceEndsSentence(";"));
  EXPECT_TRUE(PieceEndsSentence(":"));
  EXPECT_TRUE(PieceEndsSentence("\n"));
  EXPECT_TRUE(PieceEndsSentence("\u3002"));
  EXPECT_TRUE(PieceEndsSentence("\u2026"));
  EXPECT_FALSE(PieceEndsSentence("\u2581the"));
  EXPECT_FALSE(PieceEndsSentence("[eod]"));
  EXPECT_FALSE(PieceEndsSentence(","));
}

}  // namespace
}  // namespace glm::dataloader
