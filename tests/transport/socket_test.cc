#include "transport/socket.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

namespace glm::transport {
namespace {
namespace fs = std::filesystem;

std::string TempDir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("glm_socket_test_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  return p.string();
}

// A ROUTER server on a thread that answers every Ping with a Pong.
class EchoServer {
 public:
  explicit EchoServer(const ServerKeys& keys) {
    auto s = ServerSocket::Bind(&context_, "tcp://127.0.0.1:*", keys, SocketOptions());
    GLM_CHECK(s.ok()) << s.status();
    server_ = std::move(s).value();
    thread_ = std::thread([this] {
      while (!stop_) {
        auto in = server_->Receive(20);
        if (!in) continue;
        auto e = in->message->envelope();
        if (!e.isPing()) continue;
        EnvelopeBuilder reply(e.getRequestId());
        auto pong = reply.envelope().initPong();
        pong.setId(e.getPing().getId());
        pong.setPayload(e.getPing().getPayload());
        server_->Send(in->peer, reply).IgnoreError();
      }
    });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
    server_.reset();
  }
  ServerSocket& server() { return *server_; }

 private:
  zmq::context_t context_;
  std::unique_ptr<ServerSocket> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

StatusOr<std::unique_ptr<DecodedEnvelope>> Ping(ClientSocket& client, uint64_t id, int timeout_ms) {
  EnvelopeBuilder b(id);
  b.envelope().initPing().setId(id);
  return client.Call(b, timeout_ms);
}

class SocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(GenerateClusterKeys(dir_, false).ok());
    server_keys_ = LoadServerKeys(dir_).value();
    client_keys_ = LoadClientKeys(dir_).value();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
  ServerKeys server_keys_;
  ClientKeys client_keys_;
};

TEST_F(SocketTest, GenerateRefusesToOverwriteExistingKeys) {
  Status s = GenerateClusterKeys(dir_, false);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(GenerateClusterKeys(dir_, true).ok());
}

TEST_F(SocketTest, LoadingFromAnEmptyDirectorySaysToGenerateKeys) {
  auto keys = LoadClientKeys(dir_ + "/nothing");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), StatusCode::kNotFound);
  EXPECT_NE(keys.status().message().find("glm keys generate"), std::string::npos);
}

TEST_F(SocketTest, AllowListedClientCompletesRoundTrips) {
  EchoServer echo(server_keys_);
  zmq::context_t context;
  auto client = ClientSocket::Connect(&context, echo.server().endpoint(), client_keys_, SocketOptions());
  ASSERT_TRUE(client.ok());
  for (uint64_t i = 1; i <= 20; ++i) {
    auto reply = Ping(**client, i, 5000);
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ((*reply)->envelope().getPong().getId(), i);
  }
  EXPECT_EQ(echo.server().num_refused(), 0u);
}

TEST_F(SocketTest, PeerWithAForeignKeyIsRefusedAndCounted) {
  EchoServer echo(server_keys_);
  std::string foreign_dir = dir_ + "/foreign";
  ASSERT_TRUE(GenerateClusterKeys(foreign_dir, false).ok());
  ClientKeys foreign = LoadClientKeys(foreign_dir).value();
  foreign.server_public_z85 = client_keys_.server_public_z85;  // knows the server, not allowed
  zmq::context_t context;
  auto client = ClientSocket::Connect(&context, echo.server().endpoint(), foreign, SocketOptions());
  ASSERT_TRUE(client.ok());
  auto reply = Ping(**client, 1, 500);
  EXPECT_FALSE(reply.ok());
  EXPECT_GE(echo.server().num_refused(), 1u);
  EXPECT_EQ(echo.server().num_received(), 0u);
}

TEST_F(SocketTest, MalformedMessagesAreDroppedAndCountedAndServingContinues) {
  EchoServer echo(server_keys_);
  zmq::context_t context;
  auto client = ClientSocket::Connect(&context, echo.server().endpoint(), client_keys_, SocketOptions());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(Ping(**client, 1, 5000).ok());
  // Garbage, a non-word-sized part, and a two-part message.
  std::string garbage(64, '\xff');
  (*client)->raw().send(zmq::buffer(garbage));
  (*client)->raw().send(zmq::buffer(std::string("abc")));
  (*client)->raw().send(zmq::buffer(std::string("part1")), zmq::send_flags::sndmore);
  (*client)->raw().send(zmq::buffer(std::string("part2")));
  auto reply = Ping(**client, 2, 5000);
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ((*reply)->envelope().getPong().getId(), 2u);
  EXPECT_EQ(echo.server().num_dropped(), 3u);
}

TEST_F(SocketTest, OversizedMessageIsRefusedByTheSizeLimit) {
  EchoServer echo(server_keys_);
  zmq::context_t context;
  SocketOptions options;
  options.limits.max_message_bytes = 64u << 20;  // the client itself would send it
  auto client = ClientSocket::Connect(&context, echo.server().endpoint(), client_keys_, options);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(Ping(**client, 1, 5000).ok());
  EnvelopeBuilder big(2);
  auto ping = big.envelope().initPing();
  ping.setId(2);
  ping.initPayload(17u << 20);  // over the server's 16 MiB
  auto reply = (*client)->Call(big, 1000);
  EXPECT_FALSE(reply.ok());
  EXPECT_EQ(echo.server().num_received(), 1u);
}

}  // namespace
}  // namespace glm::transport
