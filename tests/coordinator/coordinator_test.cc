#include "coordinator/coordinator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace glm::coordinator {
namespace {
namespace fs = std::filesystem;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("glm_coord_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
             std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "corpus");
    for (int i = 0; i < 3; ++i) std::ofstream(root_ / "corpus" / ("f" + std::to_string(i) + ".txt")) << "text";
    job_.corpus = (root_ / "corpus").string();
    job_.objectives = "blank,document";
    job_.samples_per_epoch = 100;
    job_.samples_per_task = 10;
    job_.global_batch_size = 20;  // 10 per objective: one task per step
    job_.max_batches_ahead = 2;
    job_.auto_consume = false;
    options_.heartbeat_interval_ms = 100;
    options_.node_timeout_ms = 1000;
    options_.lease_ms = 2000;
    options_.max_attempts = 3;
    options_.retry_backoff_base_ms = 100;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Coordinator> Open() {
    auto c = Coordinator::Open((root_ / "state").string(), job_, options_, &clock_);
    GLM_CHECK(c.ok()) << c.status();
    return std::move(c).value();
  }

  // Leases and completes every tokenize task on `node`.
  void FinishTokenize(Coordinator& c, const std::string& node) {
    for (int i = 0; i < 3; ++i) {
      LeaseResult r = c.Lease(node, "a", {"tokenize", "corrupt"});
      ASSERT_EQ(r.kind, LeaseResult::kTask);
      ASSERT_EQ(r.task.kind, "tokenize");
      c.TaskDone(node, r.task.id, r.task.lease_id, 5, 100);
    }
    c.Tick();
  }

  fs::path root_;
  JobOptions job_;
  CoordinatorOptions options_;
  ManualClock clock_{1000};
};

TEST_F(CoordinatorTest, PlacesOnePipelineActorPerDeclaredCpu) {
  auto c = Open();
  RegisterResult r = c->Register("n1", Resources{3, 0, 1024}, "host", 1);
  ASSERT_TRUE(r.accepted);
  EXPECT_EQ(r.actors.size(), 3u);
  EXPECT_EQ(r.actors[0].kind, "pipeline");
  EXPECT_FALSE(c->Register("", Resources{1, 0, 0}, "h", 1).accepted);
}

TEST_F(CoordinatorTest, UnknownNodeIsToldToRegister) {
  auto c = Open();
  EXPECT_TRUE(c->Heartbeat("ghost", {}, false).reregister);
  EXPECT_EQ(c->Lease("ghost", "a", {"tokenize"}).kind, LeaseResult::kReregister);
}

TEST_F(CoordinatorTest, ProductionStaysWithinTheBackPressureWindowUntilConsumed) {
  auto c = Open();
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  FinishTokenize(*c, "n1");
  // Window: steps 0..consumed(-1)+2 = 2 steps per objective -> 2 objectives x 2 tasks.
  EXPECT_EQ(c->TaskCounts()["pending"], 4);
  std::vector<LeaseResult> leased;
  for (int i = 0; i < 4; ++i) leased.push_back(c->Lease("n1", "a", {"corrupt"}));
  EXPECT_EQ(c->Lease("n1", "a", {"corrupt"}).kind, LeaseResult::kRetryAfter);
  for (auto& l : leased) c->TaskDone("n1", l.task.id, l.task.lease_id, 10, 0);
  EXPECT_EQ(c->produced_step(), 1);
  EXPECT_EQ(c->Lease("n1", "a", {"corrupt"}).kind, LeaseResult::kRetryAfter);
  c->Consumed(0);
  LeaseResult next = c->Lease("n1", "a", {"corrupt"});
  ASSERT_EQ(next.kind, LeaseResult::kTask);
  EXPECT_EQ(next.task.begin, 20u);
}

