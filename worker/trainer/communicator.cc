#include "worker/trainer/communicator.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#ifdef GLM_TRAINER_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <map>
#include <mutex>

#include "common/options.h"

namespace glm::trainer {

Status CommunicatorOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("store-host", store_host));
  GLM_RETURN_IF_ERROR(RequireInRange("store-port", port, 0, 65535));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("store-prefix", prefix));
  GLM_RETURN_IF_ERROR(RequireAtLeast("collective-timeout-ms", timeout_ms, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("bucket-bytes", bucket_bytes, 1));
  GLM_RETURN_IF_ERROR(RequireOneOf("dp-backend", backend, {"gloo", "nccl"}));
  return Status::Ok();
}

namespace {

// Buckets of parameters in reverse order, all-reduced from autograd
// post-hooks on the parameters' grad accumulators (which run after .grad was
// updated) as soon as every member of a bucket, and every earlier bucket, is
// ready.
class HookGradientReducer : public GradientReducer {
 public:
  HookGradientReducer(c10::intrusive_ptr<c10d::ProcessGroup> pg, const std::vector<torch::Tensor>& params,
                      int64_t bucket_bytes, Membership membership)
      : pg_(std::move(pg)), params_(params), membership_(membership) {
    // A small first bucket (the last layers' gradients come first), then
    // buckets of at most bucket_bytes of one dtype, as DistributedDataParallel.
    const int64_t first_cap = std::min<int64_t>(bucket_bytes, 1 << 20);
    bucket_of_.assign(params_.size(), 0);
    int64_t bytes = 0;
    for (size_t k = params_.size(); k-- > 0;) {
      const torch::Tensor& p = params_[k];
      const int64_t b = p.numel() * p.element_size();
      const int64_t cap = buckets_.size() <= 1 ? first_cap : bucket_bytes;
      if (buckets_.empty() || bytes + b > cap || p.scalar_type() != params_[buckets_.back().members[0]].scalar_type()) {
        buckets_.emplace_back();
        bytes = 0;
      }
      buckets_.back().members.push_back(k);
      bucket_of_[k] = buckets_.size() - 1;
      bytes += b;
    }
    for (size_t k = 0; k < params_.size(); ++k) {
      std::shared_ptr<torch::autograd::Node> acc = torch::autograd::impl::grad_accumulator(params_[k]);
      GLM_CHECK(acc != nullptr) << "parameter " << k << " is not a leaf that requires grad";
      hooks_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            OnReady(k);
            return outputs;
          })));
      accumulators_.push_back(std::move(acc));  // kept alive: a new one would not have the hook
    }
  }

  ~HookGradientReducer() override {
    for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hooks_[k]);
  }

  void PrepareForBackward() override {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = true;
    next_launch_ = 0;
    for (Bucket& b : buckets_) {
      b.remaining = b.members.size();
      b.work.reset();
      b.flat = torch::Tensor();
    }
  }

  Status Finish() override {
    try {
      {
        std::lock_guard<std::mutex> lock(mu_);
        armed_ = false;
        launched_in_backward_ = static_cast<int64_t>(next_launch_);
        // Parameters that got no gradient in this backward: their buckets go now, in order.
        while (next_launch_ < buckets_.size()) LaunchLocked(next_launch_++);
      }
      torch::NoGradGuard no_grad;
      for (Bucket& b : buckets_) {
        b.work->wait();
        int64_t offset = 0;
        for (size_t k : b.members) {
          torch::Tensor& p = params_[k];
          const int64_t n = p.numel();
          if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
          p.mutable_grad().copy_(b.flat.narrow(0, offset, n).view(p.sizes()));
          offset += n;
        }
        b.flat = torch::Tensor();
        b.work.reset();
      }
      return Status::Ok();
    } catch (const std::exception& e) {
      const std::string what = e.what();
      return AbortedError("gradient all-reduce failed in generation " + std::to_string(membership_.generation) +
                          " (rank " + std::to_string(membership_.rank) + " of " +
                          std::to_string(membership_.world_size) + "): " + what.substr(0, what.find('\n')));
    }
  }

  int64_t buckets_launched_in_backward() const override { return launched_in_backward_; }
  int64_t num_buckets() const override { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> members;  // parameter indices
    size_t remaining = 0;         // members whose gradient is not ready yet
    torch::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };

  void OnReady(size_t k) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!armed_) return;  // an earlier micro batch: accumulate only
    Bucket& b = buckets_[bucket_of_[k]];
    if (b.remaining > 0) --b.remaining;
    while (next_launch_ < buckets_.size() && buckets_[next_launch_].remaining == 0) LaunchLocked(next_launch_++);
  }

  void LaunchLocked(size_t index) {
    torch::NoGradGuard no_grad;
    Bucket& b = buckets_[index];
    std::vector<torch::Tensor> parts;
    for (size_t k : b.members) {
      const torch::Tensor& p = params_[k];
      parts.push_back(p.grad().defined() ? p.grad().reshape({-1}) : torch::zeros({p.numel()}, p.options()));
    }
    b.flat = torch::cat(parts);
    std::vector<torch::Tensor> io{b.flat};
    b.work = pg_->allreduce(io);
  }

  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
  std::vector<torch::Tensor> params_;
  Membership membership_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;
  std::vector<uintptr_t> hooks_;
  std::mutex mu_;
  bool armed_ = false;      // guarded by mu_
  size_t next_launch_ = 0;  // guarded by mu_
  int64_t launched_in_backward_ = 0;
};

