#include "coordinator/trainer_group.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "common/options.h"

namespace glm::coordinator {

Status TrainerGroupOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireAtLeast("trainers", min_world_size, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("trainer-timeout-ms", member_timeout_ms, 100));
  GLM_RETURN_IF_ERROR(RequireAtLeast("retry_ms", retry_ms, 1));
  if (store_port < 0 || store_port > 65535) {
    return InvalidArgumentError("rendezvous port must be in [0, 65535], got " + std::to_string(store_port));
  }
  return Status::Ok();
}

const char* TrainerSyncActionName(TrainerSyncReply::Action action) {
  switch (action) {
    case TrainerSyncReply::kContinue: return "continue";
    case TrainerSyncReply::kSwitch: return "switch";
    case TrainerSyncReply::kWait: return "wait";
    case TrainerSyncReply::kStop: return "stop";
  }
  return "?";
}

TrainerGroup::TrainerGroup(TrainerGroupOptions options, Clock* clock)
    : options_(std::move(options)), clock_(clock) {}

TrainerGroup::Member* TrainerGroup::FindMember(const std::string& id) {
  for (Member& m : members_) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

void TrainerGroup::TouchJoiner(const std::string& id, int64_t now, int64_t preferred_rank) {
  for (Joiner& j : joiners_) {
    if (j.id == id) {
      j.last_seen_ms = now;
      return;
    }
  }
  joiners_.push_back(Joiner{id, now, preferred_rank});
  spdlog::info("trainer {} asks to join the group ({} waiting)", id, joiners_.size());
}

void TrainerGroup::ForgetStaleJoiners(int64_t now) {
  joiners_.erase(std::remove_if(joiners_.begin(), joiners_.end(),
                                [&](const Joiner& j) { return now - j.last_seen_ms > options_.member_timeout_ms; }),
                 joiners_.end());
}

TrainerSyncReply TrainerGroup::Reply(TrainerSyncReply::Action action) const {
  TrainerSyncReply r;
  r.action = action;
  r.store_host = options_.store_host;
  r.store_port = options_.store_port;
  if (action == TrainerSyncReply::kWait) r.retry_ms = options_.retry_ms;
  return r;
}

TrainerSyncReply TrainerGroup::SwitchReply(const Pending& p, const std::string& id, bool checkpoint) const {
  auto it = std::find(p.members.begin(), p.members.end(), id);
  if (it == p.members.end()) {
    TrainerSyncReply r = Reply(TrainerSyncReply::kStop);
    r.checkpoint = checkpoint;
    r.reason = p.members.empty() ? "every trainer left the group" : "this trainer left the group";
    return r;
  }
  TrainerSyncReply r = Reply(TrainerSyncReply::kSwitch);
  r.generation = p.generation;
  r.rank = it - p.members.begin();
  r.world_size = static_cast<int64_t>(p.members.size());
  r.checkpoint = checkpoint;
  return r;
}

TrainerSyncReply TrainerGroup::CurrentReply(const std::string& id) const {
  TrainerSyncReply r = Reply(TrainerSyncReply::kSwitch);
  r.generation = generation_;
  r.world_size = static_cast<int64_t>(members_.size());
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].id == id) r.rank = static_cast<int64_t>(i);
  }
  return r;
}

void TrainerGroup::Install(int64_t generation, const std::vector<std::string>& ids) {
  const int64_t now = clock_->NowMs();
  std::vector<Member> next;
  for (const std::string& id : ids) {
    Member m;
    m.id = id;
    m.last_seen_ms = now;
    if (const Member* old = FindMember(id)) m.last_seen_ms = old->last_seen_ms;
    for (const Joiner& j : joiners_) {
      if (j.id == id) m.last_seen_ms = j.last_seen_ms;
    }
    next.push_back(std::move(m));
  }
  joiners_.erase(std::remove_if(joiners_.begin(), joiners_.end(),
                                [&](const Joiner& j) {
                                  return std::find(ids.begin(), ids.end(), j.id) != ids.end();
                                }),
                 joiners_.end());
  members_ = std::move(next);
  generation_ = generation;
  pending_.reset();
  failed_ = false;
  checkpoint_at_ = kNone;
  stopped_ = members_.empty();
  std::string names;
  for (const std::string& id : ids) names += (names.empty() ? "" : ", ") + id;
  spdlog::info("trainer group generation {}: {} trainer(s) [{}]", generation, ids.size(), names);
}

