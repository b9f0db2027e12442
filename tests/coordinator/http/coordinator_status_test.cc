// The real coordinator's StatusProvider: a Coordinator's StatusJson and
// trainer reports become the dashboard's ClusterStatus and the metrics; and
// the small pieces `glm coordinator/worker --http` use (address parsing,
// URL file, the worker's health server over real loopback HTTP).
#include "coordinator/http/coordinator_status.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>

#include "coordinator/http/health_server.h"
#include "coordinator/http/http_server.h"
#include "coordinator/http/prometheus_text.h"

namespace glm::http {
namespace {
namespace fs = std::filesystem;
using coordinator::Coordinator;
using coordinator::TrainerReport;

TrainerReport Report(int64_t step, int64_t rank, int64_t world) {
  TrainerReport r;
  r.trainer_id = "trainer/" + std::to_string(rank);
  r.rank = rank;
  r.world_size = world;
  r.step = step;
  r.max_steps = 100;
  r.loss = 10.0 / static_cast<double>(step + 1);
  r.objective_loss = {r.loss - 1, NAN, r.loss + 1};
  r.objective_samples = {16 * step, 0, 8 * step};
  r.lr = 1e-4 * static_cast<double>(step);
  r.tokens_per_s = 500;
  r.data_wait_ms = 4;
  r.allreduce_ms = 8;
  r.step_ms = 100;
  return r;
}

class CoordinatorStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("glm_coordinator_status_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "corpus");
    std::ofstream(root_ / "corpus" / "a.txt") << "text";
    coordinator::JobOptions job;
    job.corpus = (root_ / "corpus").string();
    job.objectives = "blank,document";
    job.samples_per_epoch = 100;
    job.samples_per_task = 10;
    job.global_batch_size = 20;
    job.auto_consume = false;
    auto c = Coordinator::Open((root_ / "state").string(), job, coordinator::CoordinatorOptions(), &clock_);
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(c).value();
  }
  void TearDown() override {
    coordinator_.reset();
    fs::remove_all(root_);
  }
  void Publish() { provider_.Publish(*coordinator_, coordinator_->StatusJson()); }

