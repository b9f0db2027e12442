// Trainer reports: the Coordinator keeps them and moves back-pressure by
// them; TrainerReporter carries them over a real CURVE socket to a
// CoordinatorServer (and fails fast, never hangs, when nobody answers).
#include "coordinator/trainer_report.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "coordinator/coordinator.h"
#include "coordinator/server.h"
#include "transport/keys.h"
#include "transport/socket.h"

namespace glm::coordinator {
namespace {
namespace fs = std::filesystem;

TrainerReport MakeReport(int64_t step, int64_t rank = 0, int64_t world = 1) {
  TrainerReport r;
  r.trainer_id = "trainer/" + std::to_string(rank);
  r.rank = rank;
  r.world_size = world;
  r.step = step;
  r.max_steps = 10;
  r.loss = 5.0 - 0.1 * static_cast<double>(step);
  r.objective_loss = {4.0, NAN, 6.0};
  r.objective_samples = {10 * step, 0, 10 * step};
  r.lr = 1e-3;
  r.tokens_per_s = 1000;
  r.data_wait_ms = 2;
  r.allreduce_ms = 3;
  r.step_ms = 40;
  return r;
}

class TrainerReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("glm_trainer_report_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + std::to_string(getpid()));
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
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Coordinator> Open(Clock* clock) {
    auto c = Coordinator::Open((root_ / "state").string(), job_, CoordinatorOptions(), clock);
    GLM_CHECK(c.ok()) << c.status();
    return std::move(c).value();
  }

  fs::path root_;
  JobOptions job_;
  ManualClock clock_{1000};
};

TEST_F(TrainerReportTest, ValidateNamesTheBadField) {
  EXPECT_TRUE(MakeReport(1).Validate().ok());
  TrainerReport r = MakeReport(1);
  r.trainer_id.clear();
  EXPECT_NE(r.Validate().message().find("trainer_id"), std::string::npos);
  r = MakeReport(1, 2, 2);
  EXPECT_NE(r.Validate().message().find("rank 2"), std::string::npos);
  r = MakeReport(-1);
  EXPECT_NE(r.Validate().message().find("step"), std::string::npos);
}

TEST_F(TrainerReportTest, ReportMovesBackPressureLikeConsumedOfTheStepBefore) {
  auto c = Open(&clock_);
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  for (int i = 0; i < 3; ++i) {
    LeaseResult r = c->Lease("n1", "a", {"tokenize"});
    ASSERT_EQ(r.kind, LeaseResult::kTask);
    c->TaskDone("n1", r.task.id, r.task.lease_id, 5, 100);
  }
  c->Tick();
  for (int i = 0; i < 4; ++i) {
    LeaseResult l = c->Lease("n1", "a", {"corrupt"});
    ASSERT_EQ(l.kind, LeaseResult::kTask);
    c->TaskDone("n1", l.task.id, l.task.lease_id, 10, 0);
  }
  EXPECT_EQ(c->Lease("n1", "a", {"corrupt"}).kind, LeaseResult::kRetryAfter);  // window full
  // Step 0 finished nothing: no movement.
  ASSERT_TRUE(c->ReportTrainer(MakeReport(0)).ok());
  EXPECT_EQ(c->consumed_step(), -1);
  EXPECT_EQ(c->Lease("n1", "a", {"corrupt"}).kind, LeaseResult::kRetryAfter);
  // One optimizer step done = global batch 0 consumed.
  ASSERT_TRUE(c->ReportTrainer(MakeReport(1)).ok());
  EXPECT_EQ(c->consumed_step(), 0);
  LeaseResult next = c->Lease("n1", "a", {"corrupt"});
  ASSERT_EQ(next.kind, LeaseResult::kTask);
  EXPECT_EQ(next.task.begin, 20u);
}

TEST_F(TrainerReportTest, InvalidReportChangesNothing) {
  auto c = Open(&clock_);
  TrainerReport bad = MakeReport(5);
  bad.world_size = 0;
  EXPECT_EQ(c->ReportTrainer(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->consumed_step(), -1);
  EXPECT_EQ(c->last_report_seq(), 0u);
  EXPECT_TRUE(c->StatusJson()["trainers"].empty());
}

TEST_F(TrainerReportTest, StatusJsonKeepsTheLatestReportPerTrainerCheckpointsAndEvents) {
  auto c = Open(&clock_);
  c->Register("n1", Resources{1, 0, 0}, "host-a", 42);
  ASSERT_TRUE(c->ReportTrainer(MakeReport(1, 0, 2)).ok());
  ASSERT_TRUE(c->ReportTrainer(MakeReport(1, 1, 2)).ok());
  TrainerReport with_checkpoint = MakeReport(2, 0, 2);
  with_checkpoint.checkpoint_step = 2;
  with_checkpoint.checkpoint_ms = 1500;
  clock_.AdvanceMs(100);
  ASSERT_TRUE(c->ReportTrainer(with_checkpoint).ok());
  TrainerReport rank1 = MakeReport(2, 1, 2);
  rank1.checkpoint_step = 2;  // the same checkpoint, seen by another rank: listed once
  ASSERT_TRUE(c->ReportTrainer(rank1).ok());
  c->ActorFailed("n1", "pipeline/n1/0", "boom");
  clock_.AdvanceMs(50);

  nlohmann::json j = c->StatusJson();
  ASSERT_EQ(j["trainers"].size(), 2u) << j.dump();
  const nlohmann::json& t0 = j["trainers"][0];
  EXPECT_EQ(t0["id"], "trainer/0");
  EXPECT_EQ(t0["step"], 2);
  EXPECT_EQ(t0["world_size"], 2);
  EXPECT_EQ(t0["objective_loss"]["blank"], 4.0);
  EXPECT_TRUE(t0["objective_loss"]["sentence"].is_null());  // NaN: not in the step
  EXPECT_EQ(t0["objective_samples"]["document"], 20);
  EXPECT_EQ(t0["checkpoint_step"], 2);
  EXPECT_EQ(t0["last_report_ms_ago"], 50);
  ASSERT_EQ(j["checkpoints"].size(), 1u);
  EXPECT_EQ(j["checkpoints"][0]["step"], 2);
  EXPECT_EQ(j["checkpoints"][0]["duration_ms"], 1500.0);
  {
    // The checkpoint manifest is in the coordinator's state: a restarted
    // coordinator lists it.
    c.reset();
    std::unique_ptr<Coordinator> again = Open(&clock_);
    nlohmann::json k = again->StatusJson();
    ASSERT_EQ(k["checkpoints"].size(), 1u) << k.dump();
    EXPECT_EQ(k["checkpoints"][0]["step"], 2);
    EXPECT_EQ(k["checkpoints"][0]["duration_ms"], 1500.0);
    EXPECT_EQ(k["checkpoints"][0]["trainer"], "trainer/0");
    again.reset();
    c = Open(&clock_);
  }
  ASSERT_EQ(j["events"].size(), 1u);
  EXPECT_EQ(j["events"][0]["kind"], "actor_restart");
  EXPECT_EQ(j["events"][0]["subject"], "pipeline/n1/0");
  EXPECT_EQ(j["counters"]["actor_restarts"], 1);
  EXPECT_EQ(j["counters"]["trainer_reports"], 4);
  EXPECT_EQ(j["objective_target_rate"]["blank"], 0.5);
  ASSERT_EQ(j["actor_list"].size(), 1u);
  EXPECT_EQ(j["actor_list"][0]["id"], "pipeline/n1/0");
  EXPECT_EQ(j["actor_list"][0]["restarts"], 1);
  EXPECT_EQ(j["consumed_step"], 1);
}

TEST_F(TrainerReportTest, TasksPlannedCountsEveryCorruptTaskUpToTheSampleCap) {
  job_.epochs = 3;
  job_.max_samples = 125;  // one full epoch of 100 + 25: 10 + 3 tasks per objective
  auto c = Open(&clock_);
  EXPECT_EQ(c->StatusJson()["tasks_planned"], nlohmann::json({{"tokenize", 3}}));
  c->Register("n1", Resources{1, 0, 0}, "h", 1);
  for (int i = 0; i < 3; ++i) {
    LeaseResult r = c->Lease("n1", "a", {"tokenize"});
    ASSERT_EQ(r.kind, LeaseResult::kTask);
    c->TaskDone("n1", r.task.id, r.task.lease_id, 5, 100);
  }
  c->Tick();
  nlohmann::json j = c->StatusJson();
  ASSERT_EQ(j["phase"], "corrupt") << j.dump();
  EXPECT_EQ(j["tasks_planned"]["corrupt"], 2 * 13);
}

TEST_F(TrainerReportTest, ReportsSinceReturnsNewReportsInOrderAndTheLogIsBounded) {
  auto c = Open(&clock_);
  for (int64_t s = 1; s <= 3; ++s) ASSERT_TRUE(c->ReportTrainer(MakeReport(s)).ok());
  auto all = c->ReportsSince(0);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].seq, 1u);
  EXPECT_EQ(all[2].report.step, 3);
  auto newer = c->ReportsSince(2);
  ASSERT_EQ(newer.size(), 1u);
  EXPECT_EQ(newer[0].report.step, 3);
  EXPECT_TRUE(c->ReportsSince(3).empty());
  for (size_t s = 4; s <= Coordinator::kReportLogCapacity + 10; ++s) {
    ASSERT_TRUE(c->ReportTrainer(MakeReport(static_cast<int64_t>(s))).ok());
  }
  auto kept = c->ReportsSince(0);
  EXPECT_EQ(kept.size(), Coordinator::kReportLogCapacity);
  EXPECT_EQ(kept.back().seq, Coordinator::kReportLogCapacity + 10);
}

TEST_F(TrainerReportTest, WireRoundTripKeepsEveryField) {
  capnp::MallocMessageBuilder message;
  auto builder = message.initRoot<wire::TrainerReport>();
  TrainerReport r = MakeReport(7, 1, 4);
  r.checkpoint_step = 5;
  r.checkpoint_ms = 12.5;
  r.grad_norm = 0.75;
  TrainerReportToWire(r, builder);
  TrainerReport back = TrainerReportFromWire(builder.asReader());
  EXPECT_EQ(back.trainer_id, "trainer/1");
  EXPECT_EQ(back.rank, 1);
  EXPECT_EQ(back.world_size, 4);
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.max_steps, 10);
  EXPECT_DOUBLE_EQ(back.loss, r.loss);
  EXPECT_EQ(back.objective_loss[0], 4.0);
  EXPECT_TRUE(std::isnan(back.objective_loss[1]));
  EXPECT_EQ(back.objective_samples[2], 70);
  EXPECT_EQ(back.lr, 1e-3);
  EXPECT_EQ(back.data_wait_ms, 2);
  EXPECT_EQ(back.allreduce_ms, 3);
  EXPECT_EQ(back.step_ms, 40);
  EXPECT_EQ(back.checkpoint_step, 5);
  EXPECT_EQ(back.checkpoint_ms, 12.5);
  EXPECT_EQ(back.grad_norm, 0.75);
  EXPECT_EQ(TrainerReportToJson(back)["grad_norm"], 0.75);
  // A report without checkpoints reads as "none yet" (-1), the schema default;
  // one without a grad norm (a trainer that predates the field) as NaN.
  capnp::MallocMessageBuilder empty;
  const TrainerReport old = TrainerReportFromWire(empty.initRoot<wire::TrainerReport>().asReader());
  EXPECT_EQ(old.checkpoint_step, -1);
  EXPECT_TRUE(std::isnan(old.grad_norm));
  EXPECT_TRUE(TrainerReportToJson(old)["grad_norm"].is_null());
}

