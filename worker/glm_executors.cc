#include "worker/glm_executors.h"

#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include <zmq.hpp>

#include "dataloader/document_source.h"
#include "dataloader/tokenizer.h"
#include "storage/store_client.h"
#include "transport/keys.h"
#include "worker/dataset_manifest.h"

namespace glm::worker {
namespace {

using dataloader::GlmTokenizer;

StatusOr<double> ParseDouble(const JobSpec& job, const std::string& key, double fallback) {
  std::string v = job.Param(key);
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    double d = std::stod(v, &used);
    if (used == v.size()) return d;
  } catch (const std::exception&) {
  }
  return InvalidArgumentError("job param " + key + "=" + v + " is not a number");
}

StatusOr<bool> ParseBool(const JobSpec& job, const std::string& key, bool fallback) {
  std::string v = job.Param(key);
  if (v.empty()) return fallback;
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return InvalidArgumentError("job param " + key + "=" + v + " is not true or false");
}

// The finalized documents of a store, split into the documents training
// samples come from and the held-out ones (job param heldout_every; 0 = none
// held out).
struct DocumentSplit {
  std::shared_ptr<const dataloader::InMemoryDocumentSource> train;
  std::shared_ptr<const dataloader::InMemoryDocumentSource> heldout;
};

// Shared per process: one ZeroMQ context, tokenizers by directory, document
// sources by store endpoint.
struct ProcessShared {
  std::mutex mutex;
  zmq::context_t context{1};
  std::map<std::string, std::shared_ptr<const GlmTokenizer>> tokenizers;
  std::map<std::string, std::shared_ptr<const DocumentSplit>> sources;
};

ProcessShared& Shared() {
  static ProcessShared* shared = new ProcessShared();  // lives until exit (actor threads may outlive statics)
  return *shared;
}

StatusOr<std::shared_ptr<const GlmTokenizer>> SharedTokenizer(const std::string& dir) {
  ProcessShared& s = Shared();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto& slot = s.tokenizers[dir];
  if (!slot) {
    auto loaded = GlmTokenizer::Load(dir);
    if (!loaded.ok()) {
      s.tokenizers.erase(dir);
      return FailedPreconditionError("job tokenizer: " + loaded.status().message());
    }
    slot = std::shared_ptr<const GlmTokenizer>(std::move(loaded).value());
  }
  return slot;
}

StatusOr<std::unique_ptr<storage::StoreClient>> ConnectStore(const JobSpec& job) {
  storage::StoreClientOptions o;
  o.endpoint = job.Param("store");
  if (o.endpoint.empty()) {
    return InvalidArgumentError("job param store (the storage server endpoint) is missing; HINT: run via glm pipeline");
  }
  GLM_ASSIGN_OR_RETURN(double timeout_ms, ParseDouble(job, "store_timeout_ms", 30000));  // finalizing takes a while
  o.timeout_ms = static_cast<int>(timeout_ms);
  std::string keys_dir = job.Param("store_keys");
  if (!keys_dir.empty()) {
    auto keys = transport::LoadClientKeys(keys_dir);
    if (!keys.ok()) return FailedPreconditionError("store keys: " + keys.status().message());
    o.curve_server_key = keys->server_public_z85;
    o.curve_public_key = keys->client.public_z85;
    o.curve_secret_key = keys->client.secret_z85;
  }
  auto client = storage::StoreClient::Connect(&Shared().context, o);
  if (!client.ok()) return UnavailableError("storage server: " + client.status().message());
  return std::move(client).value();
}

class GlmExecutor : public TaskExecutor {
 public:
  GlmExecutor(std::unique_ptr<storage::StoreClient> store, std::shared_ptr<const GlmTokenizer> tokenizer,
              dataloader::CorpusOptions corpus, dataloader::SampleOptions samples)
      : store_(std::move(store)), tokenizer_(std::move(tokenizer)), corpus_(std::move(corpus)), samples_(samples) {}
  void set_delay_us(int64_t us) { delay_us_ = us; }
  void set_endpoint(std::string endpoint) { endpoint_ = std::move(endpoint); }
  void set_job(JobSpec job) { job_ = std::move(job); }

  StatusOr<TaskResult> Run(const TaskSpec& task, const ExecutorContext& context) override {
    if (context.cancelled()) return AbortedError("worker is draining");
    if (task.kind == "tokenize") return Tokenize(task);
    if (task.kind == "corrupt") return Corrupt(task, context);
    if (task.kind == "finalize") return Finalize();
    return InvalidArgumentError("the glm executors do not run task kind " + task.kind);
  }

 private:
  StatusOr<TaskResult> Tokenize(const TaskSpec& task) {
    dataloader::CorpusOptions corpus = corpus_;
    corpus.paths = {task.shard_path};
    dataloader::CorpusStats stats;
    auto docs = dataloader::TokenizeCorpus(corpus, *tokenizer_, &stats);
    if (!docs.ok()) return FailedPreconditionError("shard " + task.shard_path + ": " + docs.status().message());
    GLM_RETURN_IF_ERROR(store_->StageDocuments(task.shard_index, *docs));
    return TaskResult{docs->size(), stats.bytes};
  }

