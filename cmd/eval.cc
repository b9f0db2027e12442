// glm eval lm: zero-shot perplexity per token and per word, the reference's
// way (left to right with [gMASK], overlapping windows).
// glm eval cloze: multiple-choice cloze accuracy, candidates scored by the
// sum of their token log-probabilities when generating the blank.
// worker/training/inference.h and cloze.h hold the logic; docs/inference.md.
#include <cstdio>
#include <memory>
#include <string>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/status.h"
#include "dataloader/corpus.h"
#include "dataloader/corpus_cli.h"
#include "model/torch_env.h"
#include "worker/training/cloze.h"
#include "worker/training/inference.h"

namespace glm::cmd {
namespace {

int ExitFor(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? kExitUsage : kExitFailure;
}

int Fail(const char* name, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", name, s.message().c_str());
  return ExitFor(s);
}

struct CheckpointFlags {
  std::string checkpoint;  // Default: none (required)
  std::string tokenizer;   // Default: "" = found from the run
  int64_t threads = 0;     // Default: 0 = LibTorch's choice
  bool json = false;       // Default: false
};

void AddCheckpointFlags(CLI::App* sub, CheckpointFlags* f) {
  AddOption(sub, "checkpoint", &f->checkpoint,
            "Checkpoint directory (checkpoints/step-N) or run directory (its newest checkpoint)")
      ->required();
  AddOption(sub, "tokenizer", &f->tokenizer, "Tokenizer directory (default: <run>/tokenizer found from the checkpoint)");
  AddOption(sub, "threads", &f->threads, "Compute threads (0: LibTorch's choice)");
  AddFlag(sub, "json", &f->json, "Print the result as JSON");
}

struct EvalLmOptions {
  CheckpointFlags ckpt;
  dataloader::CorpusOptions corpus;
  training::LmEvalOptions lm;
};

int RunEvalLm(const EvalLmOptions& o) {
  const char* name = "glm eval lm";
  if (Status s = o.lm.Validate(); !s.ok()) return Fail(name, s);
  if (Status s = o.corpus.Validate(); !s.ok()) return Fail(name, s);
  if (o.ckpt.threads > 0) model::SetComputeThreads(static_cast<int>(o.ckpt.threads));
  auto loaded = training::LoadCheckpointForInference(o.ckpt.checkpoint, o.ckpt.tokenizer);
  if (!loaded.ok()) return Fail(name, loaded.status());
  std::vector<std::vector<int32_t>> documents;
  int64_t words = 0;
  dataloader::CorpusStats stats;
  Status read = dataloader::ReadCorpus(
      o.corpus,
      [&](dataloader::RawDocument&& d) {
        documents.push_back(loaded->tokenizer->Encode(d.text));
        words += training::CountWords(d.text);
        return Status::Ok();
      },
      &stats);
  if (!read.ok()) return Fail(name, read);
  if (documents.empty()) {
    return Fail(name, InvalidArgumentError("--input has no documents (files: " + std::to_string(stats.files) + ")"));
  }
  auto r = training::EvaluateLm(loaded->model, loaded->tokenizer->ids(), documents, words, o.lm);
  if (!r.ok()) return Fail(name, r.status());
  if (o.ckpt.json) {
    std::printf("%s\n", r->ToJson().c_str());
  } else {
    std::printf("checkpoint %s\n", loaded->checkpoint_dir.c_str());
    std::printf("%lld documents, %lld tokens (%lld scored), %lld words; %lld windows of %lld tokens, stride %lld\n",
                static_cast<long long>(r->documents), static_cast<long long>(r->tokens),
                static_cast<long long>(r->scored_tokens), static_cast<long long>(r->words),
                static_cast<long long>(r->windows), static_cast<long long>(r->window),
                static_cast<long long>(r->stride));
    std::printf("loss %.4f nats/token; perplexity per token %.3f, per word %.3f\n",
                r->nll / static_cast<double>(r->scored_tokens), r->token_perplexity, r->word_perplexity);
  }
  std::fflush(stdout);
  return kExitOk;
}

struct EvalClozeOptions {
  CheckpointFlags ckpt;
  std::string input;  // Default: none (required)
  training::ClozeOptions cloze;
  bool predictions = false;  // Default: false
};

int RunEvalCloze(const EvalClozeOptions& o) {
  const char* name = "glm eval cloze";
  if (Status s = o.cloze.Validate(); !s.ok()) return Fail(name, s);
  auto examples = training::ReadClozeFile(o.input, /*require_label=*/false);
  if (!examples.ok()) return Fail(name, examples.status());
  if (o.ckpt.threads > 0) model::SetComputeThreads(static_cast<int>(o.ckpt.threads));
  auto loaded = training::LoadCheckpointForInference(o.ckpt.checkpoint, o.ckpt.tokenizer);
  if (!loaded.ok()) return Fail(name, loaded.status());
  auto r = training::EvaluateCloze(loaded->model, *loaded->tokenizer, *examples, o.cloze);
  if (!r.ok()) return Fail(name, r.status());
  if (o.ckpt.json) {
    std::printf("%s\n", r->ToJson(o.predictions).c_str());
  } else {
    if (o.predictions) {
      for (size_t i = 0; i < r->predictions.size(); ++i) {
        const auto& e = (*examples)[i];
        std::printf("%s: \"%s\"%s\n", e.where.c_str(), e.choices[r->predictions[i]].c_str(),
                    e.label < 0 ? "" : (r->predictions[i] == e.label ? "  correct" : "  wrong"));
      }
    }
    std::printf("checkpoint %s\n", loaded->checkpoint_dir.c_str());
    std::printf("accuracy %.4f (%lld of %lld labeled examples; %lld examples)\n", r->accuracy,
                static_cast<long long>(r->correct), static_cast<long long>(r->labeled),
                static_cast<long long>(r->examples));
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void RegisterEvalCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* eval = app->add_subcommand("eval", "Zero-shot perplexity (eval lm) and cloze accuracy (eval cloze)");
  eval->require_subcommand(1);
  {
    auto o = std::make_shared<EvalLmOptions>();
    o->corpus.text_split = "file";  // a held-out file is one document unless asked otherwise
    CLI::App* sub = eval->add_subcommand(
        "lm", "Zero-shot language-model perplexity per token and per word on held-out text ([gMASK], sliding "
              "windows)");
    AddConfigOption(sub, "");
    AddCheckpointFlags(sub, &o->ckpt);
    dataloader::AddCorpusOptions(sub, &o->corpus);
    AddOption(sub, "window", &o->lm.window, "Tokens per window (0: the model's positions - 1)");
    AddOption(sub, "stride", &o->lm.stride, "New tokens scored per window after the first (0: window / 4)");
    AddOption(sub, "batch-size", &o->lm.batch_size, "Windows per forward pass");
    registry->Add(sub, [o] { return RunEvalLm(*o); });
  }
  {
    auto o = std::make_shared<EvalClozeOptions>();
    CLI::App* sub = eval->add_subcommand(
        "cloze", "Multiple-choice cloze accuracy; each line {\"text\": \"... [MASK] ...\", \"choices\": [...], "
                 "\"label\": k}");
    AddConfigOption(sub, "");
    AddCheckpointFlags(sub, &o->ckpt);
    AddOption(sub, "input", &o->input, "Task file (JSON lines)")->required();
    AddOption(sub, "length-penalty", &o->cloze.length_penalty,
              "Divide each candidate's score by its token count to this power (0: plain sum)");
    AddOption(sub, "batch-size", &o->cloze.batch_size, "Candidate rows per forward pass");
    AddFlag(sub, "predictions", &o->predictions, "Also print each example's prediction (and scores with --json)");
    registry->Add(sub, [o] { return RunEvalCloze(*o); });
  }
}

}  // namespace glm::cmd