// A process group over c10d (Gloo; NCCL when compiled in and the tensors are
// on CUDA).
class ProcessGroupCommunicator : public Communicator {
 public:
  ProcessGroupCommunicator(c10::intrusive_ptr<c10d::ProcessGroup> pg, Membership m,
                           int64_t bucket_bytes)
      : pg_(std::move(pg)), membership_(m), bucket_bytes_(bucket_bytes) {}

  int64_t rank() const override { return membership_.rank; }
  int64_t world_size() const override { return membership_.world_size; }
  int64_t generation() const override { return membership_.generation; }

  Status AllReduceSum(std::vector<torch::Tensor>& tensors) override {
    try {
      torch::NoGradGuard no_grad;
      // Buckets: consecutive tensors of one dtype up to bucket_bytes_.
      struct Bucket {
        std::vector<size_t> members;
        torch::Tensor flat;
        c10::intrusive_ptr<c10d::Work> work;
      };
      std::vector<Bucket> buckets;
      std::map<torch::ScalarType, size_t> open;  // dtype -> index of its open bucket
      std::map<torch::ScalarType, int64_t> open_bytes;
      for (size_t i = 0; i < tensors.size(); ++i) {
        const auto dtype = tensors[i].scalar_type();
        const int64_t bytes = tensors[i].numel() * tensors[i].element_size();
        auto it = open.find(dtype);
        if (it == open.end() || open_bytes[dtype] + bytes > bucket_bytes_) {
          buckets.emplace_back();
          open[dtype] = buckets.size() - 1;
          open_bytes[dtype] = 0;
        }
        buckets[open[dtype]].members.push_back(i);
        open_bytes[dtype] += bytes;
      }
      for (Bucket& b : buckets) {
        std::vector<torch::Tensor> parts;
        for (size_t i : b.members) parts.push_back(tensors[i].reshape({-1}));
        b.flat = torch::cat(parts);
        std::vector<torch::Tensor> io{b.flat};
        b.work = pg_->allreduce(io);
      }
      for (Bucket& b : buckets) {
        b.work->wait();
        int64_t offset = 0;
        for (size_t i : b.members) {
          const int64_t n = tensors[i].numel();
          tensors[i].copy_(b.flat.narrow(0, offset, n).view(tensors[i].sizes()));
          offset += n;
        }
      }
      return Status::Ok();
    } catch (const std::exception& e) {
      return AbortedError("all-reduce failed in generation " +
                          std::to_string(membership_.generation) + " (rank " +
                          std::to_string(membership_.rank) + " of " +
                          std::to_string(membership_.world_size) + "): " + FirstLine(e.what()));
    }
  }

