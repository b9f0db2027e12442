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
// the three objectives, RocksDB writes) behind one function, so that the
// runtime pipeline (`glm pipeline`) can replace it.
//
// Thread-safety: functions are reentrant; stores are thread-safe.
#ifndef GLM_WORKER_TRAINING_DATASET_H_
#define GLM_WORKER_TRAINING_DATASET_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "schema/records.h"
#include "storage/sample_store.h"
#include "worker/training/pretrain_config.h"

namespace glm::training {

inline constexpr const char* kDatasetMetaKey = "train/dataset";
// The epoch number of validation samples (never reached by training).
inline constexpr uint32_t kValidationEpoch = 0x7fffffffu;

struct DatasetManifest {
  int64_t format_version = 1;
  std::string tokenizer_dir;     // absolute path of the tokenizer directory
  int32_t seq_length = 0;
  uint64_t data_seed = 0;
  int64_t heldout_every = 0;
  uint64_t train_documents = 0;
  uint64_t heldout_documents = 0;
  uint64_t train_tokens = 0;
  std::array<uint64_t, kNumObjectives> samples_per_epoch = {0, 0, 0};
  std::array<uint64_t, kNumObjectives> stored_samples = {0, 0, 0};
  std::array<uint64_t, kNumObjectives> validation_samples = {0, 0, 0};
  double unigram_entropy = 0;  // nats per token, training documents
  std::array<double, kNumObjectives> unigram_cross_entropy = {0, 0, 0};  // nats per loss token
  std::string fingerprint;     // of the data part of the config that made it

  std::string ToJson() const;
  static StatusOr<DatasetManifest> FromJson(const std::string& json);
};

// Reads the manifest; FailedPrecondition saying how to make one when absent.
StatusOr<DatasetManifest> ReadDatasetManifest(storage::SampleStore& store);

// What a config's data section and step count need from a store.
std::string DataFingerprint(const PretrainConfig& config);

using ProgressFn = std::function<void(const std::string& line)>;

// Produces (or reuses, when its manifest has the same fingerprint and enough
// samples) the store <workdir>/store and the tokenizer <workdir>/tokenizer
// for `config`, with enough training samples for config.max_steps.
// Returns the store directory.
StatusOr<std::string> ProduceStore(const PretrainConfig& config, const std::string& workdir,
                                   const ProgressFn& progress);

}  // namespace glm::training

#endif  // GLM_WORKER_TRAINING_DATASET_H_