TEST_F(CoordinatorTest, ReassignsLeasesWhenANodeMissesHeartbeats) {
  auto c = Open();
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  c->Register("n2", Resources{1, 0, 0}, "h", 2);
  LeaseResult l = c->Lease("n1", "a", {"tokenize"});
  ASSERT_EQ(l.kind, LeaseResult::kTask);
  clock_.AdvanceMs(600);
  c->Heartbeat("n2", {}, false);
  clock_.AdvanceMs(600);
  c->Heartbeat("n2", {}, false);
  c->Tick();  // n1 silent for 1200 ms > 1000 ms
  EXPECT_TRUE(c->Heartbeat("n1", {}, false).reregister);
  clock_.AdvanceMs(200);  // past the first retry backoff
  c->Tick();
  bool found = false;
  for (int i = 0; i < 3; ++i) {
    LeaseResult r = c->Lease("n2", "b", {"tokenize"});
    if (r.kind == LeaseResult::kTask && r.task.id == l.task.id) {
      found = true;
      EXPECT_EQ(r.task.attempt, 2u);
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(CoordinatorTest, HeartbeatsRenewLeases) {
  auto c = Open();
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  LeaseResult l = c->Lease("n1", "a", {"tokenize"});
  for (int i = 0; i < 10; ++i) {
    clock_.AdvanceMs(500);
    c->Heartbeat("n1", {l.task.lease_id}, false);
    c->Tick();
  }
  EXPECT_EQ(c->TaskCounts()["leased"], 1);
}

TEST_F(CoordinatorTest, TaskThatKeepsFailingIsDeadLetteredWithItsReasonAfterBackoff) {
  auto c = Open();
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  std::string id;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    LeaseResult l = c->Lease("n1", "a", {"tokenize"});
    ASSERT_EQ(l.kind, LeaseResult::kTask);
    if (id.empty()) id = l.task.id;
    // Other shards may come first while this one backs off; fail only ours.
    while (l.task.id != id) {
      c->TaskDone("n1", l.task.id, l.task.lease_id, 1, 1);
      l = c->Lease("n1", "a", {"tokenize"});
      if (l.kind != LeaseResult::kTask) {
        clock_.AdvanceMs(1000);
        c->Tick();
        l = c->Lease("n1", "a", {"tokenize"});
      }
    }
    EXPECT_EQ(l.task.attempt, static_cast<uint32_t>(attempt));
    c->TaskFailed("n1", id, l.task.lease_id, "disk on fire", true, false);
    // Backoff: not leasable at once.
    if (attempt < 3) {
      LeaseResult again = c->Lease("n1", "a", {"tokenize"});
      if (again.kind == LeaseResult::kTask) {
        EXPECT_NE(again.task.id, id);
        c->TaskDone("n1", again.task.id, again.task.lease_id, 1, 1);
      }
      c->Heartbeat("n1", {}, false);
      clock_.AdvanceMs(1000);
      c->Tick();
    }
  }
  auto dead = c->DeadLetters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].first, id);
  EXPECT_EQ(dead[0].second, "disk on fire");
}

TEST_F(CoordinatorTest, AbandonedTaskIsRequeuedWithoutCountingAnAttempt) {
  auto c = Open();
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  LeaseResult l = c->Lease("n1", "a", {"tokenize"});
  c->TaskFailed("n1", l.task.id, l.task.lease_id, "SIGTERM", true, true);
  LeaseResult again = c->Lease("n1", "a", {"tokenize"});
  EXPECT_EQ(again.task.id, l.task.id);
  EXPECT_EQ(again.task.attempt, 1u);
}

