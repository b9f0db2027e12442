// glm infill / eval lm / eval cloze / finetune cloze as real processes on a
// tiny run directory (inference_fixture.h): JSON output, seeded sampling,
// a fine-tuned checkpoint that the other commands load, and bad invocations
// that exit 2 with a message.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/testing/run_command.h"
#include "tests/worker/training/inference_fixture.h"

namespace {
namespace fs = std::filesystem;
using glm::testing::Contains;
using glm::testing::RunCommand;

const std::string kGlm = GLM_BINARY;

class InferenceCommandTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new glm::testing::InferenceFixture(glm::testing::MakeInferenceFixture(
        fs::temp_directory_path() / ("glm_inference_command_test_" + std::to_string(::getpid()))));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(fixture_->root, ec);
    delete fixture_;
  }
  // Runs glm with `args`; stdout only in `out` (stderr in `err`).
  static int Glm(const std::string& args, std::string* out, std::string* err = nullptr) {
    const fs::path log = fixture_->root / "stderr.log";
    // The subshell keeps stderr apart (RunCommand merges it into stdout).
    auto r = RunCommand("(GLM_THREADS=1 " + kGlm + " " + args + " 2> " + log.string() + ")");
    *out = r.output;
    std::ifstream in(log);
    std::string e((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (err != nullptr) *err = e;
    return r.exit_code;
  }
  static nlohmann::json Json(const std::string& s) {
    auto j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << s;
    return j;
  }
  static std::string Run() { return fixture_->run.string(); }
  static fs::path WriteTasks(const std::string& name, const std::string& answer, int first, int count) {
    const char* contexts[] = {"The [MASK] of the Union is strong.", "Peace with the [MASK] is our first wish!",
                              "The public [MASK] was reduced.",     "The mint coined [MASK] and silver.",
                              "The [MASK] harvest was large.",      "A [MASK] bridge was built over the river."};
    const char* others[] = {"navy", "river", "debt", "tribes"};
    const fs::path p = fixture_->root / name;
    std::ofstream out(p);
    for (int i = first; i < first + count; ++i) {
      nlohmann::json j;
      j["text"] = contexts[i % 6];
      const bool answer_first = i % 2 == 0;
      j["choices"] = answer_first ? std::vector<std::string>{answer, others[i % 4]}
                                  : std::vector<std::string>{others[i % 4], answer};
      j["label"] = answer_first ? 0 : 1;
      out << j.dump() << "\n";
    }
    return p;
  }

  static glm::testing::InferenceFixture* fixture_;
};
glm::testing::InferenceFixture* InferenceCommandTest::fixture_ = nullptr;

TEST_F(InferenceCommandTest, InfillFillsEachBlankAndPrintsJson) {
  std::string out, err;
  ASSERT_EQ(Glm("infill --checkpoint " + Run() +
                    " --min-tokens 1 --max-tokens 5 --json --text 'The [MASK] is strong. [sMASK] Trade [gMASK]'",
                &out, &err),
            0)
      << out << err;
  auto j = Json(out);
  ASSERT_EQ(j["blanks"].size(), 3u) << out;
  EXPECT_EQ(j["blanks"][0]["kind"], "[MASK]");
  EXPECT_EQ(j["blanks"][1]["kind"], "[sMASK]");
  EXPECT_EQ(j["blanks"][2]["kind"], "[gMASK]");
  for (const auto& b : j["blanks"]) EXPECT_FALSE(b["fill"].get<std::string>().empty()) << out;
  // Human form: the filled text, then one line per blank.
  ASSERT_EQ(Glm("infill --checkpoint " + fixture_->checkpoint.string() + " --tokenizer " +
                    fixture_->tokenizer.string() + " --min-tokens 1 --max-tokens 5 --text 'The [MASK] is strong.'",
                &out, &err),
            0)
      << out << err;
  EXPECT_TRUE(Contains(out, "blank 1 [MASK]:")) << out;
}

TEST_F(InferenceCommandTest, InfillSamplingIsReproducibleWithASeed) {
  const std::string args = "infill --checkpoint " + Run() +
                           " --temperature 2 --top-k 50 --top-p 0.95 --max-tokens 6 --json --text 'A [MASK] was built.'";
  std::string a, b, c;
  ASSERT_EQ(Glm(args + " --seed 5", &a), 0) << a;
  ASSERT_EQ(Glm(args + " --seed 5", &b), 0) << b;
  EXPECT_EQ(Json(a)["filled"], Json(b)["filled"]);
}

TEST_F(InferenceCommandTest, InfillRejectsTextWithoutBlankAndBadOptions) {
  std::string out, err;
  EXPECT_EQ(Glm("infill --checkpoint " + Run() + " --text 'no blanks here'", &out, &err), 2);
  EXPECT_TRUE(Contains(err, "[MASK]") && Contains(err, "[gMASK]")) << err;
  EXPECT_EQ(Glm("infill --checkpoint " + Run() + " --top-p 2 --text 'a [MASK]'", &out, &err), 2);
  EXPECT_TRUE(Contains(err, "--top-p")) << err;
  EXPECT_EQ(Glm("infill --checkpoint " + fixture_->root.string() + "/missing --text 'a [MASK]'", &out, &err), 2);
  EXPECT_TRUE(Contains(err, "does not exist")) << err;
  EXPECT_EQ(Glm("infill --text 'a [MASK]'", &out, &err), 2);
  EXPECT_TRUE(Contains(err, "--checkpoint")) << err;
}

TEST_F(InferenceCommandTest, EvalLmReportsFinitePerplexities) {
  std::string out, err;
  ASSERT_EQ(Glm("eval lm --checkpoint " + Run() + " --input " + fixture_->corpus.string() +
                    " --window 64 --stride 16 --json",
                &out, &err),
            0)
      << out << err;
  auto j = Json(out);
  EXPECT_EQ(j["documents"], 1);
  EXPECT_EQ(j["scored_tokens"].get<int64_t>(), j["tokens"].get<int64_t>() - 1);
  const double ppl = j["token_perplexity"];
  EXPECT_TRUE(std::isfinite(ppl) && ppl > 1) << out;
  EXPECT_NEAR(std::log(ppl), j["loss_per_token"].get<double>(), 1e-9);
  EXPECT_GT(j["word_perplexity"].get<double>(), ppl);  // more than one token per word
  EXPECT_EQ(Glm("eval lm --checkpoint " + Run() + " --input " + fixture_->root.string() + "/none.txt", &out, &err), 2);
  EXPECT_EQ(Glm("eval lm --checkpoint " + Run() + " --input " + fixture_->corpus.string() + " --stride 200 --window 100",
                &out, &err),
            2);
  EXPECT_TRUE(Contains(err, "--stride")) << err;
}

TEST_F(InferenceCommandTest, FinetuneClozeWritesACheckpointThatScoresBetter) {
  const fs::path train = WriteTasks("train.jsonl", "apple", 0, 24);
  const fs::path eval = WriteTasks("eval.jsonl", "apple", 24, 12);
  std::string out, err;
  ASSERT_EQ(Glm("eval cloze --checkpoint " + Run() + " --input " + eval.string() + " --json", &out, &err), 0)
      << out << err;
  auto before = Json(out);
  EXPECT_EQ(before["examples"], 12);
  const double acc0 = before["accuracy"];
  const fs::path tuned = fixture_->root / "tuned";
  ASSERT_EQ(Glm("finetune cloze --checkpoint " + Run() + " --input " + train.string() + " --eval " + eval.string() +
                    " --output " + tuned.string() +
                    " --epochs 4 --batch-size 4 --lr 3e-3 --warmup 0 --weight-decay 0 --json",
                &out, &err),
            0)
      << out << err;
  EXPECT_TRUE(Contains(err, "epoch 4:")) << err;
  EXPECT_TRUE(fs::exists(tuned / "model.safetensors"));
  EXPECT_TRUE(fs::exists(tuned / "config.json"));
  EXPECT_TRUE(fs::exists(tuned / "tokenizer" / "tokenizer.model"));
  EXPECT_TRUE(fs::exists(tuned / "finetune.json"));
  auto report = Json(out);
  EXPECT_EQ(report["steps"], 24);
  // The new directory is self-contained: its own tokenizer is found.
  ASSERT_EQ(Glm("eval cloze --checkpoint " + tuned.string() + " --input " + eval.string() + " --json", &out, &err), 0)
      << out << err;
  const double acc1 = Json(out)["accuracy"];
  EXPECT_GE(acc1, 0.9) << "before " << acc0;
  EXPECT_GT(acc1, acc0);
  ASSERT_EQ(Glm("infill --checkpoint " + tuned.string() + " --text 'The [MASK] harvest.' --json", &out, &err), 0)
      << err;
}

TEST_F(InferenceCommandTest, ClozeCommandsRejectMalformedTasksNamingTheLine) {
  const fs::path bad = fixture_->root / "bad.jsonl";
  std::ofstream(bad) << R"({"text": "a [MASK]", "choices": ["x", "y"], "label": 0})" << "\n"
                     << R"({"text": "no blank", "choices": ["x", "y"], "label": 0})" << "\n";
  std::string out, err;
  EXPECT_EQ(Glm("eval cloze --checkpoint " + Run() + " --input " + bad.string(), &out, &err), 2);
  EXPECT_TRUE(Contains(err, bad.string() + ":2") && Contains(err, "exactly one blank")) << err;
  std::ofstream(bad) << R"({"text": "a [MASK]", "choices": ["x"], "label": 0})" << "\n";
  EXPECT_EQ(Glm("finetune cloze --checkpoint " + Run() + " --input " + bad.string() + " --output " +
                    (fixture_->root / "never").string(),
                &out, &err),
            2);
  EXPECT_TRUE(Contains(err, bad.string() + ":1") && Contains(err, "at least two")) << err;
  EXPECT_FALSE(fs::exists(fixture_->root / "never"));
  EXPECT_EQ(Glm("eval cloze --checkpoint " + Run() + " --input " + (fixture_->root / "absent.jsonl").string(), &out,
                &err),
            2);
  EXPECT_TRUE(Contains(err, "cannot open")) << err;
}

}  // namespace
