// Tests of the LibTorch part of the trainer: AdamW, clipping, safetensors,
// checkpoints, Gloo collectives, and the Trainer with real processes (this
// binary re-executes itself as a trainer process: TrainerProcess.Run below).
#include "worker/trainer/trainer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "worker/trainer/checkpoint.h"
#include "worker/trainer/communicator.h"
#include "worker/trainer/optimizer.h"

namespace glm::trainer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kVocab = 32;
constexpr int64_t kHidden = 16;
constexpr int64_t kSeqLen = 6;

// A small real model: embedding, LayerNorm, MLP with dropout, output layer.
struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    embed = register_module("embed", torch::nn::Embedding(kVocab, kHidden));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({kHidden})));
    hidden = register_module("hidden", torch::nn::Linear(kHidden, kHidden));
    dropout = register_module("dropout", torch::nn::Dropout(0.1));
    out = register_module("out", torch::nn::Linear(kHidden, kVocab));
  }
  torch::Tensor forward(const torch::Tensor& tokens) {  // (B, S) -> (B, S, V)
    torch::Tensor h = norm(embed(tokens));              // (B, S, H)
    h = dropout(torch::gelu(hidden(h)));                // (B, S, H)
    return out(h);                                      // (B, S, V)
  }
  torch::nn::Embedding embed{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear hidden{nullptr};
  torch::nn::Dropout dropout{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(TinyNet);

uint64_t Hash(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Sample (o, e, i) is a pure function: tokens from a hash, target = 3 * token + 1.
class SyntheticSource : public BatchSource {
 public:
  Status Load(MicroBatch* batch) override {
    const int64_t b = static_cast<int64_t>(batch->samples.size());
    torch::Tensor tokens = torch::empty({b, kSeqLen}, torch::kInt64);  // (B, S)
    torch::Tensor objective = torch::empty({b}, torch::kInt64);        // (B)
    for (int64_t r = 0; r < b; ++r) {
      const SampleRef& ref = batch->samples[r];
      objective[r] = static_cast<int64_t>(ref.objective);
      for (int64_t j = 0; j < kSeqLen; ++j) {
        tokens[r][j] =
            static_cast<int64_t>(Hash(Hash(Hash(static_cast<uint64_t>(ref.objective)) ^ ref.epoch) ^
                                      (ref.index * 131 + j)) %
                                 kVocab);
      }
    }
    batch->tensors["tokens"] = tokens;
    batch->tensors["targets"] = (tokens * 3 + 1) % kVocab;  // (B, S)
    batch->tensors["objective"] = objective;
    batch->loss_weight = static_cast<double>(b * kSeqLen);
    batch->num_tokens = b * kSeqLen;
    ++loads;
    return Status::Ok();
  }
  std::atomic<int64_t> loads{0};
};

LossOutput TinyLoss(torch::nn::Module& module, const MicroBatch& batch) {
  auto& net = static_cast<TinyNetImpl&>(module);
  torch::Tensor logits = net.forward(batch.tensors.at("tokens"));  // (B, S, V)
  torch::Tensor per_token = torch::nn::functional::cross_entropy(
      logits.reshape({-1, kVocab}), batch.tensors.at("targets").reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));  // (B*S)
  per_token = per_token.view({-1, kSeqLen});                                      // (B, S)
  LossOutput out;
  out.loss_sum = per_token.sum();
  torch::Tensor per_sample = per_token.detach().sum(1);  // (B)
  for (size_t r = 0; r < batch.samples.size(); ++r) {
    const int o = static_cast<int>(batch.samples[r].objective);
    out.objective_loss_sum[o] += per_sample[r].item<double>();
    out.objective_weight[o] += kSeqLen;
  }
  return out;
}

TinyNet MakeNet(uint64_t init_seed) {
  torch::manual_seed(init_seed);
  return TinyNet();
}

TrainerOptions TinyOptions() {
  TrainerOptions o;
  o.geometry = {.global_batch_size = 8, .micro_batch_size = 2};
  o.mixer = *MixerPreset("glm-2b");
  o.schedule = {.lr = 3e-2,
                .decay_steps = 40,
                .warmup_fraction = 0.05,
                .style = DecayStyle::kCosine,
                .decay_ratio = 0.1};
  o.adamw = {.beta1 = 0.9, .beta2 = 0.98, .eps = 1e-6, .weight_decay = 0.1};
  o.seed = 99;
  o.config_json = R"({"model": "tiny"})";
  return o;
}

struct CollectingSink : MetricsSink {
  void OnStep(const StepMetrics& m) override { steps.push_back(m); }
  std::vector<StepMetrics> steps;
};

std::string TempDir(const std::string& name) {
  fs::path p =
      fs::temp_directory_path() / ("glm_trainer_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// ---------------------------------------------------------------------------
// AdamW, decay rule, clipping.
// ---------------------------------------------------------------------------

TEST(AdamWTest, DecayRuleExemptsBiasesAndLayerNorm) {
  TinyNet net = MakeNet(1);
  std::map<std::string, bool> decay;
  for (const auto& p : CollectParameters(*net)) decay[p.name] = p.decay;
  EXPECT_TRUE(decay.at("embed.weight"));
  EXPECT_TRUE(decay.at("hidden.weight"));
  EXPECT_TRUE(decay.at("out.weight"));
  EXPECT_FALSE(decay.at("hidden.bias"));
  EXPECT_FALSE(decay.at("out.bias"));
  EXPECT_FALSE(decay.at("norm.weight"));  // LayerNorm module (rule b)
  EXPECT_FALSE(decay.at("norm.bias"));
  EXPECT_TRUE(NameExemptFromDecay("transformer.layers.3.input_layernorm.weight"));
  EXPECT_TRUE(NameExemptFromDecay("transformer.final_layernorm.weight"));
  EXPECT_TRUE(NameExemptFromDecay("transformer.layers.0.attention.dense.bias"));
  EXPECT_FALSE(NameExemptFromDecay("word_embeddings.weight"));
  EXPECT_FALSE(NameExemptFromDecay("transformer.layers.0.mlp.dense_h_to_4h.weight"));
}

TEST(AdamWTest, MatchesTorchAdamWWithDecoupledDecay) {
  TinyNet a = MakeNet(7);
  TinyNet b = MakeNet(7);
  a->eval();
  b->eval();
  AdamWOptions options{.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  std::vector<NamedParameter> params = CollectParameters(*a);
  AdamW ours(params, options);
  std::vector<torch::Tensor> decay, no_decay;
  auto b_params = CollectParameters(*b);
  for (const auto& p : b_params) (p.decay ? decay : no_decay).push_back(p.tensor);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      decay, std::make_unique<torch::optim::AdamWOptions>(
                 torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1)));
  groups.emplace_back(
      no_decay,
      std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0)));
  torch::optim::AdamW theirs(groups);
  torch::Tensor tokens = torch::randint(0, kVocab, {4, kSeqLen});
  for (int step = 0; step < 5; ++step) {
    for (TinyNet* net : {&a, &b}) (*net)->forward(tokens).pow(2).mean().backward();
    ours.Step(1e-2);
    theirs.step();
    for (auto& p : a->parameters()) p.mutable_grad() = torch::Tensor();
    theirs.zero_grad();
  }
  EXPECT_EQ(ours.step_count(), 5);
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(params[i].tensor, b_params[i].tensor, 1e-5, 1e-7))
        << params[i].name << " max diff "
        << (params[i].tensor - b_params[i].tensor).abs().max().item<double>();
  }
}