std::vector<std::string> TrainerGroup::NextMembers() const {
  std::vector<std::string> ids;
  for (const Member& m : members_) {
    if (!m.leaving && !m.id.empty()) ids.push_back(m.id);
  }
  for (const Joiner& j : joiners_) ids.push_back(j.id);
  return ids;
}

int64_t TrainerGroup::NextBoundary(const Member* asker, int64_t boundary) const {
  int64_t highest = -1;  // highest boundary another member was answered at
  for (const Member& m : members_) {
    if (&m != asker) highest = std::max(highest, m.last_boundary);
  }
  if (asker != nullptr) return highest >= boundary ? boundary + 1 : boundary;
  return highest >= 0 ? highest + 1 : kNextPoll;
}

void TrainerGroup::SchedulePending(std::vector<std::string> members, const Member* asker, int64_t boundary,
                                   bool checkpoint) {
  Pending p;
  p.generation = generation_ + 1;
  p.members = std::move(members);
  p.switch_at = NextBoundary(asker, boundary);
  p.checkpoint = checkpoint;
  // Joiners in the pending generation are no longer waiting.
  joiners_.erase(std::remove_if(joiners_.begin(), joiners_.end(),
                                [&](const Joiner& j) {
                                  return std::find(p.members.begin(), p.members.end(), j.id) != p.members.end();
                                }),
                 joiners_.end());
  spdlog::info("trainer group: generation {} of {} trainer(s) scheduled at step {}", p.generation,
               p.members.size(), p.switch_at == kNextPoll ? std::string("(next boundary)") : std::to_string(p.switch_at));
  pending_ = std::move(p);
}

void TrainerGroup::Adopt(const TrainerSyncRequest& r, int64_t now) {
  if (r.generation > generation_) {
    spdlog::info("trainer group: adopting generation {} of {} trainer(s) from {} (coordinator restarted?)",
                 r.generation, r.world_size, r.trainer_id);
    generation_ = r.generation;
    members_.assign(static_cast<size_t>(std::max<int64_t>(1, r.world_size)), Member{});
    for (Member& m : members_) m.last_seen_ms = now;
    pending_.reset();
    failed_ = false;
    stopped_ = false;
    checkpoint_at_ = kNone;
  }
  if (r.rank >= 0 && r.rank < static_cast<int64_t>(members_.size()) && members_[r.rank].id.empty()) {
    members_[r.rank].id = r.trainer_id;
    members_[r.rank].last_seen_ms = now;
  }
}

TrainerSyncReply TrainerGroup::Handle(const TrainerSyncRequest& r) {
  const int64_t now = clock_->NowMs();
  switch (r.kind) {
    case TrainerSyncRequest::kJoin:
      return HandleJoin(r, now);
    case TrainerSyncRequest::kBoundary:
      return HandleBoundary(r, now);
    case TrainerSyncRequest::kFailed:
      return HandleFailed(r, now);
    case TrainerSyncRequest::kHeartbeat:
      if (Member* m = FindMember(r.trainer_id)) {
        m->last_seen_ms = now;
      } else if (r.generation < 0) {
        for (Joiner& j : joiners_) {
          if (j.id == r.trainer_id) j.last_seen_ms = now;
        }
      }
      return Reply(TrainerSyncReply::kContinue);
  }
  return Reply(TrainerSyncReply::kWait);
}