  fs::path root_;
  ManualClock clock_{1000};
  std::unique_ptr<Coordinator> coordinator_;
  MetricsRegistry registry_;
  GlmMetrics metrics_{&registry_};
  CoordinatorStatusProvider provider_{&metrics_};
};

TEST_F(CoordinatorStatusTest, NotReadyUntilTheFirstPublishAndAgainWhenStopping) {
  std::string reason;
  EXPECT_FALSE(provider_.IsReady(&reason));
  EXPECT_EQ(reason, "loading the coordinator state");
  EXPECT_EQ(provider_.GetStatus(StatusQuery()).phase, "starting");
  Publish();
  EXPECT_TRUE(provider_.IsReady(&reason));
  provider_.SetNotReady("stopping");
  Publish();
  EXPECT_FALSE(provider_.IsReady(&reason));
  EXPECT_EQ(reason, "stopping");
}

TEST_F(CoordinatorStatusTest, SnapshotCarriesNodesActorsStagesTrainersAndHistory) {
  coordinator_->Register("node-a", coordinator::Resources{2, 0, 1024}, "host-a", 7);
  clock_.AdvanceMs(300);
  for (int64_t step = 1; step <= 3; ++step) {
    ASSERT_TRUE(coordinator_->ReportTrainer(Report(step, 0, 2)).ok());
    ASSERT_TRUE(coordinator_->ReportTrainer(Report(step, 1, 2)).ok());
  }
  TrainerReport checkpointed = Report(4, 0, 2);
  checkpointed.checkpoint_step = 4;
  checkpointed.checkpoint_ms = 2500;
  ASSERT_TRUE(coordinator_->ReportTrainer(checkpointed).ok());
  coordinator_->ActorFailed("node-a", "pipeline/node-a/1", "exit 9");
  Publish();

  ClusterStatus s = provider_.GetStatus(StatusQuery());
  EXPECT_EQ(s.phase, "training");
  EXPECT_EQ(s.trainer.step, 4);
  EXPECT_EQ(s.trainer.max_steps, 100);
  EXPECT_EQ(s.trainer.world_size, 2);
  EXPECT_DOUBLE_EQ(s.trainer.loss, 2.0);  // rank 0's step 4
  EXPECT_DOUBLE_EQ(s.throughput.tokens_per_second, 1000);  // both ranks
  ASSERT_EQ(s.nodes.size(), 1u);
  EXPECT_EQ(s.nodes[0].id, "node-a");
  EXPECT_EQ(s.nodes[0].state, "alive");
  EXPECT_EQ(s.nodes[0].address, "host-a pid 7");
  EXPECT_EQ(s.nodes[0].memory_bytes, int64_t{1024} << 20);
  EXPECT_NEAR(static_cast<double>(s.time_ms - s.nodes[0].last_heartbeat_ms), 300, 1);
  // Two pipeline actors on node-a (one restarted) and two trainers.
  int pipeline = 0, trainers = 0;
  for (const ActorStatus& a : s.actors) {
    if (a.kind == "pipeline") ++pipeline;
    if (a.kind == "trainer") {
      ++trainers;
      EXPECT_EQ(a.state, "running");
    }
    if (a.id == "pipeline/node-a/1") {
      EXPECT_EQ(a.restarts, 1);
    }
  }
  EXPECT_EQ(pipeline, 2);
  EXPECT_EQ(trainers, 2);
  ASSERT_EQ(s.stages.size(), 1u);
  EXPECT_EQ(s.stages[0].stage, "tokenize");
  EXPECT_EQ(s.stages[0].total, 1);
  // Objective mix from the trainers' cumulative counts: 64 blank, 32 document.
  ASSERT_EQ(s.objectives.size(), 2u);
  EXPECT_EQ(s.objectives[0].objective, "blank");
  EXPECT_EQ(s.objectives[0].consumed, 64);
  EXPECT_DOUBLE_EQ(s.objectives[0].target_rate, 0.5);
  EXPECT_NEAR(s.objectives[0].consumed_rate, 2.0 / 3, 1e-9);
  ASSERT_EQ(s.checkpoints.size(), 1u);
  EXPECT_EQ(s.checkpoints[0].step, 4);
  EXPECT_DOUBLE_EQ(s.checkpoints[0].duration_s, 2.5);
  ASSERT_EQ(s.failures.size(), 1u);
  EXPECT_EQ(s.failures[0].kind, "actor_restart");
  // History: one point per step, from rank 0.
  ASSERT_EQ(s.history.size(), 4u);
  EXPECT_EQ(s.history[0].step, 1);
  EXPECT_DOUBLE_EQ(s.history[0].loss, 5.0);
  EXPECT_EQ(s.history[0].objective_loss.count("sentence"), 0u);  // NaN: absent
  EXPECT_DOUBLE_EQ(s.history[0].objective_loss.at("document"), 6.0);
  EXPECT_DOUBLE_EQ(s.history[3].learning_rate, 4e-4);
  // Incremental: only newer points.
  StatusQuery after;
  after.history_after_step = 3;
  EXPECT_EQ(provider_.GetStatus(after).history.size(), 1u);
  // The JSON the dashboard reads round-trips.
  auto parsed = ClusterStatusFromJson(ToJson(s));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
}

TEST_F(CoordinatorStatusTest, MetricsGetHistogramsCountersAndStateGauges) {
  coordinator_->Register("node-a", coordinator::Resources{1, 0, 0}, "host-a", 7);
  for (int64_t step = 1; step <= 5; ++step) ASSERT_TRUE(coordinator_->ReportTrainer(Report(step, 0, 2)).ok());
  TrainerReport checkpointed = Report(6, 0, 2);
  checkpointed.checkpoint_step = 6;
  checkpointed.checkpoint_ms = 700;
  ASSERT_TRUE(coordinator_->ReportTrainer(checkpointed).ok());
  Publish();
  Publish();  // a second publish must not count the same reports or checkpoint again
  StatusQuery last;
  last.max_history_points = 1;
  metrics_.RecordClusterState(provider_.GetStatus(last));
  auto parsed = ParsePrometheusText(WritePrometheusText(registry_));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Find("glm_data_wait_seconds_count"), 6);
  EXPECT_EQ(parsed->Find("glm_allreduce_seconds_count"), 6);
  EXPECT_EQ(parsed->Find("glm_checkpoint_duration_seconds_count"), 1);
  EXPECT_NEAR(*parsed->Find("glm_checkpoint_duration_seconds_sum"), 0.7, 1e-9);
  EXPECT_EQ(parsed->Find("glm_checkpoints_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(parsed->Find("glm_trainer_step"), 6);
  EXPECT_EQ(parsed->Find("glm_nodes", {{"state", "alive"}}), 1);
  EXPECT_NEAR(*parsed->Find("glm_loss", {{"objective", "document"}}), 10.0 / 7 + 1, 1e-9);
  EXPECT_EQ(parsed->Find("glm_samples_consumed_total", {{"objective", "blank"}}), 96);
  EXPECT_NEAR(*parsed->Find("glm_objective_mix_drift", {{"objective", "blank"}}), 2.0 / 3 - 0.5, 1e-9);
}

TEST_F(CoordinatorStatusTest, NotYetMeasuredLossIsNullInJsonAndReadsBack) {
  TrainerReport r = Report(0, 0, 1);
  r.loss = NAN;  // step 0: nothing trained yet
  ASSERT_TRUE(coordinator_->ReportTrainer(r).ok());
  Publish();
  nlohmann::json j = nlohmann::json::parse(ToJson(provider_.GetStatus(StatusQuery())).dump());  // as served
  EXPECT_TRUE(j["trainer"]["loss"].is_null()) << j["trainer"].dump();
  EXPECT_TRUE(j["history"].empty());  // no point without a loss
  auto parsed = ClusterStatusFromJson(j);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->trainer.loss, 0);
  EXPECT_EQ(parsed->coordinator["trainers"][0]["loss"], nullptr);
}

TEST_F(CoordinatorStatusTest, SilentTrainerLeavesThroughputAndShowsAsSilent) {
  ASSERT_TRUE(coordinator_->ReportTrainer(Report(1, 0, 1)).ok());
  clock_.AdvanceMs(31000);
  ClusterStatus s = ClusterStatusFromCoordinatorJson(coordinator_->StatusJson(), 1000000, 30000);
  EXPECT_EQ(s.throughput.tokens_per_second, 0);
  ASSERT_EQ(s.actors.size(), 1u);
  EXPECT_EQ(s.actors[0].state, "silent");
}

TEST(ParseHttpAddressTest, AcceptsHostPortAndNamesTheFlagOtherwise) {
  HttpServerOptions o;
  ASSERT_TRUE(ParseHttpAddress("0.0.0.0:8265", "http", &o).ok());
  EXPECT_EQ(o.address, "0.0.0.0");
  EXPECT_EQ(o.port, 8265);
  ASSERT_TRUE(ParseHttpAddress("[::1]:0", "http", &o).ok());
  EXPECT_EQ(o.address, "::1");
  EXPECT_EQ(o.port, 0);
  for (const char* bad : {"8265", "localhost", ":80", "host:", "host:http", "host:70000"}) {
    Status s = ParseHttpAddress(bad, "http", &o);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("--http"), std::string::npos) << s.message();
  }
}

TEST(HealthServerTest, ReadyzFollowsTheReadinessFunction) {
  std::atomic<bool> ready{false};
  HttpServerOptions o;
  o.port = 0;
  auto server = HealthServer::Start(o, [&](std::string* reason) {
    if (!ready) *reason = "registering";
    return ready.load();
  });
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_read_timeout(5);
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "not ready: registering\n");
  ready = true;
  auto now_ready = client.Get("/readyz");
  ASSERT_TRUE(now_ready);
  EXPECT_EQ(now_ready->status, 200);
  EXPECT_EQ(client.Get("/metrics")->status, 404);
  // The same port cannot be bound twice: a clear error.
  HttpServerOptions taken;
  taken.port = (*server)->port();
  auto second = HealthServer::Start(taken, [](std::string*) { return true; });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  // The URL file is written whole.
  const std::string file = (fs::temp_directory_path() / ("glm_health_url_" + std::to_string(getpid()))).string();
  ASSERT_TRUE(WriteUrlFile(file, (*server)->url()).ok());
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "http://127.0.0.1:" + std::to_string((*server)->port()));
  fs::remove(file);
}

}  // namespace
}  // namespace glm::http
