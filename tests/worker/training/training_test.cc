// Training from a real RocksDB store built in-process (a tokenizer trained on
// three SOTU addresses, SampleFactory, RocksDbSampleStore): loss falls, a
// stopped run resumes to the same bytes, the seams fail cleanly.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/safetensors.h"
#include "storage/in_memory_sample_store.h"
#include "storage/rocksdb_sample_store.h"
#include "worker/training/dataset.h"
#include "worker/training/seams.h"
#include "worker/training/train_run.h"

namespace glm::training {
namespace {
namespace fs = std::filesystem;

const std::string kSotu = std::string(GLM_SOURCE_DIR) + "/data/sotu";

PretrainConfig TinyConfig() {
  PretrainConfig c;
  c.model_preset = "tiny";
  c.corpus = kSotu + "/179*.txt";
  c.vocab_size = 300;
  c.seq_length = 96;
  c.heldout_every = 5;
  c.validation_samples = 8;
  c.max_steps = 30;
  c.global_batch_size = 6;
  c.micro_batch_size = 6;
  c.lr = 5e-3;
  c.checkpoint_every = 0;
  c.threads = 1;
  c.infill_examples = 1;
  return c;
}

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kSotu + "/1790_george_washington_n.txt")) {
      GTEST_SKIP() << "data/sotu is missing: run `GLM_SETUP_NO_BUILD=1 scripts/setup`";
    }
    dir_ = fs::path(::testing::TempDir()) /
           ("training_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Produce(const PretrainConfig& c) {
    auto store = ProduceStore(c, (dir_ / "data").string(), [](const std::string&) {});
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? *store : "";
  }
  fs::path dir_;
};

TEST_F(TrainingTest, LossFallsAndHeldOutEvalReportsEveryObjective) {
  PretrainConfig c = TinyConfig();
  TrainRunOptions o;
  o.config = c;
  o.store_dir = Produce(c);
  o.workdir = (dir_ / "run").string();
  o.progress = false;
  auto r = RunTraining(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->final_step, 30);
  EXPECT_LT(r->last_loss, r->first_loss - 1.0) << "first " << r->first_loss << " last " << r->last_loss;
  ASSERT_EQ(r->eval.size(), 3u);
  for (const ObjectiveEval& e : r->eval) {
    EXPECT_GT(e.tokens, 0);
    EXPECT_TRUE(std::isfinite(e.loss));
    EXPECT_GT(e.unigram, 0);
  }
  ASSERT_EQ(r->infill.size(), 1u);
  EXPECT_FALSE(r->infill[0].truth.empty());
  EXPECT_EQ(r->infill[0].truth.size(), r->infill[0].generated.size());
  // metrics.jsonl: one line per step, docs/observability.md fields.
  std::ifstream in(dir_ / "run" / "metrics.jsonl");
  std::string line;
  int64_t lines = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["step"].get<int64_t>(), ++lines);
    EXPECT_TRUE(j.contains("tokens_per_second"));
    EXPECT_TRUE(j.contains("time_ms"));
    EXPECT_TRUE(j.contains("loss_blank") || j.contains("loss_sentence") || j.contains("loss_document"));
  }
  EXPECT_EQ(lines, 30);
  // The checkpoint's model file loads as a GlmModel (what `glm forward --weights` does).
  ASSERT_FALSE(r->checkpoint.empty());
  auto model = model::LoadModel(r->checkpoint + "/model.safetensors");
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_TRUE(fs::exists(dir_ / "run" / "eval.json"));
}

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST_F(TrainingTest, StoppedRunResumesToTheSameWeights) {
  PretrainConfig c = TinyConfig();
  c.max_steps = 8;
  c.checkpoint_every = 4;
  c.infill_examples = 0;
  const std::string store = Produce(c);
  TrainRunOptions whole;
  whole.config = c;
  whole.store_dir = store;
  whole.workdir = (dir_ / "whole").string();
  whole.progress = false;
  auto a = RunTraining(whole);
  ASSERT_TRUE(a.ok()) << a.status().message();

  TrainRunOptions part = whole;
  part.workdir = (dir_ / "parts").string();
  part.stop_at_step = 4;
  auto b1 = RunTraining(part);
  ASSERT_TRUE(b1.ok()) << b1.status().message();
  EXPECT_TRUE(b1->stopped);
  EXPECT_EQ(b1->final_step, 4);
  part.stop_at_step = 0;
  part.resume = true;
  auto b2 = RunTraining(part);
  ASSERT_TRUE(b2.ok()) << b2.status().message();
  EXPECT_EQ(b2->start_step, 4);
  EXPECT_EQ(b2->final_step, 8);
  const std::string wa = ReadBytes(fs::path(a->checkpoint) / "model.safetensors");
  const std::string wb = ReadBytes(fs::path(b2->checkpoint) / "model.safetensors");
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == wb) << "resumed weights differ from the uninterrupted run";
}