TEST(AdamWTest, ZeroLearningRateFirstStepAdvancesMomentsButNotParameters) {
  TinyNet net = MakeNet(3);
  AdamW opt(CollectParameters(*net), AdamWOptions{});
  torch::Tensor before = net->hidden->weight.detach().clone();
  net->forward(torch::zeros({1, kSeqLen}, torch::kInt64)).sum().backward();
  opt.Step(0.0);
  EXPECT_TRUE(torch::equal(before, net->hidden->weight.detach()));
  EXPECT_EQ(opt.step_count(), 1);
  double m_norm = 0;
  for (const auto& [name, t] : opt.StateTensors()) m_norm += t.abs().sum().item<double>();
  EXPECT_GT(m_norm, 0.0);
}

// The one-pass CPU update and the LibTorch-ops path (taken for
// non-contiguous tensors, GPU and half precision) give the same result,
// with and without a gradient (none = zero).
TEST(AdamWTest, FusedAndGenericUpdatesAgree) {
  torch::manual_seed(11);
  torch::Tensor base = torch::randn({7, 5}, torch::kFloat64);
  torch::Tensor fused = base.clone().requires_grad_(true);                 // contiguous: fused
  torch::Tensor generic = base.t().contiguous().t().requires_grad_(true);  // column-major: generic
  ASSERT_FALSE(generic.is_contiguous());
  torch::Tensor no_grad = base.clone().requires_grad_(true);  // never gets a gradient
  torch::Tensor zero_grad = base.clone().requires_grad_(true);
  AdamWOptions options{.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  AdamW a({{"w", fused, true}, {"n", no_grad, true}}, options);
  AdamW b({{"w", generic, true}, {"n", zero_grad, true}}, options);
  for (int step = 0; step < 4; ++step) {
    torch::Tensor g = torch::randn({7, 5}, torch::kFloat64);
    fused.mutable_grad() = g.clone();
    generic.mutable_grad() = g.t().contiguous().t();
    zero_grad.mutable_grad() = torch::zeros_like(g);
    a.Step(1e-2);
    b.Step(1e-2);
  }
  EXPECT_LT((fused - generic).abs().max().item<double>(), 1e-14);
  EXPECT_LT((no_grad - zero_grad).abs().max().item<double>(), 1e-14);
  EXPECT_GT((fused - base).abs().max().item<double>(), 1e-3);  // it moved
  EXPECT_LT((no_grad - base * std::pow(1 - 1e-3, 4)).abs().max().item<double>(),
            1e-14);  // decay only
}

TEST(AdamWTest, LoadStateRejectsMissingOrMisshapenTensors) {
  TinyNet net = MakeNet(3);
  AdamW opt(CollectParameters(*net), AdamWOptions{});
  NamedTensors state = opt.StateTensors();
  state.pop_back();
  EXPECT_EQ(opt.LoadState(state, 3).code(), StatusCode::kDataLoss);
  state = SnapshotTensors(opt.StateTensors());
  state[0].second = torch::zeros({2, 2});
  EXPECT_EQ(opt.LoadState(state, 3).code(), StatusCode::kDataLoss);
}

TEST(ClipGradNormTest, ScalesToMaxNormAndReturnsNormBeforeClipping) {
  torch::Tensor a = torch::zeros({2}, torch::requires_grad());
  torch::Tensor b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  std::vector<NamedParameter> params{{"a", a, true}, {"b", b, true}};
  EXPECT_NEAR(ClipGradNorm(params, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<double>(), 0.6, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<double>(), 0.8, 1e-5);
  EXPECT_NEAR(ClipGradNorm(params, 10.0), 1.0, 1e-5);  // below the limit: unchanged
  EXPECT_NEAR(b.grad()[0].item<double>(), 0.8, 1e-5);
}

// ---------------------------------------------------------------------------
// Safetensors and checkpoints.
// ---------------------------------------------------------------------------

TEST(SafetensorsTest, RoundTripsDtypesAndShapes) {
  const std::string dir = TempDir("st");
  NamedTensors tensors = {{"f32", torch::randn({3, 4})},
                          {"i64", torch::arange(5, torch::kInt64)},
                          {"bf16", torch::randn({2}).to(torch::kBFloat16)},
                          {"scalar", torch::tensor(2.5, torch::kFloat64)}};
  ASSERT_TRUE(WriteSafetensors(dir + "/a.safetensors", tensors).ok());
  auto read = ReadSafetensors(dir + "/a.safetensors");
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 4u);
  std::map<std::string, torch::Tensor> by_name(read->begin(), read->end());
  for (const auto& [name, t] : tensors) {
    EXPECT_TRUE(torch::equal(by_name.at(name), t)) << name;
    EXPECT_EQ(by_name.at(name).scalar_type(), t.scalar_type());
  }
  // Truncation is detected.
  fs::resize_file(dir + "/a.safetensors", fs::file_size(dir + "/a.safetensors") - 4);
  EXPECT_EQ(ReadSafetensors(dir + "/a.safetensors").status().code(), StatusCode::kDataLoss);
  fs::remove_all(dir);
}

CheckpointSnapshot SmallSnapshot(int64_t step) {
  CheckpointSnapshot s;
  s.model = {{"w", torch::full({4}, static_cast<float>(step))}};
  s.optimizer = {{"exp_avg.w", torch::ones({4})}};
  s.state.step = step;
  s.state.consumed = {static_cast<uint64_t>(step) * 4, 2, 1};
  s.state.global_batch_size = 8;
  s.config_json = "{\"hidden\": 4}";
  return s;
}

TEST(CheckpointTest, SavesAtomicallyKeepsLastKAndRoundTripsState) {
  const std::string dir = TempDir("ckpt");
  CheckpointManager manager(CheckpointOptions{.directory = dir, .keep_last = 2});
  for (int64_t step : {10, 20, 30}) ASSERT_TRUE(manager.Save(SmallSnapshot(step)).ok());
  std::vector<std::string> listed = manager.List();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(fs::path(listed[0]).filename(), "step-0000000020");
  for (const char* file : {"model.safetensors", "optimizer.safetensors", "trainer_state.json",
                           "config.json", "checksums.json"}) {
    EXPECT_TRUE(fs::exists(listed[1] + "/" + file)) << file;
  }
  auto loaded = manager.LoadLatest();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->snapshot.state.step, 30);
  EXPECT_EQ(loaded->snapshot.state.consumed, (std::array<uint64_t, 3>{120, 2, 1}));
  EXPECT_EQ(loaded->snapshot.config_json, "{\"hidden\": 4}");
  EXPECT_TRUE(torch::equal(loaded->snapshot.model[0].second, torch::full({4}, 30.0f)));
  // An unfinished write (a crash before the rename) is invisible.
  fs::create_directories(dir + "/.step-0000000040.tmp");
  EXPECT_EQ(manager.List().size(), 2u);
  fs::remove_all(dir);
}

