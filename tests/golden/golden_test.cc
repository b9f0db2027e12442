// Numerics against the reference implementation (THUDM/GLM): logits, loss
// and gradients of a tiny model with random non-trivial weights, exported
// once by export_reference.py (README.md says how). Expected values are the
// reference's float64 run; glm must match them within 1e-10 in float64 and
// 1e-4 in float32.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "model/batch.h"
#include "model/glm_model.h"
#include "model/loss.h"
#include "model/safetensors.h"
#include "tests/testing/run_command.h"

namespace glm::model {
namespace {

namespace fs = std::filesystem;

const std::string kData = std::string(GLM_SOURCE_DIR) + "/tests/golden/data";

struct Precision {
  torch::ScalarType dtype;
  double tolerance;
  const char* name;
};
const Precision kPrecisions[] = {{torch::kFloat64, 1e-10, "float64"}, {torch::kFloat32, 1e-4, "float32"}};

class GoldenTest : public ::testing::TestWithParam<Precision> {
 protected:
  static void SetUpTestSuite() {
    auto cases = SafetensorsFile::Open(kData + "/cases.safetensors");
    ASSERT_TRUE(cases.ok()) << cases.status();
    cases_ = std::move(cases).value().release();
  }
  static void TearDownTestSuite() {
    delete cases_;
    cases_ = nullptr;
  }

  void SetUp() override {
    StatusOr<GlmModel> m = LoadModel(kData + "/weights.safetensors", "", GetParam().dtype);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *m;
    model_->eval();
  }

  static torch::Tensor Get(const std::string& name) {
    StatusOr<torch::Tensor> t = cases_->Read(name);
    GLM_CHECK(t.ok()) << t.status();
    return *t;
  }

  static Batch CaseBatch(const std::string& c) {
    Batch b;
    b.tokens = Get(c + ".tokens");
    b.position_ids = Get(c + ".position_ids");
    b.block_position_ids = Get(c + ".block_position_ids");
    b.sep = Get(c + ".sep");
    b.targets = Get(c + ".targets");
    b.loss_mask = Get(c + ".loss_mask").to(torch::kFloat32);
    b.objective = Get(c + ".objective");
    return b;
  }

  static double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
    EXPECT_EQ(a.sizes(), b.sizes());
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
  }

  void CheckCase(const std::string& c, bool grads) {
    const double tol = GetParam().tolerance;
    Batch b = CaseBatch(c);
    model_->zero_grad();
    torch::Tensor logits = model_->forward(b.tokens, b.position_ids, b.block_position_ids, b.sep);
    EXPECT_LE(MaxDiff(logits, Get(c + ".logits")), tol) << c << " logits";
    LossOutput from_logits = LossFromLogits(logits, b);
    EXPECT_LE(MaxDiff(from_logits.loss, Get(c + ".loss")), tol) << c << " loss (full logits)";
    LossOutput loss = ComputeLoss(model_, b);  // the trainer's path: Part-B positions only
    EXPECT_LE(MaxDiff(loss.loss, Get(c + ".loss")), tol) << c << " loss";
    if (!grads) return;
    loss.loss.backward();
    int checked = 0;
    for (const auto& p : model_->named_parameters()) {
      EXPECT_LE(MaxDiff(p.value().grad(), Get(c + ".grad." + p.key())), tol) << c << " grad of " << p.key();
      ++checked;
    }
    EXPECT_EQ(checked, 3 + 12 * 2 + 2);
  }

