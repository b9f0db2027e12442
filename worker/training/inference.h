// Using a trained GLM: load a checkpoint with its tokenizer, fill blanks in
// text (GLM_SPEC 7.3), and measure zero-shot language-model perplexity the
// reference's way (GLM_SPEC 8). `glm infill` and `glm eval lm` are thin
// wrappers around these functions; docs/inference.md describes the commands.
//
// Blank filling: the text becomes Part A, `[CLS] text [eod]` (no [eod] when
// the text ends with [gMASK]), run once with full bidirectional attention
// into the model's KV cache (GlmModel::ForwardWithMemory). Then every blank
// in text order is generated as a Part-B span: [sop] first, position = the
// blank's index in Part A, block positions 1, 2, ...; each new token sees
// Part A and every token generated so far (earlier blanks' spans included,
// as the reference's generate_samples.py keeps them in its memory); a span
// ends at [eop] or [eod] or after max_tokens.
//
// LM perplexity: each document is cut into windows of `window` tokens with
// `stride` new tokens per window; the first window scores tokens 1..window-1
// given token 0, every later window scores only its last `stride` tokens
// given the rest of the window as bidirectional context. A window's row is
// `[CLS] context [gMASK] [sop] text[:-1]` with targets `text` (the
// reference's LMDataset with build_input_from_ids). Every token but each
// document's first is scored exactly once.
//
// Thread-safety: functions use the model from the calling thread only; a
// model must not be used by two calls at once. Tokenizers are immutable.
#ifndef GLM_WORKER_TRAINING_INFERENCE_H_
#define GLM_WORKER_TRAINING_INFERENCE_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "dataloader/tokenizer.h"
#include "dataloader/vocab.h"
#include "model/batch.h"
#include "model/glm_model.h"
#include "schema/records.h"

namespace glm::training {

// --- Checkpoints ---

// The checkpoint directory (holding model.safetensors) that `dir` names:
// `dir` itself when it holds model.safetensors; else the newest
// `step-*` under `dir/checkpoints/` (a run directory) or under `dir` (a
// checkpoint root) that holds one. NotFound says what was looked for.
StatusOr<std::string> ResolveCheckpointDir(const std::string& dir);

// The tokenizer of a checkpoint: the first of `<d>/tokenizer` holding
// tokenizer.model, for d = the checkpoint directory and up to three levels
// above it (checkpoints/step-N -> checkpoints -> the run directory, where
// `glm pretrain` keeps it). NotFound with a hint to pass --tokenizer.
StatusOr<std::string> FindTokenizerDir(const std::string& checkpoint_dir);

// A model ready for inference (eval mode, float32, CPU) and its tokenizer.
struct LoadedCheckpoint {
  model::GlmModel model{nullptr};
  std::unique_ptr<dataloader::GlmTokenizer> tokenizer;
  std::string checkpoint_dir;  // the resolved directory
  std::string tokenizer_dir;
};

// Resolves `dir` (ResolveCheckpointDir), finds the tokenizer (or uses
// `tokenizer_dir` when non-empty), loads both and checks that they belong
// together (the tokenizer's padded vocabulary equals the model's;
// InvalidArgument otherwise).
StatusOr<LoadedCheckpoint> LoadCheckpointForInference(const std::string& dir, const std::string& tokenizer_dir);

// --- Blank filling ---

struct SamplingOptions {
  // Default: 0 = greedy, unless top_k or top_p is set (then 1). > 0: sample
  // from softmax(logits / temperature).
  double temperature = 0;
  int64_t top_k = 0;       // Default: 0 = off; keep the k most likely tokens
  double top_p = 0;        // Default: 0 = off; keep the smallest set with mass >= p, in (0, 1]
  uint64_t seed = 1;       // Default: 1 (the sampler's RNG; same seed, same fills)
  int64_t max_tokens = 48; // Default: 48 generated tokens per blank at most
  int64_t min_tokens = 0;  // Default: 0; [eop] and [eod] are not chosen before this many tokens

