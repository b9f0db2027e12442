// `glm pretrain` as a local cluster on loopback: the same processes and
// protocol as on a real cluster (docs/pretrain.md, docs/runtime.md):
//
//   glm pretrain (this process: the driver)
//     ├─ glm store serve      the storage actor: owns <workdir>/store (RocksDB)
//     ├─ glm coordinator      the job: tokenize -> finalize -> corrupt tasks
//     ├─ glm worker × N       pipeline actors: tokenizer, finalize and
//     │                       span-corruption tasks, writing to the store
//     └─ glm train × T        data-parallel trainers (Gloo), reading samples
//                             from the storage server as they are produced
//
// CURVE keys are generated into <workdir>/cluster/keys; logs go to
// <workdir>/logs/; trainer rank 0 writes to the terminal, checkpoints,
// metrics.jsonl and eval.json in <workdir>. A store that already holds
// everything the config needs (same data fingerprint) is reused without a
// cluster (the --resume case).
//
// Thread-safety: RunLocalPretrain runs on the calling thread; `stop` may be
// set from a signal handler.
#ifndef GLM_CMD_PRETRAIN_CLUSTER_H_
#define GLM_CMD_PRETRAIN_CLUSTER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "worker/training/pretrain_config.h"

namespace glm::cmd {

struct LocalPretrainOptions {
  training::PretrainConfig config;
  std::string workdir = "runs/pretrain";  // Default: runs/pretrain
  bool resume = false;                    // Default: false
  int64_t trainers = 1;                   // Default: 1 trainer process
  int64_t workers = 2;                    // Default: 2 data worker processes, 1 cpu each
  bool json = false;                      // Default: false: rank 0 prints the summary, not JSON
  // Default: "" = no dashboard. The coordinator's HTTP address
  // ("127.0.0.1:8265"; port 0 = any free port); the URL is printed and
  // written to <workdir>/dashboard.url.
  std::string dashboard;
};

// The flags that give `config` to `glm train` (every key, explicitly).
std::vector<std::string> ConfigArgs(const training::PretrainConfig& config);

// Exit code: rank 0's (0 done, 130 stopped with a checkpoint), 1 when a
// process of the cluster failed (its log is named), 2 for bad options.
int RunLocalPretrain(const LocalPretrainOptions& options, const std::atomic<bool>* stop);

}  // namespace glm::cmd

#endif  // GLM_CMD_PRETRAIN_CLUSTER_H_
