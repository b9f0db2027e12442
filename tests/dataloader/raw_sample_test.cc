#include <gtest/gtest.h>

#include "dataloader/raw_sample.h"
#include "tests/dataloader/sample_testing.h"

namespace glm::dataloader {
namespace {

using testing::SyntheticVocab;

TEST(RightStripKeepTest, CutsBackToASentenceEndUnlessThatLeavesLessThanHalf) {
  VocabInfo v = SyntheticVocab();
  // 20 tokens; token 11 ("end of sentence") at index 12.
  std::vector<int32_t> t(20, 30);
  t[12] = 11;
  auto at = [&](int32_t i) { return t[i]; };
  EXPECT_EQ(RightStripKeep(20, 25, v, at), 20);  // fits: untouched
  EXPECT_EQ(RightStripKeep(20, 16, v, at), 13);  // back to the sentence end
  EXPECT_EQ(RightStripKeep(20, 30, v, at), 20);
  // Limit 12: the sentence end at 12 is past the limit; cutting back further
  // finds none and leaves < 6, so the cut is exact.
  EXPECT_EQ(RightStripKeep(20, 12, v, at), 12);
  t[12] = 30;
  t[3] = 11;
  // Limit 16: the only sentence end leaves 4 < 8 tokens: exact cut.
  EXPECT_EQ(RightStripKeep(20, 16, v, at), 16);
}

TEST(BuildRawSampleTest, LongDocumentsAreCutAtSentenceBoundaries) {
  // One 2000-word document with a sentence end every 10 words.
  std::vector<Document> docs(1);
  for (int i = 0; i < 2000; ++i) docs[0].tokens.push_back(i % 10 == 9 ? 11 : 16 + i % 180);
  docs[0].tokens.push_back(9);
  InMemoryDocumentSource source(docs);
  VocabInfo v = SyntheticVocab();
  RawSampleOptions o;
  o.seq_length = 64;
  std::vector<int32_t> scratch, x;
  for (uint64_t i = 0; i < 200; ++i) {
    SampleRng rng(5, 0, i);
    ASSERT_TRUE(BuildRawSample(source, v, o, &rng, &scratch, &x).ok());
    ASSERT_EQ(x[0], v.ids.cls);
    ASSERT_LE(x.size(), 64u);
    ASSERT_GE(x.size(), 32u);
    // Starts at a sentence start: the word before the cut ended a sentence.
    // (Word i is 16 + i % 180 except every 10th, the end token 11.)
    ASSERT_NE(x[1], 11) << i;
    ASSERT_EQ((x[1] - 16) % 10, 0) << i;
    ASSERT_TRUE(v.EndsSentence(x.back()) || x.back() == v.ids.eod) << i;
  }
}

TEST(BuildRawSampleTest, ShortDocumentsArePackedWithClsAndTheLastIsTrimmed) {
  std::vector<Document> docs(30);
  for (size_t d = 0; d < docs.size(); ++d) {
    for (int i = 0; i < 9; ++i) docs[d].tokens.push_back(i == 4 ? 11 : 50 + static_cast<int>(d));
    docs[d].tokens.push_back(9);
  }
  InMemoryDocumentSource source(docs);
  VocabInfo v = SyntheticVocab();
  RawSampleOptions o;
  o.seq_length = 64;
  std::vector<int32_t> scratch, x;
  for (uint64_t i = 0; i < 100; ++i) {
    SampleRng rng(6, 0, i);
    ASSERT_TRUE(BuildRawSample(source, v, o, &rng, &scratch, &x).ok());
    ASSERT_LE(x.size(), 64u);
    ASSERT_GE(x.size(), 55u);  // at least six whole documents plus a trimmed one
    ASSERT_EQ(x[0], v.ids.cls);
    for (size_t k = 1; k < x.size(); ++k) {
      if (x[k] == v.ids.cls) {
        ASSERT_EQ(x[k - 1], v.ids.eod) << "a [CLS] starts each document";
      }
    }
  }
}

TEST(BuildRawSampleTest, DocumentsAreChosenInProportionToTheirLength) {
  std::vector<Document> docs(2);
  docs[0].tokens = {20, 9};                     // 2 tokens
  docs[1].tokens.assign(98, 21);                // 98 + eod = 99 tokens
  docs[1].tokens.push_back(9);
  InMemoryDocumentSource source(docs);
  VocabInfo v = SyntheticVocab();
  RawSampleOptions o;
  o.seq_length = 512;
  std::vector<int32_t> scratch, x;
  int first_small = 0;
  const int kSamples = 20000;
  for (int i = 0; i < kSamples; ++i) {
    SampleRng rng(8, 0, static_cast<uint64_t>(i));
    ASSERT_TRUE(BuildRawSample(source, v, o, &rng, &scratch, &x).ok());
    first_small += x[1] == 20;
  }
  EXPECT_NEAR(first_small / static_cast<double>(kSamples), 2.0 / 101.0, 0.005);
}

TEST(BuildRawSampleTest, EmptySourceIsAnError) {
  InMemoryDocumentSource source({});
  VocabInfo v = SyntheticVocab();
  std::vector<int32_t> scratch, x;
  SampleRng rng(1, 0, 0);
  Status s = BuildRawSample(source, v, RawSampleOptions(), &rng, &scratch, &x);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
}

TEST(InMemoryDocumentSourceTest, FindsDocumentsByGlobalTokenPosition) {
  std::vector<Document> docs(3);
  docs[0].tokens = {1, 9};
  docs[1].tokens = {2, 3, 4, 9};
  docs[2].tokens = {9};
  InMemoryDocumentSource s(docs);
  EXPECT_EQ(s.total_tokens(), 7u);
  EXPECT_EQ(*s.FindDocument(0), 0u);
  EXPECT_EQ(*s.FindDocument(1), 0u);
  EXPECT_EQ(*s.FindDocument(2), 1u);
  EXPECT_EQ(*s.FindDocument(5), 1u);
  EXPECT_EQ(*s.FindDocument(6), 2u);
  EXPECT_FALSE(s.FindDocument(7).ok());
  std::vector<int32_t> scratch;
  DocumentView view;
  ASSERT_TRUE(s.ReadDocument(1, &scratch, &view).ok());
  EXPECT_EQ(view.size, 4u);
  EXPECT_EQ(view.tokens[0], 2);
  EXPECT_EQ(s.ReadDocument(3, &scratch, &view).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace glm::dataloader
