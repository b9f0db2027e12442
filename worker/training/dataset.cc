#include "worker/training/dataset.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "dataloader/corpus.h"
#include "dataloader/document_source.h"
#include "dataloader/hash.h"
#include "dataloader/sample_factory.h"
#include "dataloader/tokenizer.h"
#include "storage/rocksdb_sample_store.h"
#include "worker/trainer/batch_plan.h"

namespace glm::training {
namespace fs = std::filesystem;

std::string DataFingerprint(const PretrainConfig& c) {
  std::ostringstream s;
  s << "corpus=" << c.corpus << ";vocab=" << c.vocab_size << ";maxsent=" << c.tokenizer_max_sentences
    << ";seq=" << c.seq_length << ";heldout=" << c.heldout_every << ";val=" << c.validation_samples
    << ";seed=" << c.data_seed << ";w=" << c.objective_weights[0] << "," << c.objective_weights[1] << ","
    << c.objective_weights[2];
  // Hex of a 64-bit hash: it travels in the pipeline's job params.
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(dataloader::Hash64(s.str())));
  return hex;
}

std::vector<std::string> ResolveCorpus(const std::string& spec) {
  std::vector<std::string> out;
  std::stringstream ss(spec);
  std::string item;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    fs::path p(item);
    if (p.is_absolute() || fs::exists(p.parent_path().empty() ? p : p.parent_path())) {
      out.push_back(item);
      continue;
    }
    std::string chosen = item;
    for (const fs::path& root : {exe.parent_path().parent_path(), exe.parent_path()}) {
      fs::path q = root / p;
      if (fs::exists(q.parent_path())) {
        chosen = q.string();
        break;
      }
    }
    out.push_back(chosen);
  }
  return out;
}

StatusOr<std::unique_ptr<dataloader::GlmTokenizer>> EnsureTokenizer(const PretrainConfig& config,
                                                                   const std::string& dir,
                                                                   const ProgressFn& progress) {
  std::error_code ec;
  if (auto t = dataloader::GlmTokenizer::Load(dir); t.ok() && (*t)->vocab_size() == config.vocab_size) {
    progress("reusing the tokenizer " + dir);
    return std::move(*t);
  }
  fs::remove_all(dir, ec);
  dataloader::CorpusOptions corpus;
  corpus.paths = ResolveCorpus(config.corpus);
  GLM_RETURN_IF_ERROR(corpus.Validate());
  dataloader::TokenizerTrainOptions to;
  to.corpus = corpus;
  to.output_dir = dir;
  to.vocab_size = config.vocab_size;
  to.max_sentences = config.tokenizer_max_sentences;
  progress("training a " + std::to_string(config.vocab_size) + "-piece SentencePiece tokenizer on " + config.corpus);
  GLM_ASSIGN_OR_RETURN(auto result, dataloader::TrainTokenizer(to, [](const std::string&) {}));
  return dataloader::GlmTokenizer::Load(result.dir);
}

