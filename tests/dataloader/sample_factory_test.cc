#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "dataloader/raw_sample.h"
#include "dataloader/sample_factory.h"
#include "dataloader/sample_json.h"
#include "tests/dataloader/sample_testing.h"

namespace glm::dataloader {
namespace {

using testing::RandomDocuments;
using testing::SampleIsWellFormed;
using testing::SyntheticVocab;

class SampleFactoryTest : public ::testing::Test {
 protected:
  SampleFactoryTest() : docs_(RandomDocuments(1, 300, 900)), vocab_(SyntheticVocab()) {}
  InMemoryDocumentSource docs_;
  VocabInfo vocab_;
};

std::vector<std::pair<int32_t, int32_t>> Sorted(std::vector<std::pair<int32_t, int32_t>> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_F(SampleFactoryTest, TokenLevelSamplesObeyEveryRule) {
  SampleOptions o;
  SampleFactory f(&docs_, vocab_, o);
  Sample s;
  double masked_total = 0, n_total = 0, span_total = 0, spans = 0;
  for (uint64_t i = 0; i < 1500; ++i) {
    ASSERT_TRUE(f.MakeInto(Objective::kBlank, 0, i, &s).ok());
    ASSERT_TRUE(SampleIsWellFormed(s, vocab_, o)) << "sample " << i;
    const int32_t n = static_cast<int32_t>(s.source.size());
    auto sorted = Sorted(s.spans);
    int32_t masked = 0;
    for (size_t k = 0; k < sorted.size(); ++k) {
      const int32_t len = sorted[k].second - sorted[k].first;
      ASSERT_GE(len, 1);
      ASSERT_LE(len, 39);
      masked += len;
      span_total += len;
      ++spans;
      // Never adjacent: at least one unmasked token between spans.
      if (k > 0) {
        ASSERT_GT(sorted[k].first, sorted[k - 1].second) << "sample " << i;
      }
      for (int32_t t = sorted[k].first; t < sorted[k].second; ++t) {
        ASSERT_NE(s.source[t], vocab_.ids.cls) << "sample " << i;
        ASSERT_NE(s.source[t], vocab_.ids.eod) << "sample " << i;
        ASSERT_NE(t, n - 1) << "sample " << i;
      }
    }
    ASSERT_GE(masked, static_cast<int32_t>(0.15 * n)) << "sample " << i;
    masked_total += masked;
    n_total += n;
  }
  // At least 15%, overshooting by part of one span on average.
  EXPECT_GE(masked_total / n_total, 0.15);
  EXPECT_LE(masked_total / n_total, 0.17);
  EXPECT_NEAR(span_total / spans, 3.157, 0.1);
}

TEST_F(SampleFactoryTest, SentenceLevelSamplesMaskWholeSentencesToFifteenPercent) {
  SampleOptions o;
  SampleFactory f(&docs_, vocab_, o);
  Sample s;
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(f.MakeInto(Objective::kSentence, 0, i, &s).ok());
    ASSERT_TRUE(SampleIsWellFormed(s, vocab_, o)) << "sample " << i;
    const auto& x = s.source;
    const int32_t n = static_cast<int32_t>(x.size());
    int32_t covered = 0;
    for (auto& sp : s.spans) {
      covered += sp.second - sp.first;
      // A whole sentence: ends at a sentence end (or the sample's end) and
      // starts after one, after an eod, or right after the leading [CLS].
      ASSERT_TRUE(sp.second == n || vocab_.EndsSentence(x[sp.second - 1])) << i;
      const int32_t before = x[sp.first - 1];
      ASSERT_TRUE(sp.first == 1 || vocab_.EndsSentence(before) || before == vocab_.ids.eod) << i;
      for (int32_t t = sp.first; t < sp.second; ++t) {
        ASSERT_NE(x[t], vocab_.ids.eod) << i;
      }
    }
    std::vector<Span> all;
    SentenceSpans(x.data(), n, vocab_, &all);
    if (s.spans.size() < all.size()) {
      ASSERT_GE(covered, static_cast<int32_t>(0.15 * n)) << "sample " << i;
    }
    for (int32_t t = 0; t < s.sep; ++t) {
      if (s.tokens[t] == vocab_.ids.mask) FAIL() << "task masks: [sMASK] expected";
    }
  }
}

TEST_F(SampleFactoryTest, DocumentLevelSamplesDrawGFromHalfToAllAndMixLayouts) {
  SampleOptions o;
  SampleFactory f(&docs_, vocab_, o);
  Sample s;
  int single_doc = 0, single_doc_suffix = 0;
  for (uint64_t i = 0; i < 1500; ++i) {
    ASSERT_TRUE(f.MakeInto(Objective::kDocument, 0, i, &s).ok());
    ASSERT_TRUE(SampleIsWellFormed(s, vocab_, o)) << "sample " << i;
    const auto& x = s.source;
    const int32_t n = static_cast<int32_t>(x.size());
    ASSERT_EQ(s.spans.size(), 1u);
    const int32_t g = s.spans[0].second - s.spans[0].first;
    if (n >= 4) {
      ASSERT_GE(g, static_cast<int32_t>(0.5 * n)) << i;
      ASSERT_LE(g, n - 2) << i;
    }
    const auto first_eod = std::find(x.begin(), x.end(), vocab_.ids.eod);
    const bool multi = first_eod != x.end() && first_eod != x.end() - 1;
    if (multi) {
      ASSERT_TRUE(s.suffix_layout) << "a packed sample always uses the suffix layout: " << i;
    } else {
      ++single_doc;
      if (s.suffix_layout) {
        ++single_doc_suffix;
      } else {
        ASSERT_EQ(s.sep, n - g + 1);
        ASSERT_EQ(s.tokens.size(), static_cast<size_t>(n + 2));
        ASSERT_GE(s.spans[0].first, 1);
        ASSERT_LE(s.spans[0].first, n - 1 - g);
        ASSERT_EQ(s.tokens[s.spans[0].first], vocab_.ids.gmask);
      }
    }
  }
  ASSERT_GT(single_doc, 200);
  EXPECT_NEAR(single_doc_suffix / static_cast<double>(single_doc), 0.5, 0.1);
}

TEST_F(SampleFactoryTest, DocumentMinRatioQuarterAllowsShorterSpans) {
  SampleOptions o;
  o.document_min_ratio = 0.25;
  SampleFactory f(&docs_, vocab_, o);
  Sample s;
  int below_half = 0;
  for (uint64_t i = 0; i < 500; ++i) {
    ASSERT_TRUE(f.MakeInto(Objective::kDocument, 0, i, &s).ok());
    const int32_t n = static_cast<int32_t>(s.source.size());
    const int32_t g = s.spans[0].second - s.spans[0].first;
    if (n >= 8) {
      ASSERT_GE(g, static_cast<int32_t>(0.25 * n));
    }
    if (g < static_cast<int32_t>(0.5 * n)) ++below_half;
  }
  EXPECT_GT(below_half, 100);
}

std::vector<std::string> MakeAll(const SampleFactory& f, Objective o, int count) {
  std::vector<std::string> out(count);
  Sample s;
  for (int i = 0; i < count; ++i) {
    GLM_CHECK(f.MakeInto(o, 3, static_cast<uint64_t>(i), &s).ok());
    out[i] = SampleToJsonLine(s);
  }
  return out;
}

TEST_F(SampleFactoryTest, SamplesAreTheSameWhateverTheThreadCountAndOrder) {
  SampleFactory f(&docs_, vocab_, SampleOptions());
  for (Objective o : {Objective::kBlank, Objective::kSentence, Objective::kDocument}) {
    const std::vector<std::string> serial = MakeAll(f, o, 300);
    for (int threads : {2, 4}) {
      std::vector<std::string> parallel(serial.size());
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          Sample s;
          // Each thread walks its indices backwards: a different order.
          for (int i = static_cast<int>(serial.size()) - 1 - t; i >= 0; i -= threads) {
            GLM_CHECK(f.MakeInto(o, 3, static_cast<uint64_t>(i), &s).ok());
            parallel[i] = SampleToJsonLine(s);
          }
        });
      }
      for (auto& th : pool) th.join();
      EXPECT_EQ(parallel, serial) << ObjectiveName(o) << " with " << threads << " threads";
    }
    // A second factory over the same inputs agrees too.
    SampleFactory g(&docs_, vocab_, SampleOptions());
    EXPECT_EQ(MakeAll(g, o, 50), std::vector<std::string>(serial.begin(), serial.begin() + 50));
  }
}

