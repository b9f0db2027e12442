// StoreServer and StoreClient over real ZeroMQ sockets on loopback, with a
// real RocksDB store behind the server.
#include "storage/store_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "schema/record_codec.h"
#include "schema/store_rpc.capnp.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_client.h"
#include "storage/store_wire.h"
#include "storage/synthetic.h"

namespace glm::storage {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kHash = 0x5eed;

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class StoreServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(::testing::TempDir()) / ("server_" + std::to_string(getpid()) + "_" + std::to_string(++counter));
    fs::remove_all(dir_);
    StoreOptions o;
    o.path = dir_.string();
    o.tokenizer_hash = kHash;
    auto s = RocksDbSampleStore::Open(o);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(s).value();
    std::vector<Sample> batch;
    for (uint64_t i = 0; i < 100; ++i) batch.push_back(MakeSyntheticSample(Objective::kBlank, 1, i, 128));
    ASSERT_TRUE(store_->PutSamples(batch).ok());
    ASSERT_TRUE(store_->PutDocuments({MakeSyntheticDocument(0, 40)}).ok());
  }
  void TearDown() override {
    server_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }
  void StartServer(StoreServerOptions options = {}) {
    auto s = StoreServer::Start(store_.get(), &context_, std::move(options));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(s).value();
  }
  std::unique_ptr<StoreClient> Connect(StoreClientOptions options = {}) {
    if (options.endpoint.empty()) options.endpoint = server_->endpoint();
    if (options.timeout_ms == StoreClientOptions{}.timeout_ms) options.timeout_ms = 3000;
    auto c = StoreClient::Connect(&context_, options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  fs::path dir_;
  zmq::context_t context_;
  std::unique_ptr<RocksDbSampleStore> store_;
  std::unique_ptr<StoreServer> server_;
};

TEST_F(StoreServerTest, RemoteRangeAndMultiGetEqualLocalReads) {
  StartServer();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->tokenizer_hash(), kHash);
  auto remote = client->GetSampleRange(Objective::kBlank, 1, 10, 60);
  auto local = store_->GetSampleRange(Objective::kBlank, 1, 10, 60);
  ASSERT_TRUE(remote.ok()) << remote.status();
  ASSERT_TRUE(local.ok());
  ASSERT_EQ(remote->size(), 50u);
  for (size_t i = 0; i < 50; ++i) EXPECT_TRUE(schema::RecordsEqual((*remote)[i], (*local)[i]));
  auto some = client->MultiGetSamples({{Objective::kBlank, 1, 99}, {Objective::kBlank, 1, 3}});
  ASSERT_TRUE(some.ok()) << some.status();
  EXPECT_EQ((*some)[0].index, 99u);
  EXPECT_EQ((*some)[1].index, 3u);
  auto doc = client->GetDocument(0);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_TRUE(schema::RecordsEqual(*doc, MakeSyntheticDocument(0, 40)));
}

TEST_F(StoreServerTest, LongReadsAreSplitIntoPipelinedRequests) {
  StartServer();
  StoreClientOptions o;
  o.max_records_per_request = 7;
  o.max_in_flight = 3;
  auto client = Connect(o);
  auto r = client->GetSampleRange(Objective::kBlank, 1, 0, 100);
  ASSERT_TRUE(r.ok()) << r.status();
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ((*r)[i].index, i);
  EXPECT_EQ(server_->counters().requests, 1u + 15u);  // getInfo + ceil(100 / 7)
  EXPECT_EQ(server_->counters().records_sent, 100u);
}

TEST_F(StoreServerTest, MissingSampleIsNotFoundNamingTheKeyAndTheServer) {
  StartServer();
  auto client = Connect();
  auto r = client->GetSampleRange(Objective::kBlank, 1, 95, 105);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(r.status().message(), "samples/blank/epoch=1/index=100")) << r.status();
  EXPECT_TRUE(Contains(r.status().message(), server_->endpoint())) << r.status();
}