TEST(CheckpointTest, CorruptNewestCheckpointFallsBackToPrevious) {
  const std::string dir = TempDir("corrupt");
  CheckpointManager manager(CheckpointOptions{.directory = dir, .keep_last = 3});
  ASSERT_TRUE(manager.Save(SmallSnapshot(1)).ok());
  auto newest = manager.Save(SmallSnapshot(2));
  ASSERT_TRUE(newest.ok());
  {  // flip one byte of the model file
    std::fstream f(*newest + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x7f');
  }
  auto loaded = manager.LoadLatest();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->snapshot.state.step, 1);
  EXPECT_EQ(manager.Load(*newest).status().code(), StatusCode::kDataLoss);
  // Truncate the older one too: nothing usable is left.
  const std::string older = manager.List()[0];
  fs::resize_file(older + "/optimizer.safetensors", 10);
  EXPECT_EQ(manager.LoadLatest().status().code(), StatusCode::kDataLoss);
  fs::remove_all(dir);
  CheckpointManager empty(CheckpointOptions{.directory = dir});
  EXPECT_EQ(empty.LoadLatest().status().code(), StatusCode::kNotFound);
}

TEST(CheckpointTest, AsyncWriteCompletesAndMissingChecksumsIsCorrupt) {
  const std::string dir = TempDir("async");
  CheckpointManager manager(CheckpointOptions{.directory = dir});
  ASSERT_TRUE(manager.SaveAsync(SmallSnapshot(5)).ok());
  ASSERT_TRUE(manager.Wait().ok());
  ASSERT_EQ(manager.List().size(), 1u);
  fs::remove(manager.List()[0] + "/checksums.json");
  EXPECT_FALSE(manager.LoadLatest().ok());
  EXPECT_FALSE(TrainerStateFromJson("{\"step\": 1}").ok());
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Collectives over Gloo: two ranks as two threads of this process.
// ---------------------------------------------------------------------------

TEST(CommunicatorTest, GlooAllReduceAndBroadcastAcrossTwoRanks) {
  auto server = StoreServer::Start(0);
  ASSERT_TRUE(server.ok()) << server.status();
  CommunicatorOptions options;
  options.port = (*server)->port();
  options.bucket_bytes = 64;  // force several buckets
  options.timeout_ms = 20000;
  std::vector<Status> results(2);
  std::vector<std::vector<torch::Tensor>> outputs(2);
  auto body = [&](int64_t rank) {
    RendezvousCommunicatorFactory factory(options);
    auto comm = factory.Join(Membership{.generation = 3, .rank = rank, .world_size = 2});
    if (!comm.ok()) {
      results[rank] = comm.status();
      return;
    }
    std::vector<torch::Tensor> tensors = {
        torch::full({5, 7}, static_cast<float>(rank + 1)),
        torch::full({3}, static_cast<double>(10 * (rank + 1)), torch::kFloat64),
        torch::arange(40, torch::kFloat32) * (rank + 1)};
    Status s = (*comm)->AllReduceSum(tensors);
    std::vector<torch::Tensor> bcast = {torch::full({4}, static_cast<float>(rank + 100))};
    if (s.ok()) s = (*comm)->Broadcast(bcast, 1);
    tensors.push_back(bcast[0]);
    outputs[rank] = tensors;
    results[rank] = s;
  };
  std::thread t0(body, 0), t1(body, 1);
  t0.join();
  t1.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(results[r].ok()) << results[r];
    EXPECT_TRUE(torch::equal(outputs[r][0], torch::full({5, 7}, 3.0f)));
    EXPECT_TRUE(torch::equal(outputs[r][1], torch::full({3}, 30.0, torch::kFloat64)));
    EXPECT_TRUE(torch::equal(outputs[r][2], torch::arange(40, torch::kFloat32) * 3));
    EXPECT_TRUE(torch::equal(outputs[r][3], torch::full({4}, 101.0f)));
  }
}

