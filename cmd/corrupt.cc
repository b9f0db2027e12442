// glm corrupt: show the GLM training samples built from a corpus, exactly as
// the trainer will see them (--json), or as a readable view.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "dataloader/corpus_cli.h"
#include "dataloader/document_source.h"
#include "dataloader/hash.h"
#include "dataloader/sample_factory.h"
#include "dataloader/sample_json.h"
#include "dataloader/tokenizer.h"

namespace glm::cmd {
namespace {

using dataloader::GlmTokenizer;

struct CorruptOptions {
  dataloader::CorpusOptions corpus;
  std::string tokenizer;              // Default: none (required)
  std::string objective = "blank";    // Default: blank
  uint64_t seed = 1;                  // Default: 1
  int64_t count = 3;                  // Default: 3 samples
  int32_t seq_len = 512;              // Default: 512
  uint32_t epoch = 0;                 // Default: 0
  uint64_t start = 0;                 // Default: 0 (first sample index)
  double document_min_ratio = 0.5;    // Default: 0.5
  bool no_task_masks = false;         // Default: false ([sMASK]/[gMASK] used)
  double block_mask_prob = 0;         // Default: 0 (the reference's [dBLOCK] masking off)
  double short_seq_prob = 0;          // Default: 0 (the reference's short sequences off)
  bool json = false;                  // Default: false (readable view)
  std::string color = "auto";         // Default: auto (when stdout is a terminal)

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireOneOf("objective", objective, {"blank", "sentence", "document"}));
    GLM_RETURN_IF_ERROR(RequireAtLeast("count", count, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("seq-len", seq_len, 8));
    GLM_RETURN_IF_ERROR(RequireOneOf("color", color, {"auto", "always", "never"}));
    return Status::Ok();
  }
};

Objective ParseObjective(const std::string& name) {
  if (name == "sentence") return Objective::kSentence;
  if (name == "document") return Objective::kDocument;
  return Objective::kBlank;
}

struct Colors {
  const char* mask = "";
  const char* special = "";
  const char* span = "";
  const char* dim = "";
  const char* reset = "";
};

std::string DecodeRun(const GlmTokenizer& tok, const std::vector<int32_t>& ids) {
  auto text = tok.Decode(ids);
  return text.ok() ? *text : "<undecodable>";
}

// Part A with its masks and special tokens highlighted.
std::string ShowPartA(const GlmTokenizer& tok, const Sample& s, const Colors& c) {
  const auto& ids = tok.ids();
  std::string out;
  std::vector<int32_t> run;
  int mask_number = 0;
  for (int32_t i = 0; i < s.sep; ++i) {
    const int32_t t = s.tokens[i];
    if (t < dataloader::kNumSpecialTokens && t != ids.unk) {
      if (!run.empty()) out += DecodeRun(tok, run);
      run.clear();
      const bool is_mask = t == ids.mask || t == ids.smask || t == ids.gmask;
      // Decoded runs lose the space before their first word: put it back.
      if (!out.empty() && out.back() != ' ') out += ' ';
      out += is_mask ? c.mask : c.special;
      out += std::string(dataloader::kSpecialTokenPieces[t]);
      if (is_mask) out += "#" + std::to_string(mask_number++);
      out += c.reset;
      out += ' ';
    } else {
      run.push_back(t);
    }
  }
  if (!run.empty()) out += DecodeRun(tok, run);
  return out;
}

int Run(const CorruptOptions& o) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm corrupt: %s\n", s.message().c_str());
    return kExitUsage;
  }
  dataloader::SampleOptions so;
  so.seq_length = o.seq_len;
  so.seed = o.seed;
  so.document_min_ratio = o.document_min_ratio;
  so.task_masks = !o.no_task_masks;
  so.block_mask_prob = o.block_mask_prob;
  so.short_seq_prob = o.short_seq_prob;
  if (Status s = so.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm corrupt: %s\n", s.message().c_str());
    return kExitUsage;
  }
  auto tok = GlmTokenizer::Load(o.tokenizer);
  if (!tok.ok()) {
    std::fprintf(stderr, "glm corrupt: %s\n", tok.status().message().c_str());
    return kExitFailure;
  }
  dataloader::CorpusStats stats;
  auto docs = dataloader::TokenizeCorpus(o.corpus, **tok, &stats);
  if (!docs.ok()) {
    std::fprintf(stderr, "glm corrupt: %s\n", docs.status().message().c_str());
    return docs.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  std::fprintf(stderr, "glm corrupt: %s\n", stats.ToString().c_str());
  if (docs->empty()) {
    std::fprintf(stderr, "glm corrupt: the corpus has no documents with text\n");
    return kExitFailure;
  }
  dataloader::InMemoryDocumentSource source(std::move(*docs));
  dataloader::SampleFactory factory(&source, (*tok)->vocab(), so);
  const Objective objective = ParseObjective(o.objective);
  const bool color = o.color == "always" || (o.color == "auto" && ::isatty(STDOUT_FILENO));
  Colors c;
  if (color) c = Colors{"\033[1;30;43m", "\033[2m", "\033[32m", "\033[2m", "\033[0m"};
  std::fprintf(stderr, "glm corrupt: %llu documents, %llu tokens, manifest %s, tokenizer %s\n",
               static_cast<unsigned long long>(source.num_documents()),
               static_cast<unsigned long long>(source.total_tokens()),
               dataloader::HashToHex(source.manifest_hash()).c_str(),
               dataloader::HashToHex((*tok)->hash()).c_str());
  Sample s;
  for (int64_t k = 0; k < o.count; ++k) {
    const uint64_t index = o.start + static_cast<uint64_t>(k);
    if (Status st = factory.MakeInto(objective, o.epoch, index, &s); !st.ok()) {
      std::fprintf(stderr, "glm corrupt: sample %llu: %s\n", static_cast<unsigned long long>(index),
                   st.message().c_str());
      return kExitFailure;
    }
    if (o.json) {
      std::cout << dataloader::SampleToJsonLine(s) << "\n";
      continue;
    }
    int32_t masked = 0;
    for (auto& sp : s.spans) masked += sp.second - sp.first;
    std::cout << "== sample " << index << " (" << ObjectiveName(s.objective) << ", epoch " << s.epoch
              << "): n=" << s.source.size() << " length=" << s.tokens.size() << " sep=" << s.sep
              << " spans=" << s.spans.size() << " masked=" << masked << " ("
              << (s.source.empty() ? 0 : 100 * masked / static_cast<int>(s.source.size()))
              << "%) layout=" << (s.suffix_layout ? "suffix" : "blank") << "\n";
    std::cout << "-- Part A:\n" << ShowPartA(**tok, s, c) << "\n-- Part B (generation order):\n";
    // Number the masks in Part-A order to match the #k labels.
    std::vector<std::pair<int32_t, int32_t>> sorted = s.spans;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& sp : s.spans) {
      const int rank = static_cast<int>(std::lower_bound(sorted.begin(), sorted.end(), sp) - sorted.begin());
      std::vector<int32_t> ids(s.source.begin() + sp.first, s.source.begin() + sp.second);
      std::cout << "  #" << rank << " [" << sp.first << ", " << sp.second << ") " << c.span
                << DecodeRun(**tok, ids) << c.reset << "\n";
    }
    std::cout << std::endl;
  }
  std::cout.flush();
  return kExitOk;
}

}  // namespace

void RegisterCorruptCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<CorruptOptions>();
  CLI::App* sub = app->add_subcommand(
      "corrupt", "Show the GLM training samples built from a corpus (what the model sees)");
  AddConfigOption(sub, "");
  dataloader::AddCorpusOptions(sub, &o->corpus);
  AddOption(sub, "tokenizer", &o->tokenizer, "Tokenizer directory (glm tokenizer train)")->required();
  AddOption(sub, "objective", &o->objective, "blank ([MASK]), sentence ([sMASK]) or document ([gMASK])");
  AddOption(sub, "seed", &o->seed, "Job seed");
  AddOption(sub, "count", &o->count, "Samples to show");
  AddOption(sub, "seq-len", &o->seq_len, "Raw sample length limit");
  AddOption(sub, "epoch", &o->epoch, "Epoch");
  AddOption(sub, "start", &o->start, "First sample index");
  AddOption(sub, "document-min-ratio", &o->document_min_ratio,
            "Document objective: span >= this share of the sample (0.25 for GLM-2B/10B)");
  AddFlag(sub, "no-task-masks", &o->no_task_masks, "Use [MASK] for all objectives");
  AddOption(sub, "block-mask-prob", &o->block_mask_prob,
            "Reference extra: share of token-level Part-B inputs replaced by [dBLOCK] (2B/10B: 0.1)");
  AddOption(sub, "short-seq-prob", &o->short_seq_prob,
            "Reference extra: chance of a short-sequence sample (2B/10B: 0.02)");
  AddFlag(sub, "json", &o->json, "One JSON line per sample (fields in docs/data-pipeline.md)");
  AddOption(sub, "color", &o->color, "auto, always or never");
  registry->Add(sub, [o] { return Run(*o); });
}

}  // namespace glm::cmd
