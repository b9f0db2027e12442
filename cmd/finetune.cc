// glm finetune cloze: the paper's cloze fine-tuning (cross-entropy over the
// candidates' scores) from a checkpoint, writing a new self-contained
// checkpoint directory (model.safetensors, config.json, tokenizer/,
// finetune.json) that glm infill / glm eval load. worker/training/cloze.h
// holds the logic; docs/inference.md.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/status.h"
#include "model/safetensors.h"
#include "model/torch_env.h"
#include "worker/training/cloze.h"
#include "worker/training/inference.h"

namespace glm::cmd {
namespace {
namespace fs = std::filesystem;

struct FinetuneClozeOptions {
  std::string checkpoint;  // Default: none (required)
  std::string tokenizer;   // Default: "" = found from the run
  std::string input;       // Default: none (required): training task file
  std::string eval;        // Default: "" = no evaluation file
  std::string output;      // Default: none (required): the new checkpoint directory
  training::ClozeFinetuneOptions train;
  int64_t threads = 0;     // Default: 0 = LibTorch's choice
  bool json = false;       // Default: false
};

int Fail(const Status& s) {
  std::fprintf(stderr, "glm finetune cloze: %s\n", s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? kExitUsage : kExitFailure;
}

// Copies the tokenizer directory into <output>/tokenizer (replacing one there).
Status CopyTokenizer(const std::string& from, const std::string& output) {
  const fs::path to = fs::path(output) / "tokenizer";
  std::error_code ec;
  if (fs::equivalent(from, to, ec)) return Status::Ok();
  fs::remove_all(to, ec);
  fs::create_directories(to, ec);
  if (ec) return InternalError("cannot create " + to.string() + ": " + ec.message());
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) return InternalError("cannot copy the tokenizer " + from + " to " + to.string() + ": " + ec.message());
  return Status::Ok();
}

int RunFinetuneCloze(const FinetuneClozeOptions& o) {
  if (o.output.empty()) return Fail(InvalidArgumentError("--output DIR is required (the new checkpoint directory)"));
  if (Status s = o.train.Validate(); !s.ok()) return Fail(s);
  auto train = training::ReadClozeFile(o.input, /*require_label=*/true);
  if (!train.ok()) return Fail(train.status());
  std::vector<training::ClozeExample> eval;
  if (!o.eval.empty()) {
    auto e = training::ReadClozeFile(o.eval, /*require_label=*/true);
    if (!e.ok()) return Fail(e.status());
    eval = std::move(*e);
  }
  if (o.threads > 0) model::SetComputeThreads(static_cast<int>(o.threads));
  auto loaded = training::LoadCheckpointForInference(o.checkpoint, o.tokenizer);
  if (!loaded.ok()) return Fail(loaded.status());
  std::fprintf(stderr, "glm finetune cloze: %zu training examples, %zu eval examples, from %s\n", train->size(),
               eval.size(), loaded->checkpoint_dir.c_str());
  auto progress = [](const training::ClozeEpoch& e) {
    if (e.epoch == 0) {
      if (e.eval_accuracy >= 0) std::fprintf(stderr, "before training: eval accuracy %.4f\n", e.eval_accuracy);
      return;
    }
    std::fprintf(stderr, "epoch %lld: train loss %.4f, train accuracy %.4f", static_cast<long long>(e.epoch),
                 e.train_loss, e.train_accuracy);
    if (e.eval_accuracy >= 0) std::fprintf(stderr, ", eval accuracy %.4f", e.eval_accuracy);
    std::fprintf(stderr, " (%.1f s)\n", e.seconds);
  };
  auto r = training::FinetuneCloze(loaded->model, *loaded->tokenizer, *train, eval, o.train, progress);
  if (!r.ok()) return Fail(r.status());
  if (Status s = model::SaveModel(loaded->model, o.output); !s.ok()) return Fail(s);
  if (Status s = CopyTokenizer(loaded->tokenizer_dir, o.output); !s.ok()) return Fail(s);
  const std::string report = r->ToJson();
  std::ofstream(fs::path(o.output) / "finetune.json") << report << "\n";
  if (o.json) {
    std::printf("%s\n", report.c_str());
  } else {
    std::printf("fine-tuned %lld steps; checkpoint written to %s\n", static_cast<long long>(r->steps),
                o.output.c_str());
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void RegisterFinetuneCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* finetune = app->add_subcommand("finetune", "Fine-tune a checkpoint on a task (finetune cloze)");
  finetune->require_subcommand(1);
  auto o = std::make_shared<FinetuneClozeOptions>();
  CLI::App* sub = finetune->add_subcommand(
      "cloze", "Cloze fine-tuning: cross-entropy over the candidates' summed log-probabilities; writes a new "
               "checkpoint directory");
  AddConfigOption(sub, "");
  AddOption(sub, "checkpoint", &o->checkpoint,
            "Checkpoint directory (checkpoints/step-N) or run directory (its newest checkpoint)")
      ->required();
  AddOption(sub, "tokenizer", &o->tokenizer, "Tokenizer directory (default: <run>/tokenizer found from the checkpoint)");
  AddOption(sub, "input", &o->input, "Training task file (JSON lines with text, choices, label)")->required();
  AddOption(sub, "eval", &o->eval, "Evaluation task file, scored before training and after every epoch");
  AddOption(sub, "output", &o->output, "New checkpoint directory to write")->required();
  AddOption(sub, "epochs", &o->train.epochs, "Passes over the training examples");
  AddOption(sub, "batch-size", &o->train.batch_size, "Examples per optimizer step");
  AddOption(sub, "lr", &o->train.lr, "Peak learning rate (linear warmup, then linear decay to 0)");
  AddOption(sub, "warmup", &o->train.warmup, "Warmup fraction of the steps");
  AddOption(sub, "weight-decay", &o->train.weight_decay, "AdamW weight decay (not on biases and LayerNorm)");
  AddOption(sub, "beta1", &o->train.beta1, "AdamW beta1");
  AddOption(sub, "beta2", &o->train.beta2, "AdamW beta2");
  AddOption(sub, "clip-grad", &o->train.clip_grad, "Global gradient-norm clip (0: off)");
  AddOption(sub, "length-penalty", &o->train.cloze.length_penalty,
            "Divide each candidate's score by its token count to this power (0: plain sum)");
  AddOption(sub, "seed", &o->train.seed, "Seed of the example order and dropout");
  AddOption(sub, "threads", &o->threads, "Compute threads (0: LibTorch's choice)");
  AddFlag(sub, "json", &o->json, "Print the per-epoch report as JSON");
  registry->Add(sub, [o] { return RunFinetuneCloze(*o); });
}

}  // namespace glm::cmd