// The reducer sums the gradients accumulated over two micro batches across
// two ranks, and launches every bucket from backward's hooks (overlapped).
TEST(CommunicatorTest, GradientReducerSumsAccumulatedGradientsDuringBackward) {
  auto server = StoreServer::Start(0);
  ASSERT_TRUE(server.ok()) << server.status();
  CommunicatorOptions options;
  options.port = (*server)->port();
  options.bucket_bytes = 300;  // a few buckets of the 8x8 float matrices
  options.timeout_ms = 20000;
  auto make_params = [] {
    std::vector<torch::Tensor> p;
    for (int l = 0; l < 4; ++l) {
      p.push_back(((torch::arange(64, torch::kFloat32).view({8, 8}) - 32.0f + l) / 64.0f).requires_grad_());
    }
    return p;
  };
  // Two micro batches of rank r: y = tanh(...tanh(x W0) W1 ...), loss = sum(y) * (r + 1 + m).
  auto backward = [](const std::vector<torch::Tensor>& p, int64_t rank, int micro) {
    torch::Tensor h = torch::full({2, 8}, 0.1f * static_cast<float>(micro + 1));
    for (const auto& w : p) h = torch::tanh(h.matmul(w));
    (h.sum() * static_cast<float>(rank + 1 + micro)).backward();
  };
  // Reference: every rank's accumulated gradients, summed, without communication.
  std::vector<torch::Tensor> expected;
  for (int64_t r = 0; r < 2; ++r) {
    auto p = make_params();
    backward(p, r, 0);
    backward(p, r, 1);
    for (size_t k = 0; k < p.size(); ++k) {
      if (r == 0) expected.push_back(p[k].grad().clone());
      else expected[k] += p[k].grad();
    }
  }
  std::vector<Status> results(2);
  std::vector<std::vector<torch::Tensor>> grads(2);
  std::vector<int64_t> in_backward(2, -1), buckets(2, -1);
  auto body = [&](int64_t rank) {
    RendezvousCommunicatorFactory factory(options);
    auto comm = factory.Join(Membership{.generation = 1, .rank = rank, .world_size = 2});
    if (!comm.ok()) {
      results[rank] = comm.status();
      return;
    }
    auto p = make_params();
    std::unique_ptr<GradientReducer> reducer = (*comm)->MakeGradientReducer(p);
    backward(p, rank, 0);  // accumulates only
    reducer->PrepareForBackward();
    backward(p, rank, 1);
    results[rank] = reducer->Finish();
    in_backward[rank] = reducer->buckets_launched_in_backward();
    buckets[rank] = reducer->num_buckets();
    for (const auto& t : p) grads[rank].push_back(t.grad().clone());
  };
  std::thread t0(body, 0), t1(body, 1);
  t0.join();
  t1.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(results[r].ok()) << results[r];
    EXPECT_GE(buckets[r], 3);
    EXPECT_EQ(in_backward[r], buckets[r]) << "every bucket should leave during backward";
    for (size_t k = 0; k < expected.size(); ++k) {
      EXPECT_TRUE(torch::allclose(grads[r][k], expected[k], 1e-6, 1e-7)) << "rank " << r << " parameter " << k;
    }
  }
}

