// glm bench trainer-checkpoint / trainer-dp: the trainer's benchmarks.
//
//   trainer-checkpoint  how long a checkpoint blocks training (the snapshot)
//                       versus how long the background write takes, for a
//                       model with GLM-Base's parameter shapes (~110M).
//   trainer-dp          step, all-reduce and data-wait time of data-parallel
//                       training with N trainer processes on loopback (this
//                       binary re-executes itself as the workers), using a
//                       GLM-shaped stand-in model (embeddings, pre-LN blocks of
//                       the reference's Linear shapes, tied output; no
//                       attention softmax) until model/ provides GlmModel.
// Each prints one JSON line. They measure; they assert nothing.
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "model/torch_env.h"
#include "worker/trainer/trainer.h"

namespace glm::cmd {
namespace {

using trainer::LossOutput;
using trainer::MicroBatch;

// GLM-shaped parameters (reference names), with a cheap forward.
struct StandInAttention : torch::nn::Module {
  explicit StandInAttention(int64_t h) {
    query_key_value = register_module("query_key_value", torch::nn::Linear(h, 3 * h));
    dense = register_module("dense", torch::nn::Linear(h, h));
  }
  torch::nn::Linear query_key_value{nullptr}, dense{nullptr};
};
struct StandInMlp : torch::nn::Module {
  explicit StandInMlp(int64_t h) {
    dense_h_to_4h = register_module("dense_h_to_4h", torch::nn::Linear(h, 4 * h));
    dense_4h_to_h = register_module("dense_4h_to_h", torch::nn::Linear(4 * h, h));
  }
  torch::nn::Linear dense_h_to_4h{nullptr}, dense_4h_to_h{nullptr};
};
struct StandInLayer : torch::nn::Module {
  explicit StandInLayer(int64_t h) : hidden(h) {
    input_layernorm =
        register_module("input_layernorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
    attention = register_module("attention", std::make_shared<StandInAttention>(h));
    post_attention_layernorm = register_module(
        "post_attention_layernorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
    mlp = register_module("mlp", std::make_shared<StandInMlp>(h));
  }
  torch::Tensor forward(torch::Tensor x) {  // (B, S, H) -> (B, S, H)
    torch::Tensor v = attention->query_key_value(input_layernorm(x)).narrow(-1, 2 * hidden, hidden);
    x = x + attention->dense(v);
    return x +
           mlp->dense_4h_to_h(torch::gelu(mlp->dense_h_to_4h(post_attention_layernorm(x)), "tanh"));
  }
  int64_t hidden;
  torch::nn::LayerNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  std::shared_ptr<StandInAttention> attention;
  std::shared_ptr<StandInMlp> mlp;
};
struct StandInTransformer : torch::nn::Module {
  StandInTransformer(int64_t layers, int64_t h, int64_t max_pos) {
    position_embeddings =
        register_module("position_embeddings", torch::nn::Embedding(max_pos + 1, h));
    block_position_embeddings =
        register_module("block_position_embeddings", torch::nn::Embedding(max_pos + 1, h));
    this->layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers; ++i) {
      auto layer = std::make_shared<StandInLayer>(h);
      this->layers->push_back(layer);
      blocks.push_back(layer);
    }
    final_layernorm =
        register_module("final_layernorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
  }
  torch::nn::Embedding position_embeddings{nullptr}, block_position_embeddings{nullptr};
  torch::nn::ModuleList layers{nullptr};
  std::vector<std::shared_ptr<StandInLayer>> blocks;
  torch::nn::LayerNorm final_layernorm{nullptr};
};
struct StandInGlmImpl : torch::nn::Module {
  StandInGlmImpl(int64_t layers, int64_t hidden, int64_t vocab, int64_t max_pos) {
    word = register_module("word_embeddings", torch::nn::Embedding(vocab, hidden));
    transformer = register_module("transformer",
                                  std::make_shared<StandInTransformer>(layers, hidden, max_pos));
  }
  torch::Tensor forward(const torch::Tensor& tokens) {  // (B, S) -> (B, S, V)
    torch::Tensor positions = torch::arange(tokens.size(1), torch::kInt64).unsqueeze(0);  // (1, S)
    torch::Tensor h = word(tokens) + transformer->position_embeddings(positions) +
                      transformer->block_position_embeddings(torch::zeros_like(positions));
    for (auto& block : transformer->blocks) h = block->forward(h);            // (B, S, H)
    return torch::matmul(transformer->final_layernorm(h), word->weight.t());  // (B, S, V)
  }
  torch::nn::Embedding word{nullptr};
  std::shared_ptr<StandInTransformer> transformer;
};
TORCH_MODULE(StandInGlm);

class RandomTokens : public trainer::BatchSource {
 public:
  RandomTokens(int64_t vocab, int64_t seq) : vocab_(vocab), seq_(seq) {}
  Status Load(MicroBatch* batch) override {
    const int64_t b = static_cast<int64_t>(batch->samples.size());
    torch::Tensor tokens = torch::empty({b, seq_}, torch::kInt64);  // (B, S)
    auto a = tokens.accessor<int64_t, 2>();
    for (int64_t r = 0; r < b; ++r) {
      uint64_t x = batch->samples[r].index * 0x9e3779b97f4a7c15ULL + 1;
      for (int64_t j = 0; j < seq_; ++j) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        a[r][j] = static_cast<int64_t>(x % static_cast<uint64_t>(vocab_));
      }
    }
    batch->tensors["tokens"] = tokens;
    batch->loss_weight = static_cast<double>(b * (seq_ - 1));
    batch->num_tokens = b * seq_;
    return Status::Ok();
  }

 private:
  int64_t vocab_, seq_;
};

LossOutput StandInLoss(torch::nn::Module& m, const MicroBatch& batch) {
  auto& net = static_cast<StandInGlmImpl&>(m);
  const torch::Tensor& tokens = batch.tensors.at("tokens");  // (B, S)
  torch::Tensor logits = net.forward(tokens);                // (B, S, V)
  const int64_t s = tokens.size(1);
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits.narrow(1, 0, s - 1).reshape({-1, logits.size(2)}),
      tokens.narrow(1, 1, s - 1).reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  LossOutput out;
  out.loss_sum = loss;
  out.objective_loss_sum[0] = loss.item<double>();
  out.objective_weight[0] = batch.loss_weight;
  return out;
}

struct CheckpointBenchOptions {
  int64_t layers = 12;                            // Default: 12 (GLM-Base)
  int64_t hidden = 768;                           // Default: 768
  int64_t vocab = 30592;                          // Default: 30592 (bert-base-uncased padded)
  int repeats = 3;                                // Default: 3
  int64_t seq = 128;                              // Default: 128 tokens per sample
  int64_t micro_batch = 2;                        // Default: 2 samples per step
  int threads = 2;                                // Default: 2 compute threads
  std::string dir = "/tmp/glm-bench-checkpoint";  // Default: /tmp/glm-bench-checkpoint
  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("layers", layers, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("hidden", hidden, 8));
    GLM_RETURN_IF_ERROR(RequireAtLeast("repeats", repeats, 1));
    return RequireNonEmpty("dir", dir);
  }
};

double Ms(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

int RunCheckpointBench(const CheckpointBenchOptions& o) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench trainer-checkpoint: %s\n", s.message().c_str());
    return kExitUsage;
  }
  model::SetComputeThreads(o.threads);
  StandInGlm net(o.layers, o.hidden, o.vocab, 512);
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  RandomTokens source(o.vocab, o.seq);
  trainer::RendezvousCommunicatorFactory factory(trainer::CommunicatorOptions{});
  trainer::StaticMembership membership;
  std::filesystem::remove_all(o.dir);
  trainer::CheckpointManager checkpoints(
      trainer::CheckpointOptions{.directory = o.dir, .keep_last = 1});
  struct Sink : trainer::MetricsSink {
    void OnStep(const trainer::StepMetrics& m) override { last = m; }
    trainer::StepMetrics last;
  } sink;
  trainer::TrainerOptions options;
  options.geometry = {.global_batch_size = o.micro_batch, .micro_batch_size = o.micro_batch};
  trainer::Trainer t(options, net.ptr(), &source, StandInLoss, &factory, &membership, &sink,
                     &checkpoints);
  Status s = t.Init();
  if (s.ok()) s = t.Start(trainer::Membership{});
  if (s.ok()) s = t.Run(2);  // warm-up
  if (!s.ok()) {
    std::fprintf(stderr, "glm bench trainer-checkpoint: %s\n", s.ToString().c_str());
    return kExitFailure;
  }
  double plain_step_ms = 0, ckpt_step_ms = 0, blocked_ms = 0, total_ms = 0, copy_ms = 0;
  for (int r = 0; r < o.repeats; ++r) {
    // A step without a checkpoint.
    if (!t.Run(t.step() + 1).ok()) return kExitFailure;
    plain_step_ms += sink.last.step_ms;
    // A checkpoint, then the step that overlaps its copy.
    const auto start = std::chrono::steady_clock::now();
    auto started = t.SaveCheckpoint();
    if (!started.ok()) {
      std::fprintf(stderr, "checkpoint failed: %s\n", started.status().ToString().c_str());
      return kExitFailure;
    }
    if (!t.Run(t.step() + 1).ok()) return kExitFailure;
    blocked_ms += *started + sink.last.checkpoint_block_ms;
    ckpt_step_ms += sink.last.step_ms;
    if (!t.WaitForCheckpoint().ok()) return kExitFailure;
    total_ms += Ms(start);
    // The copy alone, synchronously.
    const auto copy_start = std::chrono::steady_clock::now();
    auto model_copy = trainer::SnapshotTensors(t.ModelTensors());
    auto optimizer_copy = trainer::SnapshotTensors(t.optimizer().StateTensors());
    copy_ms += Ms(copy_start);
  }
  uint64_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(checkpoints.List().back())) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  std::filesystem::remove_all(o.dir);
  const double n = o.repeats;
  nlohmann::json j = {
      {"bench", "trainer-checkpoint"},      {"parameters", params},
      {"checkpoint_bytes", bytes},          {"tokens_per_step", o.micro_batch * o.seq},
      {"snapshot_copy_ms", copy_ms / n},    {"blocked_ms", blocked_ms / n},
      {"step_ms", plain_step_ms / n},       {"step_ms_during_checkpoint_copy", ckpt_step_ms / n},
      {"checkpoint_total_ms", total_ms / n}};
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

struct DpBenchOptions {
  int64_t world = 2;          // Default: 2 trainer processes
  int64_t layers = 4;         // Default: 4
  int64_t hidden = 256;       // Default: 256
  int64_t vocab = 8192;       // Default: 8192
  int64_t seq = 128;          // Default: 128
  int64_t global_batch = 16;  // Default: 16
  int64_t micro_batch = 4;    // Default: 4
  int64_t steps = 8;          // Default: 8 (the first 2 are not counted)
  int threads = 1;            // Default: 1 compute thread per process
  // Internal: set when this process is a worker of the benchmark.
  int64_t rank = -1;
  int port = 0;
  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("world", world, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("steps", steps, 3));
    GLM_RETURN_IF_ERROR(RequireAtLeast("seq", seq, 2));
    return RequireAtLeast("global-batch", global_batch, world);
  }
};