  Status Validate() const;
  bool Greedy() const { return temperature == 0 && top_k == 0 && top_p == 0; }
};

// One generated span.
struct BlankFill {
  int64_t position = 0;          // the blank's index in Part A
  std::vector<int32_t> tokens;   // generated, without [sop] / [eop]
  bool ended = false;            // stopped at [eop] or [eod] (false: max_tokens reached)
};

// Fills the blanks at `blank_positions` of `part_a` (positions 0..n-1, block
// positions 0, all bidirectional) in the given order. Tokens are drawn from
// ids [0, vocab_size) (the padding rows of the embedding are never chosen).
StatusOr<std::vector<BlankFill>> FillBlanks(model::GlmModel& model, const dataloader::SpecialTokenIds& ids,
                                            int64_t vocab_size, const std::vector<int32_t>& part_a,
                                            const std::vector<int64_t>& blank_positions,
                                            const SamplingOptions& options);

struct FilledBlank {
  std::string kind;              // "[MASK]", "[sMASK]" or "[gMASK]"
  std::string fill;              // decoded text of the span
  std::vector<int32_t> tokens;
  bool ended = false;
};

struct InfillTextResult {
  std::string text;              // the input
  std::string filled;            // the input with every blank replaced by its fill
  std::vector<FilledBlank> blanks;  // in text order
  int64_t context_tokens = 0;    // Part A length

  std::string ToJson() const;    // {"text", "filled", "blanks": [{"kind", "fill", "tokens", "ended"}], ...}
};

// The string a user writes to ask for blanks, for error messages.
extern const char* const kBlankHint;

// Fills every [MASK], [sMASK] and [gMASK] of `text`. InvalidArgument (with
// kBlankHint) when the text has none or does not fit the model's positions.
StatusOr<InfillTextResult> InfillText(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                      const std::string& text, const SamplingOptions& options);

// --- Scoring ---

// Sum over each row's loss positions of log_softmax(logits)[target]
// (natural log, float32 or wider): (B). Differentiable when grad mode is on.
torch::Tensor SumTargetLogProbs(model::GlmModel& model, const model::Batch& batch);

// --- Zero-shot language modelling ---

struct LmEvalOptions {
  int64_t window = 0;      // Default: 0 = the model's max_sequence_length - 1 (tokens per window)
  int64_t stride = 0;      // Default: 0 = window / 4 (the reference's 256 of 1023), >= 1
  int64_t batch_size = 4;  // Default: 4 windows per forward pass

  Status Validate() const;
};

// The model rows for one document (GLM_SPEC 8), in window order. `window`
// and `stride` as resolved (window >= 2, stride in [1, window]; stride ==
// window is the reference's default without --overlapping-eval: later
// windows then have no context but [CLS] [gMASK]). Documents shorter
// than 2 tokens give no row.
std::vector<Sample> LmWindows(const std::vector<int32_t>& document, const dataloader::SpecialTokenIds& ids,
                              int64_t window, int64_t stride);

struct LmEvalResult {
  int64_t documents = 0;
  int64_t windows = 0;
  int64_t tokens = 0;         // tokens of all documents
  int64_t scored_tokens = 0;  // tokens - documents (each document's first token is context only)
  int64_t words = 0;          // whitespace-separated words of the documents' text
  int64_t scored_words = 0;   // words - documents (as the reference's num_original_tokens - 1)
  double nll = 0;             // total negative log-likelihood of the scored tokens, nats
  double token_perplexity = 0;  // exp(nll / scored_tokens)
  double word_perplexity = 0;   // exp(nll / scored_words): the reference's "adjusted ppl"
  int64_t window = 0;         // as resolved
  int64_t stride = 0;

  std::string ToJson() const;
};

// Scores `documents` (token ids, no [CLS]/[eod]); `words` is the total word
// count of their text. InvalidArgument for a window that does not fit the
// model or when no document has two tokens.
StatusOr<LmEvalResult> EvaluateLm(model::GlmModel& model, const dataloader::SpecialTokenIds& ids,
                                  const std::vector<std::vector<int32_t>>& documents, int64_t words,
                                  const LmEvalOptions& options);

// Whitespace-separated words of `text`.
int64_t CountWords(const std::string& text);

}  // namespace glm::training

#endif  // GLM_WORKER_TRAINING_INFERENCE_H_