TEST(CommunicatorTest, UnreachableStoreIsUnavailable) {
  CommunicatorOptions options;
  options.port = 1;  // nothing listens there
  options.timeout_ms = 300;
  RendezvousCommunicatorFactory factory(options);
  auto comm = factory.Join(Membership{.generation = 0, .rank = 0, .world_size = 2});
  EXPECT_EQ(comm.status().code(), StatusCode::kUnavailable);
  CommunicatorOptions nccl = options;
  nccl.backend = "nccl";
  RendezvousCommunicatorFactory nccl_factory(nccl);
  EXPECT_EQ(
      nccl_factory.Join(Membership{.generation = 0, .rank = 0, .world_size = 2}).status().code(),
      StatusCode::kUnimplemented);  // Debian's LibTorch has no CUDA
  auto local = factory.Join(Membership{.generation = 0, .rank = 0, .world_size = 1});
  ASSERT_TRUE(local.ok());
  EXPECT_EQ((*local)->world_size(), 1);
}

// ---------------------------------------------------------------------------
// The Trainer in this process (world size 1).
// ---------------------------------------------------------------------------

TEST(TrainerTest, LearnsTheSyntheticTaskAndReportsMetrics) {
  torch::set_num_threads(1);
  TinyNet net = MakeNet(5);
  SyntheticSource source;
  CollectingSink sink;
  RendezvousCommunicatorFactory factory(CommunicatorOptions{});
  StaticMembership membership;
  Trainer trainer(TinyOptions(), net.ptr(), &source, TinyLoss, &factory, &membership, &sink,
                  nullptr);
  ASSERT_TRUE(trainer.Init().ok());
  ASSERT_TRUE(trainer.Start(Membership{}).ok());
  ASSERT_TRUE(trainer.Run(30).ok());
  ASSERT_EQ(sink.steps.size(), 30u);
  EXPECT_EQ(sink.steps[0].lr, 0.0);  // first update uses lr(0) = 0
  EXPECT_GT(sink.steps[1].lr, 0.0);
  EXPECT_LT(sink.steps.back().loss, 0.5 * sink.steps[1].loss);
  for (const StepMetrics& m : sink.steps) {
    EXPECT_EQ(m.world_size, 1);
    EXPECT_EQ(m.num_micro_batches, 4);  // 8 / 2
    EXPECT_GT(m.step_ms, 0);
    EXPECT_GE(m.data_wait_ms, 0);
    EXPECT_EQ(m.objective_samples[0] + m.objective_samples[1] + m.objective_samples[2], 8u);
    EXPECT_GT(m.tokens_per_s, 0);
  }
  // glm-2b with G = 8: 3.2 / 2.4 / 2.4 samples per batch on average.
  uint64_t blanks = 0;
  for (const StepMetrics& m : sink.steps) blanks += m.objective_samples[0];
  EXPECT_EQ(blanks, trainer.mixer().ConsumedAfter(30)[0]);
  EXPECT_EQ(blanks, 96u);
  const json line = json::parse(StepMetricsToJson(sink.steps.back()));
  EXPECT_EQ(line.at("step"), 30);
  EXPECT_TRUE(line.contains("loss_blank"));
  EXPECT_TRUE(line.contains("data_wait_ms"));
  EXPECT_EQ(source.loads.load(), 30 * 4);
}

class FailingSource : public BatchSource {
 public:
  Status Load(MicroBatch* batch) override {
    if (batch->step >= 2) return DataLossError("sample store shard 3 is corrupt");
    return inner_.Load(batch);
  }
  SyntheticSource inner_;
};

TEST(TrainerTest, DataErrorStopsTrainingWithContext) {
  torch::set_num_threads(1);
  TinyNet net = MakeNet(5);
  FailingSource source;
  RendezvousCommunicatorFactory factory(CommunicatorOptions{});
  StaticMembership membership;
  Trainer trainer(TinyOptions(), net.ptr(), &source, TinyLoss, &factory, &membership, nullptr,
                  nullptr);
  ASSERT_TRUE(trainer.Init().ok());
  ASSERT_TRUE(trainer.Start(Membership{}).ok());
  Status s = trainer.Run(5);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("step 2"), std::string::npos) << s;
  EXPECT_EQ(trainer.step(), 2);
}

// Fails every other call with UNAVAILABLE (a storage actor that is busy).
class FlakySource : public BatchSource {
 public:
  Status Load(MicroBatch* batch) override {
    if (calls_++ % 2 == 0) return UnavailableError("storage actor busy");
    return inner_.Load(batch);
  }
  int64_t calls_ = 0;
  SyntheticSource inner_;
};

TEST(TrainerTest, RetriesTransientDataFailuresAndCopiesExtraFilesIntoCheckpoints) {
  torch::set_num_threads(1);
  const std::string dir = TempDir("flaky");
  std::ofstream(dir + "/tokenizer.model") << "fake tokenizer";
  TinyNet net = MakeNet(5);
  FlakySource source;
  RendezvousCommunicatorFactory factory(CommunicatorOptions{});
  StaticMembership membership;
  CheckpointManager checkpoints(CheckpointOptions{.directory = dir + "/ckpt"});
  TrainerOptions options = TinyOptions();
  options.checkpoint_every_steps = 2;
  options.checkpoint_extra_files = {{"tokenizer.model", dir + "/tokenizer.model"}};
  Trainer trainer(options, net.ptr(), &source, TinyLoss, &factory, &membership, nullptr,
                  &checkpoints);
  ASSERT_TRUE(trainer.Init().ok());
  ASSERT_TRUE(trainer.Start(Membership{}).ok());
  ASSERT_TRUE(trainer.Run(2).ok());
  ASSERT_TRUE(trainer.WaitForCheckpoint().ok());
  EXPECT_EQ(source.inner_.loads.load(), 2 * 4);
  EXPECT_EQ(source.calls_, 2 * 2 * 4);
  auto loaded = checkpoints.LoadLatest();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->snapshot.state.step, 2);
  EXPECT_EQ(loaded->snapshot.state.consumed, trainer.mixer().ConsumedAfter(2));
  EXPECT_EQ(FileBytes(loaded->path + "/tokenizer.model"), "fake tokenizer");
  fs::remove_all(dir);
}