TEST_F(TrainingTest, MoreStepsThanTheStoreHoldsIsAClearError) {
  PretrainConfig c = TinyConfig();
  c.max_steps = 4;
  TrainRunOptions o;
  o.config = c;
  o.store_dir = Produce(c);
  o.workdir = (dir_ / "run").string();
  o.progress = false;
  o.config.max_steps = 400;
  auto r = RunTraining(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("lower --max-steps"), std::string::npos) << r.status().message();
}

TEST(StoreBatchSourceTest, MissingSampleIsNotFoundNamingTheKey) {
  storage::InMemorySampleStore store(/*tokenizer_hash=*/7);
  StoreBatchSource source(&store);
  trainer::MicroBatch b;
  b.samples = {{Objective::kBlank, 0, 0}, {Objective::kBlank, 0, 1}};
  Status s = source.Load(&b);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.message();
}

TEST(StoreBatchSourceTest, ReadsRunsAndCollates) {
  storage::InMemorySampleStore store(7);
  std::vector<Sample> samples;
  for (uint64_t i = 0; i < 3; ++i) {
    Sample s;
    s.objective = i < 2 ? Objective::kBlank : Objective::kDocument;
    s.index = i < 2 ? i : 0;
    s.tokenizer_hash = 7;
    s.source = {2, 20, 21};
    s.tokens = {2, 4, 7, 20};
    s.targets = {0, 0, 20, 8};
    s.loss_mask = {0, 0, 1, 1};
    s.position_ids = {0, 1, 1, 1};
    s.block_position_ids = {0, 0, 1, 2};
    s.sep = 2;
    samples.push_back(s);
  }
  ASSERT_TRUE(store.PutSamples(samples).ok());
  StoreBatchSource source(&store);
  trainer::MicroBatch b;
  b.samples = {{Objective::kBlank, 0, 0}, {Objective::kBlank, 0, 1}, {Objective::kDocument, 0, 0}};
  ASSERT_TRUE(source.Load(&b).ok());
  EXPECT_EQ(b.tensors.at("tokens").sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(b.loss_weight, 6);
  EXPECT_EQ(b.num_tokens, 12);
  EXPECT_EQ(b.tensors.at("objective")[2].item<int64_t>(), 2);
}

TEST(JsonlMetricsSinkTest, LineHasTheObservabilityFieldsAndNullForNaN) {
  trainer::StepMetrics m;
  m.step = 3;
  m.loss = NAN;
  m.tokens_per_s = 1000;
  m.objective_loss = {2.5, NAN, NAN};
  m.objective_samples = {4, 0, 0};
  auto j = nlohmann::json::parse(JsonlMetricsSink::Line(m, 1234));
  EXPECT_EQ(j["step"], 3);
  EXPECT_TRUE(j["loss"].is_null());
  EXPECT_EQ(j["loss_blank"], 2.5);
  EXPECT_FALSE(j.contains("loss_sentence"));
  EXPECT_EQ(j["tokens_per_second"], 1000);
  EXPECT_EQ(j["time_ms"], 1234);
}

}  // namespace
}  // namespace glm::training