TEST_F(SampleFactoryTest, SeedEpochObjectiveManifestAndTokenizerAllChangeTheSamples) {
  SampleFactory base(&docs_, vocab_, SampleOptions());
  auto reference = MakeAll(base, Objective::kBlank, 20);
  auto count_diff = [&](const std::vector<std::string>& other) {
    int d = 0;
    for (size_t i = 0; i < other.size(); ++i) d += other[i] != reference[i];
    return d;
  };
  SampleOptions seeded;
  seeded.seed = 2;
  EXPECT_GE(count_diff(MakeAll(SampleFactory(&docs_, vocab_, seeded), Objective::kBlank, 20)), 19);
  VocabInfo other_vocab = vocab_;
  other_vocab.hash = 0x9999;
  auto other = MakeAll(SampleFactory(&docs_, other_vocab, SampleOptions()), Objective::kBlank, 20);
  int diff = 0;
  for (size_t i = 0; i < other.size(); ++i) {
    // The JSON carries the tokenizer hash; compare the sources instead.
    diff += other[i].substr(other[i].find("\"tokens\"")) != reference[i].substr(reference[i].find("\"tokens\""));
  }
  EXPECT_GE(diff, 19);
  auto docs = RandomDocuments(1, 300, 900);
  docs[5].tokens[0] = 20;  // one token changed: another manifest
  InMemoryDocumentSource changed(docs);
  EXPECT_NE(changed.manifest_hash(), docs_.manifest_hash());
  EXPECT_GE(count_diff(MakeAll(SampleFactory(&changed, vocab_, SampleOptions()), Objective::kBlank, 20)), 19);
  Sample a, b;
  ASSERT_TRUE(base.MakeInto(Objective::kBlank, 0, 7, &a).ok());
  ASSERT_TRUE(base.MakeInto(Objective::kBlank, 1, 7, &b).ok());
  EXPECT_NE(a.source, b.source);
}

