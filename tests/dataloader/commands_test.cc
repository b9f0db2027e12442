// The data commands of the glm binary, run as real processes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/testing/run_command.h"

namespace glm {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::RunCommand;

class DataCommandsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("glm_data_cmd_test_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_ / "corpus");
    const char* sentences[] = {
        "The Congress shall assemble at least once in every year.",
        "We have met again to consider the state of the Union.",
        "Our commerce has grown; our credit abroad is sound.",
        "Is there any reason to doubt the progress of the nation?",
        "Peace with all nations is our first wish!",
        "The public debt has been reduced by nearly four millions of dollars.",
    };
    for (int f = 0; f < 2; ++f) {
      std::ofstream out(*root_ / "corpus" / ("d" + std::to_string(f) + ".jsonl"));
      for (int d = 0; d < 20; ++d) {
        std::string text;
        for (int s = 0; s < 8; ++s) text += std::string(sentences[(f + d + s) % 6]) + " ";
        out << nlohmann::json({{"text", text}}).dump() << "\n";
      }
    }
    const auto r = RunCommand(Glm() + " tokenizer train --input " + Corpus() +
                              " --vocab-size 180 --output " + Tok());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    train_output_ = new std::string(r.output);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
    delete train_output_;
  }
  static std::string Glm() { return GLM_BINARY; }
  static std::string Corpus() { return (*root_ / "corpus").string(); }
  static std::string Tok() { return (*root_ / "tok").string(); }

  static fs::path* root_;
  static std::string* train_output_;
};
fs::path* DataCommandsTest::root_ = nullptr;
std::string* DataCommandsTest::train_output_ = nullptr;

std::vector<nlohmann::json> JsonLines(const std::string& output) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '{') lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

TEST_F(DataCommandsTest, TokenizerTrainsWithProgressThenEncodesAndDecodes) {
  EXPECT_TRUE(Contains(*train_output_, "read 40 documents")) << *train_output_;
  EXPECT_TRUE(Contains(*train_output_, "training SentencePiece")) << *train_output_;
  auto lines = JsonLines(*train_output_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["hash"].get<std::string>().size(), 16u);
  EXPECT_EQ(lines[0]["padded_vocab_size"].get<int>() % 128, 0);

  // encode | decode round-trips.
  auto enc = RunCommand(Glm() + " tokenizer encode --tokenizer " + Tok() +
                        " --text 'Peace with all nations.' 2>/dev/null");
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  auto dec = RunCommand("echo '" + enc.output + "' | " + Glm() + " tokenizer decode --tokenizer " +
                        Tok() + " 2>/dev/null");
  ASSERT_EQ(dec.exit_code, 0) << dec.output;
  EXPECT_EQ(dec.output, "Peace with all nations.\n");
  auto bad = RunCommand(Glm() + " tokenizer decode --tokenizer " + Tok() + " 99999 abc");
  EXPECT_NE(bad.exit_code, 0);
}

TEST_F(DataCommandsTest, CorruptShowsSamplesAsJsonOrReadablyAndRejectsBadInput) {
  const std::string cmd = Glm() + " corrupt --input " + Corpus() + " --tokenizer " + Tok() +
                          " --objective blank --seed 7 --count 4 --seq-len 96 --json 2>/dev/null";
  auto a = RunCommand(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto lines = JsonLines(a.output);
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& j : lines) {
    for (const char* key : {"objective", "source", "spans", "layout", "tokens", "targets", "loss_mask",
                            "position_ids", "block_position_ids", "sep"}) {
      ASSERT_TRUE(j.contains(key)) << key;
    }
    EXPECT_EQ(j["objective"], "blank");
    EXPECT_EQ(j["layout"], "blank");
    EXPECT_EQ(j["tokens"].size(), j["source"].size() + 2 * j["spans"].size());
    EXPECT_EQ(j["source"][0], 2);  // [CLS]
  }
  EXPECT_EQ(RunCommand(cmd).output, a.output);
  auto doc = RunCommand(Glm() + " corrupt --input " + Corpus() + " --tokenizer " + Tok() +
                        " --objective document --count 6 --seq-len 96 --json 2>/dev/null");
  ASSERT_EQ(doc.exit_code, 0) << doc.output;
  for (const auto& j : JsonLines(doc.output)) {
    EXPECT_EQ(j["spans"].size(), 1u);
    EXPECT_TRUE(j["layout"] == "suffix" || j["layout"] == "blank");
  }

  // The readable view.
  auto r = RunCommand(Glm() + " corrupt --input " + Corpus() + " --tokenizer " + Tok() +
                      " --objective sentence --count 2 --seq-len 96 --color never");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "-- Part A:")) << r.output;
  EXPECT_TRUE(Contains(r.output, "[sMASK]#0")) << r.output;
  EXPECT_TRUE(Contains(r.output, "-- Part B")) << r.output;
  EXPECT_TRUE(Contains(r.output, "read 40 documents")) << r.output;
  EXPECT_FALSE(Contains(r.output, "\033[")) << "no colours when told so";

  // Bad usage and missing inputs.
  auto bad_objective = RunCommand(Glm() + " corrupt --input " + Corpus() + " --tokenizer " + Tok() +
                                  " --objective words");
  EXPECT_EQ(bad_objective.exit_code, 2);
  EXPECT_TRUE(Contains(bad_objective.output, "objective")) << bad_objective.output;
  auto no_tok = RunCommand(Glm() + " corrupt --input " + Corpus() + " --tokenizer /nonexistent");
  EXPECT_EQ(no_tok.exit_code, 1);
  EXPECT_TRUE(Contains(no_tok.output, "glm tokenizer train")) << no_tok.output;
}

TEST(DataBenchCommandTest, BenchCorruptPrintsRates) {
  for (const char* o : {"sentence"}) {
    auto r = RunCommand(std::string(GLM_BINARY) + " bench corrupt --objective " + o +
                        " --samples 2000 --documents 50");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto lines = JsonLines(r.output);
    ASSERT_EQ(lines.size(), 1u) << r.output;
    EXPECT_GT(lines[0]["samples_per_s"].get<double>(), 0);
    EXPECT_GT(lines[0]["tokens_per_s"].get<double>(), 0);
    EXPECT_EQ(lines[0]["objective"], o);
  }
}

}  // namespace
}  // namespace glm
