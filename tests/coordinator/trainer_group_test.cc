// TrainerGroup: admission, common switch boundaries, failures, leaving,
// checkpoints and adoption after a coordinator restart (coordinator/
// trainer_group.h), on a manual clock.
#include "coordinator/trainer_group.h"

#include <gtest/gtest.h>

namespace glm::coordinator {
namespace {

using Kind = TrainerSyncRequest::Kind;

class TrainerGroupTest : public ::testing::Test {
 protected:
  TrainerGroup MakeGroup(int64_t min_world_size) {
    TrainerGroupOptions o;
    o.min_world_size = min_world_size;
    o.member_timeout_ms = 1000;
    o.store_port = 29511;
    return TrainerGroup(o, &clock_);
  }
  static TrainerSyncRequest Req(Kind kind, const std::string& id, int64_t generation, int64_t rank,
                                int64_t world, int64_t step, bool leaving = false) {
    TrainerSyncRequest r;
    r.kind = kind;
    r.trainer_id = id;
    r.generation = generation;
    r.rank = rank;
    r.world_size = world;
    r.step = step;
    r.leaving = leaving;
    return r;
  }
  static TrainerSyncRequest Join(const std::string& id, int64_t preferred_rank = 0) {
    return Req(TrainerSyncRequest::kJoin, id, -1, preferred_rank, 1, 0);
  }
  ManualClock clock_{1000};
};

void ExpectSwitch(const TrainerSyncReply& r, int64_t generation, int64_t rank, int64_t world) {
  ASSERT_EQ(r.action, TrainerSyncReply::kSwitch) << TrainerSyncActionName(r.action) << ": " << r.reason;
  EXPECT_EQ(r.generation, generation);
  EXPECT_EQ(r.rank, rank);
  EXPECT_EQ(r.world_size, world);
  EXPECT_EQ(r.store_port, 29511);
}

TEST_F(TrainerGroupTest, FirstGenerationWaitsForMinWorldSizeAndOrdersByPreferredRank) {
  TrainerGroup g = MakeGroup(2);
  TrainerSyncReply a = g.Handle(Join("a", 1));
  EXPECT_EQ(a.action, TrainerSyncReply::kWait);
  EXPECT_GT(a.retry_ms, 0);
  EXPECT_NE(a.reason.find("1 more"), std::string::npos) << a.reason;
  ExpectSwitch(g.Handle(Join("b", 0)), 0, 0, 2);
  ExpectSwitch(g.Handle(Join("a", 1)), 0, 1, 2);  // a asks again: rank 1
  EXPECT_EQ(g.generation(), 0);
  EXPECT_EQ(g.world_size(), 2);
}

TEST_F(TrainerGroupTest, ANewcomerIsSwitchedToByEveryMemberAtTheSameBoundaryWithACheckpoint) {
  TrainerGroup g = MakeGroup(2);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  g.Handle(Join("a", 0));
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 5)).action, TrainerSyncReply::kContinue);
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 5)).action, TrainerSyncReply::kContinue);
  // Both were answered at 5, so the change is announced for boundary 6.
  ExpectSwitch(g.Handle(Join("c")), 1, 2, 3);
  TrainerSyncReply a6 = g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 6));
  ExpectSwitch(a6, 1, 0, 3);
  EXPECT_TRUE(a6.checkpoint);
  EXPECT_EQ(g.generation(), 0);  // b has not switched yet
  TrainerSyncReply b6 = g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 6));
  ExpectSwitch(b6, 1, 1, 3);
  EXPECT_TRUE(b6.checkpoint);
  EXPECT_EQ(g.generation(), 1);
  EXPECT_EQ(g.world_size(), 3);
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "c", 1, 2, 3, 6)).action, TrainerSyncReply::kContinue);
}