TEST_F(SampleFactoryTest, MakeReturnsTheSameAsMakeIntoWithMetadata) {
  SampleFactory f(&docs_, vocab_, SampleOptions());
  auto s = f.Make(Objective::kSentence, 2, 11);
  ASSERT_TRUE(s.ok());
  Sample t;
  ASSERT_TRUE(f.MakeInto(Objective::kSentence, 2, 11, &t).ok());
  EXPECT_EQ(SampleToJsonLine(*s), SampleToJsonLine(t));
  EXPECT_EQ(s->objective, Objective::kSentence);
  EXPECT_EQ(s->epoch, 2u);
  EXPECT_EQ(s->index, 11u);
  EXPECT_EQ(s->tokenizer_hash, 0x1234u);
}

TEST(SampleFactoryEdgeTest, TinyDocumentsThatCannotFitTheBudgetStillYieldSamples) {
  // Two-word documents: regions of 2 tokens cannot hold 15% of 512 tokens.
  std::vector<Document> docs(50);
  for (auto& d : docs) d.tokens = {20, 21, 9};
  InMemoryDocumentSource source(docs);
  VocabInfo v = SyntheticVocab();
  SampleOptions o;
  o.max_attempts = 3;
  SampleFactory f(&source, v, o);
  Sample s;
  for (Objective obj : {Objective::kBlank, Objective::kSentence, Objective::kDocument}) {
    for (uint64_t i = 0; i < 20; ++i) {
      ASSERT_TRUE(f.MakeInto(obj, 0, i, &s).ok());
      ASSERT_TRUE(SampleIsWellFormed(s, v, o)) << ObjectiveName(obj) << " " << i;
    }
  }
}

TEST(SampleFactoryEdgeTest, ShortSequenceLengthAndSingleTokenDocuments) {
  std::vector<Document> docs(10);
  for (auto& d : docs) d.tokens = {9};  // empty text: just [eod]
  docs[3].tokens = {30, 11, 9};
  InMemoryDocumentSource source(docs);
  VocabInfo v = SyntheticVocab();
  SampleOptions o;
  o.seq_length = 8;
  SampleFactory f(&source, v, o);
  Sample s;
  for (Objective obj : {Objective::kBlank, Objective::kSentence, Objective::kDocument}) {
    for (uint64_t i = 0; i < 50; ++i) {
      ASSERT_TRUE(f.MakeInto(obj, 0, i, &s).ok());
      ASSERT_TRUE(SampleIsWellFormed(s, v, o)) << ObjectiveName(obj) << " " << i;
    }
  }
}

TEST_F(SampleFactoryTest, ReferenceExtrasWorkWhenEnabled) {
  SampleOptions o;
  o.block_mask_prob = 0.5;
  o.short_seq_prob = 1.0;
  o.task_masks = false;
  o.shuffle_spans = false;
  SampleFactory f(&docs_, vocab_, o);
  Sample s;
  int dblocks = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    ASSERT_TRUE(f.MakeInto(Objective::kBlank, 0, i, &s).ok());
    ASSERT_TRUE(SampleIsWellFormed(s, vocab_, o)) << i;
    EXPECT_LT(s.source.size(), static_cast<size_t>(o.seq_length));  // short pieces
    EXPECT_EQ(s.spans, Sorted(s.spans));                            // no shuffle
    for (int32_t t : s.tokens) dblocks += t == vocab_.ids.dblock;
    ASSERT_TRUE(f.MakeInto(Objective::kSentence, 0, i, &s).ok());
    ASSERT_TRUE(SampleIsWellFormed(s, vocab_, o)) << i;  // [MASK] without task masks
  }
  EXPECT_GT(dblocks, 100);
  SampleOptions single;
  single.single_span_prob = 1.0;
  SampleFactory g(&docs_, vocab_, single);
  for (uint64_t i = 0; i < 50; ++i) {
    ASSERT_TRUE(g.MakeInto(Objective::kBlank, 0, i, &s).ok());
    EXPECT_EQ(s.spans.size(), 1u);
  }
}

TEST(SampleOptionsTest, RejectsBadValuesNamingTheOption) {
  SampleOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.seq_length = 4;
  Status s = o.Validate();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("seq-length"), std::string::npos) << s;
  o = SampleOptions();
  o.mask_ratio = 1.5;
  EXPECT_FALSE(o.Validate().ok());
  o = SampleOptions();
  o.max_attempts = 0;
  EXPECT_FALSE(o.Validate().ok());
}

}  // namespace
}  // namespace glm::dataloader
