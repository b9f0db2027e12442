#include "worker/trainer/trainer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/options.h"

namespace glm::trainer {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// SplitMix64 finaliser: a counter-based seed from (seed, step, slot).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t MicroBatchSeed(uint64_t seed, int64_t step, int64_t slot) {
  return Mix(Mix(Mix(seed) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(slot)) >> 1;
}

}  // namespace

std::string StepMetricsToJson(const StepMetrics& m) {
  nlohmann::json j = {{"step", m.step},
                      {"loss", m.loss},
                      {"lr", m.lr},
                      {"grad_norm", m.grad_norm},
                      {"tokens_per_s", m.tokens_per_s},
                      {"data_wait_ms", m.data_wait_ms},
                      {"step_ms", m.step_ms},
                      {"allreduce_ms", m.allreduce_ms},
                      {"checkpoint_block_ms", m.checkpoint_block_ms},
                      {"world_size", m.world_size},
                      {"generation", m.generation},
                      {"rank", m.rank},
                      {"micro_batches", m.num_micro_batches}};
  for (int o = 0; o < kNumObjectives; ++o) {
    if (m.objective_samples[o] == 0 || !std::isfinite(m.objective_loss[o])) continue;
    const std::string name(ObjectiveName(static_cast<Objective>(o)));
    j["loss_" + name] = m.objective_loss[o];
    j["samples_" + name] = m.objective_samples[o];
  }
  return j.dump();
}

Status TrainerOptions::Validate() const {
  GLM_RETURN_IF_ERROR(geometry.Validate());
  GLM_RETURN_IF_ERROR(mixer.Validate());
  GLM_RETURN_IF_ERROR(schedule.Validate());
  GLM_RETURN_IF_ERROR(adamw.Validate());
  GLM_RETURN_IF_ERROR(RequireInRange("clip-grad", clip_grad_norm, 0.0, 1e9));
  GLM_RETURN_IF_ERROR(RequireAtLeast("prefetch-micro-batches", prefetch_micro_batches, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("checkpoint-every", checkpoint_every_steps, 0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("data-retries", data_retries, 0));
  return Status::Ok();
}

// Loads this rank's micro batches, in order, from `first_step` on, keeping at
// most `depth` ready and never loading a step at or beyond the horizon;
// ExtendHorizon() lets it continue (one thread for the whole run, so loading
// the next step overlaps computing this one).
class Trainer::Prefetcher {
 public:
  Prefetcher(BatchSource* source, const ObjectiveMixer* mixer, RankSlice slice, int64_t first_step,
             int64_t horizon, int64_t depth, int64_t retries)
      : source_(source),
        mixer_(mixer),
        slice_(std::move(slice)),
        depth_(depth),
        retries_(retries),
        horizon_(horizon) {
    thread_ = std::thread([this, first_step] { Loop(first_step); });
  }

  // Allows loading steps up to (not including) `until_step`; never shrinks.
  void ExtendHorizon(int64_t until_step) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (until_step <= horizon_) return;
      horizon_ = until_step;
    }
    cv_.notify_all();
  }

  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  StatusOr<MicroBatch> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty(); });
    StatusOr<MicroBatch> item = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return item;
  }

 private:
  void Loop(int64_t first_step) {
    for (int64_t step = first_step;; ++step) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this, step] { return stop_ || step < horizon_; });
        if (stop_) return;
      }
      for (int64_t i = 0; i < slice_.num_micro_batches(); ++i) {
        MicroBatch batch;
        batch.step = step;
        batch.begin_slot = slice_.micro_begin[i];
        batch.end_slot = slice_.micro_begin[i + 1];
        for (int64_t s = batch.begin_slot; s < batch.end_slot; ++s) {
          batch.samples.push_back(mixer_->SlotSample(step, s));
        }
        Status status;
        for (int64_t attempt = 0;; ++attempt) {
          try {
            status = source_->Load(&batch);
          } catch (const std::exception& e) {
            status = InternalError(std::string("batch source threw: ") + e.what());
          }
          if (status.ok() || !status.IsRetryable() || attempt >= retries_) break;
          {
            std::unique_lock<std::mutex> lock(mu_);
            if (cv_.wait_for(lock, std::chrono::milliseconds(50 << std::min<int64_t>(attempt, 6)),
                             [this] { return stop_; })) {
              return;
            }
          }
        }
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || static_cast<int64_t>(queue_.size()) < depth_; });
        if (stop_) return;
        if (status.ok()) {
          queue_.emplace_back(std::move(batch));
        } else {
          queue_.emplace_back(status.WithContext("loading step " + std::to_string(step) +
                                                 " slots [" + std::to_string(batch.begin_slot) +
                                                 ", " + std::to_string(batch.end_slot) + ")"));
        }
        cv_.notify_all();
        if (!status.ok()) return;
      }
    }
  }

  BatchSource* source_;
  const ObjectiveMixer* mixer_;
  const RankSlice slice_;
  const int64_t depth_;
  const int64_t retries_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StatusOr<MicroBatch>> queue_;
  int64_t horizon_;  // guarded by mu_
  bool stop_ = false;
  std::thread thread_;
};