TEST_F(TrainerGroupTest, AChangeBeforeAnyBoundaryIsAnnouncedAtTheFirstBoundaryAsked) {
  TrainerGroup g = MakeGroup(2);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  ExpectSwitch(g.Handle(Join("c")), 1, 2, 3);
  // The generation started at step 7 (a resumed run): both hear it there.
  ExpectSwitch(g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 7)), 1, 1, 3);
  ExpectSwitch(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 7)), 1, 0, 3);
  EXPECT_EQ(g.generation(), 1);
}

TEST_F(TrainerGroupTest, ALeaverThatIsFirstAtItsBoundaryStopsThereAndTheOthersSwitchThere) {
  TrainerGroup g = MakeGroup(2);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 4));
  g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 4));
  // a (rank 0) got SIGTERM; b has not asked at 5 yet.
  TrainerSyncReply a5 = g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 5, /*leaving=*/true));
  EXPECT_EQ(a5.action, TrainerSyncReply::kStop);
  EXPECT_TRUE(a5.checkpoint);
  TrainerSyncReply b5 = g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 5));
  ExpectSwitch(b5, 1, 0, 1);  // b becomes rank 0
  EXPECT_TRUE(b5.checkpoint);
}

TEST_F(TrainerGroupTest, ALeaverAfterAnotherWasAnsweredLeavesOneBoundaryLater) {
  TrainerGroup g = MakeGroup(2);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 5)).action, TrainerSyncReply::kContinue);
  TrainerSyncReply b5 = g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 5, /*leaving=*/true));
  EXPECT_EQ(b5.action, TrainerSyncReply::kContinue);  // a is already in step 5
  EXPECT_FALSE(b5.checkpoint);
  ExpectSwitch(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 6)), 1, 0, 1);
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 6, true)).action, TrainerSyncReply::kStop);
  EXPECT_EQ(g.generation(), 1);
}

TEST_F(TrainerGroupTest, WhenEveryoneLeavesTheGroupStopsAndTurnsAwayJoiners) {
  TrainerGroup g = MakeGroup(2);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 3, true)).action, TrainerSyncReply::kStop);
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 3, true)).action, TrainerSyncReply::kStop);
  TrainerSyncReply late = g.Handle(Join("c"));
  EXPECT_EQ(late.action, TrainerSyncReply::kStop);
  EXPECT_NE(late.reason.find("stopped"), std::string::npos) << late.reason;
}

TEST_F(TrainerGroupTest, AfterAFailureSurvivorsWaitForTheSilentMemberToTimeOutThenReform) {
  TrainerGroup g = MakeGroup(3);
  for (const char* id : {"a", "b", "c"}) g.Handle(Join(id, id[0] - 'a'));
  for (const char* id : {"a", "b", "c"}) g.Handle(Join(id, id[0] - 'a'));
  ASSERT_EQ(g.world_size(), 3);
  // c dies; a and b see their collective fail.
  EXPECT_EQ(g.Handle(Req(Kind::kFailed, "a", 0, 0, 3, 9)).action, TrainerSyncReply::kWait);
  clock_.AdvanceMs(600);
  EXPECT_EQ(g.Handle(Req(Kind::kFailed, "b", 0, 1, 3, 9)).action, TrainerSyncReply::kWait);
  clock_.AdvanceMs(600);  // c silent for 1200 ms > 1000
  ExpectSwitch(g.Handle(Req(Kind::kFailed, "a", 0, 0, 3, 9)), 1, 0, 2);
  ExpectSwitch(g.Handle(Req(Kind::kFailed, "b", 0, 1, 3, 9)), 1, 1, 2);
  // c comes back from the dead with its old generation: told to restart.
  TrainerSyncReply c = g.Handle(Req(Kind::kBoundary, "c", 0, 2, 3, 10));
  EXPECT_EQ(c.action, TrainerSyncReply::kStop);
  EXPECT_NE(c.reason.find("presumed dead"), std::string::npos) << c.reason;
}