// Fails the whole test binary if not disarmed within `timeout`: a hang then
// fails fast with a message instead of blocking CI until its global timeout.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds timeout, std::string what) : what_(std::move(what)) {
    thread_ = std::thread([this, timeout] {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_for(lock, timeout, [this] { return done_; })) {
        std::fprintf(stderr, "watchdog: %s did not finish in time (hang)\n", what_.c_str());
        std::_Exit(1);
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Records the highest step whose micro batch was loaded.
class RecordingSource : public BatchSource {
 public:
  Status Load(MicroBatch* batch) override {
    Status s = inner_.Load(batch);
    {
      std::lock_guard<std::mutex> lock(mu_);
      max_step_ = std::max(max_step_, batch->step);
    }
    cv_.notify_all();
    return s;
  }
  // True once a micro batch of `step` (or later) was loaded within `timeout`.
  bool WaitForStep(int64_t step, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return max_step_ >= step; });
  }
  int64_t max_step() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_step_;
  }
  SyntheticSource inner_;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t max_step_ = -1;
};

TEST(TrainerTest, TrainStepLoopPrefetchesTheNextStepAndMatchesRun) {
  Watchdog watchdog(std::chrono::seconds(60), "TrainStepLoopPrefetchesTheNextStepAndMatchesRun");
  torch::set_num_threads(1);
  RendezvousCommunicatorFactory factory(CommunicatorOptions{});
  StaticMembership membership;

  TinyNet net = MakeNet(5);
  RecordingSource source;
  CollectingSink sink;
  Trainer trainer(TinyOptions(), net.ptr(), &source, TinyLoss, &factory, &membership, &sink,
                  nullptr);
  ASSERT_TRUE(trainer.Init().ok());
  ASSERT_TRUE(trainer.Start(Membership{}).ok());
  ASSERT_TRUE(trainer.TrainStep().ok());
  // Between two TrainStep() calls the next step is already being loaded...
  EXPECT_TRUE(source.WaitForStep(1, std::chrono::seconds(10)))
      << "TrainStep() did not prefetch step 1 after step 0";
  // ...but no further: the lookahead is one step.
  EXPECT_LE(source.max_step(), 1);
  for (int i = 1; i < 3; ++i)
    ASSERT_TRUE(trainer.TrainStep().ok()) << "TrainStep() number " << i + 1;
  ASSERT_TRUE(trainer.Run(5).ok());  // Run() after TrainStep() continues the same prefetch
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(trainer.TrainStep().ok());
  EXPECT_EQ(trainer.step(), 7);
  ASSERT_EQ(sink.steps.size(), 7u);
  for (size_t i = 0; i < sink.steps.size(); ++i)
    EXPECT_EQ(sink.steps[i].step, static_cast<int64_t>(i) + 1);
  EXPECT_LE(source.max_step(), 7);

  // The same data in the same order as one Run(7): bit-identical weights.
  TinyNet ref_net = MakeNet(5);
  SyntheticSource ref_source;
  Trainer ref(TinyOptions(), ref_net.ptr(), &ref_source, TinyLoss, &factory, &membership, nullptr,
              nullptr);
  ASSERT_TRUE(ref.Init().ok());
  ASSERT_TRUE(ref.Start(Membership{}).ok());
  ASSERT_TRUE(ref.Run(7).ok());
  auto a = net->named_parameters();
  auto b = ref_net->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
}

TEST(TrainerTest, RestoreRejectsADifferentGlobalBatch) {
  const std::string dir = TempDir("restore_gbs");
  TinyNet net = MakeNet(5);
  SyntheticSource source;
  RendezvousCommunicatorFactory factory(CommunicatorOptions{});
  StaticMembership membership;
  CheckpointManager checkpoints(CheckpointOptions{.directory = dir});
  TrainerOptions options = TinyOptions();
  options.async_checkpoint = false;
  {
    Trainer trainer(options, net.ptr(), &source, TinyLoss, &factory, &membership, nullptr,
                    &checkpoints);
    ASSERT_TRUE(trainer.Init().ok());
    ASSERT_TRUE(trainer.Start(Membership{}).ok());
    ASSERT_TRUE(trainer.Run(1).ok());
    ASSERT_TRUE(trainer.SaveCheckpoint().ok());
  }
  options.geometry.global_batch_size = 16;
  Trainer other(options, net.ptr(), &source, TinyLoss, &factory, &membership, nullptr,
                &checkpoints);
  ASSERT_TRUE(other.Init().ok());
  Status s = other.Restore(*checkpoints.LoadLatest());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("global-batch-size"), std::string::npos);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Real trainer processes. The test binary re-executes itself with
// --gtest_filter=TrainerProcess.Run and a JSON spec in GLM_TRAINER_PROCESS.
// ---------------------------------------------------------------------------

