// Helpers for the sample tests: a synthetic vocabulary and corpus, and a
// checker of every invariant of GLM_SPEC 2.4-2.6 on one sample.
#ifndef GLM_TESTS_DATALOADER_SAMPLE_TESTING_H_
#define GLM_TESTS_DATALOADER_SAMPLE_TESTING_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "dataloader/document_source.h"
#include "dataloader/philox.h"
#include "dataloader/sample_factory.h"
#include "dataloader/vocab.h"

namespace glm::dataloader::testing {

// Ids 0..10 special, 11..15 end a sentence, 16..199 plain words.
inline VocabInfo SyntheticVocab() {
  VocabInfo v;
  v.vocab_size = 200;
  v.padded_vocab_size = 256;
  v.hash = 0x1234;
  v.ends_sentence.assign(200, 0);
  for (int i = 11; i <= 15; ++i) v.ends_sentence[i] = 1;
  return v;
}

// `count` documents of random length in [1, max_len] words; about one word in
// `sentence_every` ends a sentence; each ends with [eod].
inline std::vector<Document> RandomDocuments(uint64_t seed, int count, int max_len,
                                             int sentence_every = 12) {
  SampleRng rng(seed, 99, 0);
  std::vector<Document> docs(count);
  for (int d = 0; d < count; ++d) {
    const int len = 1 + static_cast<int>(rng.Uniform(max_len));
    for (int i = 0; i < len; ++i) {
      const bool end = rng.Uniform(sentence_every) == 0;
      docs[d].tokens.push_back(end ? 11 + static_cast<int32_t>(rng.Uniform(5))
                                   : 16 + static_cast<int32_t>(rng.Uniform(184)));
    }
    docs[d].tokens.push_back(9);  // [eod]
  }
  return docs;
}

// Every structural rule of a sample; returns a failure naming the first
// broken one.
inline ::testing::AssertionResult SampleIsWellFormed(const Sample& s, const VocabInfo& v,
                                                     const SampleOptions& o) {
  const SpecialTokenIds& ids = v.ids;
  const auto& x = s.source;
  const int32_t n = static_cast<int32_t>(x.size());
  const int32_t S = static_cast<int32_t>(s.tokens.size());
  if (n < 2 || n > o.seq_length) return ::testing::AssertionFailure() << "n = " << n;
  if (x[0] != ids.cls) return ::testing::AssertionFailure() << "source does not start with [CLS]";
  if (static_cast<int32_t>(s.targets.size()) != S || static_cast<int32_t>(s.loss_mask.size()) != S ||
      static_cast<int32_t>(s.position_ids.size()) != S ||
      static_cast<int32_t>(s.block_position_ids.size()) != S) {
    return ::testing::AssertionFailure() << "array lengths differ";
  }
  if (s.sep < 1 || s.sep > S) return ::testing::AssertionFailure() << "sep " << s.sep;
  // Part A: positions 0..sep-1, block 0, no loss, targets = tokens.
  for (int32_t i = 0; i < s.sep; ++i) {
    if (s.position_ids[i] != i || s.block_position_ids[i] != 0 ||
        s.targets[i] != s.tokens[i]) {
      return ::testing::AssertionFailure() << "Part A at " << i;
    }
    if (s.loss_mask[i] != 0) return ::testing::AssertionFailure() << "loss in Part A at " << i;
  }
  if (s.suffix_layout) {
    if (s.spans.size() != 1) return ::testing::AssertionFailure() << "suffix with spans";
    const int32_t d = s.spans[0].first;
    const int32_t g = n - d;
    if (s.spans[0].second != n || S != n + 1 || s.sep != d + 1) {
      return ::testing::AssertionFailure() << "suffix shape";
    }
    for (int32_t i = 0; i < d; ++i) {
      if (s.tokens[i] != x[i]) return ::testing::AssertionFailure() << "suffix prefix";
    }
    if (s.tokens[d] != (o.task_masks ? ids.gmask : ids.mask) || s.tokens[d + 1] != ids.sop) {
      return ::testing::AssertionFailure() << "suffix mask/sop";
    }
    for (int32_t i = 0; i < g; ++i) {
      if (s.targets[d + 1 + i] != x[d + i] || s.position_ids[d + 1 + i] != d ||
          s.block_position_ids[d + 1 + i] != i + 1 ||
          s.loss_mask[d + 1 + i] != (x[d + i] != ids.cls ? 1 : 0)) {
        return ::testing::AssertionFailure() << "suffix Part B at " << i;
      }
      if (i + 1 < g && s.tokens[d + 2 + i] != x[d + i]) {
        return ::testing::AssertionFailure() << "suffix inputs at " << i;
      }
    }
    return ::testing::AssertionSuccess();
  }
  // Blank layout: rebuild Part A and Part B from source and spans.
  std::vector<std::pair<int32_t, int32_t>> sorted = s.spans;
  std::sort(sorted.begin(), sorted.end());
  int32_t masked = 0;
  for (size_t k = 0; k < sorted.size(); ++k) {
    if (sorted[k].first >= sorted[k].second || sorted[k].first < 0 || sorted[k].second > n) {
      return ::testing::AssertionFailure() << "bad span";
    }
    if (k > 0 && sorted[k].first < sorted[k - 1].second) {
      return ::testing::AssertionFailure() << "overlapping spans";
    }
    masked += sorted[k].second - sorted[k].first;
  }
  const int32_t m = static_cast<int32_t>(sorted.size());
  if (s.sep != n - masked + m || S != n + 2 * m) {  // Part B: masked + m tokens
    return ::testing::AssertionFailure() << "sep " << s.sep << " S " << S << " n " << n;
  }
  const int32_t mask_id = s.objective == Objective::kBlank
                              ? ids.mask
                              : (!o.task_masks ? ids.mask
                                               : (s.objective == Objective::kSentence ? ids.smask
                                                                                      : ids.gmask));
  std::vector<int32_t> part_a;
  std::vector<int32_t> mask_pos_sorted;
  int32_t last = 0;
  for (auto& sp : sorted) {
    part_a.insert(part_a.end(), x.begin() + last, x.begin() + sp.first);
    mask_pos_sorted.push_back(static_cast<int32_t>(part_a.size()));
    part_a.push_back(mask_id);
    last = sp.second;
  }
  part_a.insert(part_a.end(), x.begin() + last, x.end());
  if (!std::equal(part_a.begin(), part_a.end(), s.tokens.begin())) {
    return ::testing::AssertionFailure() << "Part A is not the source with masks";
  }
  int32_t b = s.sep;
  for (auto& sp : s.spans) {
    const int32_t rank = static_cast<int32_t>(
        std::lower_bound(sorted.begin(), sorted.end(), sp) - sorted.begin());
    const int32_t len = sp.second - sp.first;
    if (s.tokens[b] != ids.sop) return ::testing::AssertionFailure() << "no sop";
    for (int32_t i = 0; i <= len; ++i) {
      const int32_t want_target = i < len ? x[sp.first + i] : ids.eop;
      if (s.targets[b + i] != want_target) return ::testing::AssertionFailure() << "target";
      if (i > 0 && s.tokens[b + i] != x[sp.first + i - 1] && s.tokens[b + i] != ids.dblock) {
        return ::testing::AssertionFailure() << "Part B input";
      }
      if (s.targets[b + i] == ids.eod) return ::testing::AssertionFailure() << "eod in Part B";
      if (s.loss_mask[b + i] != 1 || s.position_ids[b + i] != mask_pos_sorted[rank] ||
          s.block_position_ids[b + i] != i + 1) {
        return ::testing::AssertionFailure() << "Part B positions";
      }
    }
    b += len + 1;
  }
  if (b != S) return ::testing::AssertionFailure() << "Part B length";
  return ::testing::AssertionSuccess();
}

}  // namespace glm::dataloader::testing

#endif  // GLM_TESTS_DATALOADER_SAMPLE_TESTING_H_