TEST_F(TrainerGroupTest, HeartbeatsKeepABusyMemberAndItsReportCompletesTheReform) {
  TrainerGroup g = MakeGroup(2);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  EXPECT_EQ(g.Handle(Req(Kind::kFailed, "a", 0, 0, 2, 3)).action, TrainerSyncReply::kWait);
  for (int i = 0; i < 5; ++i) {
    clock_.AdvanceMs(500);
    g.Handle(Req(Kind::kHeartbeat, "b", 0, 1, 2, 3));
    EXPECT_EQ(g.Handle(Req(Kind::kFailed, "a", 0, 0, 2, 3)).action, TrainerSyncReply::kWait);
  }
  ExpectSwitch(g.Handle(Req(Kind::kFailed, "b", 0, 1, 2, 3)), 1, 1, 2);
  ExpectSwitch(g.Handle(Req(Kind::kFailed, "a", 0, 0, 2, 3)), 1, 0, 2);
}

TEST_F(TrainerGroupTest, AFailureVoidsAScheduledJoinAndTheJoinerEntersTheReformedGroup) {
  TrainerGroup g = MakeGroup(2);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 2));
  ExpectSwitch(g.Handle(Join("c")), 1, 2, 3);  // scheduled for boundary 3
  // b dies before boundary 3; a's collective fails.
  EXPECT_EQ(g.Handle(Req(Kind::kFailed, "a", 0, 0, 2, 2)).action, TrainerSyncReply::kWait);
  clock_.AdvanceMs(1500);
  g.Handle(Req(Kind::kHeartbeat, "c", -1, 0, 1, 0));
  EXPECT_EQ(g.Handle(Join("c")).action, TrainerSyncReply::kWait);
  ExpectSwitch(g.Handle(Req(Kind::kFailed, "a", 0, 0, 2, 2)), 1, 0, 2);
  ExpectSwitch(g.Handle(Join("c")), 1, 1, 2);
}

TEST_F(TrainerGroupTest, CheckpointRequestsLandOnTheNextCommonBoundary) {
  TrainerGroup g = MakeGroup(2);
  EXPECT_EQ(g.RequestCheckpoint().status().code(), StatusCode::kFailedPrecondition);
  g.Handle(Join("a", 0));
  g.Handle(Join("b", 1));
  StatusOr<int64_t> first = g.RequestCheckpoint();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, -1);  // nobody has reached a boundary yet: the next one
  EXPECT_TRUE(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 7)).checkpoint);
  EXPECT_TRUE(g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 7)).checkpoint);
  EXPECT_FALSE(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 8)).checkpoint);
  StatusOr<int64_t> second = g.RequestCheckpoint();  // a answered at 8, b at 7
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 9);
  EXPECT_EQ(*g.RequestCheckpoint(), 9);  // a second request before 9 is the same one
  EXPECT_FALSE(g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 8)).checkpoint);
  EXPECT_TRUE(g.Handle(Req(Kind::kBoundary, "a", 0, 0, 2, 9)).checkpoint);
  EXPECT_TRUE(g.Handle(Req(Kind::kBoundary, "b", 0, 1, 2, 9)).checkpoint);
}

TEST_F(TrainerGroupTest, ARestartedCoordinatorAdoptsTheRunningGeneration) {
  TrainerGroup g = MakeGroup(1);
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "b", 4, 1, 2, 30)).action, TrainerSyncReply::kContinue);
  EXPECT_EQ(g.Handle(Req(Kind::kBoundary, "a", 4, 0, 2, 30)).action, TrainerSyncReply::kContinue);
  EXPECT_EQ(g.generation(), 4);
  EXPECT_EQ(g.world_size(), 2);
  nlohmann::json s = g.StatusJson();
  EXPECT_EQ(s["members"][0]["trainer"], "a");
  EXPECT_EQ(s["members"][1]["trainer"], "b");
  EXPECT_EQ(s["members"][1]["step"], 30);
  // A newcomer is scheduled after the highest boundary seen.
  ExpectSwitch(g.Handle(Join("c")), 5, 2, 3);
  EXPECT_EQ(g.StatusJson()["pending"]["switch_at"], 31);
}

}  // namespace
}  // namespace glm::coordinator
