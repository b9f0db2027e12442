// Data-parallel collectives for the trainer, and the rendezvous that builds
// them: one c10d ProcessGroup per membership generation.
//
//   StoreServer      hosts a c10d TCPStore (the coordinator runs one; tests
//                    run one in the test process).
//   Communicator     interface: all-reduce (sum) and broadcast of tensors.
//     LocalCommunicator   world size 1: every call is a no-op.
//     GlooCommunicator    c10d ProcessGroupGloo over TCP (CPU tensors).
//     With backend "nccl": c10d ProcessGroupNCCL (CUDA tensors), compiled only
//     when LibTorch has CUDA (GLM_TRAINER_WITH_NCCL); Debian's LibTorch 1.13
//     is CPU-only, so that path is built and tested nowhere yet.
//   RendezvousCommunicatorFactory   Join(membership): connects to the store at
//                    host:port and builds the process group under the key
//                    prefix "<prefix>/gen/<generation>/", so every membership
//                    generation rendezvouses in its own namespace and a stale
//                    process of an older generation can never join a newer one.
//
// Gradient all-reduce is bucketed two ways: AllReduceSum copies tensors into
// flat buffers of at most bucket_bytes, launches them all asynchronously
// (Gloo works on them on its own threads), then waits and copies back; and a
// GradientReducer all-reduces each bucket of gradients *during* backward, as
// soon as backward has accumulated all of its gradients (autograd post-hooks
// on the parameters' grad accumulators, as PyTorch DDP's c10d::Reducer does;
// that class cannot be used here because Debian's libtorch-dev lacks headers
// reducer.hpp includes), so communication overlaps the rest of backward.
//
// Errors: a collective that fails (peer died, timeout) returns kAborted: the
// caller abandons the step and waits for a new membership generation.
//
// Thread-safety: a Communicator is used by one thread (the trainer loop).
#ifndef GLM_WORKER_TRAINER_COMMUNICATOR_H_
#define GLM_WORKER_TRAINER_COMMUNICATOR_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace c10d {
class Store;
}  // namespace c10d

namespace glm::trainer {

// Who this trainer is in which generation of the data-parallel group.
struct Membership {
  int64_t generation = 0;  // increases on every join or loss
  int64_t rank = 0;        // 0 .. world_size - 1
  int64_t world_size = 1;
};

// Sums the gradients of a fixed parameter list across ranks during backward.
// Gradients of earlier backwards accumulate in .grad as usual; during the
// backward after PrepareForBackward(), each bucket of parameters is
// all-reduced as soon as backward has accumulated all of its gradients (the
// buckets hold the parameters in reverse order, as backward produces them,
// and are launched in the same order on every rank). Finish() then launches
// what backward did not reach, waits, and leaves the sums in .grad.
class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  // Before the backward of the last micro batch of a step.
  virtual void PrepareForBackward() = 0;
  // After that backward. Aborted when a collective failed (a peer died).
  virtual Status Finish() = 0;
  // Buckets the last backward launched itself (the rest: Finish()), and all.
  virtual int64_t buckets_launched_in_backward() const = 0;
  virtual int64_t num_buckets() const = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  virtual int64_t generation() const = 0;

  // In-place element-wise sum over all ranks. Tensors may have different
  // shapes and (floating) dtypes; they are bucketed by dtype.
  virtual Status AllReduceSum(std::vector<torch::Tensor>& tensors) = 0;
  // In-place broadcast of every tensor from rank `root`.
  virtual Status Broadcast(std::vector<torch::Tensor>& tensors, int64_t root) = 0;
  // A reducer for `params` (which must outlive it) that overlaps the
  // all-reduce with backward; nullptr when this communicator has none (world
  // size 1, fakes): the caller then all-reduces after backward.
  virtual std::unique_ptr<GradientReducer> MakeGradientReducer(const std::vector<torch::Tensor>& params) {
    (void)params;
    return nullptr;
  }
};

// World size 1.
class LocalCommunicator : public Communicator {
 public:
  explicit LocalCommunicator(int64_t generation = 0) : generation_(generation) {}
  int64_t rank() const override { return 0; }
  int64_t world_size() const override { return 1; }
  int64_t generation() const override { return generation_; }
  Status AllReduceSum(std::vector<torch::Tensor>&) override { return Status::Ok(); }
  Status Broadcast(std::vector<torch::Tensor>&, int64_t) override { return Status::Ok(); }

 private:
  int64_t generation_;
};

struct CommunicatorOptions {
  // Address of the c10d TCPStore (hosted by the coordinator). Default: 127.0.0.1.
  std::string store_host = "127.0.0.1";
  // Its port. Default: 29500.
  int port = 29500;
  // Key prefix of this job in the store. Default: "glm".
  std::string prefix = "glm";
  // Network interface address Gloo binds to. Default: 127.0.0.1.
  std::string bind_host = "127.0.0.1";
  // Timeout of the rendezvous and of every collective; a dead peer that does
  // not close its sockets is detected after this long. Default: 30000.
  int64_t timeout_ms = 30000;
  // "gloo" (CPU tensors) or "nccl" (CUDA tensors; only in builds whose
  // LibTorch has CUDA, GLM_TRAINER_WITH_NCCL, else Join() is UNIMPLEMENTED).
  // Default: gloo.
  std::string backend = "gloo";
  // Maximum bytes per all-reduce bucket. Default: 25 MiB (as PyTorch DDP).
  int64_t bucket_bytes = 25 << 20;

  Status Validate() const;
};

// Builds the communicator for a membership generation.
class CommunicatorFactory {
 public:
  virtual ~CommunicatorFactory() = default;
  virtual StatusOr<std::unique_ptr<Communicator>> Join(const Membership& membership) = 0;
};

class RendezvousCommunicatorFactory : public CommunicatorFactory {
 public:
  explicit RendezvousCommunicatorFactory(CommunicatorOptions options)
      : options_(std::move(options)) {}
  // World size 1 gives a LocalCommunicator without touching the store.
  StatusOr<std::unique_ptr<Communicator>> Join(const Membership& membership) override;

 private:
  CommunicatorOptions options_;
};

// Hosts a c10d TCPStore server. Port 0 picks a free port.
class StoreServer {
 public:
  static StatusOr<std::unique_ptr<StoreServer>> Start(int port, int64_t timeout_ms = 30000);
  ~StoreServer();
  int port() const;

 private:
  StoreServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace glm::trainer

#endif  // GLM_WORKER_TRAINER_COMMUNICATOR_H_