// Membership scripted by the spec: a join at a step boundary, and what to do
// after a collective fails.
class ScriptedMembership : public MembershipSource {
 public:
  explicit ScriptedMembership(const json& spec) : spec_(spec) {}
  std::optional<Membership> PollChange(int64_t completed_steps) override {
    if (spec_.contains("join_at") && spec_["join_at"].get<int64_t>() == completed_steps &&
        !joined_) {
      joined_ = true;
      return ToMembership(spec_["join"]);
    }
    return std::nullopt;
  }
  StatusOr<Membership> AwaitChange(int64_t) override {
    if (!spec_.contains("after_failure")) return UnavailableError("no replacement membership");
    return ToMembership(spec_["after_failure"]);
  }
  static Membership ToMembership(const json& j) {
    return Membership{.generation = j.at("generation").get<int64_t>(),
                      .rank = j.at("rank").get<int64_t>(),
                      .world_size = j.at("world").get<int64_t>()};
  }

 private:
  json spec_;
  bool joined_ = false;
};

struct DieAtStep : MetricsSink {
  int64_t die_at = -1;
  std::vector<StepMetrics> steps;
  void OnStep(const StepMetrics& m) override {
    steps.push_back(m);
    if (m.step == die_at) ::raise(SIGKILL);  // kill -9, no cleanup
  }
};

// Trains as `spec` says and writes the final parameters (and metrics) to
// spec["out"]. Runs in a child process (TrainerProcess.Run) or, for the
// single-process reference runs, in the test process itself.
void RunTrainerSpec(const json& spec) {
  torch::set_num_threads(1);
  TinyNet net = MakeNet(spec.value("init_seed", 11));
  SyntheticSource source;
  CommunicatorOptions comm_options;
  comm_options.port = spec.value("port", 0);
  comm_options.timeout_ms = 20000;
  RendezvousCommunicatorFactory factory(comm_options);
  ScriptedMembership membership(spec);
  DieAtStep sink;
  sink.die_at = spec.value("die_at", -1);
  TrainerOptions options = TinyOptions();
  options.checkpoint_every_steps = spec.value("checkpoint_every", 0);
  std::unique_ptr<CheckpointManager> checkpoints;
  if (spec.contains("checkpoint_dir")) {
    checkpoints = std::make_unique<CheckpointManager>(
        CheckpointOptions{.directory = spec["checkpoint_dir"].get<std::string>(), .keep_last = 2});
  }
  Trainer trainer(options, net.ptr(), &source, TinyLoss, &factory, &membership, &sink,
                  checkpoints.get());
  ASSERT_TRUE(trainer.Init().ok());
  if (spec.value("resume", false)) {
    auto loaded = checkpoints->LoadLatest();
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_TRUE(trainer.Restore(*loaded).ok());
  }
  Status started = trainer.Start(ScriptedMembership::ToMembership(spec.at("membership")),
                                 spec.value("has_state", true));
  ASSERT_TRUE(started.ok()) << started;
  Status ran = trainer.Run(spec.at("steps").get<int64_t>());
  ASSERT_TRUE(ran.ok()) << ran;
  ASSERT_TRUE(trainer.WaitForCheckpoint().ok());
  ASSERT_TRUE(WriteSafetensors(spec.at("out").get<std::string>(), trainer.ModelTensors()).ok());
  json metrics = json::array();
  for (const StepMetrics& m : sink.steps) metrics.push_back(json::parse(StepMetricsToJson(m)));
  std::ofstream(spec.at("out").get<std::string>() + ".metrics.json") << metrics.dump();
}

TEST(TrainerProcess, Run) {
  const char* env = std::getenv("GLM_TRAINER_PROCESS");
  if (env == nullptr) GTEST_SKIP() << "only runs as a child of the multi-process tests";
  RunTrainerSpec(json::parse(env));
}

