// Inference on a tiny random-weight model with a real tokenizer: checkpoint
// and tokenizer resolution, blank filling (KV cache == full masked passes,
// seeded sampling), LM perplexity == exp(mean NLL) computed independently,
// cloze scores == incremental decoding, cloze fine-tuning raises accuracy,
// and the error paths.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/worker/training/inference_fixture.h"
#include "worker/training/cloze.h"
#include "worker/training/inference.h"

namespace glm::training {
namespace {
namespace fs = std::filesystem;

class InferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new testing::InferenceFixture(testing::MakeInferenceFixture(
        fs::temp_directory_path() / ("glm_inference_test_" + std::to_string(::getpid()))));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(fixture_->root, ec);
    delete fixture_;
  }
  void SetUp() override {
    torch::set_num_threads(1);
    auto loaded = LoadCheckpointForInference(fixture_->run.string(), "");
    ASSERT_TRUE(loaded.ok()) << loaded.status().message();
    loaded_ = std::move(*loaded);
  }
  model::GlmModel& model() { return loaded_.model; }
  const dataloader::GlmTokenizer& tok() { return *loaded_.tokenizer; }
  const dataloader::SpecialTokenIds& ids() { return loaded_.tokenizer->ids(); }

  static testing::InferenceFixture* fixture_;
  LoadedCheckpoint loaded_;
};
testing::InferenceFixture* InferenceTest::fixture_ = nullptr;

torch::Tensor Row(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kInt64).unsqueeze(0); }

// --- checkpoints ---

TEST_F(InferenceTest, RunDirectoryResolvesToItsNewestCheckpointAndTokenizer) {
  EXPECT_EQ(loaded_.checkpoint_dir, fixture_->checkpoint.string());
  EXPECT_EQ(fs::path(loaded_.tokenizer_dir), fs::absolute(fixture_->tokenizer));
  // A newer step without weights (a crash mid-write) is skipped; a newer
  // complete one wins.
  fs::create_directories(fixture_->run / "checkpoints" / "step-0000000009");
  auto r = ResolveCheckpointDir(fixture_->run.string());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, fixture_->checkpoint.string());
  fs::copy(fixture_->checkpoint, fixture_->run / "checkpoints" / "step-0000000012");
  r = ResolveCheckpointDir(fixture_->run.string());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(fs::path(*r).filename(), "step-0000000012");
  // The checkpoint root and the checkpoint itself resolve too.
  r = ResolveCheckpointDir((fixture_->run / "checkpoints").string());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(fs::path(*r).filename(), "step-0000000012");
  r = ResolveCheckpointDir(fixture_->checkpoint.string());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, fixture_->checkpoint.string());
  fs::remove_all(fixture_->run / "checkpoints" / "step-0000000009");
  fs::remove_all(fixture_->run / "checkpoints" / "step-0000000012");
}

TEST_F(InferenceTest, MissingCheckpointOrTokenizerSaysWhatToPass) {
  auto r = ResolveCheckpointDir((fixture_->root / "nope").string());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  r = ResolveCheckpointDir(fixture_->root.string() + "/corpus");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checkpoints/step-N"), std::string::npos) << r.status().message();
  // A checkpoint copied away from its run has no tokenizer nearby.
  const fs::path lone = fixture_->root / "lone" / "a" / "b" / "c" / "d";
  fs::create_directories(lone);
  fs::copy(fixture_->checkpoint, lone, fs::copy_options::recursive);
  auto l = LoadCheckpointForInference(lone.string(), "");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.status().message().find("--tokenizer"), std::string::npos) << l.status().message();
  l = LoadCheckpointForInference(lone.string(), fixture_->tokenizer.string());
  EXPECT_TRUE(l.ok()) << l.status().message();
  fs::remove_all(fixture_->root / "lone");
  // A model of another vocabulary size does not belong to the tokenizer.
  model::GlmConfig wide;
  wide.vocab_size = 256;  // the tokenizer's padded vocabulary is 128
  model::GlmModel m(wide);
  ASSERT_TRUE(model::SaveModel(m, (fixture_->root / "wide").string()).ok());
  l = LoadCheckpointForInference((fixture_->root / "wide").string(), fixture_->tokenizer.string());
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(l.status().message().find("256"), std::string::npos) << l.status().message();
}

// --- blank filling ---