TrainerSyncReply TrainerGroup::HandleJoin(const TrainerSyncRequest& r, int64_t now) {
  if (pending_ && std::find(pending_->members.begin(), pending_->members.end(), r.trainer_id) !=
                      pending_->members.end() &&
      !FindMember(r.trainer_id)) {
    return SwitchReply(*pending_, r.trainer_id, false);
  }
  if (FindMember(r.trainer_id) != nullptr) {
    // A repeated join (its answer was lost): the current membership.
    return CurrentReply(r.trainer_id);
  }
  if (stopped_) {
    TrainerSyncReply reply = Reply(TrainerSyncReply::kStop);
    reply.reason = "the trainer group has stopped (every trainer left); start a new job to train again";
    return reply;
  }
  TouchJoiner(r.trainer_id, now, r.rank);
  ForgetStaleJoiners(now);
  if (generation_ < 0) {
    if (static_cast<int64_t>(joiners_.size()) < options_.min_world_size) {
      TrainerSyncReply reply = Reply(TrainerSyncReply::kWait);
      reply.reason = "waiting for " + std::to_string(options_.min_world_size - static_cast<int64_t>(joiners_.size())) +
                     " more trainer(s) to form the group";
      return reply;
    }
    std::vector<Joiner> order = joiners_;
    std::stable_sort(order.begin(), order.end(),
                     [](const Joiner& a, const Joiner& b) { return a.preferred_rank < b.preferred_rank; });
    std::vector<std::string> ids;
    for (const Joiner& j : order) ids.push_back(j.id);
    Install(0, ids);
    return SwitchReply(Pending{0, ids, kNone, false}, r.trainer_id, false);
  }
  if (failed_ || pending_) {
    TrainerSyncReply reply = Reply(TrainerSyncReply::kWait);
    reply.reason = failed_ ? "the group is recovering from a failure" : "a membership change is under way";
    return reply;
  }
  SchedulePending(NextMembers(), nullptr, 0, options_.checkpoint_before_change);
  return SwitchReply(*pending_, r.trainer_id, false);
}

TrainerSyncReply TrainerGroup::HandleBoundary(const TrainerSyncRequest& r, int64_t now) {
  if (pending_ && r.generation == pending_->generation) {
    const Pending p = *pending_;  // its members are all in it already
    Install(p.generation, p.members);
  }
  if (r.generation > generation_ || (r.generation == generation_ && FindMember(r.trainer_id) == nullptr)) {
    Adopt(r, now);
  }
  Member* m = FindMember(r.trainer_id);
  if (m == nullptr || r.generation < generation_) {
    TrainerSyncReply reply = Reply(TrainerSyncReply::kStop);
    reply.reason = "trainer " + r.trainer_id + " (generation " + std::to_string(r.generation) +
                   ") is no longer in the group (generation " + std::to_string(generation_) +
                   "): it was presumed dead; start it again to rejoin";
    return reply;
  }
  m->last_seen_ms = now;
  if (r.leaving && !m->leaving) {
    m->leaving = true;
    spdlog::info("trainer {} leaves the group at step {}", r.trainer_id, r.step);
    // The pending generation can still lose a member while nobody has been
    // told its ranks and size (members told to stop do not count).
    bool anyone_switched = false;
    if (pending_) {
      for (const Member& x : members_) {
        anyone_switched |= x.switched && std::find(pending_->members.begin(), pending_->members.end(), x.id) !=
                                             pending_->members.end();
      }
    }
    if (!pending_) {
      SchedulePending(NextMembers(), m, r.step, true);
    } else if (!anyone_switched) {
      auto& ids = pending_->members;
      ids.erase(std::remove(ids.begin(), ids.end(), r.trainer_id), ids.end());
      pending_->checkpoint = true;
    }
    // else: it is in the generation being switched to and leaves from there.
  }
  if (pending_ && !m->switched) {
    if (pending_->switch_at == kNextPoll) pending_->switch_at = r.step;
    if (r.step >= pending_->switch_at) {
      m->switched = true;
      m->last_boundary = std::max(m->last_boundary, r.step);
      TrainerSyncReply reply = SwitchReply(*pending_, r.trainer_id, pending_->checkpoint);
      bool all = true;
      for (const Member& x : members_) all &= x.switched || x.id.empty();
      if (all) {
        const Pending p = *pending_;
        Install(p.generation, p.members);
      }
      return reply;
    }
  }
  m->last_boundary = std::max(m->last_boundary, r.step);
  TrainerSyncReply reply = Reply(TrainerSyncReply::kContinue);
  if (checkpoint_at_ == kNextPoll) checkpoint_at_ = r.step;
  reply.checkpoint = checkpoint_at_ == r.step;
  return reply;
}

