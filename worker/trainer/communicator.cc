#include "worker/trainer/communicator.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef GLM_TRAINER_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <map>

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