TEST_F(InferenceTest, FillsEveryBlankKindWithText) {
  SamplingOptions o;
  o.min_tokens = 1;
  o.max_tokens = 6;
  auto r = InfillText(model(), tok(), "The [MASK] of the Union is strong. [sMASK] Congress shall [gMASK]", o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->blanks.size(), 3u);
  EXPECT_EQ(r->blanks[0].kind, "[MASK]");
  EXPECT_EQ(r->blanks[1].kind, "[sMASK]");
  EXPECT_EQ(r->blanks[2].kind, "[gMASK]");
  for (const FilledBlank& b : r->blanks) {
    EXPECT_GE(b.tokens.size(), 1u);
    EXPECT_LE(b.tokens.size(), 6u);
    EXPECT_FALSE(b.fill.empty());
    EXPECT_NE(r->filled.find(b.fill), std::string::npos);
  }
  EXPECT_EQ(r->filled.find("MASK]"), std::string::npos) << r->filled;
  EXPECT_EQ(r->filled.rfind("The ", 0), 0u) << r->filled;
  // [gMASK] last: no [eod] after it in Part A.
  EXPECT_EQ(r->context_tokens, static_cast<int64_t>(tok().Encode(r->text, true).size()) + 1);
}

TEST_F(InferenceTest, TextWithoutBlankIsInvalidArgumentShowingHowToWriteOne) {
  auto r = InfillText(model(), tok(), "No blank here.", SamplingOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("[MASK]"), std::string::npos);
  SamplingOptions bad;
  bad.top_p = 1.5;
  EXPECT_EQ(InfillText(model(), tok(), "a [MASK]", bad).status().code(), StatusCode::kInvalidArgument);
  bad = SamplingOptions{};
  bad.max_tokens = 1000;  // more than the model's 128 block positions
  EXPECT_EQ(InfillText(model(), tok(), "a [MASK]", bad).status().code(), StatusCode::kInvalidArgument);
}

// The KV-cache generation must pick exactly what one full masked pass over
// Part A + all generated Part-B tokens gives, blank after blank.
TEST_F(InferenceTest, GreedyFillsEqualFullPassesOverPartAAndEarlierSpans) {
  std::vector<int32_t> part_a{ids().cls};
  for (int32_t t : tok().Encode("The [MASK] was reduced. Peace with all [MASK]", true)) part_a.push_back(t);
  part_a.push_back(ids().eod);
  std::vector<int64_t> blanks;
  for (size_t i = 0; i < part_a.size(); ++i) {
    if (part_a[i] == ids().mask) blanks.push_back(static_cast<int64_t>(i));
  }
  ASSERT_EQ(blanks.size(), 2u);
  SamplingOptions o;
  o.min_tokens = 4;  // both spans run exactly 4 tokens: eop/eod never chosen
  o.max_tokens = 4;
  auto fills = FillBlanks(model(), ids(), tok().vocab_size(), part_a, blanks, o);
  ASSERT_TRUE(fills.ok()) << fills.status().message();
  ASSERT_EQ(fills->size(), 2u);

  const int64_t n = static_cast<int64_t>(part_a.size());
  std::vector<int64_t> tokens(part_a.begin(), part_a.end()), pos(n), block(n, 0);
  for (int64_t i = 0; i < n; ++i) pos[i] = i;
  // Part B fed so far: [sop] g1 g2 g3 of each blank (the 4th token is chosen, not fed).
  for (size_t b = 0; b < 2; ++b) {
    const std::vector<int32_t>& g = (*fills)[b].tokens;
    ASSERT_EQ(g.size(), 4u);
    EXPECT_FALSE((*fills)[b].ended);
    const int64_t first = static_cast<int64_t>(tokens.size());
    for (int64_t j = 0; j < 4; ++j) {
      tokens.push_back(j == 0 ? ids().sop : g[j - 1]);
      pos.push_back(blanks[b]);
      block.push_back(j + 1);
    }
    torch::NoGradGuard ng;
    torch::Tensor logits = model()->forward(Row(tokens), Row(pos), Row(block), torch::tensor({n}, torch::kInt64));
    logits = logits[0].slice(1, 0, tok().vocab_size()).clone();  // (S, vocab)
    logits.index_put_({torch::indexing::Slice(), ids().eop}, -1e30);
    logits.index_put_({torch::indexing::Slice(), ids().eod}, -1e30);
    for (int64_t j = 0; j < 4; ++j) {
      EXPECT_EQ(logits[first + j].argmax().item<int64_t>(), g[j]) << "blank " << b << " token " << j;
    }
  }
}