Trainer::Trainer(TrainerOptions options, std::shared_ptr<torch::nn::Module> model,
                 BatchSource* source, LossFunction loss, CommunicatorFactory* communicators,
                 MembershipSource* membership, MetricsSink* metrics, CheckpointManager* checkpoints)
    : options_(std::move(options)),
      model_(std::move(model)),
      source_(source),
      loss_(std::move(loss)),
      communicators_(communicators),
      membership_(membership),
      metrics_(metrics),
      checkpoints_(checkpoints) {}

Trainer::~Trainer() {
  prefetcher_.reset();
  WaitForSnapshot();
  WaitForCheckpoint().IgnoreError();
}

Status Trainer::Init() {
  GLM_RETURN_IF_ERROR(options_.Validate());
  GLM_ASSIGN_OR_RETURN(ObjectiveMixer mixer,
                       ObjectiveMixer::Create(options_.mixer, options_.geometry.global_batch_size));
  mixer_.emplace(std::move(mixer));
  optimizer_ = std::make_unique<AdamW>(CollectParameters(*model_), options_.adamw);
  return Status::Ok();
}

NamedTensors Trainer::ModelTensors() const {
  NamedTensors out;
  for (const auto& item : model_->named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value());
  }
  for (const auto& item : model_->named_buffers(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value());
  }
  return out;
}

double Trainer::WaitForSnapshot() {
  if (!snapshot_taken_.valid()) return 0;
  const auto start = Clock::now();
  snapshot_taken_.wait();
  snapshot_taken_ = std::shared_future<void>();
  return MsSince(start);
}

Status Trainer::Restore(const LoadedCheckpoint& checkpoint) {
  GLM_CHECK(optimizer_ != nullptr) << "Restore() before Init()";
  WaitForSnapshot();
  prefetcher_.reset();  // it would continue from the old step
  const TrainerState& state = checkpoint.snapshot.state;
  if (state.global_batch_size != options_.geometry.global_batch_size) {
    return FailedPreconditionError("checkpoint " + checkpoint.path +
                                   " was trained with global-batch-size " +
                                   std::to_string(state.global_batch_size) + ", this run uses " +
                                   std::to_string(options_.geometry.global_batch_size) +
                                   "; the global batch must not change on resume");
  }
  if (state.seed != options_.seed) {
    return FailedPreconditionError("checkpoint " + checkpoint.path + " has seed " +
                                   std::to_string(state.seed) + ", this run " +
                                   std::to_string(options_.seed));
  }
  std::map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, t] : checkpoint.snapshot.model) by_name[name] = &t;
  torch::NoGradGuard no_grad;
  for (auto& [name, live] : ModelTensors()) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      return DataLossError("checkpoint " + checkpoint.path + " has no tensor '" + name + "'");
    }
    if (it->second->sizes() != live.sizes()) {
      return DataLossError("checkpoint tensor '" + name + "' has the wrong shape");
    }
    live.copy_(*it->second);
  }
  GLM_RETURN_IF_ERROR(optimizer_->LoadState(checkpoint.snapshot.optimizer, state.optimizer_steps));
  step_ = state.step;
  const ObjectiveCounts expected = mixer_->ConsumedAfter(step_);
  if (expected != state.consumed) {
    spdlog::warn(
        "checkpoint {} records consumed samples {}/{}/{} but the mixer gives {}/{}/{} "
        "after {} steps (was the objective mix changed?)",
        checkpoint.path, state.consumed[0], state.consumed[1], state.consumed[2], expected[0],
        expected[1], expected[2], step_);
  }
  spdlog::info("restored {} at step {}", checkpoint.path, step_);
  return Status::Ok();
}

