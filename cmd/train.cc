// glm train: GLM training from an existing sample store, in this process.
// glm pretrain: the whole job on a local cluster (cmd/pretrain_cluster.h):
// the runtime pipeline produces the store (tokenizer, documents, samples
// with a held-out split) while trainer processes train on it, then rank 0
// evaluates held-out loss per objective against the unigram baseline and
// shows blank-infilling examples.
// Both take every config key as a flag (docs/pretrain.md).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "cmd/commands.h"
#include "cmd/pretrain_cluster.h"
#include "common/cli.h"
#include "common/config.h"
#include "common/logging.h"
#include "cmd/train_group.h"
#include "coordinator/trainer_report.h"
#include "model/glm_config.h"
#include "worker/trainer/batch_plan.h"
#include "worker/training/dataset.h"
#include "worker/training/pretrain_config.h"
#include "worker/training/train_run.h"

namespace glm::cmd {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

// First Ctrl-C: stop after the current step with a checkpoint; a second one
// kills the process (SA_RESETHAND restores the default action).
void InstallStopHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

struct TrainCommandOptions {
  training::PretrainConfig config;
  std::string store;                 // Default: none (glm train: this or store_endpoint)
  std::string store_endpoint;        // Default: none: a storage server the pipeline fills
  std::string keys;                  // Default: "" = plain TCP: cluster keys directory
  std::string coordinator;           // Default: "" = no step reports (glm train: coordinator endpoint)
  int64_t wait_for_data_s = 600;     // Default: 600 s
  int64_t rank = 0;                  // Default: 0
  // Default: 0 = from the coordinator's trainer group with --coordinator
  // (elastic), else 1. Given: a fixed group of this size (--rank, --rendezvous).
  int64_t world_size = 0;
  std::string rendezvous = "127.0.0.1:29500";  // Default: 127.0.0.1:29500
  std::string gloo_host;             // Default: "" = the address that routes to the rendezvous host
  bool quiet = false;                // Default: false: progress lines on stderr
  std::string dashboard;             // Default: "" (pretrain: the coordinator's HTTP address)
  std::string workdir;               // Default: runs/pretrain (pretrain), runs/train (train)
  bool resume = false;               // Default: false
  int64_t trainers = 1;              // Default: 1 trainer process
  int64_t workers = 2;               // Default: 2 data worker processes (pipeline)
  bool json = false;                 // Default: false: human summary; true: the eval JSON on stdout
};

void AddConfigFlags(CLI::App* sub, training::PretrainConfig* c) {
  AddOption(sub, "preset", &c->model_preset, "Model preset (tiny, small, base, ...)");
  AddOption(sub, "corpus", &c->corpus, "Corpus paths or globs, comma-separated");
  AddOption(sub, "vocab-size", &c->vocab_size, "SentencePiece pieces of the tokenizer");
  AddOption(sub, "tokenizer-max-sentences", &c->tokenizer_max_sentences, "Tokenizer training sentences");
  AddOption(sub, "seq-length", &c->seq_length, "Raw sample length (tokens)");
  AddOption(sub, "heldout-every", &c->heldout_every, "Hold out documents with id % N == N-1");
  AddOption(sub, "validation-samples", &c->validation_samples, "Held-out samples per objective");
  AddOption(sub, "data-seed", &c->data_seed, "Seed of the samples");
  AddOption(sub, "objectives-blank", &c->objective_weights[0], "Weight of the blank objective");
  AddOption(sub, "objectives-sentence", &c->objective_weights[1], "Weight of the sentence objective");
  AddOption(sub, "objectives-document", &c->objective_weights[2], "Weight of the document objective");
  AddOption(sub, "max-steps", &c->max_steps, "Optimizer steps");
  AddOption(sub, "global-batch-size", &c->global_batch_size, "Samples per step");
  AddOption(sub, "micro-batch-size", &c->micro_batch_size, "Samples per forward/backward");
  AddOption(sub, "lr", &c->lr, "Peak learning rate");
  AddOption(sub, "warmup", &c->warmup, "Warmup fraction of the steps");
  AddOption(sub, "decay", &c->decay, "LR decay: cosine, linear, constant");
  AddOption(sub, "min-lr-ratio", &c->min_lr_ratio, "Final LR as a fraction of the peak");
  AddOption(sub, "weight-decay", &c->weight_decay, "AdamW weight decay");
  AddOption(sub, "checkpoint-every", &c->checkpoint_every, "Checkpoint every N steps (0: at the end)");
  AddOption(sub, "keep-checkpoints", &c->keep_checkpoints, "Checkpoints kept");
  AddOption(sub, "seed", &c->seed, "Seed of the weights and dropout");
  AddOption(sub, "threads", &c->threads, "Compute threads (0: LibTorch's choice)");
  AddOption(sub, "overlap-allreduce", &c->overlap_allreduce,
            "With several trainers, all-reduce gradient buckets during backward (true) or after it (false)");
  AddOption(sub, "infill-examples", &c->infill_examples, "Held-out blank-infilling examples shown");
}

// Applies the embedded configs/default.yaml to every option not already set
// by a flag, a GLM_* variable or a --config file.
Status ApplyEmbeddedDefault(CLI::App* sub) {
  GLM_ASSIGN_OR_RETURN(std::vector<ConfigEntry> entries,
                       ParseYamlConfig(training::EmbeddedDefaultConfig(), "embedded configs/default.yaml"));
  for (ConfigEntry& e : entries) {
    CLI::Option* opt = sub->get_option_no_throw("--" + e.key);
    if (opt == nullptr) return InternalError("embedded configs/default.yaml: unknown key " + e.key);
    if (opt->count() > 0) continue;
    try {
      opt->add_result(e.values);
      opt->run_callback();
    } catch (const CLI::ParseError& err) {
      return InternalError("embedded configs/default.yaml: " + e.key + ": " + err.what());
    }
  }
  return Status::Ok();
}

void PrintSummary(const training::TrainRunResult& r) {
  std::printf("trained steps %lld..%lld in %.1f s; training loss %.3f -> %.3f (mean of the last steps)\n",
              static_cast<long long>(r.start_step), static_cast<long long>(r.final_step), r.seconds, r.first_loss,
              r.last_loss);
  std::printf("checkpoint: %s\n", r.checkpoint.c_str());
  std::printf("held-out loss per objective (nats/token) vs the corpus's unigram entropy %.3f:\n", r.unigram_entropy);
  for (const auto& e : r.eval) {
    std::printf("  %-9s %7.3f   %+.3f below the unigram entropy   (%.0f tokens; unigram cross-entropy of these "
                "targets incl. [eop]: %.3f)\n",
                std::string(ObjectiveName(e.objective)).c_str(), e.loss, r.unigram_entropy - e.loss, e.tokens,
                e.unigram);
  }
  for (size_t i = 0; i < r.infill.size(); ++i) {
    const auto& x = r.infill[i];
    std::string context = x.context;
    if (context.size() > 600) context = context.substr(0, 600) + " ...";
    std::printf("infill example %zu (held-out):\n  %s\n", i + 1, context.c_str());
    for (size_t k = 0; k < x.truth.size(); ++k) {
      std::printf("    blank %zu: truth \"%s\" | greedy \"%s\"\n", k + 1, x.truth[k].c_str(), x.generated[k].c_str());
    }
  }
  std::fflush(stdout);
}

int Finish(const char* name, const StatusOr<training::TrainRunResult>& r, bool json) {
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", name, r.status().message().c_str());
    return r.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  if (json) {
    std::printf("%s\n", r->ToJson().c_str());
  } else if (!r->stopped) {
    PrintSummary(*r);
  }
  return r->stopped ? 130 : kExitOk;
}

// What glm train checks before it starts (also its --check-args).
Status CheckTrainArgs(const TrainCommandOptions& o) {
  if (o.store.empty() == o.store_endpoint.empty()) {
    return InvalidArgumentError(
        "give the samples as exactly one of --store DIR (a store made by glm pretrain) or "
        "--store-endpoint tcp://HOST:PORT (a storage server the pipeline fills)");
  }
  if (!o.store_endpoint.empty()) GLM_RETURN_IF_ERROR(CheckEndpoint("store-endpoint", o.store_endpoint));
  GLM_RETURN_IF_ERROR(o.config.Validate());
  if (o.world_size == 0 && o.coordinator.empty() && o.rank != 0) {
    return InvalidArgumentError("--rank " + std::to_string(o.rank) + " needs --world-size (or --coordinator, whose "
                                "trainer group assigns ranks)");
  }
  if (o.world_size != 0 && (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)) {
    return InvalidArgumentError("--rank " + std::to_string(o.rank) + " must be in [0, --world-size " +
                                std::to_string(o.world_size) + ")");
  }
  if (o.world_size > 1) {
    const size_t colon = o.rendezvous.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == o.rendezvous.size() ||
        o.rendezvous.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
      return InvalidArgumentError("--rendezvous '" + o.rendezvous + "' must be HOST:PORT (rank 0 hosts it)");
    }
  }
  if (o.wait_for_data_s < 1) return InvalidArgumentError("--wait-for-data-s must be at least 1");
  return Status::Ok();
}

