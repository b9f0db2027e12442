#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dataloader/hash.h"
#include "dataloader/sample_factory.h"
#include "dataloader/tokenizer.h"
#include "tests/dataloader/sample_testing.h"

namespace glm::dataloader {
namespace {

namespace fs = std::filesystem;

// A small English corpus written by the test (no download needed).
std::string WriteCorpus(const fs::path& dir) {
  const char* sentences[] = {
      "The Congress shall assemble at least once in every year.",
      "We have met again to consider the state of the Union.",
      "Our commerce has grown; our credit abroad is sound.",
      "Is there any reason to doubt the progress of the nation?",
      "The revenue of the year exceeded the estimates: a surplus remains.",
      "I recommend to your attention the condition of the Army and the Navy.",
      "Peace with all nations is our first wish!",
      "The public debt has been reduced by nearly four millions of dollars.",
      "Treaties were concluded with several Indian tribes during the year.",
      "The mint has coined gold, silver and copper in large amounts.",
  };
  fs::create_directories(dir);
  for (int f = 0; f < 3; ++f) {
    std::ofstream out(dir / ("doc" + std::to_string(f) + ".txt"));
    for (int para = 0; para < 30; ++para) {
      for (int s = 0; s < 6; ++s) out << sentences[(f * 7 + para * 3 + s) % 10] << " ";
      out << "\n\n";
    }
  }
  return dir.string();
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(fs::temp_directory_path() / ("glm_tokenizer_test_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    corpus_ = new std::string(WriteCorpus(*root_ / "corpus"));
    TokenizerTrainOptions o;
    o.corpus.paths = {*corpus_};
    o.output_dir = (*root_ / "tok").string();
    o.vocab_size = 200;
    auto r = TrainTokenizer(o, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    train_result_ = new TrainTokenizerResult(*r);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
    delete corpus_;
    delete train_result_;
  }
  static std::unique_ptr<GlmTokenizer> Load() {
    auto t = GlmTokenizer::Load((*root_ / "tok").string());
    GLM_CHECK(t.ok()) << t.status();
    return std::move(*t);
  }

  static fs::path* root_;
  static std::string* corpus_;
  static TrainTokenizerResult* train_result_;
};
fs::path* TokenizerTest::root_ = nullptr;
std::string* TokenizerTest::corpus_ = nullptr;
TrainTokenizerResult* TokenizerTest::train_result_ = nullptr;

TEST_F(TokenizerTest, TrainingWritesAModelWithTheSpecialTokensAtFixedIds) {
  auto tok = Load();
  for (int32_t i = 0; i < kNumSpecialTokens; ++i) EXPECT_EQ(tok->Piece(i), kSpecialTokenPieces[i]);
  EXPECT_EQ(tok->ids().eod, 9);
  EXPECT_EQ(tok->ids().mask, 4);
  EXPECT_LE(tok->vocab_size(), 200);
  EXPECT_EQ(tok->padded_vocab_size() % 128, 0);
  EXPECT_GE(tok->padded_vocab_size(), tok->vocab_size());
  EXPECT_EQ(tok->hash(), train_result_->hash);
  EXPECT_TRUE(fs::exists(*root_ / "tok" / kTokenizerModelFile));
  std::ifstream meta(*root_ / "tok" / kTokenizerMetadataFile);
  std::string text((std::istreambuf_iterator<char>(meta)), {});
  EXPECT_NE(text.find(HashToHex(tok->hash())), std::string::npos);
  EXPECT_NE(text.find("\"[gMASK]\": 6"), std::string::npos) << text;
}

TEST_F(TokenizerTest, TrainingTheSameCorpusTwiceGivesTheSameHash) {
  TokenizerTrainOptions o;
  o.corpus.paths = {*corpus_};
  o.output_dir = (*root_ / "tok2").string();
  o.vocab_size = 200;
  auto r = TrainTokenizer(o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->hash, train_result_->hash);
  o.output_dir = (*root_ / "tok3").string();
  o.vocab_size = 150;
  auto other = TrainTokenizer(o, nullptr);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->hash, train_result_->hash);
}

TEST_F(TokenizerTest, EncodeDecodeRoundTripsAndSpecialTokensAreTextUnlessAsked) {
  auto tok = Load();
  const std::string text = "The Congress shall assemble.";
  auto ids = tok->Encode(text);
  ASSERT_FALSE(ids.empty());
  for (int32_t id : ids) EXPECT_GE(id, kNumSpecialTokens);
  auto back = tok->Decode(ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, text);
  auto plain = tok->Encode("peace [MASK] war");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), tok->ids().mask), 0);
  auto parsed = tok->Encode("peace [MASK] war [gMASK]", /*parse_special_tokens=*/true);
  EXPECT_EQ(std::count(parsed.begin(), parsed.end(), tok->ids().mask), 1);
  EXPECT_EQ(parsed.back(), tok->ids().gmask);
  auto shown = tok->Decode(parsed);
  ASSERT_TRUE(shown.ok());
  EXPECT_NE(shown->find("[MASK]"), std::string::npos);
  EXPECT_EQ(tok->Decode({5000}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TokenizerTest, SentenceEndTableFollowsThePieceStrings) {
  auto tok = Load();
  const VocabInfo& v = tok->vocab();
  ASSERT_EQ(static_cast<int32_t>(v.ends_sentence.size()), tok->vocab_size());
  int ends = 0;
  for (int32_t i = 0; i < tok->vocab_size(); ++i) {
    EXPECT_EQ(v.ends_sentence[i] != 0, PieceEndsSentence(tok->Piece(i))) << tok->Piece(i);
    ends += v.ends_sentence[i];
  }
  EXPECT_GT(ends, 0);
  Document d = tok->MakeDocument("Peace with all nations is our first wish! We have met.");
  ASSERT_EQ(d.tokens.back(), tok->ids().eod);
  ASSERT_EQ(d.sentence_end.size(), d.tokens.size());
  EXPECT_GE(std::count(d.sentence_end.begin(), d.sentence_end.end(), 1), 2);
}

TEST_F(TokenizerTest, LoadFailsClearlyOnMissingDamagedOrForeignFiles) {
  auto missing = GlmTokenizer::Load((*root_ / "nothing").string());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("glm tokenizer train"), std::string::npos);

  const fs::path bad = *root_ / "bad";
  fs::create_directories(bad);
  fs::copy_file(*root_ / "tok" / kTokenizerMetadataFile, bad / kTokenizerMetadataFile);
  std::ifstream in(*root_ / "tok" / kTokenizerModelFile, std::ios::binary);
  std::string model((std::istreambuf_iterator<char>(in)), {});
  model[model.size() / 2] ^= 0x01;  // one bit flipped
  std::ofstream(bad / kTokenizerModelFile, std::ios::binary) << model;
  auto damaged = GlmTokenizer::Load(bad.string());
  EXPECT_EQ(damaged.status().code(), StatusCode::kDataLoss) << damaged.status();

  std::ofstream(bad / kTokenizerMetadataFile) << "{\"format\": \"something else\"}";
  EXPECT_EQ(GlmTokenizer::Load(bad.string()).status().code(), StatusCode::kDataLoss);
  std::ofstream(bad / kTokenizerMetadataFile) << "{\"format\": \"glm-tokenizer\", \"version\": 99}";
  EXPECT_EQ(GlmTokenizer::Load(bad.string()).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(TokenizerTest, TrainingOptionsAreValidated) {
  TokenizerTrainOptions o;
  o.corpus.paths = {*corpus_};
  EXPECT_FALSE(o.Validate().ok());  // no output
  o.output_dir = "x";
  o.vocab_size = 5;
  EXPECT_NE(o.Validate().message().find("vocab-size"), std::string::npos);
  o.vocab_size = 100;
  o.model_type = "wordpiece";
  EXPECT_FALSE(o.Validate().ok());
}

TEST_F(TokenizerTest, AnEmptyCorpusCannotTrainATokenizer) {
  const fs::path empty = *root_ / "empty";
  fs::create_directories(empty);
  std::ofstream(empty / "a.txt") << "\n\n   \n";
  TokenizerTrainOptions o;
  o.corpus.paths = {empty.string()};
  o.output_dir = (*root_ / "never").string();
  auto r = TrainTokenizer(o, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(*root_ / "never" / kTokenizerMetadataFile));
}

TEST_F(TokenizerTest, RealTokenizedCorpusGivesWellFormedSamplesOfEveryObjective) {
  auto tok = Load();
  CorpusOptions corpus;
  corpus.paths = {*corpus_};
  CorpusStats stats;
  auto docs = TokenizeCorpus(corpus, *tok, &stats);
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 90u);
  InMemoryDocumentSource source(std::move(*docs));
  SampleOptions o;
  o.seq_length = 128;
  SampleFactory f(&source, tok->vocab(), o);
  Sample s;
  for (Objective obj : {Objective::kBlank, Objective::kSentence, Objective::kDocument}) {
    for (uint64_t i = 0; i < 200; ++i) {
      ASSERT_TRUE(f.MakeInto(obj, 0, i, &s).ok());
      ASSERT_TRUE(testing::SampleIsWellFormed(s, tok->vocab(), o)) << ObjectiveName(obj) << i;
      EXPECT_EQ(s.tokenizer_hash, tok->hash());
    }
  }
}

}  // namespace
}  // namespace glm::dataloader