Status Trainer::Start(const Membership& membership, bool has_state) {
  GLM_CHECK(optimizer_ != nullptr) << "Start() before Init()";
  has_state_ = has_state;
  return Reconfigure(membership);
}

Status Trainer::Reconfigure(const Membership& m) {
  prefetcher_.reset();
  ZeroGrads();
  reducer_.reset();  // its hooks and buckets belong to the old process group
  comm_.reset();     // tear down the old process group first
  GLM_ASSIGN_OR_RETURN(comm_, communicators_->Join(m));
  GLM_ASSIGN_OR_RETURN(slice_, ComputeRankSlice(options_.geometry, m.rank, m.world_size));
  GLM_RETURN_IF_ERROR(SyncState());
  spdlog::info("trainer rank {}/{} generation {}: slots [{}, {}), {} micro batches, step {}",
               m.rank, m.world_size, m.generation, slice_.begin_slot, slice_.end_slot,
               slice_.num_micro_batches(), step_);
  return Status::Ok();
}

Status Trainer::SyncState() {
  if (comm_->world_size() == 1) {
    if (!has_state_) {
      return FailedPreconditionError("a newcomer cannot train alone: no rank holds state");
    }
    return Status::Ok();
  }
  WaitForSnapshot();  // the broadcast below may overwrite the live tensors
  // All-gather of completed steps (-1: no state) by a sum over a one-hot vector.
  torch::Tensor steps = torch::zeros({comm_->world_size()}, torch::kFloat64);
  steps[comm_->rank()] = has_state_ ? static_cast<double>(step_) : -1.0;
  std::vector<torch::Tensor> io{steps};
  GLM_RETURN_IF_ERROR(comm_->AllReduceSum(io));
  int64_t root = -1;
  double best = -1;
  for (int64_t r = 0; r < comm_->world_size(); ++r) {
    const double s = steps[r].item<double>();
    if (s > best) {
      best = s;
      root = r;
    }
  }
  if (root < 0) return FailedPreconditionError("no rank of the new generation holds state");
  std::vector<torch::Tensor> tensors;
  for (auto& [name, t] : ModelTensors()) tensors.push_back(t.detach());
  for (auto& [name, t] : optimizer_->StateTensors()) tensors.push_back(t);
  torch::Tensor counters = torch::tensor(
      {static_cast<double>(step_), static_cast<double>(optimizer_->step_count())}, torch::kFloat64);
  tensors.push_back(counters);
  GLM_RETURN_IF_ERROR(comm_->Broadcast(tensors, root));
  step_ = static_cast<int64_t>(counters[0].item<double>());
  optimizer_->set_step_count(static_cast<int64_t>(counters[1].item<double>()));
  has_state_ = true;
  return Status::Ok();
}

void Trainer::ZeroGrads() {
  if (!model_) return;
  for (auto& p : model_->parameters()) {
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
  }
}

Status Trainer::Run(int64_t until_step) {
  GLM_CHECK(comm_ != nullptr) << "Run() before Start()";
  run_until_ = until_step;
  while (step_ < until_step) GLM_RETURN_IF_ERROR(TrainStep());
  return Status::Ok();
}

Status Trainer::TrainStep() {
  // Inside Run(): prefetch up to its end. On its own: this step and the next,
  // so a loop of TrainStep() loads step k + 1 while step k computes.
  prefetch_until_ = run_until_ > step_ ? run_until_ : step_ + 2;
  if (options_.max_steps > 0) prefetch_until_ = std::min(prefetch_until_, std::max(options_.max_steps, step_ + 1));
  if (prefetcher_) prefetcher_->ExtendHorizon(prefetch_until_);
  for (int64_t attempt = 0; attempt <= options_.max_reconfigurations_per_step; ++attempt) {
    if (std::optional<Membership> m = membership_->PollChange(step_)) {
      spdlog::info("membership change at step {}: generation {}, rank {} of {}", step_,
                   m->generation, m->rank, m->world_size);
      Status s = Reconfigure(*m);
      if (!s.ok() && s.code() != StatusCode::kAborted) return s;
      if (!s.ok()) continue;
    }
    Status s = AttemptStep();
    if (s.ok()) return s;
    if (s.code() != StatusCode::kAborted) return s;
    spdlog::warn("step {} abandoned: {}", step_, s.ToString());
    prefetcher_.reset();
    ZeroGrads();
    GLM_ASSIGN_OR_RETURN(Membership next, membership_->AwaitChange(comm_->generation()));
    s = Reconfigure(next);
    if (!s.ok() && s.code() != StatusCode::kAborted) return s;
  }
  return AbortedError("step " + std::to_string(step_) + " failed after " +
                      std::to_string(options_.max_reconfigurations_per_step) +
                      " membership changes");
}