TEST_F(CoordinatorTest, RestartResumesTheJobAndNodesMustReregister) {
  std::string done_id;
  {
    auto c = Open();
    c->Register("n1", Resources{1, 0, 0}, "h", 1);
    FinishTokenize(*c, "n1");
    LeaseResult l = c->Lease("n1", "a", {"corrupt"});
    done_id = l.task.id;
    c->TaskDone("n1", l.task.id, l.task.lease_id, 10, 0);
    c->Lease("n1", "a", {"corrupt"});  // leased at the crash: pending again after
  }
  job_.corpus = "/nonexistent";  // ignored: the stored job wins
  auto c = Open();
  EXPECT_TRUE(c->Heartbeat("n1", {}, false).reregister);
  EXPECT_EQ(c->Lease("n1", "a", {"corrupt"}).kind, LeaseResult::kReregister);
  ASSERT_TRUE(c->Register("n1", Resources{1, 0, 0}, "h", 1).accepted);
  auto counts = c->TaskCounts();
  EXPECT_EQ(counts["done"], 4);     // 3 tokenize + 1 corrupt
  EXPECT_EQ(counts["pending"], 3);  // the window's other tasks
  LeaseResult l = c->Lease("n1", "a", {"corrupt"});
  ASSERT_EQ(l.kind, LeaseResult::kTask);
  EXPECT_NE(l.task.id, done_id);
  // A lease from before the restart still completes its task.
  c->TaskDone("n1", l.task.id, 12345, 10, 0);
  EXPECT_EQ(c->TaskCounts()["done"], 5);
}

TEST_F(CoordinatorTest, UnconfirmedNodeIsDeclaredDeadAfterTheTimeout) {
  {
    auto c = Open();
    c->Register("n1", Resources{1, 0, 0}, "h", 1);
  }
  auto c = Open();
  clock_.AdvanceMs(1500);
  c->Tick();
  EXPECT_EQ(c->StatusJson()["nodes"].size(), 0u);
}

TEST_F(CoordinatorTest, FixedActorsArePlacedByResourcesAndRespectTheRestartLimit) {
  options_.actor_max_restarts = 1;
  auto c = Open();
  c->Register("cpu-node", Resources{4, 0, 1000}, "h", 1);
  ASSERT_TRUE(c->AddActor("trainer/0", "trainer", {"train"}, Resources{1, 1, 100}).ok());
  EXPECT_TRUE(c->StatusJson()["dead_actors"].empty());
  auto has = [&](const std::string& node) {
    for (auto& a : c->ActorsOn(node)) if (a.actor_id == "trainer/0") return true;
    return false;
  };
  EXPECT_FALSE(has("cpu-node"));  // no gpu there
  c->Register("gpu-node", Resources{2, 1, 1000}, "h", 2);
  EXPECT_TRUE(has("gpu-node"));
  EXPECT_EQ(c->ActorsOn("gpu-node").size(), 2u);  // trainer + 1 pipeline actor on the cpu left
  c->ActorFailed("gpu-node", "trainer/0", "boom");
  EXPECT_TRUE(has("gpu-node"));  // restart 1 of 1
  c->ActorFailed("gpu-node", "trainer/0", "boom again");
  EXPECT_FALSE(has("gpu-node"));
  EXPECT_EQ(c->StatusJson()["dead_actors"].size(), 1u);
}

TEST_F(CoordinatorTest, JobFinishesWhenEverySampleIsProduced) {
  job_.auto_consume = true;
  job_.samples_per_epoch = 30;
  auto c = Open();
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  FinishTokenize(*c, "n1");
  int tasks = 0;
  while (true) {
    LeaseResult l = c->Lease("n1", "a", {"corrupt"});
    if (l.kind != LeaseResult::kTask) {
      EXPECT_EQ(l.kind, LeaseResult::kJobDone);
      break;
    }
    c->TaskDone("n1", l.task.id, l.task.lease_id, l.task.end - l.task.begin, 0);
    ++tasks;
  }
  EXPECT_EQ(tasks, 6);  // 2 objectives x 30 samples / 10 per task
  EXPECT_TRUE(c->job_done());
  EXPECT_EQ(c->StatusJson()["samples"]["blank"], 30);
}

}  // namespace
}  // namespace glm::coordinator