TEST_F(InferenceTest, SamplingIsReproducibleWithASeedAndTopK1IsGreedy) {
  const std::string text = "The [MASK] harvest was large. A [MASK] bridge was built.";
  SamplingOptions s;
  s.temperature = 2.0;
  s.max_tokens = 8;
  s.seed = 7;
  auto a = InfillText(model(), tok(), text, s);
  auto b = InfillText(model(), tok(), text, s);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->filled, b->filled);
  std::set<std::string> seen;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    s.seed = seed;
    auto r = InfillText(model(), tok(), text, s);
    ASSERT_TRUE(r.ok());
    seen.insert(r->filled);
  }
  EXPECT_GT(seen.size(), 1u) << "eight seeds at temperature 2 all gave the same fills";

  SamplingOptions greedy;
  greedy.max_tokens = 8;
  SamplingOptions top1 = greedy;
  top1.top_k = 1;
  top1.seed = 99;
  auto g = InfillText(model(), tok(), text, greedy);
  auto t = InfillText(model(), tok(), text, top1);
  ASSERT_TRUE(g.ok() && t.ok());
  EXPECT_EQ(g->filled, t->filled);
  SamplingOptions nucleus = greedy;
  nucleus.top_p = 1e-9;  // only the most likely token survives
  auto p = InfillText(model(), tok(), text, nucleus);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(g->filled, p->filled);
}

// --- language modelling ---

TEST_F(InferenceTest, LmPerplexityIsExpOfMeanNllOfTheGMaskRow) {
  const std::vector<int32_t> doc = tok().Encode("The public debt was reduced. Peace with all nations is our first wish!");
  const int64_t n = static_cast<int64_t>(doc.size());
  ASSERT_GT(n, 8);
  auto r = EvaluateLm(model(), ids(), {doc}, 12, LmEvalOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->windows, 1);
  EXPECT_EQ(r->scored_tokens, n - 1);
  // Independently: [CLS] t0 [gMASK] [sop] t1 .. t_{n-2}, one full pass.
  std::vector<int64_t> tokens{ids().cls, doc[0], ids().gmask, ids().sop}, pos{0, 1, 2, 2}, block{0, 0, 0, 1};
  for (int64_t i = 1; i < n - 1; ++i) {
    tokens.push_back(doc[i]);
    pos.push_back(2);
    block.push_back(i + 1);
  }
  torch::NoGradGuard ng;
  torch::Tensor lp = torch::log_softmax(
      model()->forward(Row(tokens), Row(pos), Row(block), torch::tensor({int64_t{3}}, torch::kInt64))[0]
          .to(torch::kFloat64),
      -1);  // (S, V)
  double nll = 0;
  for (int64_t i = 1; i < n; ++i) nll -= lp[3 + i - 1][doc[i]].item<double>();
  EXPECT_NEAR(r->nll, nll, 1e-3 * n);
  EXPECT_NEAR(r->token_perplexity, std::exp(nll / static_cast<double>(n - 1)), 1e-3 * r->token_perplexity);
  EXPECT_NEAR(r->word_perplexity, std::exp(nll / 11.0), 1e-3 * r->word_perplexity);
  EXPECT_TRUE(std::isfinite(r->token_perplexity));
}

