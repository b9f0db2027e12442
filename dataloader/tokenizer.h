// GLM's tokenizer: a SentencePiece model plus GLM's special tokens at fixed
// ids, the vocabulary padded to a multiple of 128, a content hash, and the
// per-token "ends a sentence" table (GLM_SPEC.md 1.3, 4).
//
// On disk (docs/data-pipeline.md): a directory with
//   tokenizer.model   the SentencePiece model (serialized ModelProto)
//   tokenizer.json    metadata: special tokens and ids, vocab sizes, hash,
//                     training provenance
//
//   GLM_ASSIGN_OR_RETURN(auto tokenizer, GlmTokenizer::Load("out/tokenizer"));
//   std::vector<int32_t> ids = tokenizer->Encode("Fellow-Citizens ...");
//   Document doc = tokenizer->MakeDocument(text);  // ids + [eod] + sentence ends
//
// Thread-safety: a loaded GlmTokenizer is immutable; all const methods may be
// called concurrently. TrainTokenizer is reentrant (but SentencePiece trains
// with its own threads).
#ifndef GLM_DATALOADER_TOKENIZER_H_
#define GLM_DATALOADER_TOKENIZER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "dataloader/corpus.h"
#include "dataloader/vocab.h"
#include "schema/records.h"

namespace glm::dataloader {

class SpmProcessor;

inline constexpr const char* kTokenizerModelFile = "tokenizer.model";
inline constexpr const char* kTokenizerMetadataFile = "tokenizer.json";
inline constexpr int kTokenizerFormatVersion = 1;

struct TokenizerTrainOptions {
  CorpusOptions corpus;               // what to train on (its paths are --input)
  std::string output_dir;             // Default: none (required); created if missing
  int32_t vocab_size = 8000;          // Default: 8000 pieces, the 11 special tokens included
  std::string model_type = "unigram"; // Default: unigram; or bpe
  double character_coverage = 1.0;    // Default: 1.0 (every character seen; 0.9995 suits CJK)
  int64_t max_sentences = 300000;     // Default: 300000 training sentences, a uniform sample
  uint64_t seed = 1;                  // Default: 1 (sampling and SentencePiece's own RNG)
  int32_t threads = 2;                // Default: 2 SentencePiece training threads
  bool byte_fallback = false;         // Default: false; true adds 256 byte pieces (no [UNK])

  Status Validate() const;
};

// Progress lines for humans ("read 120 documents, 31000 sentences ...").
using ProgressFn = std::function<void(const std::string& line)>;

struct TrainTokenizerResult {
  std::string dir;
  int32_t vocab_size = 0;
  int32_t padded_vocab_size = 0;
  uint64_t hash = 0;
  uint64_t sentences = 0;   // training sentences used
  CorpusStats corpus;
  double seconds = 0;
};

// Trains SentencePiece on a sample of the corpus and writes the tokenizer
// directory. Same inputs and options -> the same files and hash.
StatusOr<TrainTokenizerResult> TrainTokenizer(const TokenizerTrainOptions& options,
                                              const ProgressFn& progress);

class GlmTokenizer {
 public:
  // Loads and verifies a tokenizer directory: NotFound without the files
  // (HINT: glm tokenizer train), DataLoss when the hash does not match.
  static StatusOr<std::unique_ptr<GlmTokenizer>> Load(const std::string& dir);
  ~GlmTokenizer();

  // Text to ids. Special-token strings in the text are plain text here (a
  // corpus can never inject [eod] or [MASK]); with parse_special_tokens they
  // become their ids (prompts for infilling).
  std::vector<int32_t> Encode(std::string_view text, bool parse_special_tokens = false) const;
  // Ids to text; special tokens are written as their strings. InvalidArgument
  // for ids outside the vocabulary.
  StatusOr<std::string> Decode(const std::vector<int32_t>& ids) const;
  // The vocabulary string of one id ("▁the", "[MASK]"); "" when out of range.
  std::string Piece(int32_t id) const;

  // Encode(text) + [eod], with sentence_end filled: a pretraining document.
  Document MakeDocument(std::string_view text) const;

  const VocabInfo& vocab() const { return vocab_; }
  const SpecialTokenIds& ids() const { return vocab_.ids; }
  int32_t vocab_size() const { return vocab_.vocab_size; }
  int32_t padded_vocab_size() const { return vocab_.padded_vocab_size; }
  uint64_t hash() const { return vocab_.hash; }
  const std::string& dir() const { return dir_; }

 private:
  GlmTokenizer() = default;

  std::unique_ptr<SpmProcessor> processor_;
  VocabInfo vocab_;
  std::string dir_;
};

// Reads and tokenizes a whole corpus into documents (manifest order), for
// InMemoryDocumentSource. Documents that encode to nothing are skipped.
StatusOr<std::vector<Document>> TokenizeCorpus(const CorpusOptions& corpus,
                                               const GlmTokenizer& tokenizer, CorpusStats* stats);

// The content hash of a tokenizer: the model bytes and the special-token
// table (docs/data-pipeline.md).
uint64_t ComputeTokenizerHash(std::string_view model_bytes, int32_t padded_vocab_size);

}  // namespace glm::dataloader

#endif  // GLM_DATALOADER_TOKENIZER_H_
