// glm bench train: the speed of one GLM training step (forward, Part-B loss,
// backward, AdamW) on a synthetic blank-infilling batch. Prints one JSON line;
// never asserts timings (docs/benchmarks.md says how to read it).
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "cmd/model_commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "model/batch.h"
#include "model/glm_config.h"
#include "model/glm_model.h"
#include "model/loss.h"
#include "model/torch_env.h"
#include "worker/trainer/optimizer.h"

namespace glm::cmd {
namespace {

struct BenchTrainOptions {
  std::string preset = "small";  // Default: small
  int64_t layers = 0;            // Default: 0 = the preset's
  int64_t hidden = 0;            // Default: 0 = the preset's
  int64_t heads = 0;             // Default: 0 = the preset's
  int64_t vocab = 0;             // Default: 0 = the preset's (padded to a multiple of 128)
  int64_t seq_len = 512;         // Default: 512 tokens per row (Part A + Part B)
  int64_t micro_batch = 4;       // Default: 4 rows
  int steps = 5;                 // Default: 5 timed steps
  int warmup = 1;                // Default: 1 untimed step first
  double part_b_fraction = 0.2;  // Default: 0.2 of each row is Part B (the loss positions)
  int threads = 0;               // Default: 0 = leave LibTorch's and OpenBLAS's settings
  double peak_gflops = 0;        // Default: 0 = measure the float32 2048^3 GEMM peak first
  double dropout = 0.1;          // Default: 0.1 (as the reference's pretraining)
  // Default: false. Also time the LibTorch-ops AdamW update (AdamWOptions::fused
  // = false) on the same gradients each step, after the fused one.
  bool compare_adamw = false;

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("seq-len", seq_len, 2));
    GLM_RETURN_IF_ERROR(RequireAtLeast("micro-batch", micro_batch, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("steps", steps, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("warmup", warmup, 0));
    GLM_RETURN_IF_ERROR(RequireInRange("part-b-fraction", part_b_fraction, 0.01, 0.99));
    GLM_RETURN_IF_ERROR(RequireInRange("dropout", dropout, 0, 0.9));
    return Status::Ok();
  }
};

// A blank-infilling-shaped batch: Part A positions 0..sep-1; Part B spans of
// 4 tokens, each at a random mask position, block positions 1..4; loss on
// Part B.
model::Batch SyntheticBatch(const model::GlmConfig& c, int64_t rows, int64_t seq, double part_b) {
  torch::manual_seed(1);
  const int64_t sep = std::max<int64_t>(1, seq - static_cast<int64_t>(part_b * static_cast<double>(seq)));
  model::Batch b;
  b.tokens = torch::randint(c.vocab_size, {rows, seq}, torch::kInt64);
  b.targets = torch::randint(c.vocab_size, {rows, seq}, torch::kInt64);
  b.position_ids = torch::arange(seq, torch::kInt64).clamp_max(c.max_sequence_length).repeat({rows, 1});
  b.block_position_ids = torch::zeros({rows, seq}, torch::kInt64);
  b.loss_mask = torch::zeros({rows, seq}, torch::kFloat32);
  for (int64_t j = sep; j < seq; ++j) {
    const int64_t span = (j - sep) / 4;
    b.position_ids.index_put_({torch::indexing::Slice(), j}, std::min(sep - 1, (span * 7919) % sep));
    b.block_position_ids.index_put_({torch::indexing::Slice(), j}, (j - sep) % 4 + 1);
    b.loss_mask.index_put_({torch::indexing::Slice(), j}, 1.0);
  }
  b.sep = torch::full({rows}, sep, torch::kInt64);
  b.objective = torch::zeros({rows}, torch::kInt64);
  return b;
}

int RunBenchTrain(const BenchTrainOptions& o) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench train: %s\n", s.message().c_str());
    return kExitUsage;
  }
  StatusOr<model::GlmConfig> preset = model::GlmConfig::FromPreset(o.preset);
  if (!preset.ok()) {
    std::fprintf(stderr, "glm bench train: %s\n", preset.status().message().c_str());
    return kExitUsage;
  }
  model::GlmConfig c = *preset;
  if (o.layers > 0) c.num_layers = o.layers;
  if (o.hidden > 0) c.hidden_size = o.hidden;
  if (o.heads > 0) c.num_attention_heads = o.heads;
  if (o.vocab > 0) c.vocab_size = model::PadVocabSize(o.vocab);
  c.max_sequence_length = std::max(c.max_sequence_length, o.seq_len);
  c.hidden_dropout = o.dropout;
  c.attention_dropout = o.dropout;
  if (Status s = c.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench train: %s\n", s.message().c_str());
    return kExitUsage;
  }
  model::SetComputeThreads(o.threads);
  const double peak = o.peak_gflops > 0 ? o.peak_gflops : model::MeasureGemm(2048, 5, false).best_gflops;