// Over the wire: a real CoordinatorServer on CURVE loopback.
class TrainerReporterTest : public TrainerReportTest {
 protected:
  void StartServer() {
    ASSERT_TRUE(transport::GenerateClusterKeys((root_ / "keys").string(), false).ok());
    coordinator_ = Open(RealClock::Get());
    auto s = transport::ServerSocket::Bind(&context_, "tcp://127.0.0.1:*",
                                           transport::LoadServerKeys((root_ / "keys").string()).value(),
                                           transport::SocketOptions());
    ASSERT_TRUE(s.ok()) << s.status();
    socket_ = std::move(s).value();
    ServerOptions options;
    options.publish_interval_ms = 20;
    options.publish = [this](const Coordinator& c, const nlohmann::json& status) {
      // On the server thread: the coordinator may be read here.
      published_reports_ = c.last_report_seq();
      published_consumed_ = status["consumed_step"].get<int64_t>();
      ++num_publishes_;
    };
    server_ = std::make_unique<CoordinatorServer>(coordinator_.get(), socket_.get(), options);
    thread_ = std::thread([this] { server_->Run(&stop_); });
  }
  void TearDown() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    server_.reset();
    socket_.reset();
    coordinator_.reset();
    TrainerReportTest::TearDown();
  }

  zmq::context_t context_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<transport::ServerSocket> socket_;
  std::unique_ptr<CoordinatorServer> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::atomic<uint64_t> published_reports_{0};
  std::atomic<int64_t> published_consumed_{-2};
  std::atomic<int> num_publishes_{0};
};

