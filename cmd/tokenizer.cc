// glm tokenizer: train a SentencePiece tokenizer with GLM's special tokens;
// encode and decode text with it.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "dataloader/corpus_cli.h"
#include "dataloader/hash.h"
#include "dataloader/tokenizer.h"

namespace glm::cmd {
namespace {

using dataloader::GlmTokenizer;

int Fail(const char* command, const Status& s) {
  std::fprintf(stderr, "glm tokenizer %s: %s\n", command, s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

int RunTrain(const dataloader::TokenizerTrainOptions& options) {
  auto result = dataloader::TrainTokenizer(options, [](const std::string& line) {
    std::fprintf(stderr, "glm tokenizer train: %s\n", line.c_str());
  });
  if (!result.ok()) return Fail("train", result.status());
  nlohmann::json j = {{"dir", result->dir},
                      {"vocab_size", result->vocab_size},
                      {"padded_vocab_size", result->padded_vocab_size},
                      {"hash", dataloader::HashToHex(result->hash)},
                      {"sentences", result->sentences},
                      {"documents", result->corpus.documents},
                      {"seconds", result->seconds}};
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

struct CodecOptions {
  std::string tokenizer;         // Default: none (required)
  std::string text;              // Default: "" = read stdin
  std::vector<int32_t> ids;      // Default: none = read stdin
  bool pieces = false;           // Default: false (print ids)
  bool special = false;          // Default: false ([MASK] etc. in text stay text)
};

std::string ReadStdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

int RunEncode(const CodecOptions& o) {
  auto tok = GlmTokenizer::Load(o.tokenizer);
  if (!tok.ok()) return Fail("encode", tok.status());
  const std::string text = o.text.empty() ? ReadStdin() : o.text;
  const std::vector<int32_t> ids = (*tok)->Encode(text, o.special);
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line += ' ';
    line += o.pieces ? (*tok)->Piece(ids[i]) : std::to_string(ids[i]);
  }
  std::cout << line << std::endl;
  return kExitOk;
}

int RunDecode(const CodecOptions& o) {
  auto tok = GlmTokenizer::Load(o.tokenizer);
  if (!tok.ok()) return Fail("decode", tok.status());
  std::vector<int32_t> ids = o.ids;
  if (ids.empty()) {
    std::istringstream in(ReadStdin());
    std::string word;
    while (in >> word) {
      try {
        size_t used = 0;
        const long v = std::stol(word, &used);
        if (used != word.size()) throw std::invalid_argument(word);
        ids.push_back(static_cast<int32_t>(v));
      } catch (const std::exception&) {
        return Fail("decode", InvalidArgumentError("'" + word + "' is not a token id"));
      }
    }
  }
  auto text = (*tok)->Decode(ids);
  if (!text.ok()) return Fail("decode", text.status());
  std::cout << *text << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterTokenizerCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* tokenizer =
      app->add_subcommand("tokenizer", "Train a SentencePiece tokenizer; encode and decode text");
  tokenizer->require_subcommand(1);

  auto train = std::make_shared<dataloader::TokenizerTrainOptions>();
  CLI::App* t = tokenizer->add_subcommand(
      "train", "Train on a sample of a corpus; writes tokenizer.model and tokenizer.json to --output");
  AddConfigOption(t, "");
  dataloader::AddCorpusOptions(t, &train->corpus);
  AddOption(t, "output", &train->output_dir, "Directory to write the tokenizer to")->required();
  AddOption(t, "vocab-size", &train->vocab_size,
            "Vocabulary size including the 11 special tokens (padded to a multiple of 128)");
  AddOption(t, "model-type", &train->model_type, "unigram or bpe");
  AddOption(t, "character-coverage", &train->character_coverage, "Share of characters covered");
  AddOption(t, "max-sentences", &train->max_sentences, "Training sentences sampled from the corpus");
  AddOption(t, "seed", &train->seed, "Sampling seed");
  AddOption(t, "threads", &train->threads, "SentencePiece training threads");
  AddFlag(t, "byte-fallback", &train->byte_fallback, "Add 256 byte pieces so nothing is [UNK]");
  registry->Add(t, [train] { return RunTrain(*train); }, [train] { return train->Validate(); });

  auto encode = std::make_shared<CodecOptions>();
  CLI::App* e = tokenizer->add_subcommand("encode", "Text (--text or stdin) to token ids");
  AddOption(e, "tokenizer", &encode->tokenizer, "Tokenizer directory")->required();
  AddOption(e, "text", &encode->text, "Text to encode (default: stdin)");
  AddFlag(e, "pieces", &encode->pieces, "Print the pieces instead of ids");
  AddFlag(e, "special", &encode->special, "Recognise [MASK], [gMASK], ... in the text");
  registry->Add(e, [encode] { return RunEncode(*encode); });

  auto decode = std::make_shared<CodecOptions>();
  CLI::App* d = tokenizer->add_subcommand("decode", "Token ids (arguments or stdin) to text");
  AddOption(d, "tokenizer", &decode->tokenizer, "Tokenizer directory")->required();
  d->add_option("ids", decode->ids, "Token ids (default: whitespace-separated on stdin)");
  registry->Add(d, [decode] { return RunDecode(*decode); });
}

}  // namespace glm::cmd
