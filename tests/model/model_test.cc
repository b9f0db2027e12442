// Unit tests of model/: config presets and files, the GLM module (names,
// init, sep mask, memory), batch collation, the loss and safetensors I/O.
// AdamW is the trainer's (worker/trainer/optimizer.h, tests/worker/trainer).
// Numerics against the reference implementation are in tests/golden/.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/batch.h"
#include "model/glm_config.h"
#include "model/glm_model.h"
#include "model/loss.h"
#include "model/safetensors.h"

namespace glm::model {
namespace {

namespace fs = std::filesystem;

GlmConfig TinyConfig() {
  GlmConfig c;
  c.num_layers = 2;
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.vocab_size = 128;
  c.max_sequence_length = 32;
  return c;
}

std::string TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("glm_model_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// Random non-trivial parameters (LayerNorm and biases included), float64.
GlmModel RandomModel(const GlmConfig& c, uint64_t seed) {
  GlmModel m(GlmModelOptions{c, seed});
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) p.value().normal_(0.0, 0.3);
  m->to(torch::kFloat64);
  m->eval();
  return m;
}

struct Inputs {
  torch::Tensor tokens, pos, block, sep;
};

// One blank-infilling-like row: Part A of length `sep`, then Part B.
Inputs MakeInputs(int64_t batch, int64_t seq, std::vector<int64_t> seps, int64_t vocab) {
  torch::manual_seed(7);
  Inputs in;
  in.tokens = torch::randint(vocab, {batch, seq}, torch::kInt64);
  in.pos = torch::arange(seq, torch::kInt64).repeat({batch, 1});
  in.block = torch::zeros({batch, seq}, torch::kInt64);
  in.sep = torch::tensor(seps, torch::kInt64);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = seps[b]; j < seq; ++j) {
      in.pos[b][j] = 1;
      in.block[b][j] = j - seps[b] + 1;
    }
  }
  return in;
}

// --- Config ---

TEST(GlmConfigTest, PresetParameterCountsMatchTheSpec) {
  struct Want {
    const char* name;
    double params;
  } wants[] = {{"base", 109.3e6}, {"large", 334.7e6}, {"410m", 410.3e6},
               {"515m", 514.6e6}, {"2b", 1.920e9},    {"10b", 9.881e9}};
  for (const Want& w : wants) {
    StatusOr<GlmConfig> c = GlmConfig::FromPreset(w.name);
    ASSERT_TRUE(c.ok()) << w.name;
    EXPECT_NEAR(static_cast<double>(c->NumParameters()) / w.params, 1.0, 0.001) << w.name;
    EXPECT_EQ(c->vocab_size % 128, 0) << w.name;
  }
  StatusOr<GlmConfig> small = GlmConfig::FromPreset("small");
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->num_layers, 4);
  EXPECT_EQ(small->hidden_size, 256);
  EXPECT_EQ(small->vocab_size, 16000);
}

TEST(GlmConfigTest, UnknownPresetNamesTheKnownOnes) {
  StatusOr<GlmConfig> c = GlmConfig::FromPreset("huge");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("small"), std::string::npos);
}

TEST(GlmConfigTest, ModelParameterCountEqualsFormula) {
  for (const char* name : {"tiny", "small"}) {
    GlmConfig c = GlmConfig::FromPreset(name).value();
    GlmModel m(c);
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, c.NumParameters()) << name;
  }
}

TEST(GlmConfigTest, YamlPresetFilesEqualBuiltInPresets) {
  for (const std::string& name : GlmConfig::PresetNames()) {
    StatusOr<GlmConfig> file = GlmConfig::FromYamlFile(std::string(GLM_SOURCE_DIR) + "/configs/models/" + name + ".yaml");
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_TRUE(*file == GlmConfig::FromPreset(name).value()) << name;
  }
}