TEST_F(InferenceTest, LmWindowsScoreEveryTokenButTheFirstExactlyOnce) {
  std::vector<int32_t> doc;
  for (int32_t i = 0; i < 30; ++i) doc.push_back(20 + i);
  const std::vector<Sample> rows = LmWindows(doc, ids(), 8, 3);
  ASSERT_FALSE(rows.empty());
  std::vector<int32_t> scored;
  for (size_t w = 0; w < rows.size(); ++w) {
    const Sample& s = rows[w];
    EXPECT_EQ(s.tokens[0], ids().cls);
    EXPECT_EQ(s.tokens[s.sep - 1], ids().gmask);
    EXPECT_EQ(s.tokens[s.sep], ids().sop);
    EXPECT_LE(static_cast<int64_t>(s.tokens.size()), 8 + 2);
    EXPECT_EQ(s.sep, w == 0 ? 3 : 1 + (8 - 3) + 1) << "window " << w;
    for (size_t i = s.sep; i < s.tokens.size(); ++i) {
      EXPECT_EQ(s.position_ids[i], s.sep - 1);
      EXPECT_EQ(s.block_position_ids[i], static_cast<int32_t>(i) - s.sep + 1);
      if (i > static_cast<size_t>(s.sep)) {
        EXPECT_EQ(s.tokens[i], s.targets[i - 1]);  // teacher forcing
      }
      scored.push_back(s.targets[i]);
    }
  }
  EXPECT_EQ(scored, std::vector<int32_t>(doc.begin() + 1, doc.end()));
  // Any stride up to the window (stride == window: no overlap, the
  // reference's default) still scores each token once.
  for (int64_t stride : {1, 7, 8}) {
    std::vector<int32_t> all;
    for (const Sample& s : LmWindows(doc, ids(), 8, stride)) {
      for (size_t i = s.sep; i < s.tokens.size(); ++i) all.push_back(s.targets[i]);
    }
    EXPECT_EQ(all, std::vector<int32_t>(doc.begin() + 1, doc.end())) << "stride " << stride;
  }
  auto r = EvaluateLm(model(), ids(), {doc, {42}}, 40, LmEvalOptions{8, 3, 2});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->documents, 2);
  EXPECT_EQ(r->scored_tokens, 29);
  EXPECT_EQ(r->windows, static_cast<int64_t>(rows.size()));
  EXPECT_TRUE(std::isfinite(r->token_perplexity) && r->token_perplexity > 1);
  // A window beyond the model's positions is refused.
  EXPECT_EQ(EvaluateLm(model(), ids(), {doc}, 40, LmEvalOptions{500, 3, 2}).status().code(),
            StatusCode::kInvalidArgument);
}

// --- cloze ---

TEST_F(InferenceTest, ClozeScoreIsTheSumOfCandidateLogProbsWhenGeneratingTheBlank) {
  auto e = ParseClozeLine(R"({"text": "The [MASK] coined gold and silver.", "choices": ["mint", "stone bridge"],
                              "label": 0})",
                          "t:1", true);
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto r = EvaluateCloze(model(), tok(), {*e}, ClozeOptions{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->scores.size(), 1u);
  // Independently, with the KV cache: Part A once, then [sop] a_1 .. a_k one
  // token at a time, summing log p(a_1 .. a_k, [eop]).
  std::vector<int32_t> part_a{ids().cls};
  for (int32_t t : tok().Encode(e->text, true)) part_a.push_back(t);
  part_a.push_back(ids().eod);
  const int64_t n = static_cast<int64_t>(part_a.size());
  int64_t blank = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (part_a[i] == ids().mask) blank = i;
  }
  torch::NoGradGuard ng;
  for (size_t c = 0; c < 2; ++c) {
    std::vector<int64_t> tokens(part_a.begin(), part_a.end()), pos(n), block(n, 0);
    for (int64_t i = 0; i < n; ++i) pos[i] = i;
    std::vector<torch::Tensor> memory =
        model()->ForwardWithMemory(Row(tokens), Row(pos), Row(block), torch::tensor({n}, torch::kInt64), {}).memory;
    std::vector<int32_t> answer = tok().Encode(e->choices[c]);
    if (c == 1) {
      EXPECT_GT(answer.size(), 1u);  // a multi-token candidate
    }
    answer.push_back(ids().eop);
    double score = 0;
    int64_t current = ids().sop;
    for (size_t j = 0; j < answer.size(); ++j) {
      auto step = model()->ForwardWithMemory(Row({current}), Row({blank}), Row({static_cast<int64_t>(j) + 1}),
                                             torch::tensor({int64_t{0}}, torch::kInt64), memory);
      memory = step.memory;
      score += torch::log_softmax(step.logits[0][-1].to(torch::kFloat64), -1)[answer[j]].item<double>();
      current = answer[j];
    }
    EXPECT_NEAR(r->scores[0][c], score, 1e-3) << e->choices[c];
  }
  EXPECT_EQ(r->predictions[0], r->scores[0][0] >= r->scores[0][1] ? 0 : 1);
  EXPECT_EQ(r->labeled, 1);
}