TrainerSyncReply TrainerGroup::HandleFailed(const TrainerSyncRequest& r, int64_t now) {
  if (pending_ && r.generation == pending_->generation) {
    // The switch itself failed (a member of the new generation never came):
    // the new generation is what the switched members are in.
    const Pending p = *pending_;
    Install(p.generation, p.members);
  }
  if (r.generation > generation_ || (r.generation == generation_ && FindMember(r.trainer_id) == nullptr)) {
    Adopt(r, now);
  }
  Member* m = FindMember(r.trainer_id);
  if (m == nullptr) {
    // Presumed dead and replaced, or a joiner whose rendezvous failed: join again.
    TrainerSyncRequest join = r;
    join.kind = TrainerSyncRequest::kJoin;
    return HandleJoin(join, now);
  }
  m->last_seen_ms = now;
  if (r.generation < generation_) {
    // The group was re-formed since: this member is in it.
    return CurrentReply(r.trainer_id);
  }
  if (!failed_) {
    spdlog::warn("trainer group generation {}: {} reports a failed collective at step {}", generation_,
                 r.trainer_id, r.step);
  }
  m->failed = true;
  failed_ = true;
  if (pending_) {
    // A scheduled change is void; its joiners wait for the re-formed group.
    for (const std::string& id : pending_->members) {
      if (FindMember(id) == nullptr) joiners_.insert(joiners_.begin(), Joiner{id, now, 0});
    }
    pending_.reset();
    for (Member& x : members_) x.switched = false;
  }
  int64_t unknown = 0;
  for (const Member& x : members_) {
    if (!x.failed && !x.leaving && now - x.last_seen_ms <= options_.member_timeout_ms) ++unknown;
  }
  if (unknown > 0) {
    TrainerSyncReply reply = Reply(TrainerSyncReply::kWait);
    reply.reason = "waiting for " + std::to_string(unknown) + " trainer(s) to report or time out";
    return reply;
  }
  ForgetStaleJoiners(now);
  std::vector<std::string> ids;
  for (const Member& x : members_) {
    if (x.failed && !x.leaving) ids.push_back(x.id);
  }
  for (const Joiner& j : joiners_) ids.push_back(j.id);
  int64_t lost = 0;
  for (const Member& x : members_) lost += x.failed ? 0 : 1;
  spdlog::warn("trainer group: re-forming without {} lost trainer(s)", lost);
  Install(generation_ + 1, ids);
  return SwitchReply(Pending{generation_, ids, kNone, false}, r.trainer_id, false);
}

StatusOr<int64_t> TrainerGroup::RequestCheckpoint() {
  if (generation_ < 0 || members_.empty()) {
    return FailedPreconditionError("no trainer group is running (no trainer has joined yet, or all have left)");
  }
  if (failed_) return UnavailableError("the trainer group is recovering from a failure; try again in a few seconds");
  if (checkpoint_at_ >= 0) {
    // One is scheduled that not every member has passed yet: it covers this request.
    for (const Member& m : members_) {
      if (m.last_boundary < checkpoint_at_) return checkpoint_at_;
    }
  } else if (checkpoint_at_ == kNextPoll) {
    return int64_t{-1};
  }
  checkpoint_at_ = NextBoundary(nullptr, 0);
  return checkpoint_at_ == kNextPoll ? int64_t{-1} : checkpoint_at_;
}

nlohmann::json TrainerGroup::StatusJson() const {
  const int64_t now = clock_->NowMs();
  nlohmann::json members = nlohmann::json::array();
  for (size_t i = 0; i < members_.size(); ++i) {
    const Member& m = members_[i];
    members.push_back({{"rank", i},
                       {"trainer", m.id},
                       {"step", m.last_boundary},
                       {"last_seen_ms_ago", now - m.last_seen_ms},
                       {"failed", m.failed},
                       {"leaving", m.leaving}});
  }
  nlohmann::json joiners = nlohmann::json::array();
  for (const Joiner& j : joiners_) joiners.push_back(j.id);
  nlohmann::json j = {{"generation", generation_},
                      {"min_world_size", options_.min_world_size},
                      {"members", members},
                      {"joiners", joiners},
                      {"recovering", failed_},
                      {"stopped", stopped_},
                      {"checkpoint_at", checkpoint_at_ >= 0 ? nlohmann::json(checkpoint_at_) : nlohmann::json()}};
  if (pending_) {
    j["pending"] = {{"generation", pending_->generation},
                    {"members", pending_->members},
                    {"switch_at", pending_->switch_at >= 0 ? nlohmann::json(pending_->switch_at) : nlohmann::json()}};
  }
  if (!options_.store_host.empty() || options_.store_port > 0) {
    j["rendezvous"] = options_.store_host + ":" + std::to_string(options_.store_port);
  }
  return j;
}

}  // namespace glm::coordinator