  std::unique_ptr<GradientReducer> MakeGradientReducer(const std::vector<torch::Tensor>& params) override {
    return std::make_unique<HookGradientReducer>(pg_, params, bucket_bytes_, membership_);
  }

  Status Broadcast(std::vector<torch::Tensor>& tensors, int64_t root) override {
    try {
      torch::NoGradGuard no_grad;
      std::vector<c10::intrusive_ptr<c10d::Work>> works;
      c10d::BroadcastOptions options;
      options.rootRank = root;
      for (torch::Tensor& t : tensors) {
        GLM_CHECK(t.is_contiguous()) << "Broadcast needs contiguous tensors";
        std::vector<torch::Tensor> io{t};
        works.push_back(pg_->broadcast(io, options));
      }
      for (auto& w : works) w->wait();
      return Status::Ok();
    } catch (const std::exception& e) {
      return AbortedError("broadcast failed in generation " +
                          std::to_string(membership_.generation) + ": " + FirstLine(e.what()));
    }
  }

 private:
  static std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

  c10::intrusive_ptr<c10d::ProcessGroup> pg_;
  Membership membership_;
  int64_t bucket_bytes_;
};

}  // namespace

StatusOr<std::unique_ptr<Communicator>> RendezvousCommunicatorFactory::Join(const Membership& m) {
  GLM_RETURN_IF_ERROR(options_.Validate());
  if (m.world_size < 1 || m.rank < 0 || m.rank >= m.world_size) {
    return InvalidArgumentError("bad membership: rank " + std::to_string(m.rank) + " of " +
                                std::to_string(m.world_size));
  }
  if (m.world_size == 1) return std::unique_ptr<Communicator>(new LocalCommunicator(m.generation));
#ifndef GLM_TRAINER_WITH_NCCL
  if (options_.backend == "nccl") {
    return UnimplementedError(
        "dp-backend nccl needs a LibTorch with CUDA; this build has none (use gloo)");
  }
#endif
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(options_.port);
    store_options.isServer = false;
    store_options.timeout = std::chrono::milliseconds(options_.timeout_ms);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(options_.store_host, store_options);
    auto store = c10::make_intrusive<c10d::PrefixStore>(
        options_.prefix + "/gen/" + std::to_string(m.generation), tcp);
    if (options_.backend == "nccl") {
#ifdef GLM_TRAINER_WITH_NCCL
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = std::chrono::milliseconds(options_.timeout_ms);
      auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          store, static_cast<int>(m.rank), static_cast<int>(m.world_size), nccl_options);
      return std::unique_ptr<Communicator>(
          new ProcessGroupCommunicator(nccl, m, options_.bucket_bytes));
#endif
    }
    auto pg_options =
        c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(options_.timeout_ms));
    pg_options->devices.push_back(
        c10d::ProcessGroupGloo::createDeviceForHostname(options_.bind_host));
    pg_options->threads = 2;
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(
        store, static_cast<int>(m.rank), static_cast<int>(m.world_size), pg_options);
    return std::unique_ptr<Communicator>(
        new ProcessGroupCommunicator(pg, m, options_.bucket_bytes));
  } catch (const std::exception& e) {
    const std::string what = e.what();
    return UnavailableError("rendezvous of generation " + std::to_string(m.generation) + " at " +
                            options_.store_host + ":" + std::to_string(options_.port) +
                            " failed: " + what.substr(0, what.find('\n')));
  }
}

struct StoreServer::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
};

StatusOr<std::unique_ptr<StoreServer>> StoreServer::Start(int port, int64_t timeout_ms) {
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = true;
    options.waitWorkers = false;
    options.timeout = std::chrono::milliseconds(timeout_ms);
    std::unique_ptr<StoreServer> server(new StoreServer());
    server->impl_ = std::make_unique<Impl>();
    server->impl_->store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
    return server;
  } catch (const std::exception& e) {
    return UnavailableError("cannot host the c10d store on port " + std::to_string(port) + ": " +
                            e.what());
  }
}

StoreServer::~StoreServer() = default;

int StoreServer::port() const { return impl_->store->getPort(); }

}  // namespace glm::trainer
