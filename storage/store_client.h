// StoreClient: the SampleStore of a remote StoreServer, over a ZeroMQ
// DEALER socket. Implements what trainers and corruption actors need:
// samples by (objective, epoch, [begin, end)) and by keys, documents by id,
// batched sample writes, document staging and finalising (the pipeline's
// tokenize phase), the document index, and GetMeta / PutMeta (PutMeta only
// under kRemoteMetaPrefix "train/"). Deleting and scanning meta keys and direct
// document writes are Unimplemented (those belong to the process that owns
// the store).
//
//   StoreClientOptions options;
//   options.endpoint = server->endpoint();
//   GLM_ASSIGN_OR_RETURN(auto client, StoreClient::Connect(&context, options));
//   GLM_ASSIGN_OR_RETURN(auto batch, client->GetSampleRange(Objective::kBlank, 0, 0, 512));
//
// A range or key list longer than max_records_per_request is split into
// several requests, up to max_in_flight of them outstanding at once. Every
// record is decoded and checked (key, tokenizer hash) here, with the same
// decoder as a local reader. Errors: the server's error (its code and
// message), DeadlineExceeded when no answer came within timeout_ms (retry),
// DataLoss for an unreadable response.
//
// Lifetime: `context` is not owned and must outlive the client.
// Thread-safety: thread-safe; calls are serialised on the one socket (use one
// client per thread for parallel requests).
#ifndef GLM_STORAGE_STORE_CLIENT_H_
#define GLM_STORAGE_STORE_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <zmq.hpp>

#include "schema/record_codec.h"
#include "storage/sample_store.h"
#include "transport/readable_waiter.h"

namespace glm::storage {

struct StoreClientOptions {
  // The server's endpoint, e.g. "tcp://10.0.0.5:5601". Required.
  std::string endpoint;
  // How long to wait for each answer. Default: 10000 ms.
  int timeout_ms = 10000;
  // Largest message accepted. Default: 256 MiB.
  int64_t max_message_bytes = 256ll << 20;
  // Records per request; longer reads are split, so that the server reads
  // the next part while this client decodes the last. Default: 64.
  uint32_t max_records_per_request = 64;
  // Requests outstanding at once for a split read. Default: 4.
  int max_in_flight = 4;
  // Messages queued in each direction before ZeroMQ pushes back. Default: 64.
  int send_hwm = 64;
  int receive_hwm = 64;
  // CurveZMQ: the server's public key and this client's key pair, Z85.
  // Default: empty = plain TCP.
  std::string curve_server_key;
  std::string curve_public_key;
  std::string curve_secret_key;
  // Adaptive busy polling while waiting for answers
  // (transport/readable_waiter.h). Default: the transport's.
  transport::BusyPollOptions busy_poll;

  Status Validate() const;
};

class StoreClient : public SampleStore {
 public:
  // Connects and asks the server for its info (format version, tokenizer).
  // DeadlineExceeded when the server does not answer within timeout_ms.
  static StatusOr<std::unique_ptr<StoreClient>> Connect(zmq::context_t* context, StoreClientOptions options);
  ~StoreClient() override = default;

  uint64_t tokenizer_hash() const override { return tokenizer_hash_; }

  Status PutDocuments(const std::vector<Document>& docs) override;
  StatusOr<Document> GetDocument(uint64_t id) override;
  Status BuildDocumentIndex() override;
  StatusOr<std::vector<uint64_t>> ListDocumentLengths() override;

  Status PutSamples(const std::vector<Sample>& samples) override;
  Status PutEncodedSamples(const std::vector<std::string>& records) override;
  StatusOr<std::vector<Sample>> MultiGetSamples(const std::vector<SampleKey>& keys) override;
  StatusOr<std::vector<Sample>> GetSampleRange(Objective objective, uint32_t epoch, uint64_t begin,
                                               uint64_t end) override;
  StatusOr<std::vector<std::string>> MultiGetEncodedSamples(const std::vector<SampleKey>& keys) override;
  StatusOr<std::vector<std::string>> GetEncodedSampleRange(Objective objective, uint32_t epoch,
                                                           uint64_t begin, uint64_t end) override;
  // Zero-copy: `fn` sees the received frames; records are handed over as
  // their answers arrive, while later requests are still in flight.
  Status VisitEncodedSamples(const std::vector<SampleKey>& keys, const RecordVisitor& fn) override;
  Status VisitEncodedSampleRange(Objective objective, uint32_t epoch, uint64_t begin, uint64_t end,
                                 const RecordVisitor& fn) override;

  Status PutMeta(std::string_view key, std::string_view value) override;
  StatusOr<std::string> GetMeta(std::string_view key) override;
  Status DeleteMeta(std::string_view key) override;
  StatusOr<std::vector<std::pair<std::string, std::string>>> ScanMeta(std::string_view prefix) override;
  Status WriteMeta(const std::vector<MetaWrite>& writes) override;

  // Document staging for the pipeline's tokenize phase (storage/staging.h):
  // stages `docs` (ids ignored) as documents 0.. of corpus shard `shard`,
  // split into requests of max_records_per_request (each atomic; a rerun
  // rewrites the same keys with the same bytes).
  Status StageDocuments(uint32_t shard, const std::vector<Document>& docs);
  // Numbers the staged documents 0..N-1 in (shard, local) order, builds the
  // document index; idempotent. Returns N.
  StatusOr<uint64_t> FinalizeDocuments();
  // Documents by id, in the order asked, in split requests.
  StatusOr<std::vector<Document>> GetDocuments(const std::vector<uint64_t>& ids);

  // Sends raw bytes as one request frame and returns the raw answer (tests
  // of the server's handling of malformed requests).
  StatusOr<std::string> RoundTripRawForTesting(const std::string& frame);

 private:
  StoreClient(StoreClientOptions options, zmq::socket_t socket);
  // Sends the encoded requests (at most max_in_flight outstanding) and
  // calls on_answer(request position, frame) for each answer as it arrives.
  using AnswerFn = std::function<Status(size_t position, const zmq::message_t& frame)>;
  Status Call(const std::vector<std::pair<uint64_t, std::string>>& requests, const AnswerFn& on_answer);
  // Records of split requests: calls fn(global position, bytes).
  Status VisitRecords(const std::vector<std::pair<uint64_t, std::string>>& requests, size_t expected,
                      const RecordVisitor& fn);
  StatusOr<zmq::message_t> Receive(uint64_t* request_id);
  uint64_t NextId() { return ++last_request_id_; }

  const StoreClientOptions options_;
  std::mutex mu_;
  zmq::socket_t socket_;
  transport::ReadableWaiter answer_waiter_;  // guarded by mu_
  uint64_t last_request_id_ = 0;
  uint64_t tokenizer_hash_ = 0;
  // The record format version this client writes: the server's, when older
  // than this build's (set on connect).
  uint32_t record_format_version_ = schema::kStoreFormatVersion;
};

}  // namespace glm::storage

#endif  // GLM_STORAGE_STORE_CLIENT_H_
