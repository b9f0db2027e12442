#include "storage/synthetic.h"

namespace glm::storage {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

Sample MakeSyntheticSample(Objective objective, uint32_t epoch, uint64_t index, int seq_len) {
  Sample s;
  s.objective = objective;
  s.epoch = epoch;
  s.index = index;
  uint64_t seed = Mix(Mix(static_cast<uint64_t>(objective) * 1000003 + epoch) ^ index);
  const int n = seq_len * 9 / 10;          // source length
  const int num_masked = seq_len - n;      // Part B adds one token per masked token
  s.source.resize(n);
  for (int i = 0; i < n; ++i) s.source[i] = static_cast<int32_t>(Mix(seed + i) % 50000);
  const int span_start = static_cast<int>(seed % static_cast<uint64_t>(n - num_masked));
  s.spans = {{span_start, span_start + num_masked - 1}};
  s.suffix_layout = objective == Objective::kDocument;
  s.sep = n - num_masked + 2;
  s.tokens.resize(seq_len);
  s.targets.resize(seq_len);
  s.loss_mask.resize(seq_len);
  s.position_ids.resize(seq_len);
  s.block_position_ids.resize(seq_len);
  for (int i = 0; i < seq_len; ++i) {
    s.tokens[i] = static_cast<int32_t>(Mix(seed ^ (i * 31ull)) % 50000);
    s.targets[i] = i >= s.sep ? s.tokens[i] : 0;
    s.loss_mask[i] = i >= s.sep ? 1 : 0;
    s.position_ids[i] = i < s.sep ? i : span_start;
    s.block_position_ids[i] = i < s.sep ? 0 : i - s.sep + 1;
  }
  return s;
}

Document MakeSyntheticDocument(uint64_t id, int num_tokens) {
  Document d;
  d.id = id;
  d.tokens.resize(num_tokens);
  d.sentence_end.resize(num_tokens);
  for (int i = 0; i < num_tokens; ++i) {
    d.tokens[i] = static_cast<int32_t>(Mix(id * 7919 + i) % 50000);
    d.sentence_end[i] = (i % 17 == 16 || i == num_tokens - 1) ? 1 : 0;
  }
  return d;
}

}  // namespace glm::storage