  model::GlmModel m(model::GlmModelOptions{c, 1});
  m->train();
  // The trainer's AdamW (one fused pass per parameter on the CPU), with the
  // GLM-2B/10B betas and eps.
  trainer::AdamWOptions adamw{.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1, .fused = true};
  trainer::AdamW optimizer(trainer::CollectParameters(*m), adamw);
  adamw.fused = false;
  trainer::AdamW generic(trainer::CollectParameters(*m), adamw);
  model::Batch batch = SyntheticBatch(c, o.micro_batch, o.seq_len, o.part_b_fraction);
  double loss_value = 0;
  double adamw_s = 0, generic_s = 0;  // this step's optimizer time(s)
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  auto step = [&] {
    for (torch::Tensor& p : m->parameters()) p.mutable_grad().reset();
    model::LossOutput loss = model::ComputeLoss(m, batch);
    loss.loss.backward();
    auto t = std::chrono::steady_clock::now();
    optimizer.Step(1e-4);
    adamw_s = seconds_since(t);
    loss_value = loss.loss.item<double>();
  };
  for (int i = 0; i < o.warmup; ++i) step();
  std::vector<double> seconds;
  double adamw_total = 0, generic_total = 0;
  for (int i = 0; i < o.steps; ++i) {
    auto start = std::chrono::steady_clock::now();
    step();
    seconds.push_back(seconds_since(start));
    adamw_total += adamw_s;
    if (o.compare_adamw) {  // untimed in the step: the same gradients, the other update
      auto t = std::chrono::steady_clock::now();
      generic.Step(1e-4);
      generic_s = seconds_since(t);
      generic_total += generic_s;
    }
  }
  std::sort(seconds.begin(), seconds.end());
  double total = 0;
  for (double s : seconds) total += s;
  const double mean = total / static_cast<double>(seconds.size());
  const double median = seconds[seconds.size() / 2];
  const int64_t tokens = o.micro_batch * o.seq_len;
  const double flops = c.TrainingFlops(tokens, o.seq_len);
  const double gflops = flops / mean / 1e9;
  model::TorchEnvironment env = model::DescribeTorchEnvironment();
  nlohmann::ordered_json j;
  j["bench"] = "train";
  j["preset"] = o.preset;
  j["layers"] = c.num_layers;
  j["hidden"] = c.hidden_size;
  j["heads"] = c.num_attention_heads;
  j["vocab"] = c.vocab_size;
  j["params"] = c.NumParameters();
  j["seq_len"] = o.seq_len;
  j["micro_batch"] = o.micro_batch;
  j["steps"] = o.steps;
  j["step_s_mean"] = mean;
  j["step_s_median"] = median;
  j["tokens_per_s"] = static_cast<double>(tokens) / mean;
  j["gflops_per_s"] = gflops;
  j["gemm_peak_gflops"] = peak;
  j["mfu"] = gflops / peak;
  j["loss"] = loss_value;
  j["adamw_s_mean"] = adamw_total / o.steps;
  if (o.compare_adamw) {
    j["adamw_generic_s_mean"] = generic_total / o.steps;
    j["adamw_fused_speedup"] = generic_total / adamw_total;
  }
  j["torch_threads"] = env.torch_threads;
  j["blas_threads"] = env.blas_threads;
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterBenchTrainCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* bench = app->get_subcommand("bench");
  auto o = std::make_shared<BenchTrainOptions>();
  CLI::App* sub = bench->add_subcommand(
      "train", "Training-step speed (forward, loss, backward, AdamW): tokens/s, GFLOP/s and MFU vs bench gemm");
  AddConfigOption(sub, "");
  AddOption(sub, "preset", &o->preset, "Model preset (tiny, small, base, large, 410m, 515m, 2b, 10b)");
  AddOption(sub, "layers", &o->layers, "Override the preset's layers (0 = keep)");
  AddOption(sub, "hidden", &o->hidden, "Override the preset's hidden size (0 = keep)");
  AddOption(sub, "heads", &o->heads, "Override the preset's attention heads (0 = keep)");
  AddOption(sub, "vocab", &o->vocab, "Override the preset's vocabulary (0 = keep; padded to 128)");
  AddOption(sub, "seq-len", &o->seq_len, "Tokens per row");
  AddOption(sub, "micro-batch", &o->micro_batch, "Rows per step");
  AddOption(sub, "steps", &o->steps, "Timed steps");
  AddOption(sub, "warmup", &o->warmup, "Untimed steps first");
  AddOption(sub, "part-b-fraction", &o->part_b_fraction, "Fraction of each row in Part B (loss positions)");
  AddOption(sub, "threads", &o->threads, "Compute threads (0 = leave the defaults)");
  AddOption(sub, "peak-gflops", &o->peak_gflops, "GEMM peak for the MFU (0 = measure it first)");
  AddOption(sub, "dropout", &o->dropout, "Hidden and attention dropout");
  AddFlag(sub, "compare-adamw", &o->compare_adamw,
          "Also time the LibTorch-ops AdamW update on the same gradients (adamw_generic_s_mean)");
  registry->Add(sub, [o] { return RunBenchTrain(*o); });
}

}  // namespace glm::cmd