int RunTrain(const TrainCommandOptions& o) {
  InitLogging("train").IgnoreError();
  if (Status s = CheckTrainArgs(o); !s.ok()) {
    std::fprintf(stderr, "glm train: %s\n", s.message().c_str());
    return kExitUsage;
  }
  InstallStopHandler();
  training::TrainRunOptions t;
  t.config = o.config;
  t.store_dir = o.store;
  t.store_endpoint = o.store_endpoint;
  t.keys_dir = o.keys;
  t.wait_for_data_ms = o.wait_for_data_s * 1000;
  t.rank = o.world_size == 0 ? 0 : o.rank;  // in a trainer group, --rank is only a preference
  t.world_size = std::max<int64_t>(1, o.world_size);
  t.rendezvous = o.rendezvous;
  t.gloo_host = o.gloo_host;
  t.progress = !o.quiet;
  t.workdir = o.workdir.empty() ? "runs/train" : o.workdir;
  t.resume = o.resume;
  t.stop = &g_stop;
  // Each step reported to the coordinator (dashboard, /metrics, glm status;
  // back-pressure): coordinator/trainer_report.h. Failures are logged, never fatal.
  std::unique_ptr<coordinator::TrainerReporter> reporter;
  std::unique_ptr<CoordinatorTrainerGroup> group;  // destroyed before the reporter
  std::optional<trainer::ObjectiveMixer> mixer;
  auto last_checkpoint = std::make_shared<std::pair<int64_t, double>>(-1, 0.0);  // step, blocked ms
  t.on_checkpoint = [last_checkpoint](int64_t step, double blocked_ms) { *last_checkpoint = {step, blocked_ms}; };
  if (!o.coordinator.empty()) {
    auto connected = coordinator::TrainerReporter::Connect(o.coordinator, o.keys);
    if (!connected.ok()) {
      std::fprintf(stderr, "glm train: --coordinator %s: %s\n", o.coordinator.c_str(),
                   connected.status().message().c_str());
      return kExitUsage;
    }
    reporter = std::move(connected).value();
    if (o.world_size == 0) {
      // Elastic: the coordinator's trainer group decides membership,
      // rendezvous, checkpoints and stops (coordinator/trainer_group.h).
      group = std::make_unique<CoordinatorTrainerGroup>(reporter.get(), o.coordinator, &g_stop, o.rank);
      t.group = group.get();
      spdlog::info("trainer {} joins the trainer group of {}", group->trainer_id(), o.coordinator);
    }
    trainer::MixerOptions mixer_options;
    mixer_options.weights = o.config.objective_weights;
    auto created = trainer::ObjectiveMixer::Create(mixer_options, o.config.global_batch_size);
    if (created.ok()) mixer = std::move(created).value();
    const int64_t checkpoint_every = o.config.checkpoint_every;
    const int64_t max_steps = o.config.max_steps;
    t.on_step = [&reporter, &mixer, checkpoint_every, max_steps, last_checkpoint,
                 failures = int64_t{0}](const trainer::StepMetrics& m) mutable {
      coordinator::TrainerReport r;
      r.trainer_id = "trainer/" + std::to_string(m.rank);
      r.rank = m.rank;
      r.world_size = m.world_size;
      r.step = m.step;
      r.max_steps = max_steps;
      r.loss = m.loss;
      for (int k = 0; k < 3; ++k) {
        r.objective_loss[k] = m.objective_samples[k] == 0 ? NAN : m.objective_loss[k];
        r.objective_samples[k] = mixer ? static_cast<int64_t>(mixer->ConsumedAfter(m.step)[k]) : 0;
      }
      r.lr = m.lr;
      r.grad_norm = m.grad_norm;
      r.tokens_per_s = m.tokens_per_s / static_cast<double>(std::max<int64_t>(1, m.world_size));  // this rank's share
      r.data_wait_ms = m.data_wait_ms;
      r.allreduce_ms = m.allreduce_ms;
      r.step_ms = m.step_ms;
      // A checkpoint is written at every checkpoint_every-th step; its cost to
      // training is the time the step was blocked by it.
      // (The group's checkpoints at other boundaries come through on_checkpoint.)
      if (checkpoint_every > 0 && m.step % checkpoint_every == 0) *last_checkpoint = {m.step, m.checkpoint_block_ms};
      r.checkpoint_step = last_checkpoint->first;
      r.checkpoint_ms = last_checkpoint->second;
      Status s = reporter->Report(r);
      if (!s.ok() && failures++ % 100 == 0) {
        spdlog::warn("step {}: report to the coordinator failed ({} so far): {}", m.step, failures, s.message());
      }
    };
  }
  return Finish("glm train", training::RunTraining(t), o.json);
}