TEST_F(TrainerReporterTest, ReportReachesTheCoordinatorAndThePublishHookSeesIt) {
  StartServer();
  auto reporter = TrainerReporter::Connect(socket_->endpoint(), (root_ / "keys").string());
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  for (int64_t s = 1; s <= 3; ++s) ASSERT_TRUE((*reporter)->Report(MakeReport(s)).ok());
  EXPECT_EQ((*reporter)->num_sent(), 3u);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((published_reports_ < 3 || published_consumed_ != 2) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(published_reports_.load(), 3u);
  EXPECT_EQ(published_consumed_.load(), 2);  // step 3 finished: batches 0..2 consumed
  EXPECT_GT(num_publishes_.load(), 0);
}

TEST_F(TrainerReporterTest, CoordinatorRefusesAnInvalidReportAndTheReporterChecksFirst) {
  StartServer();
  auto reporter = TrainerReporter::Connect(socket_->endpoint(), (root_ / "keys").string());
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  TrainerReport bad = MakeReport(1);
  bad.rank = 3;
  Status s = (*reporter)->Report(bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("rank 3"), std::string::npos);

  // A raw Consumed with an invalid report (as a foreign sender might send):
  // the coordinator answers ok=false with the reason and moves nothing.
  zmq::context_t client_context;
  auto client = transport::ClientSocket::Connect(&client_context, socket_->endpoint(),
                                                 transport::LoadClientKeys((root_ / "keys").string()).value(),
                                                 transport::SocketOptions());
  ASSERT_TRUE(client.ok());
  transport::EnvelopeBuilder b(9);
  auto consumed = b.envelope().initConsumed();
  consumed.setStep(4);
  TrainerReportToWire(bad, consumed.initReport());
  auto reply = (*client)->Call(b, 5000);
  ASSERT_TRUE(reply.ok()) << reply.status();
  auto ack = (*reply)->envelope().getAck();
  EXPECT_FALSE(ack.getOk());
  EXPECT_NE(std::string(ack.getDetail().cStr()).find("rank"), std::string::npos);
  transport::EnvelopeBuilder status(10);
  status.envelope().initStatusRequest();
  auto st = (*client)->Call(status, 5000);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(nlohmann::json::parse((*st)->envelope().getStatusReply().getJson().cStr())["consumed_step"], -1);
}

TEST_F(TrainerReporterTest, NoCoordinatorMeansATimeoutThenFastFailuresNotAHang) {
  ASSERT_TRUE(transport::GenerateClusterKeys((root_ / "keys").string(), false).ok());
  // A port nobody listens on.
  auto reporter = TrainerReporter::Connect("tcp://127.0.0.1:1", (root_ / "keys").string(), 200);
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  auto t0 = std::chrono::steady_clock::now();
  Status first = (*reporter)->Report(MakeReport(1));
  auto t1 = std::chrono::steady_clock::now();
  EXPECT_TRUE(first.code() == StatusCode::kDeadlineExceeded || first.code() == StatusCode::kUnavailable) << first;
  EXPECT_GE(t1 - t0, std::chrono::milliseconds(150));
  EXPECT_LT(t1 - t0, std::chrono::seconds(2));
  // Within the backoff: Unavailable at once.
  Status second = (*reporter)->Report(MakeReport(2));
  EXPECT_EQ(second.code(), StatusCode::kUnavailable) << second;
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(100));
  EXPECT_EQ((*reporter)->num_failed(), 2u);
  EXPECT_EQ((*reporter)->num_sent(), 0u);
}