TEST_F(StoreServerTest, PutsThroughTheServerAreAtomicBatches) {
  StartServer();
  auto client = Connect();
  std::vector<Sample> batch = {MakeSyntheticSample(Objective::kDocument, 0, 0, 64),
                               MakeSyntheticSample(Objective::kDocument, 0, 1, 64)};
  ASSERT_TRUE(client->PutSamples(batch).ok());
  auto local = store_->GetSampleRange(Objective::kDocument, 0, 0, 2);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_TRUE(schema::RecordsEqual((*local)[1], batch[1]));
  // A batch with one bad record writes nothing.
  Status s = client->PutEncodedSamples(
      {schema::EncodeSample(MakeSyntheticSample(Objective::kDocument, 0, 2, 8), kHash), "12345678"});
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s;
  EXPECT_EQ(store_->GetSample({Objective::kDocument, 0, 2}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client->DeleteMeta("a").code(), StatusCode::kUnimplemented);
}

TEST_F(StoreServerTest, MetaKeysAreReadableAndOnlyTrainKeysWritableOverTheWire) {
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(store_->PutMeta("owner/key", "local value").ok());
  auto got = client->GetMeta("owner/key");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "local value");
  EXPECT_EQ(client->GetMeta("absent").status().code(), StatusCode::kNotFound);
  // Only the training dataset's keys: a client must not overwrite what the
  // store's owner keeps there (staging markers, the document index).
  Status s = client->PutMeta("owner/key", "overwritten");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("train/"), std::string::npos) << s;
  EXPECT_EQ(*store_->GetMeta("owner/key"), "local value");
  const std::string manifest(70000, 'm');  // larger than one record, any bytes
  ASSERT_TRUE(client->PutMeta("train/dataset", manifest).ok());
  EXPECT_EQ(*store_->GetMeta("train/dataset"), manifest);
  EXPECT_EQ(*client->GetMeta("train/dataset"), manifest);
}