// glm pretrain builds its store with --seq-length: say before any work
// (tokenizer training, the pipeline) when the preset cannot take it.
Status ValidatePretrainConfig(const training::PretrainConfig& c) {
  GLM_RETURN_IF_ERROR(c.Validate());
  GLM_ASSIGN_OR_RETURN(model::GlmConfig preset, model::GlmConfig::FromPreset(c.model_preset));
  if (c.seq_length > preset.max_sequence_length) {
    return InvalidArgumentError("seq-length " + std::to_string(c.seq_length) + " is longer than preset " +
                                c.model_preset + "'s max_sequence_length " +
                                std::to_string(preset.max_sequence_length) + "; HINT: pass --seq-length " +
                                std::to_string(preset.max_sequence_length) + " or a larger --preset");
  }
  return Status::Ok();
}

int RunPretrain(const TrainCommandOptions& o) {
  InitLogging("pretrain").IgnoreError();
  if (Status s = ValidatePretrainConfig(o.config); !s.ok()) {
    std::fprintf(stderr, "glm pretrain: %s\n", s.message().c_str());
    return kExitUsage;
  }
  InstallStopHandler();
  LocalPretrainOptions p;
  p.config = o.config;
  p.workdir = o.workdir.empty() ? "runs/pretrain" : o.workdir;
  p.resume = o.resume;
  p.trainers = o.trainers;
  p.workers = o.workers;
  p.json = o.json;
  p.dashboard = o.dashboard;
  return RunLocalPretrain(p, &g_stop);
}

}  // namespace

