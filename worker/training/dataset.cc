#include "worker/training/dataset.h"

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cmath>
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

std::string DatasetManifest::ToJson() const {
  nlohmann::json j = {{"format_version", format_version},
                      {"tokenizer_dir", tokenizer_dir},
                      {"seq_length", seq_length},
                      {"data_seed", data_seed},
                      {"heldout_every", heldout_every},
                      {"train_documents", train_documents},
                      {"heldout_documents", heldout_documents},
                      {"train_tokens", train_tokens},
                      {"samples_per_epoch", samples_per_epoch},
                      {"stored_samples", stored_samples},
                      {"validation_epoch", kValidationEpoch},
                      {"validation_samples", validation_samples},
                      {"unigram_entropy", unigram_entropy},
                      {"unigram_cross_entropy", unigram_cross_entropy},
                      {"fingerprint", fingerprint}};
  return j.dump(2);
}

StatusOr<DatasetManifest> DatasetManifest::FromJson(const std::string& json) {
  DatasetManifest m;
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    m.format_version = j.at("format_version").get<int64_t>();
    if (m.format_version != 1) {
      return FailedPreconditionError("dataset manifest format " + std::to_string(m.format_version) +
                                     " is newer than this binary understands (1)");
    }
    m.tokenizer_dir = j.at("tokenizer_dir").get<std::string>();
    m.seq_length = j.at("seq_length").get<int32_t>();
    m.data_seed = j.at("data_seed").get<uint64_t>();
    m.heldout_every = j.at("heldout_every").get<int64_t>();
    m.train_documents = j.at("train_documents").get<uint64_t>();
    m.heldout_documents = j.at("heldout_documents").get<uint64_t>();
    m.train_tokens = j.at("train_tokens").get<uint64_t>();
    m.samples_per_epoch = j.at("samples_per_epoch").get<std::array<uint64_t, kNumObjectives>>();
    m.stored_samples = j.at("stored_samples").get<std::array<uint64_t, kNumObjectives>>();
    m.validation_samples = j.at("validation_samples").get<std::array<uint64_t, kNumObjectives>>();
    m.unigram_entropy = j.at("unigram_entropy").get<double>();
    m.unigram_cross_entropy = j.at("unigram_cross_entropy").get<std::array<double, kNumObjectives>>();
    m.fingerprint = j.value("fingerprint", "");
  } catch (const std::exception& e) {
    return DataLossError(std::string("dataset manifest '") + kDatasetMetaKey + "' is malformed: " + e.what());
  }
  return m;
}

StatusOr<DatasetManifest> ReadDatasetManifest(storage::SampleStore& store) {
  auto text = store.GetMeta(kDatasetMetaKey);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return FailedPreconditionError(std::string("the store has no training dataset manifest (meta key '") +
                                     kDatasetMetaKey +
                                     "'); produce the store with `glm pretrain` (docs/pretrain.md)");
    }
    return text.status();
  }
  return DatasetManifest::FromJson(*text);
}

std::string DataFingerprint(const PretrainConfig& c) {
  std::ostringstream s;
  s << "corpus=" << c.corpus << ";vocab=" << c.vocab_size << ";maxsent=" << c.tokenizer_max_sentences
    << ";seq=" << c.seq_length << ";heldout=" << c.heldout_every << ";val=" << c.validation_samples
    << ";seed=" << c.data_seed << ";w=" << c.objective_weights[0] << "," << c.objective_weights[1] << ","
    << c.objective_weights[2];
  return s.str();
}

