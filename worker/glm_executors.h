// The "glm" executor family: the real data path (docs/runtime.md "The glm
// executors").
//
//   tokenize  reads its corpus shard (one file) with the dataloader's corpus
//             reader (UTF-8 repair, punctuation normalisation, counts),
//             encodes every document with the job's SentencePiece tokenizer
//             (GlmTokenizer::MakeDocument: ids + [eod] + sentence ends) and
//             stages them in the storage server under (shard, local index)
//             keys (storage/staging.h).
//   corrupt   on first use in a process: asks the storage server to finalize
//             the staged documents (dense ids 0..N-1 in corpus order and the
//             document index; idempotent), then loads them into a
//             DocumentSource; per task it builds samples (objective, epoch,
//             [begin, end)) with SampleFactory and writes them in one atomic
//             batch under their (objective, epoch, index) keys.
//
// Job params (JobOptions::params, set by `glm pipeline`):
//   store               storage server endpoint (required)
//   store_keys          directory with the cluster's CURVE keys (server.pub,
//                       client.pub, client.secret); "" = plain TCP
//   store_timeout_ms    how long to wait for each storage answer (default 30000)
//   tokenizer           tokenizer directory (required; its hash must equal
//                       the store's)
//   format, text_field, text_split, normalize_punctuation, max_document_bytes
//                       corpus reader options (dataloader/corpus.h)
//   seq_len, mask_ratio, average_span_length, document_min_ratio, task_masks
//                       sample options (dataloader/sample_factory.h); the job
//                       seed is the sample seed
//   item_delay_us       sleep per sample (tests: time to kill a worker)
//
// Thread-safety: the factories are thread-safe; one executor per actor
// thread, each with its own storage client. Tokenizers and the document
// source are shared read-only by the actors of one process.
#ifndef GLM_WORKER_GLM_EXECUTORS_H_
#define GLM_WORKER_GLM_EXECUTORS_H_

#include "common/status.h"
#include "dataloader/corpus.h"
#include "dataloader/sample_factory.h"
#include "worker/executor.h"

namespace glm::worker {

// The corpus reader and sample options a job's params name (defaults where
// absent); InvalidArgument naming the param when one does not parse.
StatusOr<dataloader::CorpusOptions> CorpusOptionsFromParams(const JobSpec& job);
StatusOr<dataloader::SampleOptions> SampleOptionsFromParams(const JobSpec& job);

// Registers family "glm": tokenize and corrupt.
void RegisterGlmExecutors(ExecutorRegistry* registry);

}  // namespace glm::worker

#endif  // GLM_WORKER_GLM_EXECUTORS_H_
