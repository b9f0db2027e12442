#include "worker/dataset_manifest.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <memory>

namespace glm::training {

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

StatusOr<HeldOutSplit> SplitHeldOut(std::vector<Document> docs, int64_t heldout_every) {
  if (heldout_every < 2) return InvalidArgumentError("heldout_every must be at least 2, got " + std::to_string(heldout_every));
  HeldOutSplit split;
  const size_t n = docs.size();
  for (Document& d : docs) {
    (static_cast<int64_t>(d.id % static_cast<uint64_t>(heldout_every)) == heldout_every - 1 ? split.heldout
                                                                                             : split.train)
        .push_back(std::move(d));
  }
  if (split.train.empty() || split.heldout.empty()) {
    return InvalidArgumentError("the corpus has " + std::to_string(n) + " documents; holding out every " +
                                std::to_string(heldout_every) + "th needs at least " + std::to_string(heldout_every) +
                                " (lower --heldout-every or add text)");
  }
  return split;
}

StatusOr<std::vector<Sample>> DescribeDataset(const dataloader::InMemoryDocumentSource& train,
                                              const dataloader::InMemoryDocumentSource& heldout,
                                              const dataloader::VocabInfo& vocab,
                                              const dataloader::SampleOptions& sample_options,
                                              int64_t validation_samples,
                                              const std::array<bool, kNumObjectives>& enabled,
                                              DatasetManifest* manifest) {
  GLM_RETURN_IF_ERROR(sample_options.Validate());
  DatasetManifest& m = *manifest;
  m.seq_length = sample_options.seq_length;
  m.data_seed = sample_options.seed;
  m.train_documents = train.num_documents();
  m.heldout_documents = heldout.num_documents();
  m.train_tokens = train.total_tokens();

  // Unigram distribution of the training tokens.
  const int32_t V = vocab.vocab_size;
  std::vector<double> counts(V, 0.0);
  double total = 0;
  for (const Document& d : train.documents()) {
    for (int32_t t : d.tokens) {
      if (t >= 0 && t < V) counts[t] += 1, total += 1;
    }
  }
  m.unigram_entropy = 0;
  for (double c : counts) {
    if (c > 0) m.unigram_entropy -= (c / total) * std::log(c / total);
  }
  auto unigram_nll = [&](int32_t t) {
    const double c = (t >= 0 && t < V) ? counts[t] : 0.0;
    return -std::log((c + 0.5) / (total + 0.5 * V));
  };

  if (validation_samples > 0 && heldout.num_documents() == 0) {
    return InvalidArgumentError("validation samples need held-out documents (set heldout_every)");
  }
  std::unique_ptr<dataloader::SampleFactory> heldout_factory;
  if (validation_samples > 0) {
    heldout_factory = std::make_unique<dataloader::SampleFactory>(&heldout, vocab, sample_options);
  }
  const uint64_t per_epoch = std::max<uint64_t>(1, train.total_tokens() / static_cast<uint64_t>(m.seq_length));
  std::vector<Sample> validation;
  for (int o = 0; o < kNumObjectives; ++o) {
    m.samples_per_epoch[o] = 0;
    m.validation_samples[o] = 0;
    m.unigram_cross_entropy[o] = 0;
    if (!enabled[o]) continue;
    const Objective objective = static_cast<Objective>(o);
    m.samples_per_epoch[o] = per_epoch;
    double nll = 0, tokens = 0;
    for (int64_t i = 0; i < validation_samples; ++i) {
      GLM_ASSIGN_OR_RETURN(Sample s, heldout_factory->Make(objective, kValidationEpoch, static_cast<uint64_t>(i)));
      for (size_t k = 0; k < s.targets.size(); ++k) {
        if (s.loss_mask[k]) nll += unigram_nll(s.targets[k]), tokens += 1;
      }
      validation.push_back(std::move(s));
    }
    m.validation_samples[o] = static_cast<uint64_t>(validation_samples);
    m.unigram_cross_entropy[o] = tokens > 0 ? nll / tokens : 0;
  }
  return validation;
}

}  // namespace glm::training