Status Trainer::AttemptStep() {
  const auto start = Clock::now();
  if (!prefetcher_) {
    prefetcher_ =
        std::make_unique<Prefetcher>(source_, &*mixer_, slice_, step_, prefetch_until_,
                                     options_.prefetch_micro_batches, options_.data_retries);
  }
  StepMetrics metrics;
  metrics.world_size = comm_->world_size();
  metrics.generation = comm_->generation();
  metrics.rank = comm_->rank();
  metrics.num_micro_batches = slice_.num_micro_batches();

  std::vector<MicroBatch> batches;
  double local_weight = 0;
  for (int64_t i = 0; i < slice_.num_micro_batches(); ++i) {
    const auto wait_start = Clock::now();
    StatusOr<MicroBatch> batch = prefetcher_->Pop();
    metrics.data_wait_ms += MsSince(wait_start);
    if (!batch.ok()) {
      prefetcher_.reset();
      return batch.status();
    }
    GLM_CHECK_EQ(batch->step, step_) << "prefetcher out of step";
    local_weight += batch->loss_weight;
    batches.push_back(std::move(batch).value());
  }

  // Global normaliser: one scalar all-reduce.
  torch::Tensor weight = torch::tensor({local_weight}, torch::kFloat64);
  {
    std::vector<torch::Tensor> io{weight};
    const auto t = Clock::now();
    GLM_RETURN_IF_ERROR(comm_->AllReduceSum(io));
    metrics.allreduce_ms += MsSince(t);
  }
  double global_weight = weight.item<double>();
  if (!(global_weight > 0)) global_weight = 1.0;

  // stats: [loss_sum, objective_loss_sum x3, objective_weight x3, tokens, samples x3]
  torch::Tensor stats = torch::zeros({11}, torch::kFloat64);
  auto stats_a = stats.accessor<double, 1>();
  const auto& params = optimizer_->parameters();
  if (options_.overlap_allreduce && reducer_ == nullptr && comm_->world_size() > 1) {
    std::vector<torch::Tensor> tensors;
    for (const auto& p : params) tensors.push_back(p.tensor);
    try {
      reducer_ = comm_->MakeGradientReducer(tensors);
    } catch (const std::exception& e) {
      const std::string what = e.what();
      return InternalError("cannot build the gradient reducer: " + what.substr(0, what.find('\n')));
    }
  }
  try {
    model_->train();
    for (size_t i = 0; i < batches.size(); ++i) {
      const MicroBatch& batch = batches[i];
      torch::manual_seed(MicroBatchSeed(options_.seed, step_, batch.begin_slot));
      LossOutput out = loss_(*model_, batch);
      torch::Tensor scaled = out.loss_sum / global_weight;
      // The last micro batch's backward also sums the accumulated gradients
      // over ranks, bucket by bucket as they become ready.
      const bool reduce_now = reducer_ != nullptr && i + 1 == batches.size();
      if (reduce_now) reducer_->PrepareForBackward();
      scaled.backward();
      stats_a[0] += out.loss_sum.item<double>();
      for (int o = 0; o < kNumObjectives; ++o) {
        stats_a[1 + o] += out.objective_loss_sum[o];
        stats_a[4 + o] += out.objective_weight[o];
      }
      stats_a[7] += static_cast<double>(batch.num_tokens);
      for (const SampleRef& ref : batch.samples) stats_a[8 + static_cast<int>(ref.objective)] += 1;
    }
  } catch (const std::exception& e) {
    ZeroGrads();
    reducer_.reset();  // it may hold launched buckets of this step
    const std::string what = e.what();
    return InternalError("step " + std::to_string(step_) +
                         " forward/backward threw: " + what.substr(0, what.find('\n')));
  }
  if (reducer_ != nullptr) {
    // The buckets backward launched (and any it did not reach): what is left
    // to wait for is the communication backward did not hide.
    const auto t = Clock::now();
    Status s = reducer_->Finish();
    metrics.allreduce_ms += MsSince(t);
    if (!s.ok()) {
      ZeroGrads();
      reducer_.reset();  // rebuilt for the next process group
      return s;
    }
  }

  // The statistics (and, without a reducer, the gradients) in one bucketed
  // all-reduce.
  std::vector<torch::Tensor> reduce;
  for (const auto& p : params) {
    if (!p.tensor.grad().defined()) p.tensor.mutable_grad() = torch::zeros_like(p.tensor);
    if (reducer_ == nullptr) reduce.push_back(p.tensor.grad());
  }
  reduce.push_back(stats);
  {
    const auto t = Clock::now();
    Status s = comm_->AllReduceSum(reduce);
    metrics.allreduce_ms += MsSince(t);
    if (!s.ok()) {
      ZeroGrads();
      return s;
    }
  }

  metrics.grad_norm = options_.clip_grad_norm > 0
                          ? ClipGradNorm(params, options_.clip_grad_norm)
                          : ClipGradNorm(params, std::numeric_limits<double>::infinity());
  metrics.lr = LearningRate(options_.schedule, optimizer_->step_count());
  metrics.checkpoint_block_ms += WaitForSnapshot();
  optimizer_->Step(metrics.lr);
  ZeroGrads();
  ++step_;

  metrics.step = step_;
  metrics.loss = stats_a[0] / global_weight;
  for (int o = 0; o < kNumObjectives; ++o) {
    metrics.objective_loss[o] = stats_a[4 + o] > 0 ? stats_a[1 + o] / stats_a[4 + o] : std::nan("");
    metrics.objective_samples[o] = static_cast<uint64_t>(stats_a[8 + o]);
  }
  metrics.step_ms = MsSince(start);
  metrics.tokens_per_s = stats_a[7] / (metrics.step_ms / 1000.0);

  if (options_.checkpoint_every_steps > 0 && step_ % options_.checkpoint_every_steps == 0 &&
      checkpoints_ != nullptr) {
    GLM_ASSIGN_OR_RETURN(double blocked_ms, SaveCheckpoint());
    metrics.checkpoint_block_ms += blocked_ms;
  }
  if (metrics_ != nullptr) metrics_->OnStep(metrics);
  return Status::Ok();
}