void RegisterTrainCommands(CLI::App* app, CommandRegistry* registry) {
  {
    auto opts = std::make_shared<TrainCommandOptions>();
    CLI::App* sub = app->add_subcommand("train", "Train GLM on the samples of an existing store, in this process");
    AddConfigOption(sub, "");
    AddOption(sub, "store", &opts->store, "Sample store directory (made by glm pretrain), read-only");
    AddOption(sub, "store-endpoint", &opts->store_endpoint,
              "Storage server (glm store serve) the pipeline fills, tcp://HOST:PORT; missing samples are waited for");
    AddOption(sub, "keys", &opts->keys, "Cluster keys directory (client.pub, client.secret, server.pub); \"\" = plain TCP");
    AddOption(sub, "coordinator", &opts->coordinator,
              "Coordinator endpoint (tcp://HOST:PORT): each step is reported to it and, without --world-size, its "
              "trainer group decides rank, rendezvous, membership changes and checkpoints (\"\" = none)");
    AddOption(sub, "wait-for-data-s", &opts->wait_for_data_s, "Longest wait for the dataset manifest or a sample");
    AddOption(sub, "rank", &opts->rank, "This trainer's data-parallel rank");
    AddOption(sub, "world-size", &opts->world_size,
              "Data-parallel trainers in a fixed group (with --rank, --rendezvous); 0 = with --coordinator, the "
              "coordinator's elastic trainer group decides, else 1");
    AddOption(sub, "rendezvous", &opts->rendezvous, "HOST:PORT of the Gloo rendezvous store (rank 0 hosts it)");
    AddOption(sub, "gloo-host", &opts->gloo_host,
              "Address other trainers reach this one at (\"\" = the local address routing to the rendezvous host)");
    AddFlag(sub, "quiet", &opts->quiet, "No progress lines (ranks other than 0)");
    AddOption(sub, "workdir", &opts->workdir, "Run directory: checkpoints, metrics.jsonl, eval.json (default runs/train)");
    AddFlag(sub, "resume", &opts->resume, "Continue from the latest checkpoint in the workdir");
    AddFlag(sub, "json", &opts->json, "Print the final evaluation as JSON");
    AddConfigFlags(sub, &opts->config);
    registry->Add(sub, [opts] { return RunTrain(*opts); }, [opts] { return CheckTrainArgs(*opts); });
  }
  {
    auto opts = std::make_shared<TrainCommandOptions>();
    CLI::App* sub = app->add_subcommand(
        "pretrain",
        "Run a whole pretraining job: data, training, held-out evaluation, infilling (default config: "
        "preset small on the State of the Union corpus, embedded configs/default.yaml)");
    AddConfigOption(sub, "");
    AddOption(sub, "workdir", &opts->workdir, "Run directory (default runs/pretrain)");
    AddFlag(sub, "resume", &opts->resume, "Continue from the latest checkpoint in the workdir");
    AddOption(sub, "trainers", &opts->trainers, "Data-parallel trainer processes (Gloo); divides global-batch-size");
    AddOption(sub, "workers", &opts->workers, "Data worker processes of the pipeline (1 cpu each)");
    AddOption(sub, "dashboard", &opts->dashboard,
              "Serve the live dashboard and /metrics on HOST:PORT (e.g. 127.0.0.1:8265; port 0 = any); "
              "its URL goes to WORKDIR/dashboard.url (\"\" = off)");
    AddFlag(sub, "json", &opts->json, "Print the final evaluation as JSON");
    AddConfigFlags(sub, &opts->config);
    registry->Add(sub, [opts, sub] {
      if (sub->get_option("--config")->count() == 0) {
        if (Status s = ApplyEmbeddedDefault(sub); !s.ok()) {
          std::fprintf(stderr, "glm pretrain: %s\n", s.message().c_str());
          return kExitFailure;
        }
      }
      return RunPretrain(*opts);
    }, [opts, sub] {
      if (sub->get_option("--config")->count() == 0) GLM_RETURN_IF_ERROR(ApplyEmbeddedDefault(sub));
      return ValidatePretrainConfig(opts->config);
    });
  }
}

}  // namespace glm::cmd