StatusOr<std::string> ProduceStore(const PretrainConfig& config, const std::string& workdir,
                                   const ProgressFn& progress) {
  GLM_RETURN_IF_ERROR(config.Validate());
  const fs::path root = fs::absolute(workdir);
  const fs::path tokenizer_dir = root / "tokenizer";
  const fs::path store_dir = root / "store";
  const std::string fingerprint = DataFingerprint(config);

  // How many training samples of each objective max_steps consumes.
  trainer::MixerOptions mixer;
  mixer.weights = config.objective_weights;
  GLM_ASSIGN_OR_RETURN(trainer::ObjectiveMixer m, trainer::ObjectiveMixer::Create(mixer, config.global_batch_size));
  const trainer::ObjectiveCounts needed = m.ConsumedAfter(config.max_steps);

  std::error_code ec;
  if (fs::exists(store_dir / "CURRENT")) {
    storage::StoreOptions so;
    so.path = store_dir.string();
    so.mode = storage::OpenMode::kReadOnly;
    auto store = storage::RocksDbSampleStore::Open(so);
    if (store.ok()) {
      auto manifest = ReadDatasetManifest(**store);
      bool enough = manifest.ok() && manifest->fingerprint == fingerprint;
      for (int o = 0; enough && o < kNumObjectives; ++o) enough = manifest->stored_samples[o] >= needed[o];
      if (enough) {
        progress("reusing the store " + store_dir.string() + " (same data config, enough samples)");
        return store_dir.string();
      }
    }
    progress("the store in " + store_dir.string() + " was made for another config: rebuilding it");
    fs::remove_all(store_dir, ec);
  }
  fs::create_directories(root, ec);

  dataloader::CorpusOptions corpus;
  corpus.paths = ResolveCorpus(config.corpus);
  GLM_RETURN_IF_ERROR(corpus.Validate());

  // 1. Tokenizer: reuse a matching one, else train.
  GLM_ASSIGN_OR_RETURN(std::unique_ptr<dataloader::GlmTokenizer> tokenizer,
                       EnsureTokenizer(config, tokenizer_dir.string(), progress));

  // 2. Documents, split into training and held-out.
  dataloader::CorpusStats stats;
  GLM_ASSIGN_OR_RETURN(std::vector<Document> docs, dataloader::TokenizeCorpus(corpus, *tokenizer, &stats));
  GLM_ASSIGN_OR_RETURN(HeldOutSplit split, SplitHeldOut(docs, config.heldout_every));
  dataloader::InMemoryDocumentSource train_source(std::move(split.train));
  dataloader::InMemoryDocumentSource heldout_source(std::move(split.heldout));
  progress("corpus: " + std::to_string(docs.size()) + " documents, " +
           std::to_string(train_source.total_tokens()) + " training tokens, " +
           std::to_string(heldout_source.num_documents()) + " documents held out");

  // 3. The split's description, unigram baselines and validation samples.
  dataloader::SampleOptions sample_options;
  sample_options.seq_length = config.seq_length;
  sample_options.seed = config.data_seed;
  GLM_RETURN_IF_ERROR(sample_options.Validate());
  DatasetManifest manifest;
  manifest.tokenizer_dir = tokenizer_dir.string();
  manifest.heldout_every = config.heldout_every;
  manifest.fingerprint = fingerprint;
  std::array<bool, kNumObjectives> enabled;
  for (int o = 0; o < kNumObjectives; ++o) enabled[o] = config.objective_weights[o] > 0;
  GLM_ASSIGN_OR_RETURN(std::vector<Sample> validation,
                       DescribeDataset(train_source, heldout_source, tokenizer->vocab(), sample_options,
                                       config.validation_samples, enabled, &manifest));

  // 4. The store.
  storage::StoreOptions so;
  so.path = store_dir.string();
  so.tokenizer_hash = tokenizer->hash();
  so.description = "glm pretrain dataset";
  GLM_ASSIGN_OR_RETURN(auto store, storage::RocksDbSampleStore::Open(so));
  for (size_t i = 0; i < docs.size(); i += 256) {
    std::vector<Document> part(docs.begin() + i, docs.begin() + std::min(docs.size(), i + 256));
    GLM_RETURN_IF_ERROR(store->PutDocuments(part));
  }
  GLM_RETURN_IF_ERROR(store->BuildDocumentIndex());

  dataloader::SampleFactory train_factory(&train_source, tokenizer->vocab(), sample_options);
  uint64_t written = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    if (!enabled[o]) continue;
    const Objective objective = static_cast<Objective>(o);
    const uint64_t per_epoch = manifest.samples_per_epoch[o];
    manifest.stored_samples[o] = needed[o];
    std::vector<Sample> batch;
    for (uint64_t i = 0; i < needed[o]; ++i) {
      GLM_ASSIGN_OR_RETURN(Sample s, train_factory.Make(objective, static_cast<uint32_t>(i / per_epoch), i % per_epoch));
      batch.push_back(std::move(s));
      if (batch.size() == 256) {
        GLM_RETURN_IF_ERROR(store->PutSamples(batch));
        written += batch.size();
        batch.clear();
      }
    }
    GLM_RETURN_IF_ERROR(store->PutSamples(batch));
    written += batch.size();
  }
  GLM_RETURN_IF_ERROR(store->PutSamples(validation));
  written += validation.size();
  GLM_RETURN_IF_ERROR(store->PutMeta(kDatasetMetaKey, manifest.ToJson()));
  GLM_RETURN_IF_ERROR(store->Flush());
  progress("store: " + std::to_string(written) + " samples of " + std::to_string(config.seq_length) +
           " tokens in " + store_dir.string());
  return store_dir.string();
}

}  // namespace glm::training
