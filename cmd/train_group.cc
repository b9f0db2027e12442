#include "cmd/train_group.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <random>

namespace glm::cmd {
namespace {

using coordinator::TrainerSyncReply;
using coordinator::TrainerSyncRequest;

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string MakeTrainerId() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(rd() & 0xffff));
  return std::string(host[0] != 0 ? host : "trainer") + "/" + std::to_string(getpid()) + "/" + suffix;
}

// "tcp://HOST:PORT" -> HOST ("" when malformed).
std::string EndpointHost(const std::string& endpoint) {
  std::string rest = endpoint;
  const size_t scheme = rest.find("://");
  if (scheme != std::string::npos) rest = rest.substr(scheme + 3);
  const size_t colon = rest.rfind(':');
  return colon == std::string::npos ? rest : rest.substr(0, colon);
}

}  // namespace

CoordinatorTrainerGroup::CoordinatorTrainerGroup(coordinator::TrainerReporter* reporter,
                                                 std::string coordinator_endpoint, const std::atomic<bool>* stop,
                                                 int64_t preferred_rank, int64_t coordinator_wait_ms)
    : reporter_(reporter),
      endpoint_host_(EndpointHost(coordinator_endpoint)),
      stop_(stop),
      preferred_rank_(preferred_rank),
      coordinator_wait_ms_(coordinator_wait_ms),
      id_(MakeTrainerId()) {
  beat_ = std::thread([this] { Beat(); });
}

CoordinatorTrainerGroup::~CoordinatorTrainerGroup() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  beat_.join();
}

void CoordinatorTrainerGroup::Beat() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return quit_; })) {
    lock.unlock();
    TrainerSyncRequest r = Request(TrainerSyncRequest::kHeartbeat, step_.load());
    reporter_->Sync(r, 1000).status().IgnoreError();  // a missed beat is only a missed beat
    lock.lock();
  }
}

TrainerSyncRequest CoordinatorTrainerGroup::Request(TrainerSyncRequest::Kind kind, int64_t step) const {
  TrainerSyncRequest r;
  r.kind = kind;
  r.trainer_id = id_;
  r.generation = generation_.load();
  r.rank = kind == TrainerSyncRequest::kJoin ? preferred_rank_ : generation_.load() < 0 ? 0 : rank_.load();
  r.world_size = generation_.load() < 0 ? 1 : world_size_.load();
  r.step = step;
  return r;
}

StatusOr<TrainerSyncReply> CoordinatorTrainerGroup::Ask(TrainerSyncRequest request, bool allow_wait) {
  const int64_t start = SteadyMs();
  int64_t unreachable_since = -1;
  std::string last_reason;
  for (;;) {
    StatusOr<TrainerSyncReply> reply = reporter_->Sync(request, 2000);
    if (!reply.ok()) {
      const StatusCode code = reply.status().code();
      if (code != StatusCode::kUnavailable && code != StatusCode::kDeadlineExceeded) return reply.status();
      const int64_t now = SteadyMs();
      if (unreachable_since < 0) {
        unreachable_since = now;
        spdlog::warn("trainer group: {}; retrying for up to {} s", reply.status().message(),
                     coordinator_wait_ms_ / 1000);
      }
      if (now - unreachable_since > coordinator_wait_ms_) {
        return UnavailableError("the coordinator did not answer for " + std::to_string((now - start) / 1000) +
                                " s: " + reply.status().message() + " (is glm coordinator running?)");
      }
      if (request.kind == TrainerSyncRequest::kJoin && stop_ != nullptr && stop_->load()) {
        return AbortedError("stopped while joining the trainer group");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      continue;
    }
    unreachable_since = -1;
    if (reply->action != TrainerSyncReply::kWait || !allow_wait) return reply;
    if (reply->reason != last_reason) {
      spdlog::info("trainer group: {}", reply->reason);
      last_reason = reply->reason;
    }
    if (request.kind == TrainerSyncRequest::kJoin && stop_ != nullptr && stop_->load()) {
      return AbortedError("stopped while waiting to join the trainer group: " + reply->reason);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(10, reply->retry_ms)));
  }
}

trainer::Membership CoordinatorTrainerGroup::Adopt(const TrainerSyncReply& reply) {
  trainer::Membership m;
  m.generation = reply.generation;
  m.rank = reply.rank;
  m.world_size = reply.world_size;
  generation_ = m.generation;
  rank_ = m.rank;
  world_size_ = m.world_size;
  if (reply.store_port > 0) {
    store_host_ = reply.store_host.empty() ? endpoint_host_ : reply.store_host;
    store_port_ = reply.store_port;
  }
  return m;
}

StatusOr<trainer::Membership> CoordinatorTrainerGroup::Join() {
  GLM_ASSIGN_OR_RETURN(TrainerSyncReply reply, Ask(Request(TrainerSyncRequest::kJoin, 0), true));
  if (reply.action != TrainerSyncReply::kSwitch) {
    return FailedPreconditionError("the coordinator did not admit this trainer: " + reply.reason);
  }
  return Adopt(reply);
}

StatusOr<training::BoundaryDecision> CoordinatorTrainerGroup::AtBoundary(int64_t completed_steps, bool leaving) {
  if (decided_step_ == completed_steps && !(leaving && !decision_.stop)) return decision_;
  step_ = completed_steps;
  TrainerSyncRequest r = Request(TrainerSyncRequest::kBoundary, completed_steps);
  r.leaving = leaving;
  GLM_ASSIGN_OR_RETURN(TrainerSyncReply reply, Ask(r, true));
  decided_step_ = completed_steps;
  decision_ = training::BoundaryDecision{};
  switch_.reset();
  decision_.checkpoint = reply.checkpoint;
  switch (reply.action) {
    case TrainerSyncReply::kContinue:
    case TrainerSyncReply::kWait:
      break;
    case TrainerSyncReply::kSwitch:
      switch_ = Adopt(reply);
      break;
    case TrainerSyncReply::kStop:
      decision_.stop = true;
      decision_.reason = reply.reason;
      break;
  }
  return decision_;
}

std::optional<trainer::Membership> CoordinatorTrainerGroup::PollChange(int64_t completed_steps) {
  if (completed_steps != decided_step_ || !switch_) return std::nullopt;
  std::optional<trainer::Membership> m = switch_;
  switch_.reset();
  return m;
}

StatusOr<trainer::Membership> CoordinatorTrainerGroup::AwaitChange(int64_t failed_generation) {
  TrainerSyncRequest r = Request(TrainerSyncRequest::kFailed, step_.load());
  r.generation = failed_generation;
  spdlog::warn("trainer group: a collective of generation {} failed; waiting for the coordinator to re-form the group",
               failed_generation);
  GLM_ASSIGN_OR_RETURN(TrainerSyncReply reply, Ask(r, true));
  if (reply.action != TrainerSyncReply::kSwitch) {
    return AbortedError("the trainer group did not take this trainer back after a failure: " + reply.reason);
  }
  switch_.reset();
  return Adopt(reply);
}

}  // namespace glm::cmd