StatusOr<double> Trainer::SaveCheckpoint() {
  if (checkpoints_ == nullptr) return FailedPreconditionError("no checkpoint manager configured");
  if (comm_ != nullptr && comm_->rank() != 0) return 0.0;  // state is replicated; rank 0 writes
  const auto start = Clock::now();
  WaitForSnapshot();
  CheckpointSnapshot snapshot;
  TrainerState& state = snapshot.state;
  state.step = step_;
  state.consumed = mixer_->ConsumedAfter(step_);
  state.data_cursor = step_ * options_.geometry.global_batch_size;
  state.global_batch_size = options_.geometry.global_batch_size;
  state.world_size = comm_ != nullptr ? comm_->world_size() : 1;
  state.generation = comm_ != nullptr ? comm_->generation() : 0;
  state.seed = options_.seed;
  state.optimizer_steps = optimizer_->step_count();
  snapshot.config_json = options_.config_json;
  snapshot.extra_files = options_.checkpoint_extra_files;
  if (options_.async_checkpoint) {
    // Live tensors: the manager's thread copies them; we wait for the copy
    // before the next optimizer update.
    snapshot.model = ModelTensors();
    snapshot.optimizer = optimizer_->StateTensors();
    GLM_ASSIGN_OR_RETURN(snapshot_taken_, checkpoints_->SaveLiveAsync(std::move(snapshot)));
    // A model whose buffers change in forward cannot overlap the copy.
    if (!model_->buffers().empty()) WaitForSnapshot();
    return MsSince(start);
  }
  snapshot.model = SnapshotTensors(ModelTensors());
  snapshot.optimizer = SnapshotTensors(optimizer_->StateTensors());
  GLM_ASSIGN_OR_RETURN(std::string path, checkpoints_->Save(snapshot));
  (void)path;
  return MsSince(start);
}

Status Trainer::WaitForCheckpoint() {
  WaitForSnapshot();
  if (checkpoints_ == nullptr) return Status::Ok();
  return checkpoints_->Wait();
}

}  // namespace glm::trainer