int RunDpWorker(const DpBenchOptions& o) {
  model::SetComputeThreads(o.threads);
  torch::manual_seed(1);
  StandInGlm net(o.layers, o.hidden, o.vocab, o.seq);
  RandomTokens source(o.vocab, o.seq);
  trainer::CommunicatorOptions comm;
  comm.port = o.port;
  trainer::RendezvousCommunicatorFactory factory(comm);
  trainer::StaticMembership membership;
  struct Sink : trainer::MetricsSink {
    void OnStep(const trainer::StepMetrics& m) override {
      std::cout << trainer::StepMetricsToJson(m) << std::endl;
    }
  } sink;
  trainer::TrainerOptions options;
  options.geometry = {.global_batch_size = o.global_batch, .micro_batch_size = o.micro_batch};
  options.schedule.warmup_fraction = 0;
  trainer::Trainer t(options, net.ptr(), &source, StandInLoss, &factory, &membership, &sink,
                     nullptr);
  Status s = t.Init();
  if (s.ok())
    s = t.Start(trainer::Membership{.generation = 0, .rank = o.rank, .world_size = o.world});
  if (s.ok()) s = t.Run(o.steps);
  if (!s.ok()) {
    std::fprintf(stderr, "worker %lld: %s\n", static_cast<long long>(o.rank), s.ToString().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

int RunDpBench(const DpBenchOptions& o) {
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench trainer-dp: %s\n", s.message().c_str());
    return kExitUsage;
  }
  if (o.rank >= 0) return RunDpWorker(o);
  auto server = trainer::StoreServer::Start(0);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return kExitFailure;
  }
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<FILE*> pipes;
  for (int64_t r = 0; r < o.world; ++r) {
    std::ostringstream cmd;
    cmd << exe << " bench trainer-dp --rank " << r << " --port " << (*server)->port() << " --world "
        << o.world << " --layers " << o.layers << " --hidden " << o.hidden << " --vocab " << o.vocab
        << " --seq " << o.seq << " --global-batch " << o.global_batch << " --micro-batch "
        << o.micro_batch << " --steps " << o.steps << " --threads " << o.threads;
    pipes.push_back(::popen(cmd.str().c_str(), "r"));
  }
  double step_ms = 0, allreduce_ms = 0, wait_ms = 0, tokens_per_s = 0;
  int64_t counted = 0;
  bool failed = false;
  for (int64_t r = 0; r < o.world; ++r) {
    char line[4096];
    while (std::fgets(line, sizeof(line), pipes[r]) != nullptr) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() <= 2) continue;
      step_ms += j["step_ms"].get<double>();
      allreduce_ms += j["allreduce_ms"].get<double>();
      wait_ms += j["data_wait_ms"].get<double>();
      tokens_per_s += j["tokens_per_s"].get<double>();
      ++counted;
    }
    if (::pclose(pipes[r]) != 0) failed = true;
  }
  if (failed || counted == 0) {
    std::fprintf(stderr, "glm bench trainer-dp: a worker failed\n");
    return kExitFailure;
  }
  int64_t params = 0;
  {
    StandInGlm net(o.layers, o.hidden, o.vocab, o.seq);
    for (const auto& p : net->parameters()) params += p.numel();
  }
  nlohmann::json j = {{"bench", "trainer-dp"},
                      {"world", o.world},
                      {"parameters", params},
                      {"global_batch", o.global_batch},
                      {"micro_batch", o.micro_batch},
                      {"seq", o.seq},
                      {"steps_counted", counted / o.world},
                      {"step_ms", step_ms / counted},
                      {"allreduce_ms", allreduce_ms / counted},
                      {"data_wait_ms", wait_ms / counted},
                      {"allreduce_share", allreduce_ms / step_ms},
                      {"data_wait_share", wait_ms / step_ms},
                      {"tokens_per_s", tokens_per_s / counted}};
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterBenchTrainer(CLI::App* app, CommandRegistry* registry) {
  CLI::App* bench = app->get_subcommand("bench");
  auto ckpt = std::make_shared<CheckpointBenchOptions>();
  CLI::App* sub = bench->add_subcommand(
      "trainer-checkpoint", "How long a checkpoint blocks training (GLM-Base-sized model)");
  AddConfigOption(sub, "");
  AddOption(sub, "layers", &ckpt->layers, "Transformer layers of the GLM-shaped model");
  AddOption(sub, "hidden", &ckpt->hidden, "Hidden size");
  AddOption(sub, "vocab", &ckpt->vocab, "Vocabulary size");
  AddOption(sub, "repeats", &ckpt->repeats, "Repeats (the mean is reported)");
  AddOption(sub, "seq", &ckpt->seq, "Tokens per sample of the training steps");
  AddOption(sub, "micro-batch", &ckpt->micro_batch, "Samples per training step");
  AddOption(sub, "threads", &ckpt->threads, "Compute threads");
  AddOption(sub, "dir", &ckpt->dir, "Scratch checkpoint directory (deleted afterwards)");
  registry->Add(sub, [ckpt] { return RunCheckpointBench(*ckpt); });

  auto dp = std::make_shared<DpBenchOptions>();
  sub = bench->add_subcommand("trainer-dp",
                              "Data-parallel step, all-reduce and data-wait time, N processes");
  AddConfigOption(sub, "");
  AddOption(sub, "world", &dp->world, "Trainer processes");
  AddOption(sub, "layers", &dp->layers, "Layers of the GLM-shaped stand-in model");
  AddOption(sub, "hidden", &dp->hidden, "Hidden size");
  AddOption(sub, "vocab", &dp->vocab, "Vocabulary size");
  AddOption(sub, "seq", &dp->seq, "Tokens per sample");
  AddOption(sub, "global-batch", &dp->global_batch, "Samples per optimizer step (all ranks)");
  AddOption(sub, "micro-batch", &dp->micro_batch, "Samples per forward/backward");
  AddOption(sub, "steps", &dp->steps, "Steps per worker (the first 2 are warm-up)");
  AddOption(sub, "threads", &dp->threads, "Compute threads per worker process");
  AddOption(sub, "rank", &dp->rank, "Internal: run as worker of this rank")->group("");
  AddOption(sub, "port", &dp->port, "Internal: store port")->group("");
  registry->Add(sub, [dp] { return RunDpBench(*dp); });
}

}  // namespace glm::cmd