TEST(GlmConfigTest, JsonRoundTripsAndReadsHubConfig) {
  GlmConfig c = GlmConfig::FromPreset("large").value();
  c.hidden_dropout = 0.05;
  StatusOr<GlmConfig> back = GlmConfig::FromJson(c.ToJson());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == c);
  // The THUDM/glm-large hub config.json (keys as published).
  const char* hub = R"({"architectures": ["GLMModel"], "attention_dropout_prob": 0.1, "attention_scale": 1.0,
    "block_position_encoding": true, "checkpoint_activations": false, "checkpoint_num_layers": 1,
    "embedding_dropout_prob": 0.1, "hidden_size": 1024, "initializer_range": 0.02,
    "max_sequence_length": 512, "model_type": "glm", "num_attention_heads": 16, "num_layers": 24,
    "output_dropout_prob": 0.1, "output_predict": true, "parallel_output": true, "pool_token": "cls",
    "relative_encoding": false, "spell_func": "lstm", "spell_length": null, "torch_dtype": "float32",
    "vocab_size": 30592})";
  StatusOr<GlmConfig> h = GlmConfig::FromJson(hub);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(*h == GlmConfig::FromPreset("large").value());
}

TEST(GlmConfigTest, RejectsBadValuesNamingTheKey) {
  StatusOr<GlmConfig> missing = GlmConfig::FromJson(R"({"num_layers": 2, "hidden_size": 64})");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("num_attention_heads"), std::string::npos);
  GlmConfig c = TinyConfig();
  c.vocab_size = 30522;
  Status s = c.Validate();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("vocab_size"), std::string::npos);
  EXPECT_NE(s.message().find("30592"), std::string::npos);
  c = TinyConfig();
  c.num_attention_heads = 5;
  EXPECT_NE(c.Validate().message().find("num_attention_heads"), std::string::npos);
  EXPECT_FALSE(GlmConfig::FromJson("not json").ok());
  EXPECT_EQ(PadVocabSize(30522), 30592);
  EXPECT_EQ(PadVocabSize(50257), 50304);
}

// --- Model ---

