#include "dataloader/tokenizer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "common/options.h"
#include "dataloader/hash.h"
#include "dataloader/philox.h"
#include "dataloader/spm_library.h"

namespace glm::dataloader {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxTrainingSentenceBytes = 2000;

// Cuts a document into training "sentences" for SentencePiece (it skips lines
// over max_sentence_length): after . ? ! followed by a space, at newlines,
// and at whitespace when a piece grows past kMaxTrainingSentenceBytes.
template <typename Fn>
void ForEachTrainingSentence(std::string_view text, Fn fn) {
  const size_t n = text.size();
  size_t start = 0;
  while (start < n) {
    const size_t limit = std::min(n, start + kMaxTrainingSentenceBytes);
    size_t end = std::string_view::npos, next = 0;
    for (size_t i = start; i < limit; ++i) {
      const char c = text[i];
      if (c == '\n') {
        end = i;
        next = i + 1;
        break;
      }
      if ((c == '.' || c == '?' || c == '!') && i + 1 < n && text[i + 1] == ' ') {
        end = i + 1;
        next = i + 2;
        break;
      }
    }
    if (end == std::string_view::npos) {
      if (limit == n) {
        end = next = n;
      } else {
        const size_t space = text.rfind(' ', limit - 1);
        if (space != std::string_view::npos && space > start) {
          end = space;
          next = space + 1;
        } else {
          // No space: cut at a UTF-8 character boundary.
          end = limit;
          while (end > start + 1 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
          next = end;
        }
      }
    }
    if (end - start > 1) fn(text.substr(start, end - start));
    start = next;
  }
}

StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> SentenceEndTable(const SpmProcessor& sp) {
  const int32_t n = sp.piece_size();
  std::vector<uint8_t> table(n, 0);
  for (int32_t i = 0; i < n; ++i) table[i] = PieceEndsSentence(sp.IdToPiece(i)) ? 1 : 0;
  return table;
}

}  // namespace

bool PieceEndsSentence(std::string_view piece) {
  for (char c : piece) {
    if (c == '.' || c == '?' || c == '!' || c == ';' || c == ':' || c == '\n') return true;
  }
  for (std::string_view wide : {"\u3002", "\uFF1F", "\uFF01", "\uFF1B", "\u2026"}) {
    if (piece.find(wide) != std::string_view::npos) return true;
  }
  return false;
}

uint64_t ComputeTokenizerHash(std::string_view model_bytes, int32_t padded_vocab_size) {
  Hasher h;
  h.Update("glm-tokenizer-v1");
  h.UpdateU64(model_bytes.size());
  h.Update(model_bytes);
  for (int32_t i = 0; i < kNumSpecialTokens; ++i) {
    h.UpdateU64(static_cast<uint64_t>(i));
    h.UpdateU64(kSpecialTokenPieces[i].size());
    h.Update(kSpecialTokenPieces[i]);
  }
  h.UpdateU64(static_cast<uint64_t>(padded_vocab_size));
  return h.Finish();
}

Status TokenizerTrainOptions::Validate() const {
  GLM_RETURN_IF_ERROR(corpus.Validate());
  GLM_RETURN_IF_ERROR(RequireNonEmpty("output", output_dir));
  GLM_RETURN_IF_ERROR(RequireAtLeast("vocab-size", vocab_size, kNumSpecialTokens + 20));
  GLM_RETURN_IF_ERROR(RequireOneOf("model-type", model_type, {"unigram", "bpe"}));
  GLM_RETURN_IF_ERROR(RequireInRange("character-coverage", character_coverage, 0.9, 1.0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-sentences", max_sentences, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("threads", threads, 1));
  return Status::Ok();
}

StatusOr<TrainTokenizerResult> TrainTokenizer(const TokenizerTrainOptions& options,
                                              const ProgressFn& progress) {
  GLM_RETURN_IF_ERROR(options.Validate());
  const auto t0 = std::chrono::steady_clock::now();
  TrainTokenizerResult result;
  result.dir = options.output_dir;

  // 1. A uniform sample of training sentences (reservoir sampling with a
  //    counter-based RNG: the same sample for the same corpus and seed).
  std::vector<std::string> sentences;
  uint64_t seen = 0;
  SampleRng rng(HashCombine(Hash64("glm-tokenizer-sample"), options.seed), 0, 0);
  auto last_report = std::chrono::steady_clock::now();
  const uint64_t cap = static_cast<uint64_t>(options.max_sentences);
  Status read = ReadCorpus(
      options.corpus,
      [&](RawDocument&& doc) -> Status {
        ForEachTrainingSentence(doc.text, [&](std::string_view s) {
          ++seen;
          if (sentences.size() < cap) {
            sentences.emplace_back(s);
          } else {
            const uint64_t j = rng.Uniform64(seen);
            if (j < cap) sentences[j].assign(s);
          }
        });
        const auto now = std::chrono::steady_clock::now();
        if (progress && now - last_report > std::chrono::seconds(1)) {
          last_report = now;
          progress("reading: " + std::to_string(doc.ordinal + 1) + " documents, " +
                   std::to_string(seen) + " sentences");
        }
        return Status::Ok();
      },
      &result.corpus);
  GLM_RETURN_IF_ERROR(read);
  if (progress) progress(result.corpus.ToString());
  if (sentences.empty()) {
    return InvalidArgumentError("the corpus has no text to train a tokenizer on (" +
                                result.corpus.ToString() + ")");
  }
  result.sentences = sentences.size();
  if (progress) {
    progress("training SentencePiece " + options.model_type + " (vocab " +
             std::to_string(options.vocab_size) + ") on " + std::to_string(sentences.size()) +
             " of " + std::to_string(seen) + " sentences");
  }

  // 2. SentencePiece with GLM's special tokens at ids 0..10.
  std::string control;
  for (int32_t i = 2; i < kNumSpecialTokens; ++i) {
    if (!control.empty()) control += ",";
    control += kSpecialTokenPieces[i];
  }
  const std::vector<std::pair<std::string, std::string>> args = {
      {"vocab_size", std::to_string(options.vocab_size)},
      {"model_type", options.model_type},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"pad_id", "0"},
      {"pad_piece", std::string(kSpecialTokenPieces[0])},
      {"unk_id", "1"},
      {"unk_piece", std::string(kSpecialTokenPieces[1])},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"control_symbols", control},
      {"num_threads", std::to_string(options.threads)},
      {"max_sentence_length", std::to_string(4 * kMaxTrainingSentenceBytes)},
      {"input_sentence_size", "0"},
      {"shuffle_input_sentence", "false"},
      {"hard_vocab_limit", "false"},
      {"byte_fallback", options.byte_fallback ? "true" : "false"},
      {"minloglevel", "2"},
  };
  auto trained = SpmTrain(args, sentences, static_cast<unsigned>(options.seed));
  if (!trained.ok()) {
    if (trained.status().code() != StatusCode::kInvalidArgument) return trained.status();
    return InvalidArgumentError(trained.status().message() +
                                " (a smaller --vocab-size or more text may help)");
  }
  const std::string& model = *trained;
  GLM_ASSIGN_OR_RETURN(std::unique_ptr<SpmProcessor> sp, SpmProcessor::Load(model));
  for (int32_t i = 0; i < kNumSpecialTokens; ++i) {
    if (sp->IdToPiece(i) != kSpecialTokenPieces[i]) {
      return InternalError("SentencePiece put " + sp->IdToPiece(i) + " at id " + std::to_string(i) +
                           " instead of " + std::string(kSpecialTokenPieces[i]));
    }
  }
  result.vocab_size = sp->piece_size();
  result.padded_vocab_size = PadVocabSize(result.vocab_size);
  result.hash = ComputeTokenizerHash(model, result.padded_vocab_size);

  // 3. The directory: model first, metadata last (Load needs both).
  std::error_code ec;
  fs::create_directories(options.output_dir, ec);
  if (ec) {
    return FailedPreconditionError("cannot create " + options.output_dir + ": " + ec.message());
  }
  const std::string model_path = options.output_dir + "/" + kTokenizerModelFile;
  {
    std::ofstream out(model_path, std::ios::binary | std::ios::trunc);
    out.write(model.data(), static_cast<std::streamsize>(model.size()));
    if (!out) return ResourceExhaustedError("cannot write " + model_path);
  }
  nlohmann::json special = nlohmann::json::object();
  for (int32_t i = 0; i < kNumSpecialTokens; ++i) special[std::string(kSpecialTokenPieces[i])] = i;
  nlohmann::json meta = {
      {"format", "glm-tokenizer"},
      {"version", kTokenizerFormatVersion},
      {"model_file", kTokenizerModelFile},
      {"model_type", options.model_type},
      {"vocab_size", result.vocab_size},
      {"padded_vocab_size", result.padded_vocab_size},
      {"special_tokens", special},
      {"eod_token", std::string(kSpecialTokenPieces[9])},
      {"hash", HashToHex(result.hash)},
      {"trained_on",
       {{"paths", options.corpus.paths},
        {"documents", result.corpus.documents},
        {"sentences", result.sentences},
        {"sentences_seen", seen},
        {"seed", options.seed},
        {"character_coverage", options.character_coverage},
        {"byte_fallback", options.byte_fallback}}},
  };
  const std::string meta_path = options.output_dir + "/" + kTokenizerMetadataFile;
  {
    std::ofstream out(meta_path, std::ios::trunc);
    out << meta.dump(2) << "\n";
    if (!out) return ResourceExhaustedError("cannot write " + meta_path);
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

GlmTokenizer::~GlmTokenizer() = default;

StatusOr<std::unique_ptr<GlmTokenizer>> GlmTokenizer::Load(const std::string& dir) {
  const std::string meta_path = dir + "/" + kTokenizerMetadataFile;
  const std::string model_path = dir + "/" + kTokenizerModelFile;
  auto meta_bytes = ReadFileBytes(meta_path);
  if (!meta_bytes.ok()) {
    return NotFoundError("no tokenizer in " + dir + " (missing " + kTokenizerMetadataFile +
                         "). HINT: glm tokenizer train --input PATHS --output " + dir);
  }
  GLM_ASSIGN_OR_RETURN(std::string model, ReadFileBytes(model_path));
  nlohmann::json meta = nlohmann::json::parse(*meta_bytes, nullptr, false);
  if (meta.is_discarded() || !meta.is_object() || meta.value("format", "") != "glm-tokenizer") {
    return DataLossError(meta_path + " is not a glm tokenizer metadata file");
  }
  if (meta.value("version", 0) != kTokenizerFormatVersion) {
    return FailedPreconditionError(meta_path + " has format version " +
                                   std::to_string(meta.value("version", 0)) + "; this glm reads " +
                                   std::to_string(kTokenizerFormatVersion));
  }
  std::unique_ptr<GlmTokenizer> t(new GlmTokenizer());
  t->dir_ = dir;
  auto processor = SpmProcessor::Load(model);
  if (!processor.ok()) {
    if (processor.status().code() != StatusCode::kDataLoss) return processor.status();
    return DataLossError(model_path + " is not a SentencePiece model");
  }
  t->processor_ = std::move(*processor);
  const int32_t size = t->processor_->piece_size();
  for (int32_t i = 0; i < kNumSpecialTokens; ++i) {
    if (size <= i || t->processor_->IdToPiece(i) != kSpecialTokenPieces[i]) {
      return DataLossError(model_path + ": id " + std::to_string(i) + " is not " +
                           std::string(kSpecialTokenPieces[i]) + " (not a glm tokenizer)");
    }
  }
  t->vocab_.vocab_size = size;
  t->vocab_.padded_vocab_size = PadVocabSize(size);
  t->vocab_.hash = ComputeTokenizerHash(model, t->vocab_.padded_vocab_size);
  const std::string want = meta.value("hash", "");
  if (want != HashToHex(t->vocab_.hash)) {
    return DataLossError(dir + ": content hash " + HashToHex(t->vocab_.hash) +
                         " does not match the recorded " + want +
                         " (the model file was changed or damaged; retrain the tokenizer)");
  }
  t->vocab_.ends_sentence = SentenceEndTable(*t->processor_);
  return t;
}

std::vector<int32_t> GlmTokenizer::Encode(std::string_view text, bool parse_special_tokens) const {
  std::vector<int32_t> out;
  auto encode_plain = [&](std::string_view piece) {
    if (piece.empty()) return;
    processor_->Encode(piece, &out);
  };
  if (!parse_special_tokens) {
    encode_plain(text);
    return out;
  }
  size_t start = 0;
  while (start < text.size()) {
    size_t best = std::string_view::npos;
    int32_t best_id = -1;
    for (int32_t i = 0; i < kNumSpecialTokens; ++i) {
      const size_t at = text.find(kSpecialTokenPieces[i], start);
      if (at < best) {
        best = at;
        best_id = i;
      }
    }
    if (best == std::string_view::npos) break;
    encode_plain(text.substr(start, best - start));
    out.push_back(best_id);
    start = best + kSpecialTokenPieces[best_id].size();
  }
  encode_plain(text.substr(start));
  return out;
}

StatusOr<std::string> GlmTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  std::vector<int32_t> run;
  auto flush = [&] {
    if (run.empty()) return;
    out += processor_->Decode(run);
    run.clear();
  };
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_.vocab_size) {
      return InvalidArgumentError("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                  std::to_string(vocab_.vocab_size) + ")");
    }
    if (id < kNumSpecialTokens && id != vocab_.ids.unk) {
      flush();
      out += kSpecialTokenPieces[id];
    } else {
      run.push_back(id);
    }
  }
  flush();
  return out;
}

std::string GlmTokenizer::Piece(int32_t id) const {
  if (id < 0 || id >= vocab_.vocab_size) return "";
  return processor_->IdToPiece(id);
}

Document GlmTokenizer::MakeDocument(std::string_view text) const {
  Document doc;
  doc.tokens = Encode(text);
  doc.tokens.push_back(vocab_.ids.eod);
  doc.sentence_end.resize(doc.tokens.size());
  for (size_t i = 0; i < doc.tokens.size(); ++i) {
    doc.sentence_end[i] = vocab_.EndsSentence(doc.tokens[i]) ? 1 : 0;
  }
  return doc;
}

StatusOr<std::vector<Document>> TokenizeCorpus(const CorpusOptions& corpus,
                                               const GlmTokenizer& tokenizer, CorpusStats* stats) {
  std::vector<Document> documents;
  GLM_RETURN_IF_ERROR(ReadCorpus(
      corpus,
      [&](RawDocument&& raw) -> Status {
        Document doc = tokenizer.MakeDocument(raw.text);
        if (doc.tokens.size() > 1) {
          doc.id = documents.size();
          documents.push_back(std::move(doc));
        }
        return Status::Ok();
      },
      stats));
  return documents;
}

}  // namespace glm::dataloader
