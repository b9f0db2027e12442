// Multiple-choice cloze tasks: reading them, scoring candidates as the paper
// does, and fine-tuning on them (GLM_SPEC 6, the reference's
// GLMForMultiTokenCloze). `glm eval cloze` and `glm finetune cloze` wrap
// these; the task file format is in docs/inference.md.
//
// One candidate is one model row:
//
//   [CLS] text-with-one-blank [eod] [sop] a_1 ... a_k
//   targets (Part B)               a_1 a_2 ... a_k [eop]
//
// Part A is bidirectional (sep = its length); Part B has the blank's
// position and block positions 1..k+1. A candidate's score is the sum of
// log p(a_j | ...) over its k tokens and [eop], optionally divided by
// (k + 1)^length_penalty; the prediction is the best-scoring candidate.
// Fine-tuning minimises the cross-entropy of softmax(scores) against the
// label, with AdamW (worker/trainer/optimizer.h), gradient clipping at 1.0 and a linear
// learning-rate decay after warmup (the reference's task configs).
//
// Thread-safety: functions use the model from the calling thread only.
#ifndef GLM_WORKER_TRAINING_CLOZE_H_
#define GLM_WORKER_TRAINING_CLOZE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "dataloader/tokenizer.h"
#include "model/glm_model.h"
#include "schema/records.h"

namespace glm::training {

// One task line: {"text": "... [MASK] ...", "choices": ["a", "b"], "label": 1}.
struct ClozeExample {
  std::string text;                  // exactly one [MASK], [sMASK] or [gMASK]
  std::vector<std::string> choices;  // at least two, each non-empty
  int64_t label = -1;                // index into choices; -1 when the line has none
  std::string where;                 // "file:line" for messages
};

// Parses one JSON line. InvalidArgument naming `where` and what is wrong.
// `require_label`: a missing label is an error.
StatusOr<ClozeExample> ParseClozeLine(const std::string& line, const std::string& where, bool require_label);

// Reads a JSONL task file (blank lines skipped). The first bad line is an
// InvalidArgument naming file:line; an empty file is InvalidArgument too.
StatusOr<std::vector<ClozeExample>> ReadClozeFile(const std::string& path, bool require_label);

// The rows of every candidate of `example`, in choice order. InvalidArgument
// (naming example.where) when the text does not have exactly one blank, a
// choice encodes to no token, or a row does not fit the model's positions
// (`max_position` = GlmConfig::max_sequence_length).
StatusOr<std::vector<Sample>> BuildClozeRows(const dataloader::GlmTokenizer& tokenizer, const ClozeExample& example,
                                             int64_t max_position);

struct ClozeOptions {
  double length_penalty = 0;  // Default: 0 = plain sums; scores / (tokens)^lp otherwise
  int64_t batch_size = 16;    // Default: 16 candidate rows per forward pass (evaluation)

  Status Validate() const;
};

struct ClozeEvalResult {
  int64_t examples = 0;
  int64_t labeled = 0;                      // examples with a label
  int64_t correct = 0;
  double accuracy = 0;                      // correct / labeled (0 when none)
  std::vector<int64_t> predictions;         // per example
  std::vector<std::vector<double>> scores;  // per example, per choice

  std::string ToJson(bool with_predictions) const;
};

StatusOr<ClozeEvalResult> EvaluateCloze(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                        const std::vector<ClozeExample>& examples, const ClozeOptions& options);

struct ClozeFinetuneOptions {
  ClozeOptions cloze;
  int64_t epochs = 3;          // Default: 3 passes over the training examples
  int64_t batch_size = 16;     // Default: 16 examples per optimizer step (the reference's tasks)
  double lr = 1e-5;            // Default: 1e-5 peak learning rate (the reference's tasks)
  double warmup = 0.1;         // Default: 0.1 of the steps, linear warmup, then linear decay to 0
  double weight_decay = 0.1;   // Default: 0.1 (not on biases and LayerNorm)
  double beta1 = 0.9;          // Default: 0.9
  double beta2 = 0.999;        // Default: 0.999 (the reference's fine-tuning Adam)
  double eps = 1e-8;           // Default: 1e-8
  double clip_grad = 1.0;      // Default: 1.0 global gradient norm (0 = off)
  uint64_t seed = 1;           // Default: 1 (example order and dropout)

  Status Validate() const;
};

struct ClozeEpoch {
  int64_t epoch = 0;              // 0 = before training (eval only)
  double train_loss = 0;          // mean cross-entropy over the epoch's examples
  double train_accuracy = 0;      // of the training predictions made during the epoch
  double eval_accuracy = -1;      // on the eval examples; -1 without them
  double seconds = 0;
};

struct ClozeFinetuneResult {
  int64_t steps = 0;
  std::vector<ClozeEpoch> epochs;  // epochs[0] is the evaluation before training

  std::string ToJson() const;
};

using ClozeProgressFn = std::function<void(const ClozeEpoch& epoch)>;

// Fine-tunes `model` in place on `train` (every example labeled), evaluating
// on `eval` (may be empty) before training and after every epoch. Leaves the
// model in eval mode.
StatusOr<ClozeFinetuneResult> FinetuneCloze(model::GlmModel& model, const dataloader::GlmTokenizer& tokenizer,
                                            const std::vector<ClozeExample>& train,
                                            const std::vector<ClozeExample>& eval,
                                            const ClozeFinetuneOptions& options, const ClozeProgressFn& progress);

}  // namespace glm::training

#endif  // GLM_WORKER_TRAINING_CLOZE_H_