TEST_F(InferenceTest, MalformedClozeLinesAreRejectedNamingTheLine) {
  struct Case {
    const char* line;
    const char* says;
  } cases[] = {
      {"{not json", "not valid JSON"},
      {R"(["a"])", "not a JSON object"},
      {R"({"choices": ["a", "b"], "label": 0})", "\"text\""},
      {R"({"text": "a [MASK]", "choices": ["a"], "label": 0})", "at least two"},
      {R"({"text": "a [MASK]", "choices": ["a", 3], "label": 0})", "string"},
      {R"({"text": "a [MASK]", "choices": ["a", " "], "label": 0})", "empty"},
      {R"({"text": "a [MASK]", "choices": ["a", "b"], "label": 2})", "not an index"},
      {R"({"text": "a [MASK]", "choices": ["a", "b"], "label": "a"})", "integer"},
      {R"({"text": "a [MASK]", "choices": ["a", "b"]})", "\"label\" is missing"},
  };
  for (const Case& c : cases) {
    auto r = ParseClozeLine(c.line, "tasks.jsonl:7", /*require_label=*/true);
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("tasks.jsonl:7"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << r.status().message();
  }
  // Blanks are counted when the rows are built.
  for (const char* text : {"no blank", "two [MASK] and [MASK]"}) {
    ClozeExample e;
    e.text = text;
    e.choices = {"a", "b"};
    e.where = "tasks.jsonl:9";
    auto rows = BuildClozeRows(tok(), e, 128);
    ASSERT_FALSE(rows.ok());
    EXPECT_NE(rows.status().message().find("exactly one blank"), std::string::npos);
    EXPECT_NE(rows.status().message().find("tasks.jsonl:9"), std::string::npos);
  }
  // A file: the first bad line is named.
  const fs::path file = fixture_->root / "bad.jsonl";
  std::ofstream(file) << R"({"text": "a [MASK]", "choices": ["a", "b"], "label": 0})" << "\n\n{oops\n";
  auto f = ReadClozeFile(file.string(), true);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find(file.string() + ":3"), std::string::npos) << f.status().message();
}

// A synthetic task whose answer is always one fixed word: chosen as the word
// the untrained model likes least, so fine-tuning has to move accuracy up.
TEST_F(InferenceTest, FinetuningRaisesAccuracyOnASyntheticClozeTask) {
  const std::vector<std::string> words = {"apple", "stone", "gold", "navy", "river", "debt"};
  const std::vector<std::string> contexts = {
      "The [MASK] of the Union is strong.", "Congress shall meet the [MASK] once a year.",
      "Peace with the [MASK] is our first wish!", "The public [MASK] was reduced.",
      "Treaties were concluded with the [MASK].", "The mint coined [MASK] and silver.",
      "The [MASK] harvest was large this year.", "A [MASK] bridge was built over the river.",
      "The army and the [MASK] were ready.", "Trade with our [MASK] grew every year.",
      "The [MASK] was ready.", "A [MASK] was built."};
  auto make = [&](const std::string& answer, int first, int count) {
    std::vector<ClozeExample> out;
    for (int i = first; i < first + count; ++i) {
      ClozeExample e;
      e.text = contexts[i % contexts.size()];
      std::string other = words[(i * 5 + 1) % words.size()];
      if (other == answer) other = words[(i * 5 + 2) % words.size()];
      const bool answer_first = (i % 2) == 0;
      e.choices = answer_first ? std::vector<std::string>{answer, other} : std::vector<std::string>{other, answer};
      e.label = answer_first ? 0 : 1;
      e.where = "synthetic:" + std::to_string(i);
      out.push_back(e);
    }
    return out;
  };
  std::string answer;
  double worst = 2;
  for (const std::string& w : words) {
    auto r = EvaluateCloze(model(), tok(), make(w, 0, 24), ClozeOptions{});
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (r->accuracy < worst) {
      worst = r->accuracy;
      answer = w;
    }
  }
  const std::vector<ClozeExample> train = make(answer, 0, 24);
  const std::vector<ClozeExample> eval = make(answer, 24, 12);
  ClozeFinetuneOptions o;
  o.epochs = 4;
  o.batch_size = 4;
  o.lr = 3e-3;
  o.warmup = 0;
  o.weight_decay = 0;
  std::vector<ClozeEpoch> seen;
  auto r = FinetuneCloze(model(), tok(), train, eval, o, [&](const ClozeEpoch& e) { seen.push_back(e); });
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->epochs.size(), 5u);
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(r->steps, 4 * 6);
  const double before = r->epochs.front().eval_accuracy;
  const double after = r->epochs.back().eval_accuracy;
  EXPECT_LE(before, 0.5) << "answer " << answer;
  EXPECT_GE(after, 0.9) << r->ToJson();
  EXPECT_LT(r->epochs.back().train_loss, r->epochs[1].train_loss) << r->ToJson();
  EXPECT_FALSE(model()->is_training());
  // An unlabeled training example is refused before any step.
  std::vector<ClozeExample> unlabeled = train;
  unlabeled[3].label = -1;
  EXPECT_EQ(FinetuneCloze(model(), tok(), unlabeled, {}, o, nullptr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm::training
