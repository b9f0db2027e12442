// The training dataset in a sample store, and how `glm pretrain` produces it.
//
// A store that `glm train` can read carries, besides its documents and
// samples, one JSON record in the meta key-value space under
// kDatasetMetaKey ("train/dataset", format in docs/pretrain.md):
//   * samples_per_epoch[o]: the mixer's epoch size per objective; the
//     trainer's cumulative index i of objective o is (epoch i / n, index i % n);
//   * stored_samples[o]: cumulative indices [0, stored) are in the store;
//   * validation: the held-out split. Documents with id % heldout_every ==
//     heldout_every - 1 are never used by training samples; validation
//     samples are built from them only, stored under epoch
//     kValidationEpoch, indices [0, validation_samples[o]);
//   * unigram baselines: the entropy of the training tokens' unigram
//     distribution, and per objective the cross-entropy of the validation
//     loss targets under that distribution (add-1/2 smoothing).
//
// ProduceStore is the in-process producer (tokenizer training, tokenizing,
// the three objectives, RocksDB writes) behind one function: `glm pretrain`
// makes its store with the runtime pipeline instead (coordinator, workers,
// storage server; cmd/pretrain_cluster.cc), byte for byte the same samples;
// ProduceStore stays as the in-process reference the tests compare with.
//
// Thread-safety: functions are reentrant; stores are thread-safe.
#ifndef GLM_WORKER_TRAINING_DATASET_H_
#define GLM_WORKER_TRAINING_DATASET_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "schema/records.h"
#include "storage/sample_store.h"
#include "worker/dataset_manifest.h"
#include "worker/training/pretrain_config.h"

namespace glm::dataloader {
class GlmTokenizer;
}

namespace glm::training {

// What a config's data section and step count need from a store.
std::string DataFingerprint(const PretrainConfig& config);

using ProgressFn = std::function<void(const std::string& line)>;

// The corpus spec's comma-separated paths/globs; relative ones are tried
// against the working directory, then the checkout that holds the binary
// (build/glm -> the repository root), so `build/glm pretrain` finds data/sotu.
std::vector<std::string> ResolveCorpus(const std::string& spec);

// The tokenizer in `dir` if it has config.vocab_size pieces, else one trained
// there on the config's corpus.
StatusOr<std::unique_ptr<dataloader::GlmTokenizer>> EnsureTokenizer(const PretrainConfig& config,
                                                                   const std::string& dir,
                                                                   const ProgressFn& progress);

// Produces (or reuses, when its manifest has the same fingerprint and enough
// samples) the store <workdir>/store and the tokenizer <workdir>/tokenizer
// for `config`, with enough training samples for config.max_steps.
// Returns the store directory.
StatusOr<std::string> ProduceStore(const PretrainConfig& config, const std::string& workdir,
                                   const ProgressFn& progress);

}  // namespace glm::training

#endif  // GLM_WORKER_TRAINING_DATASET_H_