// Starts this binary as a trainer process with `spec`; returns its pid.
pid_t SpawnTrainer(const json& spec) {
  static const std::string exe = fs::read_symlink("/proc/self/exe").string();
  const std::string env_entry = "GLM_TRAINER_PROCESS=" + spec.dump();
  std::vector<std::string> env_strings = {env_entry, "OMP_NUM_THREADS=1"};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("GLM_TRAINER_PROCESS=", 0) != 0) env_strings.push_back(*e);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string arg0 = exe, arg1 = "--gtest_filter=TrainerProcess.Run";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  const std::string log = spec.at("out").get<std::string>() + ".log";
  pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` (at most 90 s); returns its wait status.
int WaitTrainer(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 900; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return status;
}

std::string Log(const std::string& out) {
  std::ifstream in(out + ".log");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
}

void ExpectSuccess(int status, const std::string& out) {
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "trainer process failed:\n"
                                                             << Log(out);
}

std::map<std::string, torch::Tensor> LoadParams(const std::string& path) {
  auto read = ReadSafetensors(path);
  GLM_CHECK(read.ok()) << read.status();
  return std::map<std::string, torch::Tensor>(read->begin(), read->end());
}

void ExpectClose(const std::string& a, const std::string& b, double atol) {
  auto pa = LoadParams(a);
  auto pb = LoadParams(b);
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& [name, t] : pa) {
    const double diff = (t - pb.at(name)).abs().max().item<double>();
    EXPECT_LE(diff, atol) << name;
  }
}

json Member(int64_t generation, int64_t rank, int64_t world) {
  return {{"generation", generation}, {"rank", rank}, {"world", world}};
}

// A reference single-process run of `steps`, in this process.
std::string Reference(const std::string& dir, int64_t steps) {
  const std::string out = dir + "/reference_" + std::to_string(steps) + ".safetensors";
  if (fs::exists(out)) return out;
  RunTrainerSpec({{"membership", Member(0, 0, 1)}, {"steps", steps}, {"out", out}});
  return out;
}

TEST(TrainerProcessTest, ResumeAfterKillNineIsBitIdentical) {
  const std::string dir = TempDir("resume");
  const std::string reference = Reference(dir, 8);
  // Train with a checkpoint every 2 steps; kill -9 right after step 5.
  const std::string ckpt = dir + "/ckpt";
  const std::string first = dir + "/first.safetensors";
  json spec = {
      {"membership", Member(0, 0, 1)}, {"steps", 8}, {"out", first}, {"checkpoint_dir", ckpt},
      {"checkpoint_every", 2},         {"die_at", 5}};
  const int status = WaitTrainer(SpawnTrainer(spec));
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << Log(first);
  // A fresh process, different initial weights, resumes from the newest checkpoint.
  const std::string resumed = dir + "/resumed.safetensors";
  spec = {{"membership", Member(0, 0, 1)}, {"steps", 8},     {"out", resumed},
          {"checkpoint_dir", ckpt},        {"resume", true}, {"init_seed", 12345}};
  ExpectSuccess(WaitTrainer(SpawnTrainer(spec)), resumed);
  EXPECT_EQ(FileBytes(resumed), FileBytes(reference));
  EXPECT_FALSE(FileBytes(reference).empty());
  fs::remove_all(dir);
}

TEST(TrainerProcessTest, TwoRanksMatchSingleProcessTraining) {
  const std::string dir = TempDir("dp");
  const std::string reference = Reference(dir, 4);
  auto server = StoreServer::Start(0);
  ASSERT_TRUE(server.ok()) << server.status();
  std::vector<std::string> outs;
  std::vector<pid_t> pids;
  for (int64_t rank = 0; rank < 2; ++rank) {
    outs.push_back(dir + "/rank" + std::to_string(rank) + ".safetensors");
    pids.push_back(
        SpawnTrainer({{"membership", Member(0, rank, 2)},
                      {"steps", 4},
                      {"out", outs.back()},
                      {"port", (*server)->port()},
                      {"init_seed", rank == 0 ? 11 : 101}}));  // rank 0 broadcasts its weights
  }
  for (int r = 0; r < 2; ++r) ExpectSuccess(WaitTrainer(pids[r]), outs[r]);
  EXPECT_EQ(FileBytes(outs[0]), FileBytes(outs[1]));  // replicas stay identical
  ExpectClose(outs[0], reference, 1e-5);              // = one process on the same batch
  fs::remove_all(dir);
}

TEST(TrainerProcessTest, SurvivorTakesOverWholeBatchWhenPeerIsKilled) {
  const std::string dir = TempDir("shrink");
  const std::string reference = Reference(dir, 6);
  auto server = StoreServer::Start(0);
  ASSERT_TRUE(server.ok());
  const std::string out0 = dir + "/rank0.safetensors", out1 = dir + "/rank1.safetensors";
  pid_t p0 = SpawnTrainer({{"membership", Member(0, 0, 2)},
                           {"steps", 6},
                           {"out", out0},
                           {"port", (*server)->port()},
                           {"after_failure", Member(1, 0, 1)}});
  pid_t p1 = SpawnTrainer({{"membership", Member(0, 1, 2)},
                           {"steps", 6},
                           {"out", out1},
                           {"port", (*server)->port()},
                           {"die_at", 3}});
  const int s1 = WaitTrainer(p1);
  EXPECT_TRUE(WIFSIGNALED(s1)) << Log(out1);
  ExpectSuccess(WaitTrainer(p0), out0);
  ExpectClose(out0, reference, 1e-5);
  const json metrics = json::parse(FileBytes(out0 + ".metrics.json"));
  ASSERT_EQ(metrics.size(), 6u);
  EXPECT_EQ(metrics[2]["world_size"], 2);
  EXPECT_EQ(metrics[3]["world_size"], 1);
  EXPECT_EQ(metrics[3]["generation"], 1);
  EXPECT_EQ(metrics[3]["micro_batches"], 4);  // whole batch by accumulation
  fs::remove_all(dir);
}

TEST(TrainerProcessTest, NewcomerReceivesStateAndJoinsAtStepBoundary) {
  const std::string dir = TempDir("grow");
  const std::string reference = Reference(dir, 6);
  auto server = StoreServer::Start(0);
  ASSERT_TRUE(server.ok());
  const std::string out0 = dir + "/rank0.safetensors", out1 = dir + "/rank1.safetensors";
  pid_t p0 = SpawnTrainer({{"membership", Member(0, 0, 1)},
                           {"steps", 6},
                           {"out", out0},
                           {"port", (*server)->port()},
                           {"join_at", 3},
                           {"join", Member(1, 0, 2)}});
  pid_t p1 = SpawnTrainer({{"membership", Member(1, 1, 2)},
                           {"steps", 6},
                           {"out", out1},
                           {"port", (*server)->port()},
                           {"has_state", false},
                           {"init_seed", 777}});
  ExpectSuccess(WaitTrainer(p0), out0);
  ExpectSuccess(WaitTrainer(p1), out1);
  EXPECT_EQ(FileBytes(out0), FileBytes(out1));
  ExpectClose(out0, reference, 1e-5);
  const json m0 = json::parse(FileBytes(out0 + ".metrics.json"));
  const json m1 = json::parse(FileBytes(out1 + ".metrics.json"));
  ASSERT_EQ(m0.size(), 6u);
  EXPECT_EQ(m0[2]["world_size"], 1);
  EXPECT_EQ(m0[3]["world_size"], 2);
  ASSERT_EQ(m1.size(), 3u);  // the newcomer ran steps 4..6
  EXPECT_EQ(m1[0]["step"], 4);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace glm::trainer
