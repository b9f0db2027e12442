// glm bench corrupt: single-thread speed of building GLM samples
// (SampleFactory::MakeInto, raw sample + corruption + output arrays).
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <iostream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "dataloader/corpus_cli.h"
#include "dataloader/document_source.h"
#include "dataloader/philox.h"
#include "dataloader/sample_factory.h"
#include "dataloader/tokenizer.h"

namespace glm::cmd {
namespace {

struct BenchCorruptOptions {
  std::string objective = "blank";   // Default: blank
  int32_t seq_len = 512;             // Default: 512
  int64_t samples = 200000;          // Default: 200000 timed samples
  int64_t documents = 2000;          // Default: 2000 synthetic documents
  int32_t max_doc_tokens = 4096;     // Default: 4096; synthetic lengths uniform in [16, this]
  dataloader::CorpusOptions corpus;  // Default: none = the synthetic corpus
  std::string tokenizer;             // Default: none (needed with --input)

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireOneOf("objective", objective, {"blank", "sentence", "document"}));
    GLM_RETURN_IF_ERROR(RequireAtLeast("seq-len", seq_len, 8));
    GLM_RETURN_IF_ERROR(RequireAtLeast("samples", samples, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("documents", documents, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("max-doc-tokens", max_doc_tokens, 17));
    if (!corpus.paths.empty()) GLM_RETURN_IF_ERROR(RequireNonEmpty("tokenizer", tokenizer));
    return Status::Ok();
  }
};

// Synthetic vocabulary of 8000 pieces, one in 16 ending a sentence.
dataloader::VocabInfo SyntheticVocab() {
  dataloader::VocabInfo v;
  v.vocab_size = 8000;
  v.padded_vocab_size = dataloader::PadVocabSize(8000);
  v.hash = 1;
  v.ends_sentence.assign(8000, 0);
  for (int i = dataloader::kNumSpecialTokens; i < 8000; i += 16) v.ends_sentence[i] = 1;
  return v;
}

std::vector<Document> SyntheticDocuments(const BenchCorruptOptions& o) {
  dataloader::SampleRng rng(12345, 0, 0);
  std::vector<Document> docs(static_cast<size_t>(o.documents));
  for (auto& d : docs) {
    const int32_t len = 16 + static_cast<int32_t>(rng.Uniform(static_cast<uint32_t>(o.max_doc_tokens - 15)));
    d.tokens.resize(len);
    for (int32_t i = 0; i + 1 < len; ++i) {
      d.tokens[i] = dataloader::kNumSpecialTokens + static_cast<int32_t>(rng.Uniform(8000 - dataloader::kNumSpecialTokens));
    }
    d.tokens[len - 1] = dataloader::SpecialTokenIds().eod;
  }
  return docs;
}

// CPU time of this thread: on a shared machine wall time also counts the
// time other processes held the core.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

int Run(const BenchCorruptOptions& o) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench corrupt: %s\n", s.message().c_str());
    return kExitUsage;
  }
  std::vector<Document> docs;
  dataloader::VocabInfo vocab;
  std::string corpus_name = "synthetic";
  if (o.corpus.paths.empty()) {
    docs = SyntheticDocuments(o);
    vocab = SyntheticVocab();
  } else {
    auto tok = dataloader::GlmTokenizer::Load(o.tokenizer);
    if (!tok.ok()) {
      std::fprintf(stderr, "glm bench corrupt: %s\n", tok.status().message().c_str());
      return kExitFailure;
    }
    dataloader::CorpusStats stats;
    auto read = dataloader::TokenizeCorpus(o.corpus, **tok, &stats);
    if (!read.ok() || read->empty()) {
      std::fprintf(stderr, "glm bench corrupt: %s\n",
                   read.ok() ? "the corpus is empty" : read.status().message().c_str());
      return kExitFailure;
    }
    docs = std::move(*read);
    vocab = (*tok)->vocab();
    corpus_name = o.corpus.paths.front();
  }
  dataloader::InMemoryDocumentSource source(std::move(docs));
  dataloader::SampleOptions so;
  so.seq_length = o.seq_len;
  dataloader::SampleFactory factory(&source, vocab, so);
  const Objective objective = o.objective == "sentence"   ? Objective::kSentence
                              : o.objective == "document" ? Objective::kDocument
                                                          : Objective::kBlank;
  Sample s;
  // Warm-up: grows the reused buffers to their working size.
  for (uint64_t i = 0; i < 2000; ++i) {
    if (Status st = factory.MakeInto(objective, 0, 1000000000ULL + i, &s); !st.ok()) {
      std::fprintf(stderr, "glm bench corrupt: %s\n", st.message().c_str());
      return kExitFailure;
    }
  }
  uint64_t tokens = 0, source_tokens = 0;
  const double cpu0 = ThreadCpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.samples; ++i) {
    factory.MakeInto(objective, 0, static_cast<uint64_t>(i), &s).IgnoreError();
    tokens += s.tokens.size();
    source_tokens += s.source.size();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu_seconds = ThreadCpuSeconds() - cpu0;
  nlohmann::json j = {{"bench", "corrupt"},
                      {"objective", o.objective},
                      {"seq_len", o.seq_len},
                      {"corpus", corpus_name},
                      {"documents", source.num_documents()},
                      {"samples", o.samples},
                      {"threads", 1},
                      {"seconds", seconds},
                      {"cpu_seconds", cpu_seconds},
                      {"samples_per_s", o.samples / seconds},
                      {"tokens_per_s", tokens / seconds},
                      {"samples_per_cpu_s", o.samples / cpu_seconds},
                      {"tokens_per_cpu_s", tokens / cpu_seconds},
                      {"mean_sample_tokens", static_cast<double>(tokens) / o.samples},
                      {"mean_source_tokens", static_cast<double>(source_tokens) / o.samples}};
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterBenchCorruptCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* bench = app->get_subcommand("bench");
  auto o = std::make_shared<BenchCorruptOptions>();
  CLI::App* sub = bench->add_subcommand(
      "corrupt", "GLM sample construction speed on one thread (samples/s, tokens/s)");
  AddConfigOption(sub, "");
  AddOption(sub, "objective", &o->objective, "blank, sentence or document");
  AddOption(sub, "seq-len", &o->seq_len, "Raw sample length limit");
  AddOption(sub, "samples", &o->samples, "Timed samples");
  AddOption(sub, "documents", &o->documents, "Synthetic corpus: number of documents");
  AddOption(sub, "max-doc-tokens", &o->max_doc_tokens, "Synthetic corpus: longest document");
  dataloader::AddCorpusOptions(sub, &o->corpus, /*required=*/false);
  AddOption(sub, "tokenizer", &o->tokenizer, "Tokenizer directory (with --input)");
  registry->Add(sub, [o] { return Run(*o); });
}

}  // namespace glm::cmd