TEST(GlmModelTest, ParameterNamesAndShapesAreTheReferenceKeys) {
  GlmConfig c = TinyConfig();
  GlmModel m(c);
  std::vector<std::string> names;
  for (const auto& p : m->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, ParameterNames(c));
  auto params = m->named_parameters();
  EXPECT_EQ(params["word_embeddings.weight"].sizes(), (std::vector<int64_t>{128, 32}));
  EXPECT_EQ(params["transformer.position_embeddings.weight"].sizes(), (std::vector<int64_t>{33, 32}));
  EXPECT_EQ(params["transformer.layers.1.attention.query_key_value.weight"].sizes(),
            (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(params["transformer.layers.0.mlp.dense_4h_to_h.weight"].sizes(), (std::vector<int64_t>{32, 128}));
}

TEST(GlmModelTest, InitialisesAsTheReference) {
  GlmConfig c = GlmConfig::FromPreset("small").value();
  GlmModel m(GlmModelOptions{c, 1});
  auto p = m->named_parameters();
  auto std_of = [&](const std::string& n) { return p[n].std().item<double>(); };
  EXPECT_NEAR(std_of("word_embeddings.weight"), 0.02, 0.0005);
  EXPECT_NEAR(std_of("transformer.layers.0.attention.query_key_value.weight"), 0.02, 0.0005);
  const double scaled = 0.02 / std::sqrt(8.0);
  EXPECT_NEAR(std_of("transformer.layers.3.attention.dense.weight"), scaled, 0.0003);
  EXPECT_NEAR(std_of("transformer.layers.3.mlp.dense_4h_to_h.weight"), scaled, 0.0003);
  EXPECT_EQ(p["transformer.layers.2.mlp.dense_h_to_4h.bias"].abs().max().item<double>(), 0.0);
  EXPECT_EQ(p["transformer.final_layernorm.weight"].min().item<double>(), 1.0);
  // Equal seeds, equal weights.
  GlmModel again(GlmModelOptions{c, 1});
  EXPECT_TRUE(torch::equal(again->named_parameters()["word_embeddings.weight"], p["word_embeddings.weight"]));
}

TEST(GlmModelTest, AttentionMaskFollowsSepPerRow) {
  torch::Tensor masked = BuildAttentionMask(torch::tensor({2, 4}, torch::kInt64), 5, 0);  // (2, 1, 5, 5)
  ASSERT_EQ(masked.sizes(), (std::vector<int64_t>{2, 1, 5, 5}));
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t sep = b == 0 ? 2 : 4;
    for (int64_t i = 0; i < 5; ++i) {
      for (int64_t j = 0; j < 5; ++j) {
        const bool visible = j < sep || j <= i;
        EXPECT_EQ(masked[b][0][i][j].item<bool>(), !visible) << b << " " << i << " " << j;
      }
    }
  }
  // Memory columns are always visible.
  torch::Tensor with_mem = BuildAttentionMask(torch::tensor({0}, torch::kInt64), 2, 3);  // (1, 1, 2, 5)
  EXPECT_FALSE(with_mem.index({0, 0, 0, torch::indexing::Slice(0, 4)}).any().item<bool>());
  EXPECT_TRUE(with_mem[0][0][0][4].item<bool>());
}

TEST(GlmModelTest, PartBIsCausalAndPartABidirectional) {
  GlmConfig c = TinyConfig();
  GlmModel m = RandomModel(c, 3);
  Inputs in = MakeInputs(1, 10, {6}, c.vocab_size);
  torch::NoGradGuard no_grad;
  torch::Tensor base = m->forward(in.tokens, in.pos, in.block, in.sep);  // (1, 10, V)
  // Changing a Part-B token (8) changes nothing before it.
  torch::Tensor t = in.tokens.clone();
  t[0][8] = (t[0][8].item<int64_t>() + 1) % c.vocab_size;
  torch::Tensor changed = m->forward(t, in.pos, in.block, in.sep);
  EXPECT_TRUE(torch::allclose(changed.narrow(1, 0, 8), base.narrow(1, 0, 8), 0, 0));
  EXPECT_FALSE(torch::allclose(changed.narrow(1, 8, 2), base.narrow(1, 8, 2)));
  // Changing a Part-A token (5) changes every position, position 0 included.
  t = in.tokens.clone();
  t[0][5] = (t[0][5].item<int64_t>() + 1) % c.vocab_size;
  changed = m->forward(t, in.pos, in.block, in.sep);
  EXPECT_GT((changed[0][0] - base[0][0]).abs().max().item<double>(), 1e-6);
}

TEST(GlmModelTest, BatchedRowsEqualSeparateRows) {
  GlmConfig c = TinyConfig();
  GlmModel m = RandomModel(c, 4);
  Inputs in = MakeInputs(3, 9, {3, 5, 9}, c.vocab_size);
  torch::NoGradGuard no_grad;
  torch::Tensor batched = m->forward(in.tokens, in.pos, in.block, in.sep);  // (3, 9, V)
  for (int64_t b = 0; b < 3; ++b) {
    auto row = [&](const torch::Tensor& x) { return x.narrow(0, b, 1); };
    torch::Tensor single = m->forward(row(in.tokens), row(in.pos), row(in.block), row(in.sep));
    EXPECT_LT((single - row(batched)).abs().max().item<double>(), 1e-12) << b;
  }
}

TEST(GlmModelTest, IncrementalDecodingWithMemoryEqualsOneFullPass) {
  GlmConfig c = TinyConfig();
  GlmModel m = RandomModel(c, 5);
  Inputs in = MakeInputs(2, 11, {6, 6}, c.vocab_size);
  torch::NoGradGuard no_grad;
  torch::Tensor full = m->forward(in.tokens, in.pos, in.block, in.sep);  // (2, 11, V)
  auto part = [](const torch::Tensor& x, int64_t start, int64_t len) { return x.narrow(1, start, len); };
  GlmMemoryOutput out = m->ForwardWithMemory(part(in.tokens, 0, 6), part(in.pos, 0, 6), part(in.block, 0, 6),
                                             in.sep, {});
  ASSERT_EQ(out.memory.size(), 3u);
  EXPECT_LT((out.logits - full.narrow(1, 0, 6)).abs().max().item<double>(), 1e-12);
  std::vector<torch::Tensor> memory = out.memory;
  for (int64_t j = 6; j < 11; ++j) {
    GlmMemoryOutput step = m->ForwardWithMemory(part(in.tokens, j, 1), part(in.pos, j, 1), part(in.block, j, 1),
                                                torch::zeros({2}, torch::kInt64), memory);
    EXPECT_LT((step.logits - full.narrow(1, j, 1)).abs().max().item<double>(), 1e-12) << j;
    memory = step.memory;
    EXPECT_EQ(memory[0].size(1), j + 1);
  }
}

TEST(GlmModelTest, DropoutIsActiveOnlyInTraining) {
  GlmConfig c = TinyConfig();
  c.hidden_dropout = 0.5;
  GlmModel m(GlmModelOptions{c, 2});
  Inputs in = MakeInputs(1, 6, {3}, c.vocab_size);
  m->train();
  torch::Tensor a = m->forward(in.tokens, in.pos, in.block, in.sep);
  torch::Tensor b = m->forward(in.tokens, in.pos, in.block, in.sep);
  EXPECT_FALSE(torch::allclose(a, b));
  m->eval();
  a = m->forward(in.tokens, in.pos, in.block, in.sep);
  b = m->forward(in.tokens, in.pos, in.block, in.sep);
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(GlmModelTest, DropoutKeepsOneMinusPScaledAndIsReproducible) {
  torch::Tensor x = torch::ones({1000, 1000}, torch::kFloat32);
  torch::manual_seed(11);
  torch::Tensor y = Dropout(x, 0.25, /*training=*/true);
  const double kept = (y != 0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(kept, 0.75, 0.003);
  EXPECT_NEAR(y.max().item<double>(), 1.0 / 0.75, 1e-6);
  EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.005);
  torch::manual_seed(11);
  EXPECT_TRUE(torch::equal(Dropout(x, 0.25, true), y));
  EXPECT_FALSE(torch::equal(Dropout(x, 0.25, true), y));  // the next draw differs
  EXPECT_TRUE(Dropout(x, 0.25, /*training=*/false).is_same(x));
  // Gradient flows through the kept elements only.
  torch::Tensor a = torch::ones({64}, torch::TensorOptions().requires_grad(true));
  torch::Tensor b = Dropout(a, 0.5, true);
  b.sum().backward();
  EXPECT_TRUE(torch::equal(a.grad(), b.detach()));
}

// --- Batch and loss ---

Sample MakeSample(Objective o, std::vector<int32_t> tokens, int32_t sep) {
  Sample s;
  s.objective = o;
  s.tokens = tokens;
  const size_t n = tokens.size();
  s.targets.resize(n);
  s.loss_mask.resize(n);
  s.position_ids.resize(n);
  s.block_position_ids.resize(n);
  for (size_t j = 0; j < n; ++j) {
    s.targets[j] = (tokens[j] + 1) % 100;
    s.loss_mask[j] = static_cast<int32_t>(j) >= sep ? 1 : 0;
    s.position_ids[j] = static_cast<int32_t>(j) < sep ? static_cast<int32_t>(j) : 1;
    s.block_position_ids[j] = static_cast<int32_t>(j) < sep ? 0 : static_cast<int32_t>(j) - sep + 1;
  }
  s.sep = sep;
  return s;
}

TEST(BatchTest, CollatePadsWithZerosAsTheReference) {
  std::vector<Sample> samples = {MakeSample(Objective::kBlank, {5, 6, 7, 8, 9}, 3),
                                 MakeSample(Objective::kDocument, {11, 12, 13}, 2)};
  StatusOr<Batch> b = CollateSamples(samples);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->tokens.sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_TRUE(torch::equal(b->tokens[1], torch::tensor({11, 12, 13, 0, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b->targets[1], torch::tensor({12, 13, 14, 0, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b->loss_mask[1], torch::tensor({0.f, 0.f, 1.f, 0.f, 0.f})));
  EXPECT_TRUE(torch::equal(b->block_position_ids[1], torch::tensor({0, 0, 1, 0, 0}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b->sep, torch::tensor({3, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b->objective, torch::tensor({0, 2}, torch::kInt64)));
}

TEST(BatchTest, CollateRejectsInconsistentSamples) {
  Sample s = MakeSample(Objective::kSentence, {1, 2, 3}, 1);
  s.index = 42;
  s.position_ids.pop_back();
  StatusOr<Batch> b = CollateSamples({s});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("position_ids"), std::string::npos);
  EXPECT_NE(b.status().message().find("index 42"), std::string::npos);
  Sample bad_sep = MakeSample(Objective::kBlank, {1, 2}, 5);
  EXPECT_FALSE(CollateSamples({bad_sep}).ok());
  EXPECT_FALSE(CollateSamples({}).ok());
}

TEST(LossTest, LossOverLossPositionsEqualsFullLogitsLossAndSplitsByObjective) {
  GlmConfig c = TinyConfig();
  GlmModel m = RandomModel(c, 6);
  std::vector<Sample> samples = {MakeSample(Objective::kBlank, {5, 6, 7, 8, 9, 10}, 3),
                                 MakeSample(Objective::kDocument, {11, 12, 13, 14}, 2),
                                 MakeSample(Objective::kDocument, {21, 22, 23}, 1)};
  Batch b = CollateSamples(samples).value();
  torch::Tensor logits = m->forward(b.tokens, b.position_ids, b.block_position_ids, b.sep);
  LossOutput full = LossFromLogits(logits, b);
  LossOutput fast = ComputeLoss(m, b);
  EXPECT_NEAR(full.loss.item<double>(), fast.loss.item<double>(), 1e-12);
  // Explicit: mean over the 3 + 2 + 2 loss tokens of -log_softmax[target].
  torch::Tensor logp = torch::log_softmax(logits, -1);
  double sum = 0, doc = 0;
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t j = 0; j < 6; ++j) {
      if (b.loss_mask[r][j].item<float>() == 0) continue;
      double ce = -logp[r][j][b.targets[r][j].item<int64_t>()].item<double>();
      sum += ce;
      if (r > 0) doc += ce;
    }
  }
  EXPECT_NEAR(fast.loss.item<double>(), sum / 7, 1e-12);
  EXPECT_EQ(fast.tokens, 7);
  EXPECT_EQ(fast.objective_tokens[0], 3);
  EXPECT_EQ(fast.objective_tokens[1], 0);
  EXPECT_EQ(fast.objective_tokens[2], 4);
  EXPECT_NEAR(fast.objective_loss_sum[2], doc, 1e-10);
  // Gradients agree too.
  fast.loss.backward();
  torch::Tensor g1 = m->word_embeddings->weight.grad().clone();
  m->zero_grad();
  LossFromLogits(m->forward(b.tokens, b.position_ids, b.block_position_ids, b.sep), b).loss.backward();
  EXPECT_LT((g1 - m->word_embeddings->weight.grad()).abs().max().item<double>(), 1e-12);
}

TEST(LossTest, BatchWithoutLossTokensGivesZeroLoss) {
  GlmConfig c = TinyConfig();
  GlmModel m(c);
  Sample s = MakeSample(Objective::kBlank, {1, 2, 3}, 3);
  Batch b = CollateSamples({s}).value();
  LossOutput out = ComputeLoss(m, b);
  EXPECT_EQ(out.loss.item<double>(), 0.0);
  EXPECT_EQ(out.tokens, 0);
}

// --- safetensors ---

TEST(SafetensorsTest, SaveAndLoadModelRoundTrips) {
  const std::string dir = TempDir("roundtrip");
  GlmConfig c = TinyConfig();
  GlmModel m = RandomModel(c, 8);
  ASSERT_TRUE(SaveModel(m, dir).ok());
  ASSERT_TRUE(fs::exists(dir + "/config.json"));
  StatusOr<GlmModel> back = LoadModel(dir + "/model.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE((*back)->config() == c);
  (*back)->to(torch::kFloat64);
  auto a = m->named_parameters();
  for (const auto& p : (*back)->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), a[p.key()])) << p.key();
  // Without config.json the metadata keys suffice.
  fs::remove(dir + "/config.json");
  StatusOr<GlmModel> from_meta = LoadModel(dir + "/model.safetensors");
  ASSERT_TRUE(from_meta.ok()) << from_meta.status();
  EXPECT_TRUE((*from_meta)->config() == c);
  fs::remove_all(dir);
}

TEST(SafetensorsTest, AcceptsGlmPrefixAndConvertsDtypes) {
  const std::string dir = TempDir("prefix");
  GlmConfig c = TinyConfig();
  GlmModel m(GlmModelOptions{c, 9});
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : m->named_parameters()) tensors.emplace_back("glm." + p.key(), p.value().to(torch::kFloat16));
  ASSERT_TRUE(WriteSafetensors(dir + "/w.safetensors", tensors, c.ToMetadata()).ok());
  StatusOr<GlmModel> back = LoadModel(dir + "/w.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  torch::Tensor want = m->named_parameters()["word_embeddings.weight"].to(torch::kFloat16).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal((*back)->named_parameters()["word_embeddings.weight"], want));
  fs::remove_all(dir);
}

class SafetensorsFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir("failure");
    config_ = TinyConfig();
    model_ = GlmModel(GlmModelOptions{config_, 10});
    for (const auto& p : model_->named_parameters()) tensors_.emplace_back(p.key(), p.value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  Status Load(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
    const std::string path = dir_ + "/w.safetensors";
    Status w = WriteSafetensors(path, tensors, config_.ToMetadata());
    if (!w.ok()) return w;
    return LoadModel(path).status();
  }

  std::string dir_;
  GlmConfig config_;
  GlmModel model_{nullptr};
  std::vector<std::pair<std::string, torch::Tensor>> tensors_;
};

TEST_F(SafetensorsFailureTest, RefusesMissingTensorNamingIt) {
  auto t = tensors_;
  t.erase(t.begin() + 5);
  Status s = Load(t);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("missing tensor '" + tensors_[5].first + "'"), std::string::npos) << s;
}

TEST_F(SafetensorsFailureTest, RefusesExtraTensorNamingIt) {
  auto t = tensors_;
  t.emplace_back("transformer.layers.7.attention.dense.weight", torch::zeros({32, 32}));
  Status s = Load(t);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("transformer.layers.7.attention.dense.weight"), std::string::npos) << s;
}

TEST_F(SafetensorsFailureTest, RefusesMisShapedTensorNamingIt) {
  auto t = tensors_;
  t[3].second = torch::zeros({5});
  Status s = Load(t);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(t[3].first), std::string::npos) << s;
  EXPECT_NE(s.message().find("shape [5]"), std::string::npos) << s;
  // A refused file leaves the model untouched.
  GlmModel target(GlmModelOptions{config_, 77});
  torch::Tensor before = target->named_parameters()["word_embeddings.weight"].clone();
  auto file = SafetensorsFile::Open(dir_ + "/w.safetensors");
  ASSERT_TRUE(file.ok());
  EXPECT_FALSE(LoadParameters(**file, target).ok());
  EXPECT_TRUE(torch::equal(target->named_parameters()["word_embeddings.weight"], before));
}

TEST_F(SafetensorsFailureTest, RefusesTruncatedFileNamingTheTensor) {
  const std::string path = dir_ + "/w.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors_, config_.ToMetadata()).ok());
  fs::resize_file(path, fs::file_size(path) - 100);
  StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find(tensors_.back().first), std::string::npos) << f.status();
  fs::resize_file(path, 20);
  EXPECT_EQ(SafetensorsFile::Open(path).status().code(), StatusCode::kDataLoss);
  fs::resize_file(path, 3);
  EXPECT_EQ(SafetensorsFile::Open(path).status().code(), StatusCode::kDataLoss);
}

TEST_F(SafetensorsFailureTest, RefusesCorruptHeaders) {
  const std::string path = dir_ + "/bad.safetensors";
  auto write_raw = [&](const std::string& header, size_t data_bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << std::string(data_bytes, '\0');
  };
  write_raw("{not json", 0);
  EXPECT_EQ(SafetensorsFile::Open(path).status().code(), StatusCode::kDataLoss);
  write_raw(R"({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 16);
  Status s = SafetensorsFile::Open(path).status();
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("'a'"), std::string::npos) << s;
  write_raw(R"({"b": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}})", 4);
  EXPECT_NE(SafetensorsFile::Open(path).status().message().find("'b'"), std::string::npos);
  write_raw(R"({"c": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4);
  EXPECT_EQ(SafetensorsFile::Open(path).status().code(), StatusCode::kDataLoss);
  write_raw(R"([1, 2])", 0);
  EXPECT_EQ(SafetensorsFile::Open(path).status().code(), StatusCode::kDataLoss);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    uint64_t n = ~0ull;
    out.write(reinterpret_cast<const char*>(&n), 8);
  }
  EXPECT_EQ(SafetensorsFile::Open(path).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(SafetensorsFile::Open(dir_ + "/absent.safetensors").status().code(), StatusCode::kNotFound);
}

TEST_F(SafetensorsFailureTest, RefusesWeightsWithoutAnyConfig) {
  const std::string path = dir_ + "/w.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors_, {}).ok());
  Status s = LoadModel(path).status();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("config"), std::string::npos);
}

}  // namespace
}  // namespace glm::model
