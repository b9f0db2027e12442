// glm infill: fill the [MASK] / [sMASK] / [gMASK] blanks of a text with a
// trained model, one blank after another, with the KV cache
// (worker/training/inference.h, docs/inference.md).
#include <cstdio>
#include <memory>
#include <string>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/status.h"
#include "model/torch_env.h"
#include "worker/training/inference.h"

namespace glm::cmd {
namespace {

struct InfillCommandOptions {
  std::string checkpoint;  // Default: none (required)
  std::string tokenizer;   // Default: "" = found from the run (<workdir>/tokenizer)
  std::string text;        // Default: none (required)
  training::SamplingOptions sampling;
  int64_t threads = 0;     // Default: 0 = LibTorch's choice
  bool json = false;       // Default: false
};

int ExitFor(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? kExitUsage : kExitFailure;
}

int RunInfill(const InfillCommandOptions& o) {
  if (o.text.empty()) {
    std::fprintf(stderr, "glm infill: --text is required; %s\n", training::kBlankHint);
    return kExitUsage;
  }
  if (Status s = o.sampling.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm infill: %s\n", s.message().c_str());
    return kExitUsage;
  }
  if (o.threads > 0) model::SetComputeThreads(static_cast<int>(o.threads));
  auto loaded = training::LoadCheckpointForInference(o.checkpoint, o.tokenizer);
  if (!loaded.ok()) {
    std::fprintf(stderr, "glm infill: %s\n", loaded.status().message().c_str());
    return ExitFor(loaded.status());
  }
  auto r = training::InfillText(loaded->model, *loaded->tokenizer, o.text, o.sampling);
  if (!r.ok()) {
    std::fprintf(stderr, "glm infill: %s\n", r.status().message().c_str());
    return ExitFor(r.status());
  }
  if (o.json) {
    std::printf("%s\n", r->ToJson().c_str());
    return kExitOk;
  }
  std::printf("%s\n", r->filled.c_str());
  for (size_t i = 0; i < r->blanks.size(); ++i) {
    const auto& b = r->blanks[i];
    std::printf("  blank %zu %s: \"%s\"%s\n", i + 1, b.kind.c_str(), b.fill.c_str(),
                b.ended ? "" : "  (stopped at --max-tokens)");
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void RegisterInfillCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<InfillCommandOptions>();
  CLI::App* sub = app->add_subcommand(
      "infill",
      "Fill [MASK]/[sMASK]/[gMASK] blanks in text with a trained model, one blank after another (greedy by "
      "default; --temperature/--top-k/--top-p sample)");
  AddConfigOption(sub, "");
  AddOption(sub, "checkpoint", &o->checkpoint,
            "Checkpoint directory (checkpoints/step-N) or run directory (its newest checkpoint)")
      ->required();
  AddOption(sub, "tokenizer", &o->tokenizer, "Tokenizer directory (default: <run>/tokenizer found from the checkpoint)");
  AddOption(sub, "text", &o->text, "Text with blanks, e.g. \"The [MASK] of the union is strong.\"");
  AddOption(sub, "temperature", &o->sampling.temperature,
            "Sampling temperature; 0 = greedy unless --top-k/--top-p are set (then 1)");
  AddOption(sub, "top-k", &o->sampling.top_k, "Sample among the k most likely tokens (0: off)");
  AddOption(sub, "top-p", &o->sampling.top_p, "Sample among the most likely tokens with this total mass (0: off)");
  AddOption(sub, "seed", &o->sampling.seed, "Seed of the sampler");
  AddOption(sub, "max-tokens", &o->sampling.max_tokens, "Generated tokens per blank at most");
  AddOption(sub, "min-tokens", &o->sampling.min_tokens, "Tokens per blank before [eop] may end it");
  AddOption(sub, "threads", &o->threads, "Compute threads (0: LibTorch's choice)");
  AddFlag(sub, "json", &o->json, "Print the result as JSON");
  registry->Add(sub, [o] { return RunInfill(*o); });
}

}  // namespace glm::cmd
