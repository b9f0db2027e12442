// The trainer's side of the coordinator's trainer group
// (coordinator/trainer_group.h), over the coordinator connection of
// coordinator::TrainerReporter: admission, a decision at every step
// boundary, the next generation after a failed collective, and a liveness
// beat every second from a background thread.
//
// Waiting is bounded: the coordinator away (restarting) is retried for
// `coordinator_wait_ms` before the trainer gives up with Unavailable; a stop
// request (Ctrl-C) ends a wait to join.
//
// Thread-safety: the MembershipSource calls come from the trainer thread;
// the heartbeat thread only sends beats (the reporter serializes calls).
#ifndef GLM_CMD_TRAIN_GROUP_H_
#define GLM_CMD_TRAIN_GROUP_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "coordinator/trainer_report.h"
#include "worker/training/train_run.h"

namespace glm::cmd {

class CoordinatorTrainerGroup final : public training::TrainerGroupMembership {
 public:
  // `reporter` (not owned) must outlive this object. `coordinator_endpoint`
  // (tcp://HOST:PORT) gives the rendezvous host when the coordinator names
  // none. `stop` (may be null) ends a wait to join. `preferred_rank` orders
  // the first generation (glm pretrain starts trainer r with --rank r).
  CoordinatorTrainerGroup(coordinator::TrainerReporter* reporter, std::string coordinator_endpoint,
                          const std::atomic<bool>* stop, int64_t preferred_rank = 0,
                          int64_t coordinator_wait_ms = 120000);
  ~CoordinatorTrainerGroup() override;

  StatusOr<trainer::Membership> Join() override;
  StatusOr<training::BoundaryDecision> AtBoundary(int64_t completed_steps, bool leaving) override;
  std::optional<trainer::Membership> PollChange(int64_t completed_steps) override;
  StatusOr<trainer::Membership> AwaitChange(int64_t failed_generation) override;
  std::string store_host() const override { return store_host_; }
  int store_port() const override { return store_port_; }

  const std::string& trainer_id() const { return id_; }

 private:
  // One request, retried while the coordinator is unreachable or says wait.
  StatusOr<coordinator::TrainerSyncReply> Ask(coordinator::TrainerSyncRequest request, bool allow_wait);
  coordinator::TrainerSyncRequest Request(coordinator::TrainerSyncRequest::Kind kind, int64_t step) const;
  trainer::Membership Adopt(const coordinator::TrainerSyncReply& reply);
  void Beat();

  coordinator::TrainerReporter* reporter_;
  std::string endpoint_host_;
  const std::atomic<bool>* stop_;
  int64_t preferred_rank_;
  int64_t coordinator_wait_ms_;
  std::string id_;
  std::string store_host_;
  int store_port_ = 0;
  std::atomic<int64_t> generation_{-1};
  std::atomic<int64_t> rank_{0};
  std::atomic<int64_t> world_size_{1};
  std::atomic<int64_t> step_{0};
  // The decision of the last boundary asked about.
  int64_t decided_step_ = -1;
  training::BoundaryDecision decision_;
  std::optional<trainer::Membership> switch_;  // announced for decided_step_

  std::mutex mu_;
  std::condition_variable wake_;
  bool quit_ = false;  // guarded by mu_
  std::thread beat_;
};

}  // namespace glm::cmd

#endif  // GLM_CMD_TRAIN_GROUP_H_
