// JobOptions: what a data-pipeline job is, set once when the coordinator
// first starts on an empty --state directory and persisted there (a
// restarted coordinator ignores the flags and continues the stored job).
// The parts workers must agree on travel to them as wire::JobSpec in
// RegisterAck (contract: one JobSpec issued by the coordinator).
//
// Thread-safety: plain value.
#ifndef GLM_COORDINATOR_JOB_H_
#define GLM_COORDINATOR_JOB_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace glm::coordinator {

struct JobOptions {
  // Stable job name. Default: "pipeline".
  std::string job_id = "pipeline";
  // Corpus: a file or a directory (recursively: *.txt, *.json, *.jsonl),
  // one shard per file. Default: "data/sotu".
  std::string corpus = "data/sotu";
  // Where executors write their output stores. Default: "" (the
  // coordinator's --state directory + "/output").
  std::string output_dir;
  // Job seed: samples are pure functions of it. Default: 1234.
  uint64_t seed = 1234;
  // Executor family the workers run ("test": the runtime's own
  // deterministic executors; see docs/runtime.md). Default: "test".
  std::string executor = "test";
  // Enabled objectives, comma-separated: blank, sentence, document.
  // Default: "blank,sentence,document".
  std::string objectives = "blank,sentence,document";
  // Epochs of samples to produce per objective. Default: 1.
  int64_t epochs = 1;
  // Samples per (objective, epoch); 0 = the number of documents the
  // tokenize phase produced. Default: 0.
  int64_t samples_per_epoch = 0;
  // At most this many samples per objective in total, whatever the epochs
  // (a trainer's step count needs no more); 0 = no cap. Default: 0.
  int64_t max_samples = 0;
  // true: a phase "finalize" runs between tokenize and corrupt: one task
  // (kind "finalize", id "finalize/0") whose output count becomes
  // samples_per_epoch when that is 0 (the glm executors split off the
  // held-out documents, write the validation samples and the dataset
  // manifest there). Default: false.
  bool finalize = false;
  // Samples per corruption task. Default: 64.
  int64_t samples_per_task = 64;
  // Samples per global batch, all objectives together; back-pressure counts
  // ceil(global_batch_size / #objectives) samples of each objective per
  // batch. Default: 48.
  int64_t global_batch_size = 48;
  // Back-pressure: production runs at most this many global batches past
  // the consumption cursor. Default: 8.
  int64_t max_batches_ahead = 8;
  // true: the pipeline consumes what it produced (running the pipeline
  // alone); false: a consumer advances the cursor with Consumed messages.
  // Default: true.
  bool auto_consume = true;
  // > 0: instead of the pipeline, a job of this many "noop" tasks (the
  // coordinator benchmark). Default: 0.
  int64_t noop_tasks = 0;
  // Executor parameters passed through to workers untouched ("key=value,
  // ..."), e.g. "item_delay_us=200". Default: "".
  std::string params;

  Status Validate() const;
  nlohmann::json ToJson() const;
  static StatusOr<JobOptions> FromJson(const nlohmann::json& j);

  // Parsed views.
  std::vector<int> ObjectiveIds() const;  // 0 blank, 1 sentence, 2 document
  std::map<std::string, std::string> ParamMap() const;
};

// Sorted corpus files: `corpus` itself if a file, else every *.txt, *.json
// and *.jsonl below it. NotFound if there is none.
StatusOr<std::vector<std::string>> ListCorpusFiles(const std::string& corpus);

}  // namespace glm::coordinator

#endif  // GLM_COORDINATOR_JOB_H_