TEST_F(TrainerReporterTest, ConnectNamesMissingKeysAndBadEndpoints) {
  auto missing = TrainerReporter::Connect("tcp://127.0.0.1:5555", (root_ / "no-keys").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status();
  auto bad = TrainerReporter::Connect("not-an-endpoint", "");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status();
}

// Plain TCP ("" keys) against a plain ROUTER that answers like a coordinator.
TEST_F(TrainerReporterTest, PlainTcpReporterSpeaksTheSameProtocol) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::atomic<int64_t> seen_step{-100};
  std::atomic<int64_t> seen_report_step{-100};
  std::thread server([&] {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(5000)) <= 0) return;
    zmq::message_t id, body;
    (void)router.recv(id);
    (void)router.recv(body);
    auto decoded = transport::DecodeEnvelope(body.data(), body.size(), transport::DecodeLimits());
    if (!decoded.ok()) return;
    auto e = (*decoded)->envelope();
    seen_step = e.getConsumed().getStep();
    seen_report_step = e.getConsumed().getReport().getStep();
    transport::EnvelopeBuilder reply(e.getRequestId());
    reply.envelope().initAck().setOk(true);
    kj::Array<capnp::word> words = reply.Encode();
    router.send(id, zmq::send_flags::sndmore);
    router.send(zmq::const_buffer(words.begin(), words.size() * sizeof(capnp::word)));
  });
  auto reporter = TrainerReporter::Connect(endpoint, "", 5000);
  ASSERT_TRUE(reporter.ok()) << reporter.status();
  Status s = (*reporter)->Report(MakeReport(4));
  server.join();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(seen_step.load(), 3);
  EXPECT_EQ(seen_report_step.load(), 4);
}

}  // namespace
}  // namespace glm::coordinator