  // The documents, finalized on the storage server (dense ids) and split,
  // loaded once per process and store.
  Status EnsureSources() {
    if (split_) return Status::Ok();
    GLM_ASSIGN_OR_RETURN(double heldout_every, ParseDouble(job_, "heldout_every", 0));
    const std::string key = endpoint_ + "#" + std::to_string(store_->tokenizer_hash()) + "#" +
                            std::to_string(static_cast<int64_t>(heldout_every));
    ProcessShared& s = Shared();
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      auto it = s.sources.find(key);
      if (it != s.sources.end()) split_ = it->second;
    }
    if (split_) return Status::Ok();
    // Every tokenize task is done before the first finalize or corrupt task
    // is created, so the staged documents are complete.
    GLM_ASSIGN_OR_RETURN(uint64_t n, store_->FinalizeDocuments());
    std::vector<uint64_t> ids(n);
    for (uint64_t i = 0; i < n; ++i) ids[i] = i;
    GLM_ASSIGN_OR_RETURN(std::vector<Document> docs, store_->GetDocuments(ids));
    auto split = std::make_shared<DocumentSplit>();
    if (heldout_every > 0) {
      auto parts = training::SplitHeldOut(std::move(docs), static_cast<int64_t>(heldout_every));
      if (!parts.ok()) return FailedPreconditionError(parts.status().message());
      split->train = std::make_shared<const dataloader::InMemoryDocumentSource>(std::move(parts->train));
      split->heldout = std::make_shared<const dataloader::InMemoryDocumentSource>(std::move(parts->heldout));
    } else {
      split->train = std::make_shared<const dataloader::InMemoryDocumentSource>(std::move(docs));
      split->heldout = std::make_shared<const dataloader::InMemoryDocumentSource>(std::vector<Document>());
    }
    std::lock_guard<std::mutex> lock(s.mutex);
    split_ = s.sources.emplace(key, std::move(split)).first->second;  // a racing thread's equal copy wins
    return Status::Ok();
  }

  Status EnsureFactory() {
    if (factory_) return Status::Ok();
    GLM_RETURN_IF_ERROR(EnsureSources());
    factory_ = std::make_unique<dataloader::SampleFactory>(split_->train.get(), tokenizer_->vocab(), samples_);
    return Status::Ok();
  }

  // The dataset's description: the held-out split, the validation samples
  // (from held-out documents only) and the manifest trainers read
  // (worker/dataset_manifest.h). Output count: the epoch size, training
  // tokens / seq_len. Idempotent: the same bytes under the same keys.
  StatusOr<TaskResult> Finalize() {
    GLM_RETURN_IF_ERROR(EnsureSources());
    GLM_ASSIGN_OR_RETURN(double heldout_every, ParseDouble(job_, "heldout_every", 0));
    GLM_ASSIGN_OR_RETURN(double validation, ParseDouble(job_, "validation_samples", 0));
    GLM_ASSIGN_OR_RETURN(double epochs, ParseDouble(job_, "epochs", 1));
    GLM_ASSIGN_OR_RETURN(double max_samples, ParseDouble(job_, "max_samples", 0));
    std::array<bool, kNumObjectives> enabled = {false, false, false};
    std::stringstream names(job_.Param("dataset_objectives", "blank:sentence:document"));
    std::string name;
    while (std::getline(names, name, ':')) {
      bool known = false;
      for (int o = 0; o < kNumObjectives; ++o) {
        if (name == ObjectiveName(static_cast<Objective>(o))) enabled[o] = known = true;
      }
      if (!known) return InvalidArgumentError("job param dataset_objectives: unknown objective '" + name + "'");
    }
    training::DatasetManifest m;
    m.tokenizer_dir = job_.Param("tokenizer");
    m.heldout_every = static_cast<int64_t>(heldout_every);
    m.fingerprint = job_.Param("fingerprint");
    auto validation_samples = training::DescribeDataset(*split_->train, *split_->heldout, tokenizer_->vocab(), samples_,
                                                        static_cast<int64_t>(validation), enabled, &m);
    if (!validation_samples.ok()) return FailedPreconditionError(validation_samples.status().message());
    uint64_t per_epoch = 0;
    for (int o = 0; o < kNumObjectives; ++o) {
      if (!enabled[o]) continue;
      per_epoch = m.samples_per_epoch[o];
      uint64_t total = per_epoch * static_cast<uint64_t>(epochs);
      if (max_samples > 0) total = std::min<uint64_t>(total, static_cast<uint64_t>(max_samples));
      m.stored_samples[o] = total;
    }
    const std::vector<Sample>& v = *validation_samples;
    for (size_t i = 0; i < v.size(); i += 64) {
      std::vector<Sample> part(v.begin() + static_cast<std::ptrdiff_t>(i),
                               v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), i + 64)));
      GLM_RETURN_IF_ERROR(store_->PutSamples(part));
    }
    GLM_RETURN_IF_ERROR(store_->PutMeta(training::kDatasetMetaKey, m.ToJson()));
    return TaskResult{per_epoch, 0};
  }

  StatusOr<TaskResult> Corrupt(const TaskSpec& task, const ExecutorContext& context) {
    GLM_RETURN_IF_ERROR(EnsureFactory());
    if (task.objective > 2) return InvalidArgumentError("corrupt task with objective " + std::to_string(task.objective));
    const Objective objective = static_cast<Objective>(task.objective);
    std::vector<Sample> samples(task.end - task.begin);
    for (uint64_t i = task.begin; i < task.end; ++i) {
      if (context.cancelled()) return AbortedError("worker is draining");
      if (delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us_));
      Status s = factory_->MakeInto(objective, task.epoch, i, &samples[i - task.begin]);
      if (!s.ok()) return FailedPreconditionError("sample " + std::to_string(i) + ": " + s.message());
    }
    GLM_RETURN_IF_ERROR(store_->PutSamples(samples));
    return TaskResult{samples.size(), 0};
  }

  std::unique_ptr<storage::StoreClient> store_;
  std::shared_ptr<const GlmTokenizer> tokenizer_;
  dataloader::CorpusOptions corpus_;
  dataloader::SampleOptions samples_;
  std::shared_ptr<const DocumentSplit> split_;
  std::unique_ptr<dataloader::SampleFactory> factory_;
  JobSpec job_;
  int64_t delay_us_ = 0;
  std::string endpoint_;  // the storage server: names the shared document source
};

}  // namespace