  static SafetensorsFile* cases_;
  GlmModel model_{nullptr};
};

SafetensorsFile* GoldenTest::cases_ = nullptr;

TEST_P(GoldenTest, TokenObjectiveLogitsAndLossMatchReference) { CheckCase("blank", false); }
TEST_P(GoldenTest, SentenceObjectiveLogitsAndLossMatchReference) { CheckCase("sentence", false); }
TEST_P(GoldenTest, DocumentObjectiveLogitsLossAndGradientsMatchReference) { CheckCase("document", true); }
TEST_P(GoldenTest, BatchedRowsWithDifferentSepMatchReference) { CheckCase("batched", true); }

TEST_P(GoldenTest, PerObjectiveBreakdownEqualsSingleObjectiveLosses) {
  LossOutput batched = ComputeLoss(model_, CaseBatch("batched"));
  const char* singles[] = {"blank", "sentence", "document"};
  for (int o = 0; o < kNumObjectives; ++o) {
    ASSERT_GT(batched.objective_tokens[o], 0);
    const double mean = batched.objective_loss_sum[o] / batched.objective_tokens[o];
    EXPECT_NEAR(mean, Get(std::string(singles[o]) + ".loss").item<double>(), GetParam().tolerance) << singles[o];
  }
}

TEST_P(GoldenTest, MemoryIncrementalDecodingMatchesReference) {
  const double tol = GetParam().tolerance;
  torch::Tensor tokens = Get("memory.tokens");     // (1, S)
  torch::Tensor pos = Get("memory.position_ids");  // (1, S)
  torch::Tensor block = Get("memory.block_position_ids");
  const int64_t context = Get("memory.context_length").item<int64_t>();
  torch::Tensor expected = Get("memory.logits");  // (1, S, V)
  torch::NoGradGuard no_grad;
  auto part = [](const torch::Tensor& x, int64_t a, int64_t n) { return x.narrow(1, a, n); };
  GlmMemoryOutput out = model_->ForwardWithMemory(part(tokens, 0, context), part(pos, 0, context),
                                                  part(block, 0, context), Get("memory.sep"), {});
  EXPECT_LE(MaxDiff(out.logits, part(expected, 0, context)), tol);
  std::vector<torch::Tensor> memory = out.memory;
  for (int64_t j = context; j < tokens.size(1); ++j) {
    GlmMemoryOutput step = model_->ForwardWithMemory(part(tokens, j, 1), part(pos, j, 1), part(block, j, 1),
                                                     torch::zeros({1}, torch::kInt64), memory);
    EXPECT_LE(MaxDiff(step.logits, part(expected, j, 1)), tol) << "step " << j;
    memory = step.memory;
  }
  // And one full pass with sep = context gives the same logits.
  torch::Tensor full = model_->forward(tokens, pos, block, Get("memory.sep"));
  EXPECT_LE(MaxDiff(full, expected), tol);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GoldenTest, ::testing::ValuesIn(kPrecisions),
                         [](const auto& info) { return std::string(info.param.name); });

// --- glm forward, the command-line path, on the same golden data ---

class GlmForwardCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("glm_forward_test_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
    auto cases = SafetensorsFile::Open(kData + "/cases.safetensors");
    ASSERT_TRUE(cases.ok());
    cases_ = std::move(cases).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::vector<int64_t>> Rows(const std::string& name) {
    torch::Tensor t = cases_->Read(name).value().to(torch::kInt64);
    std::vector<std::vector<int64_t>> rows;
    for (int64_t r = 0; r < t.size(0); ++r) {
      rows.emplace_back(t[r].data_ptr<int64_t>(), t[r].data_ptr<int64_t>() + t.size(1));
    }
    return rows;
  }

  std::string WriteSample(const std::string& c) {
    nlohmann::json j;
    j["tokens"] = Rows(c + ".tokens");
    j["position_ids"] = Rows(c + ".position_ids");
    j["block_position_ids"] = Rows(c + ".block_position_ids");
    j["targets"] = Rows(c + ".targets");
    j["loss_mask"] = Rows(c + ".loss_mask");
    torch::Tensor sep = cases_->Read(c + ".sep").value();
    j["sep"] = std::vector<int64_t>(sep.data_ptr<int64_t>(), sep.data_ptr<int64_t>() + sep.numel());
    const std::string path = dir_ + "/" + c + ".json";
    std::ofstream(path) << j.dump();
    return path;
  }

  std::string dir_;
  std::unique_ptr<SafetensorsFile> cases_;
};

TEST_F(GlmForwardCommandTest, WritesLogitsLossAndGradientsEqualToReference) {
  for (const Precision& p : kPrecisions) {
    const std::string input = WriteSample("batched");
    const std::string output = dir_ + "/out_" + p.name + ".safetensors";
    testing::CommandResult r = testing::RunCommand(std::string(GLM_BINARY) + " forward --weights " + kData +
                                                   "/weights.safetensors --config " + kData + "/config.json" +
                                                   " --input " + input + " --output " + output +
                                                   " --grads --dtype " + p.name);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto out = SafetensorsFile::Open(output);
    ASSERT_TRUE(out.ok()) << out.status();
    auto diff = [&](const std::string& got, const std::string& want) {
      return ((*out)->Read(got).value().to(torch::kFloat64) - cases_->Read(want).value()).abs().max().item<double>();
    };
    EXPECT_LE(diff("logits", "batched.logits"), p.tolerance) << p.name;
    EXPECT_LE(diff("loss", "batched.loss"), p.tolerance) << p.name;
    EXPECT_LE(diff("grad.transformer.layers.1.attention.query_key_value.weight",
                   "batched.grad.transformer.layers.1.attention.query_key_value.weight"),
              p.tolerance)
        << p.name;
    EXPECT_LE(diff("grad.word_embeddings.weight", "batched.grad.word_embeddings.weight"), p.tolerance) << p.name;
    EXPECT_EQ((*out)->entries().size(), 2u + 29u);
  }
}

TEST_F(GlmForwardCommandTest, RejectsOutOfRangeTokensAndMissingWeights) {
  const std::string input = dir_ + "/bad.json";
  std::ofstream(input) << R"({"tokens": [1, 500], "position_ids": [0, 1], "block_position_ids": [0, 0], "sep": 2})";
  testing::CommandResult r = testing::RunCommand(std::string(GLM_BINARY) + " forward --weights " + kData +
                                                 "/weights.safetensors --input " + input + " --output " + dir_ +
                                                 "/o.safetensors");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "'tokens' values must be in [0, 127]")) << r.output;
  r = testing::RunCommand(std::string(GLM_BINARY) + " forward --weights " + dir_ + "/none.safetensors --input " +
                          input + " --output " + dir_ + "/o.safetensors");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(testing::Contains(r.output, "none.safetensors")) << r.output;
  r = testing::RunCommand(std::string(GLM_BINARY) + " forward --input " + input);
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

}  // namespace
}  // namespace glm::model
