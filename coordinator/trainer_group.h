// The coordinator's side of data-parallel training: who is in the trainer
// group, in which membership generation, and at which step boundary every
// member switches generation or writes a checkpoint.
//
// Trainers talk to it with TrainerSync messages (schema/wire/wire.capnp):
//
//   kJoin       a trainer process wants in (at start, or a newcomer mid-run).
//               The first generation forms once min_world_size trainers have
//               joined; later joiners are added by a new generation that the
//               members switch to at a common step boundary.
//   kBoundary   a member finished `step` optimizer steps and asks what to do
//               before the next one: continue, checkpoint, switch generation,
//               or stop. `leaving` = the trainer got SIGTERM: the group
//               checkpoints and continues without it.
//   kFailed     a member's collective failed (a peer died): it waits here
//               until the coordinator forms the next generation from the
//               members that reported (the others are presumed dead once they
//               have been silent for member_timeout_ms) plus waiting joiners.
//   kHeartbeat  a member is alive (a background thread, every second), so a
//               member busy in a long step is never presumed dead.
//
// Why every member switches at the same boundary: each member asks at every
// boundary and waits for the answer, and finishing step b needs a collective
// with every member, which each started only after asking at boundary b. So
// when the coordinator decides, no member is past boundary M + 1, where M is
// the highest boundary any member has asked about in this generation, and a
// member at M + 1 has not been answered yet. A change decided then is
// announced for boundary M + 1 (or for the asker's own boundary when no other
// member has been answered there), and every member hears it at exactly that
// boundary. The same rule places checkpoints ("before a membership change",
// on `glm checkpoint`, on SIGTERM of a member).
//
// Ranks: the first generation orders its trainers by the rank each prefers
// (then by arrival); a new generation keeps the members' order (rank 0 stays
// rank 0 unless it left) and appends joiners in the order they arrived.
//
// Memory only: after a coordinator restart the first request of each member
// (generation, rank, world size) rebuilds the group.
//
// Thread-safety: not thread-safe; the coordinator's server thread owns it.
#ifndef GLM_COORDINATOR_TRAINER_GROUP_H_
#define GLM_COORDINATOR_TRAINER_GROUP_H_

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace glm::coordinator {

struct TrainerGroupOptions {
  // Trainers the first generation waits for. Default: 1.
  int64_t min_world_size = 1;
  // A member silent this long (no request, no heartbeat) while its
  // generation has failed is presumed dead; a joiner silent this long is
  // forgotten. Default: 5000 ms.
  int64_t member_timeout_ms = 5000;
  // Checkpoint at the boundary where members switch to a generation that
  // someone left or joined (not after a failure: the state is then synced
  // from the survivors). Default: true.
  bool checkpoint_before_change = true;
  // Told to trainers that must wait. Default: 200 ms.
  int64_t retry_ms = 200;
  // The c10d rendezvous store every generation uses (hosted next to the
  // coordinator); host "" = the host trainers reach the coordinator at.
  // Default: "", 0 = none (trainers must be given one).
  std::string store_host;
  int store_port = 0;

  Status Validate() const;
};

struct TrainerSyncRequest {
  enum Kind { kJoin, kBoundary, kFailed, kHeartbeat };
  Kind kind = kJoin;
  std::string trainer_id;   // unique per trainer process
  int64_t generation = -1;  // the generation the trainer is in (-1: none yet)
  int64_t rank = 0;         // its rank there; kJoin: the rank it prefers in the first generation
  int64_t world_size = 1;   // that generation's size
  int64_t step = 0;         // completed optimizer steps
  bool leaving = false;     // kBoundary: SIGTERM, leave the group
};

struct TrainerSyncReply {
  enum Action { kContinue, kSwitch, kWait, kStop };
  Action action = kWait;
  // kSwitch: the membership to join (and SyncState in).
  int64_t generation = 0, rank = 0, world_size = 1;
  bool checkpoint = false;  // write a checkpoint at this boundary first
  int64_t retry_ms = 0;     // kWait: ask again after this long
  std::string reason;       // kStop, kWait: for the log
  std::string store_host;   // rendezvous store (TrainerGroupOptions)
  int store_port = 0;
};

const char* TrainerSyncActionName(TrainerSyncReply::Action action);

class TrainerGroup {
 public:
  TrainerGroup(TrainerGroupOptions options, Clock* clock);

  TrainerSyncReply Handle(const TrainerSyncRequest& request);
  // `glm checkpoint`: every member checkpoints at a common boundary soon.
  // Returns the boundary (step) when known now, -1 when it is the next
  // boundary of a generation that has not reached one yet;
  // FailedPrecondition when no generation is running.
  StatusOr<int64_t> RequestCheckpoint();

  int64_t generation() const { return generation_; }
  int64_t world_size() const { return static_cast<int64_t>(members_.size()); }
  // Members, joiners, the pending change: for /api/status and glm status.
  nlohmann::json StatusJson() const;

 private:
  static constexpr int64_t kNone = -1;       // no boundary scheduled
  static constexpr int64_t kNextPoll = -2;   // the next boundary any member asks about

  struct Member {
    std::string id;
    int64_t last_boundary = -1;  // last boundary answered in this generation
    int64_t last_seen_ms = 0;
    bool failed = false;    // reported a failed collective in this generation
    bool leaving = false;
    bool switched = false;  // answered kSwitch/kStop for the pending change
  };
  struct Joiner {
    std::string id;
    int64_t last_seen_ms = 0;
    int64_t preferred_rank = 0;  // orders the first generation
  };
  struct Pending {
    int64_t generation = 0;
    std::vector<std::string> members;  // new rank order; empty = the group stops
    int64_t switch_at = kNextPoll;
    bool checkpoint = false;
  };

  TrainerSyncReply HandleJoin(const TrainerSyncRequest& r, int64_t now);
  TrainerSyncReply HandleBoundary(const TrainerSyncRequest& r, int64_t now);
  TrainerSyncReply HandleFailed(const TrainerSyncRequest& r, int64_t now);
  // A member of an unknown generation (coordinator restarted): adopt it.
  void Adopt(const TrainerSyncRequest& r, int64_t now);
  Member* FindMember(const std::string& id);
  void TouchJoiner(const std::string& id, int64_t now, int64_t preferred_rank);
  void ForgetStaleJoiners(int64_t now);
  // The boundary a change decided now is announced for; `asker` is the member
  // asking at `boundary` (or nullptr).
  int64_t NextBoundary(const Member* asker, int64_t boundary) const;
  // Members staying (not leaving), then joiners.
  std::vector<std::string> NextMembers() const;
  void SchedulePending(std::vector<std::string> members, const Member* asker, int64_t boundary,
                       bool checkpoint);
  // Installs `members` as generation `generation`.
  void Install(int64_t generation, const std::vector<std::string>& members);
  TrainerSyncReply SwitchReply(const Pending& p, const std::string& id, bool checkpoint) const;
  // kSwitch to the current generation for member `id` (its rank there).
  TrainerSyncReply CurrentReply(const std::string& id) const;
  TrainerSyncReply Reply(TrainerSyncReply::Action action) const;

  TrainerGroupOptions options_;
  Clock* clock_;
  int64_t generation_ = -1;
  std::vector<Member> members_;  // rank order
  std::vector<Joiner> joiners_;  // arrival order
  std::optional<Pending> pending_;
  bool failed_ = false;          // the current generation's collectives failed
  int64_t checkpoint_at_ = kNone;
  bool stopped_ = false;         // every member left: the group is over
};

}  // namespace glm::coordinator

#endif  // GLM_COORDINATOR_TRAINER_GROUP_H_