StatusOr<dataloader::CorpusOptions> CorpusOptionsFromParams(const JobSpec& job) {
  dataloader::CorpusOptions c;
  c.format = job.Param("format", c.format);
  c.text_field = job.Param("text_field", c.text_field);
  c.text_split = job.Param("text_split", c.text_split);
  GLM_ASSIGN_OR_RETURN(c.normalize_punctuation, ParseBool(job, "normalize_punctuation", c.normalize_punctuation));
  GLM_ASSIGN_OR_RETURN(double max_doc, ParseDouble(job, "max_document_bytes", static_cast<double>(c.max_document_bytes)));
  c.max_document_bytes = static_cast<int64_t>(max_doc);
  c.paths = {"(per shard)"};
  if (Status s = c.Validate(); !s.ok()) return InvalidArgumentError("job params: " + s.message());
  return c;
}

StatusOr<dataloader::SampleOptions> SampleOptionsFromParams(const JobSpec& job) {
  dataloader::SampleOptions o;
  o.seed = job.seed;
  GLM_ASSIGN_OR_RETURN(double seq_len, ParseDouble(job, "seq_len", o.seq_length));
  o.seq_length = static_cast<int32_t>(seq_len);
  GLM_ASSIGN_OR_RETURN(o.mask_ratio, ParseDouble(job, "mask_ratio", o.mask_ratio));
  GLM_ASSIGN_OR_RETURN(o.average_span_length, ParseDouble(job, "average_span_length", o.average_span_length));
  GLM_ASSIGN_OR_RETURN(o.document_min_ratio, ParseDouble(job, "document_min_ratio", o.document_min_ratio));
  GLM_ASSIGN_OR_RETURN(o.task_masks, ParseBool(job, "task_masks", o.task_masks));
  if (Status s = o.Validate(); !s.ok()) return InvalidArgumentError("job params: " + s.message());
  return o;
}

void RegisterGlmExecutors(ExecutorRegistry* registry) {
  ExecutorFactory factory = [](const ExecutorContext& context) -> StatusOr<std::unique_ptr<TaskExecutor>> {
    const JobSpec& job = context.job();
    GLM_ASSIGN_OR_RETURN(dataloader::CorpusOptions corpus, CorpusOptionsFromParams(job));
    GLM_ASSIGN_OR_RETURN(dataloader::SampleOptions samples, SampleOptionsFromParams(job));
    if (job.Param("tokenizer").empty()) {
      return InvalidArgumentError("job param tokenizer (the tokenizer directory) is missing");
    }
    GLM_ASSIGN_OR_RETURN(auto tokenizer, SharedTokenizer(job.Param("tokenizer")));
    GLM_ASSIGN_OR_RETURN(auto store, ConnectStore(job));
    if (store->tokenizer_hash() != tokenizer->hash()) {
      return FailedPreconditionError("the store's tokenizer hash differs from the job tokenizer's (" +
                                     job.Param("tokenizer") + "); HINT: serve a store made with this tokenizer");
    }
    GLM_ASSIGN_OR_RETURN(double delay_us, ParseDouble(job, "item_delay_us", 0));
    auto executor = std::make_unique<GlmExecutor>(std::move(store), std::move(tokenizer), std::move(corpus), samples);
    executor->set_delay_us(static_cast<int64_t>(delay_us));
    executor->set_endpoint(job.Param("store"));
    executor->set_job(job);
    return std::unique_ptr<TaskExecutor>(std::move(executor));
  };
  for (const char* kind : {"tokenize", "finalize", "corrupt"}) registry->Register("glm", kind, factory);
}

}  // namespace glm::worker
