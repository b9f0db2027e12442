#include "coordinator/server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace glm::coordinator {
namespace {
namespace fs = std::filesystem;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("glm_server_test_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "corpus");
    std::ofstream(root_ / "corpus" / "a.txt") << "hello world";
    ASSERT_TRUE(transport::GenerateClusterKeys((root_ / "keys").string(), false).ok());
    JobOptions job;
    job.corpus = (root_ / "corpus").string();
    job.auto_consume = false;
    auto c = Coordinator::Open((root_ / "state").string(), job, CoordinatorOptions(), RealClock::Get());
    ASSERT_TRUE(c.ok()) << c.status();
    coordinator_ = std::move(c).value();
    auto s = transport::ServerSocket::Bind(&context_, "tcp://127.0.0.1:*",
                                           transport::LoadServerKeys((root_ / "keys").string()).value(),
                                           transport::SocketOptions());
    ASSERT_TRUE(s.ok()) << s.status();
    socket_ = std::move(s).value();
    server_ = std::make_unique<CoordinatorServer>(coordinator_.get(), socket_.get());
    thread_ = std::thread([this] { server_->Run(&stop_); });
    auto client = transport::ClientSocket::Connect(&client_context_, socket_->endpoint(),
                                                   transport::LoadClientKeys((root_ / "keys").string()).value(),
                                                   transport::SocketOptions());
    ASSERT_TRUE(client.ok());
    client_ = std::move(client).value();
  }
  void TearDown() override {
    stop_ = true;
    thread_.join();
    client_.reset();
    server_.reset();
    socket_.reset();
    coordinator_.reset();
    fs::remove_all(root_);
  }

  fs::path root_;
  zmq::context_t context_;
  zmq::context_t client_context_;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<transport::ServerSocket> socket_;
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<transport::ClientSocket> client_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(ServerTest, RegisterReturnsTheJobSpecAndPlacement) {
  transport::EnvelopeBuilder b(7);
  auto r = b.envelope().initRegister();
  r.setNodeId("n1");
  r.initResources().setCpu(2);
  auto reply = client_->Call(b, 5000);
  ASSERT_TRUE(reply.ok()) << reply.status();
  auto ack = (*reply)->envelope().getRegisterAck();
  EXPECT_TRUE(ack.getAccepted());
  EXPECT_EQ(ack.getActors().size(), 2u);
  EXPECT_EQ(std::string(ack.getJob().getExecutor().cStr()), "test");
  EXPECT_EQ(ack.getJob().getSeed(), 1234u);
}

TEST_F(ServerTest, ConsumedMovesTheCursorAndUnexpectedKindsAreDroppedAndCounted) {
  transport::EnvelopeBuilder consumed(1);
  consumed.envelope().initConsumed().setStep(5);
  auto ack = client_->Call(consumed, 5000);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE((*ack)->envelope().getAck().getOk());
  transport::EnvelopeBuilder pong(2);
  pong.envelope().initPong().setId(1);
  ASSERT_TRUE(client_->Send(pong).ok());
  transport::EnvelopeBuilder status(3);
  status.envelope().initStatusRequest();
  auto reply = client_->Call(status, 5000);
  ASSERT_TRUE(reply.ok()) << reply.status();
  auto j = nlohmann::json::parse((*reply)->envelope().getStatusReply().getJson().cStr());
  EXPECT_EQ(j["consumed_step"], 5);
  EXPECT_EQ(j["transport"]["dropped_unexpected"], 1);
}

}  // namespace
}  // namespace glm::coordinator
