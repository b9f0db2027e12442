// The training dataset of a sample store: its manifest and how its held-out
// split, unigram baselines and validation samples are made. Shared by the
// in-process producer (worker/training/dataset.h ProduceStore) and the
// runtime pipeline's `finalize` task (worker/glm_executors.h), so that both
// write the same bytes; it lives in glm_worker (no LibTorch) for the latter.
//
// A store that `glm train` can read carries, besides its documents and
// samples, one JSON record in the meta key-value space under
// kDatasetMetaKey ("train/dataset", format in docs/pretrain.md):
//   * samples_per_epoch[o]: the mixer's epoch size per objective; the
//     trainer's cumulative index i of objective o is (epoch i / n, index i % n);
//   * stored_samples[o]: cumulative indices [0, stored) are (or, while the
//     pipeline runs, will be) in the store;
//   * validation: the held-out split. Documents with id % heldout_every ==
//     heldout_every - 1 are never used by training samples; validation
//     samples are built from them only, stored under epoch
//     kValidationEpoch, indices [0, validation_samples[o]);
//   * unigram baselines: the entropy of the training tokens' unigram
//     distribution, and per objective the cross-entropy of the validation
//     loss targets under that distribution (add-1/2 smoothing).
//
// Thread-safety: plain values and reentrant functions.
#ifndef GLM_WORKER_DATASET_MANIFEST_H_
#define GLM_WORKER_DATASET_MANIFEST_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "dataloader/document_source.h"
#include "dataloader/sample_factory.h"
#include "schema/records.h"
#include "storage/sample_store.h"

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

// Documents with id % heldout_every == heldout_every - 1 go to `heldout`, the
// others to `train`, in id order. InvalidArgument (saying what to change)
// when either side is empty.
struct HeldOutSplit {
  std::vector<Document> train;
  std::vector<Document> heldout;
};
StatusOr<HeldOutSplit> SplitHeldOut(std::vector<Document> docs, int64_t heldout_every);

// Everything about the dataset that follows from the split: fills
// `manifest`'s split sizes, train_tokens, samples_per_epoch (train_tokens /
// seq_length, at least 1) and validation_samples for the enabled objectives,
// the unigram baselines; returns the validation samples (epoch
// kValidationEpoch, indices [0, validation_samples) per enabled objective,
// made from `heldout` only). stored_samples, tokenizer_dir and fingerprint
// are the caller's.
StatusOr<std::vector<Sample>> DescribeDataset(const dataloader::InMemoryDocumentSource& train,
                                              const dataloader::InMemoryDocumentSource& heldout,
                                              const dataloader::VocabInfo& vocab,
                                              const dataloader::SampleOptions& sample_options,
                                              int64_t validation_samples,
                                              const std::array<bool, kNumObjectives>& enabled,
                                              DatasetManifest* manifest);

}  // namespace glm::training

#endif  // GLM_WORKER_DATASET_MANIFEST_H_