TEST_F(StoreServerTest, MalformedRequestsAreAnsweredAndCountedAndServingGoesOn) {
  StartServer();
  auto client = Connect();
  for (std::string garbage : {std::string("abc"), std::string(64, '\xff'), std::string(16, '\0')}) {
    auto answer = client->RoundTripRawForTesting(garbage);
    ASSERT_TRUE(answer.ok()) << answer.status();
  }
  EXPECT_GE(server_->counters().malformed, 2u);
  EXPECT_GE(server_->counters().errors, 3u);
  auto r = client->GetSampleRange(Objective::kBlank, 1, 0, 10);
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(StoreServerTest, TooManyRecordsPerRequestIsInvalidArgument) {
  StoreServerOptions so;
  so.max_records_per_request = 5;
  StartServer(so);
  StoreClientOptions o;
  o.max_records_per_request = 50;  // more than the server allows
  auto client = Connect(o);
  auto r = client->GetSampleRange(Objective::kBlank, 1, 0, 20);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status();
  EXPECT_TRUE(Contains(r.status().message(), "limit is 5")) << r.status();
}

TEST_F(StoreServerTest, OversizedMessagesAreRefusedWithoutHarmingOtherClients) {
  StoreServerOptions so;
  so.max_message_bytes = 16384;
  StartServer(so);
  zmq::socket_t raw(context_, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(server_->endpoint());
  std::string big(64 << 10, 'x');
  raw.send(zmq::buffer(big), zmq::send_flags::none);
  zmq::pollitem_t items[] = {{raw.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(300));
  EXPECT_FALSE(items[0].revents & ZMQ_POLLIN);  // dropped, not answered
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // A response above the limit is refused by the server, not sent.
  auto r = client->GetSampleRange(Objective::kBlank, 1, 0, 20);
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status();
  EXPECT_TRUE(client->GetSampleRange(Objective::kBlank, 1, 0, 1).ok());
}

TEST_F(StoreServerTest, NoServerIsDeadlineExceeded) {
  StoreClientOptions o;
  o.endpoint = "tcp://127.0.0.1:1";
  o.timeout_ms = 200;
  auto c = StoreClient::Connect(&context_, o);
  EXPECT_EQ(c.status().code(), StatusCode::kDeadlineExceeded) << c.status();
  EXPECT_TRUE(Contains(c.status().message(), "tcp://127.0.0.1:1")) << c.status();
}

TEST_F(StoreServerTest, CurveServerServesKeyedClientsOnly) {
  if (!zmq_has("curve")) GTEST_SKIP() << "libzmq without CURVE";
  char server_public[41], server_secret[41], client_public[41], client_secret[41];
  ASSERT_EQ(zmq_curve_keypair(server_public, server_secret), 0);
  ASSERT_EQ(zmq_curve_keypair(client_public, client_secret), 0);
  StoreServerOptions so;
  so.curve_public_key = server_public;
  so.curve_secret_key = server_secret;
  StartServer(so);
  StoreClientOptions o;
  o.curve_server_key = server_public;
  o.curve_public_key = client_public;
  o.curve_secret_key = client_secret;
  auto keyed = Connect(o);
  ASSERT_NE(keyed, nullptr);
  EXPECT_TRUE(keyed->GetSampleRange(Objective::kBlank, 1, 0, 5).ok());
  StoreClientOptions plain;
  plain.endpoint = server_->endpoint();
  plain.timeout_ms = 300;
  EXPECT_EQ(StoreClient::Connect(&context_, plain).status().code(), StatusCode::kDeadlineExceeded);
}

// A storage server of format version 1, as an older glm runs it: answers
// getInfo with version 1 and keeps the records of one putSamples.
TEST_F(StoreServerTest, ClientWritesUnpackedVersionOneSamplesToAVersionOneServer) {
  namespace cp = ::glm::schema::capnp;
  zmq::socket_t router(context_, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::vector<std::string> written;
  std::thread old_server([&] {
    for (int served = 0; served < 2; ++served) {
      zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
      if (zmq::poll(items, 1, std::chrono::milliseconds(5000)) == 0) return;
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(router, std::back_inserter(frames))) return;
      ::capnp::MallocMessageBuilder answer;
      Status read = wire::ReadFrame(
          frames.back().data(), frames.back().size(), 1 << 24, [&](::capnp::MessageReader& m) {
            auto req = m.getRoot<cp::StoreRequest>();
            auto resp = answer.initRoot<cp::StoreResponse>();
            resp.setProtocolVersion(cp::STORE_PROTOCOL_VERSION);
            resp.setRequestId(req.getRequestId());
            if (req.isGetInfo()) {
              resp.initInfo().setFormatVersion(1);
              resp.getInfo().setTokenizerHash(kHash);
            } else if (req.isPutSamples()) {
              for (auto record : req.getPutSamples())
                written.emplace_back(reinterpret_cast<const char*>(record.begin()), record.size());
              resp.setPutDone(req.getPutSamples().size());
            }
            return Status::Ok();
          });
      if (!read.ok()) return;
      for (size_t f = 0; f + 1 < frames.size(); ++f)
        router.send(frames[f], zmq::send_flags::sndmore);
      router.send(wire::ToFrame(answer), zmq::send_flags::none);
    }
  });
  StoreClientOptions o;
  o.endpoint = endpoint;
  auto client = Connect(o);
  ASSERT_NE(client, nullptr);
  std::vector<Sample> batch = {MakeSyntheticSample(Objective::kBlank, 0, 0, 64),
                               MakeSyntheticSample(Objective::kBlank, 0, 1, 64)};
  EXPECT_TRUE(client->PutSamples(batch).ok());
  old_server.join();
  ASSERT_EQ(written.size(), 2u);
  for (size_t i = 0; i < written.size(); ++i) {
    EXPECT_FALSE(schema::IsPackedRecord(written[i])) << i;
    StatusOr<Sample> back = schema::DecodeSample(written[i]);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_TRUE(schema::RecordsEqual(*back, batch[i]));
  }
  // The current server gets packed samples.
  StartServer();
  auto current = Connect();
  ASSERT_NE(current, nullptr);
  ASSERT_TRUE(current->PutSamples(batch).ok());
  auto raw = store_->MultiGetEncodedSamples({KeyOf(batch[0])});
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(schema::IsPackedRecord((*raw)[0]));
}

TEST(StoreWire, ReadsFramesAtAnyAlignment) {
  ::capnp::MallocMessageBuilder builder;
  auto request = builder.initRoot<schema::capnp::StoreRequest>();
  request.setRequestId(42);
  request.initGetDocuments(3).set(2, 7);
  kj::Array<::capnp::word> words = ::capnp::messageToFlatArray(builder);
  const std::string bytes(reinterpret_cast<const char*>(words.begin()), words.size() * 8);
  for (int shift = 0; shift < 8; ++shift) {
    std::string buffer = std::string(shift, 'x') + bytes;
    uint64_t id = 0, doc = 0;
    Status s = wire::ReadFrame(buffer.data() + shift, bytes.size(), 1 << 20, [&](::capnp::MessageReader& m) {
      auto r = m.getRoot<schema::capnp::StoreRequest>();
      id = r.getRequestId();
      doc = r.getGetDocuments()[2];
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(id, 42u);
    EXPECT_EQ(doc, 7u);
  }
  EXPECT_EQ(wire::ReadFrame(bytes.data(), bytes.size() - 8, 1 << 20, [](::capnp::MessageReader& m) {
              m.getRoot<schema::capnp::StoreRequest>().getGetDocuments();
              return Status::Ok();
            }).code(),
            StatusCode::kDataLoss);
}

TEST_F(StoreServerTest, BadOptionsAreInvalidArgument) {
  StoreServerOptions so;
  so.curve_secret_key = "short";
  EXPECT_EQ(StoreServer::Start(store_.get(), &context_, so).status().code(), StatusCode::kInvalidArgument);
  so = {};
  so.endpoint = "nonsense://x";
  EXPECT_EQ(StoreServer::Start(store_.get(), &context_, so).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace glm::storage