namespace {

// Relative corpus patterns are tried against the working directory, then the
// checkout that holds the binary (build/glm -> the repository root).
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

}  // namespace

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
  std::unique_ptr<dataloader::GlmTokenizer> tokenizer;
  if (auto t = dataloader::GlmTokenizer::Load(tokenizer_dir.string()); t.ok() &&
      (*t)->vocab_size() == config.vocab_size) {
    tokenizer = std::move(*t);
    progress("reusing the tokenizer " + tokenizer_dir.string());
  } else {
    fs::remove_all(tokenizer_dir, ec);
    dataloader::TokenizerTrainOptions to;
    to.corpus = corpus;
    to.output_dir = tokenizer_dir.string();
    to.vocab_size = config.vocab_size;
    to.max_sentences = config.tokenizer_max_sentences;
    progress("training a " + std::to_string(config.vocab_size) + "-piece SentencePiece tokenizer on " + config.corpus);
    GLM_ASSIGN_OR_RETURN(auto result, dataloader::TrainTokenizer(to, [](const std::string&) {}));
    GLM_ASSIGN_OR_RETURN(tokenizer, dataloader::GlmTokenizer::Load(result.dir));
  }

  // 2. Documents, split into training and held-out.
  dataloader::CorpusStats stats;
  GLM_ASSIGN_OR_RETURN(std::vector<Document> docs, dataloader::TokenizeCorpus(corpus, *tokenizer, &stats));
  std::vector<Document> train_docs, heldout_docs;
  for (const Document& d : docs) {
    (static_cast<int64_t>(d.id % config.heldout_every) == config.heldout_every - 1 ? heldout_docs : train_docs)
        .push_back(d);
  }
  if (train_docs.empty() || heldout_docs.empty()) {
    return InvalidArgumentError("the corpus has " + std::to_string(docs.size()) +
                                " documents; holding out every " + std::to_string(config.heldout_every) +
                                "th needs at least " + std::to_string(config.heldout_every) +
                                " (lower --heldout-every or add text)");
  }
  dataloader::InMemoryDocumentSource train_source(std::move(train_docs));
  dataloader::InMemoryDocumentSource heldout_source(std::move(heldout_docs));
  progress("corpus: " + std::to_string(docs.size()) + " documents, " +
           std::to_string(train_source.total_tokens()) + " training tokens, " +
           std::to_string(heldout_source.num_documents()) + " documents held out");

  DatasetManifest manifest;
  manifest.tokenizer_dir = tokenizer_dir.string();
  manifest.seq_length = config.seq_length;
  manifest.data_seed = config.data_seed;
  manifest.heldout_every = config.heldout_every;
  manifest.train_documents = train_source.num_documents();
  manifest.heldout_documents = heldout_source.num_documents();
  manifest.train_tokens = train_source.total_tokens();
  manifest.fingerprint = fingerprint;

  // 3. Unigram distribution of the training tokens.
  const int32_t V = tokenizer->vocab_size();
  std::vector<double> counts(V, 0.0);
  double total = 0;
  for (const Document& d : train_source.documents()) {
    for (int32_t t : d.tokens) {
      if (t >= 0 && t < V) counts[t] += 1, total += 1;
    }
  }
  for (double c : counts) {
    if (c > 0) manifest.unigram_entropy -= (c / total) * std::log(c / total);
  }
  auto unigram_nll = [&](int32_t t) {
    const double c = (t >= 0 && t < V) ? counts[t] : 0.0;
    return -std::log((c + 0.5) / (total + 0.5 * V));
  };

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

  dataloader::SampleOptions sample_options;
  sample_options.seq_length = config.seq_length;
  sample_options.seed = config.data_seed;
  GLM_RETURN_IF_ERROR(sample_options.Validate());
  dataloader::SampleFactory train_factory(&train_source, tokenizer->vocab(), sample_options);
  dataloader::SampleFactory heldout_factory(&heldout_source, tokenizer->vocab(), sample_options);

  const uint64_t per_epoch = std::max<uint64_t>(1, train_source.total_tokens() / config.seq_length);
  uint64_t written = 0;
  for (int o = 0; o < kNumObjectives; ++o) {
    if (config.objective_weights[o] <= 0) continue;
    const Objective objective = static_cast<Objective>(o);
    manifest.samples_per_epoch[o] = per_epoch;
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
    // Validation samples, from held-out documents only.
    double nll = 0, tokens = 0;
    for (int64_t i = 0; i < config.validation_samples; ++i) {
      GLM_ASSIGN_OR_RETURN(Sample s, heldout_factory.Make(objective, kValidationEpoch, static_cast<uint64_t>(i)));
      for (size_t k = 0; k < s.targets.size(); ++k) {
        if (s.loss_mask[k]) nll += unigram_nll(s.targets[k]), tokens += 1;
      }
      batch.push_back(std::move(s));
    }
    manifest.validation_samples[o] = static_cast<uint64_t>(config.validation_samples);
    manifest.unigram_cross_entropy[o] = tokens > 0 ? nll / tokens : 0;
    GLM_RETURN_IF_ERROR(store->PutSamples(batch));
    written += batch.size();
  }
  GLM_RETURN_IF_ERROR(store->PutMeta(kDatasetMetaKey, manifest.ToJson()));
  GLM_RETURN_IF_ERROR(store->Flush());
  progress("store: " + std::to_string(written) + " samples of " + std::to_string(config.seq_length) +
           " tokens in " + store_dir.string());
  return store_dir.string();
}

}  // namespace glm::training
