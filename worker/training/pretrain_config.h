// PretrainConfig: everything `glm pretrain` and `glm train` need. cmd/train.cc
// binds every field to a flag (the YAML key of --config files such as
// configs/default.yaml, configs/tiny.yaml; docs/pretrain.md lists them);
// `glm pretrain` without --config applies the copy of configs/default.yaml
// embedded in the binary.
//
// Thread-safety: a plain value.
#ifndef GLM_WORKER_TRAINING_PRETRAIN_CONFIG_H_
#define GLM_WORKER_TRAINING_PRETRAIN_CONFIG_H_

#include <array>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "schema/records.h"

namespace glm::training {

struct PretrainConfig {
  // model:
  std::string model_preset = "small";  // Default: small (--preset) (GlmConfig preset; vocab set from the tokenizer)
  // data:
  std::string corpus = "data/sotu/*.txt";  // Default: the SOTU addresses (paths/globs, comma-separated)
  int32_t vocab_size = 8000;         // Default: 8000 SentencePiece pieces
  int64_t tokenizer_max_sentences = 300000;  // Default: 300000
  int32_t seq_length = 256;          // Default: 256 (<= the preset's max_sequence_length)
  int64_t heldout_every = 20;        // Default: 20: documents with id % 20 == 19 are held out
  int64_t validation_samples = 64;   // Default: 64 held-out samples per enabled objective
  uint64_t data_seed = 1;            // Default: 1 (the samples' job seed)
  // objectives: relative weights blank / sentence / document.
  std::array<double, kNumObjectives> objective_weights = {1, 1, 1};  // Default: equal
  // train:
  int64_t max_steps = 300;           // Default: 300
  int64_t global_batch_size = 16;    // Default: 16
  int64_t micro_batch_size = 8;      // Default: 8
  double lr = 1e-3;                  // Default: 1e-3
  double warmup = 0.05;              // Default: 0.05 of the steps
  std::string decay = "cosine";      // Default: cosine
  double min_lr_ratio = 0.1;         // Default: 0.1
  double weight_decay = 0.1;         // Default: 0.1
  int64_t checkpoint_every = 50;     // Default: 50 steps
  int64_t keep_checkpoints = 2;      // Default: 2
  uint64_t seed = 1234;              // Default: 1234 (weights init and dropout)
  int64_t threads = 0;               // Default: 0 = LibTorch's choice
  // Default: true. With several trainers, all-reduce gradient buckets during
  // backward (trainer::TrainerOptions::overlap_allreduce).
  bool overlap_allreduce = true;
  // eval:
  int64_t infill_examples = 3;       // Default: 3 held-out blank samples infilled at the end

  Status Validate() const;
};

// configs/default.yaml as it was when the binary was built.
const char* EmbeddedDefaultConfig();

}  // namespace glm::training

#endif  // GLM_WORKER_TRAINING_PRETRAIN_CONFIG_H_
