#include "storage/store_server.h"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include <iterator>

#include "schema/record_codec.h"
#include "schema/store_rpc.capnp.h"
#include "storage/staging.h"
#include "storage/store_wire.h"

namespace glm::storage {
namespace {

namespace cp = ::glm::schema::capnp;

Status CheckCurveKey(const std::string& name, const std::string& key) {
  if (!key.empty() && key.size() != 40) {
    return InvalidArgumentError(name + " must be a Z85 CurveZMQ key of 40 characters (see `glm keys`), got " +
                                std::to_string(key.size()));
  }
  return Status::Ok();
}

void SetError(cp::StoreResponse::Builder response, const Status& status) {
  auto error = response.initError();
  error.setCode(static_cast<uint32_t>(status.code()));
  error.setMessage(status.message());
}

}  // namespace

Status StoreServerOptions::Validate() const {
  if (endpoint.empty()) return InvalidArgumentError("the storage server needs an endpoint to bind");
  if (max_message_bytes < 4096) return InvalidArgumentError("max_message_bytes must be at least 4096");
  if (max_records_per_request < 1) return InvalidArgumentError("max_records_per_request must be at least 1");
  if (send_hwm < 1 || receive_hwm < 1) return InvalidArgumentError("send_hwm and receive_hwm must be at least 1");
  if (poll_interval_ms < 1) return InvalidArgumentError("poll_interval_ms must be at least 1");
  GLM_RETURN_IF_ERROR(CheckCurveKey("curve_public_key", curve_public_key));
  GLM_RETURN_IF_ERROR(CheckCurveKey("curve_secret_key", curve_secret_key));
  return Status::Ok();
}

StatusOr<std::unique_ptr<StoreServer>> StoreServer::Start(SampleStore* store, zmq::context_t* context,
                                                          StoreServerOptions options) {
  GLM_RETURN_IF_ERROR(options.Validate());
  std::string endpoint;
  zmq::socket_t socket;
  try {
    socket = zmq::socket_t(*context, zmq::socket_type::router);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
    socket.set(zmq::sockopt::sndhwm, options.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, options.receive_hwm);
    if (!options.curve_secret_key.empty()) {
      socket.set(zmq::sockopt::curve_server, true);
      socket.set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
    }
    if (options.configure_socket) GLM_RETURN_IF_ERROR(options.configure_socket(&socket));
    socket.bind(options.endpoint);
    endpoint = socket.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return UnavailableError("storage server cannot bind " + options.endpoint + ": " + e.what() +
                            "; HINT: is the port already in use?");
  }
  std::unique_ptr<StoreServer> server(new StoreServer(store, std::move(options), std::move(socket), endpoint));
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

StoreServer::StoreServer(SampleStore* store, StoreServerOptions options, zmq::socket_t socket,
                         std::string endpoint)
    : store_(store), options_(std::move(options)), socket_(std::move(socket)), endpoint_(std::move(endpoint)) {}

StoreServer::~StoreServer() { Stop(); }

void StoreServer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

StoreServer::Counters StoreServer::counters() const {
  Counters c;
  c.requests = requests_;
  c.malformed = malformed_;
  c.errors = errors_;
  c.records_sent = records_sent_;
  c.records_written = records_written_;
  return c;
}

void StoreServer::Run() {
  try {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    while (!stop_) {
      zmq::poll(items, 1, std::chrono::milliseconds(options_.poll_interval_ms));
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      // Serve what is queued, then look at stop_ again.
      for (int i = 0; i < 64 && !stop_; ++i) {
        std::vector<zmq::message_t> frames;
        auto got = zmq::recv_multipart(socket_, std::back_inserter(frames), zmq::recv_flags::dontwait);
        if (!got) break;
        if (frames.size() < 2) {  // no envelope: nobody to answer
          ++malformed_;
          ++errors_;
          continue;
        }
        zmq::message_t response = Handle(frames.back());
        for (size_t f = 0; f + 1 < frames.size(); ++f) socket_.send(frames[f], zmq::send_flags::sndmore);
        socket_.send(response, zmq::send_flags::dontwait);
      }
    }
  } catch (const zmq::error_t& e) {
    spdlog::error("storage server {}: socket error, stopping: {}", endpoint_, e.what());
  }
  socket_.close();
}

zmq::message_t StoreServer::Handle(const zmq::message_t& request) {
  ++requests_;
  bool readable = false;
  uint64_t request_id = 0;
  const uint64_t limit_words = static_cast<uint64_t>(options_.max_message_bytes) / 8 * 2;
  // The answer; created once its size is roughly known.
  std::unique_ptr<::capnp::MallocMessageBuilder> builder;
  auto start_response = [&](uint64_t words) {
    builder = std::make_unique<::capnp::MallocMessageBuilder>(static_cast<unsigned>(std::min<uint64_t>(words, 1u << 28)));
    auto r = builder->initRoot<cp::StoreResponse>();
    r.setProtocolVersion(cp::STORE_PROTOCOL_VERSION);
    r.setRequestId(request_id);
    return r;
  };
  // Copies records straight from the store into the answer, once.
  auto send_records = [&](uint64_t n, auto&& visit) -> Status {
    const uint64_t avg = avg_record_words_.load();
    auto list = start_response(n * (avg + 2) + 64).initRecords(static_cast<unsigned>(n));
    uint64_t bytes = 0, count = 0;
    GLM_RETURN_IF_ERROR(visit([&](size_t i, std::string_view v) -> Status {
      bytes += v.size() + 16;
      if (bytes + 1024 > static_cast<uint64_t>(options_.max_message_bytes)) {
        return ResourceExhaustedError("the answer exceeds the server's " + std::to_string(options_.max_message_bytes) +
                                      "-byte message limit; HINT: ask for fewer records per request");
      }
      list.set(static_cast<unsigned>(i), ::capnp::Data::Reader(reinterpret_cast<const kj::byte*>(v.data()), v.size()));
      ++count;
      return Status::Ok();
    }));
    if (count > 0) avg_record_words_ = bytes / count / 8 + 1;
    records_sent_ += count;
    return Status::Ok();
  };

  Status status = wire::ReadFrame(request.data(), request.size(), limit_words, [&](::capnp::MessageReader& m) -> Status {
    auto req = m.getRoot<cp::StoreRequest>();
    request_id = req.getRequestId();
    readable = true;
    if (req.getProtocolVersion() > cp::STORE_PROTOCOL_VERSION) {
      return FailedPreconditionError("request of protocol version " + std::to_string(req.getProtocolVersion()) +
                                     "; this server speaks up to " + std::to_string(cp::STORE_PROTOCOL_VERSION) +
                                     "; HINT: upgrade the storage server");
    }
    const uint32_t max_records = options_.max_records_per_request;
    auto too_many = [&](uint64_t n) {
      return InvalidArgumentError("request for " + std::to_string(n) + " records; the server's limit is " +
                                  std::to_string(max_records) + " per request; HINT: split it");
    };
    switch (req.which()) {
      case cp::StoreRequest::GET_SAMPLES: {
        auto list = req.getGetSamples();
        if (list.size() > max_records) return too_many(list.size());
        std::vector<SampleKey> keys;
        keys.reserve(list.size());
        for (auto k : list) {
          if (k.getObjective() >= kNumObjectives) {
            return InvalidArgumentError("sample key with objective " + std::to_string(k.getObjective()));
          }
          keys.push_back({static_cast<Objective>(k.getObjective()), k.getEpoch(), k.getIndex()});
        }
        return send_records(keys.size(), [&](const SampleStore::RecordVisitor& fn) {
          return store_->VisitEncodedSamples(keys, fn);
        });
      }
      case cp::StoreRequest::GET_SAMPLE_RANGE: {
        auto r = req.getGetSampleRange();
        if (r.getObjective() >= kNumObjectives) {
          return InvalidArgumentError("range of objective " + std::to_string(r.getObjective()));
        }
        if (r.getEnd() < r.getBegin()) return InvalidArgumentError("range with end < begin");
        if (r.getEnd() - r.getBegin() > max_records) return too_many(r.getEnd() - r.getBegin());
        return send_records(r.getEnd() - r.getBegin(), [&](const SampleStore::RecordVisitor& fn) {
          return store_->VisitEncodedSampleRange(static_cast<Objective>(r.getObjective()), r.getEpoch(), r.getBegin(),
                                                 r.getEnd(), fn);
        });
      }
      case cp::StoreRequest::PUT_SAMPLES: {
        auto list = req.getPutSamples();
        if (list.size() > max_records) return too_many(list.size());
        std::vector<std::string> put;
        put.reserve(list.size());
        for (auto d : list) put.emplace_back(reinterpret_cast<const char*>(d.begin()), d.size());
        GLM_RETURN_IF_ERROR(store_->PutEncodedSamples(put));
        records_written_ += put.size();
        start_response(64).setPutDone(static_cast<uint32_t>(put.size()));
        return Status::Ok();
      }
      case cp::StoreRequest::GET_DOCUMENTS: {
        auto list = req.getGetDocuments();
        if (list.size() > max_records) return too_many(list.size());
        std::vector<std::string> docs;
        for (uint64_t id : list) {
          GLM_ASSIGN_OR_RETURN(Document doc, store_->GetDocument(id));
          docs.push_back(schema::EncodeDocument(doc, store_->tokenizer_hash()));
        }
        return send_records(docs.size(), [&](const SampleStore::RecordVisitor& fn) {
          for (size_t i = 0; i < docs.size(); ++i) GLM_RETURN_IF_ERROR(fn(i, docs[i]));
          return Status::Ok();
        });
      }
      case cp::StoreRequest::STAGE_DOCUMENTS: {
        auto g = req.getStageDocuments();
        auto list = g.getDocuments();
        if (list.size() > max_records) return too_many(list.size());
        std::vector<std::string> put;
        put.reserve(list.size());
        for (auto d : list) put.emplace_back(reinterpret_cast<const char*>(d.begin()), d.size());
        GLM_RETURN_IF_ERROR(StageDocuments(store_, g.getShard(), g.getFirstLocal(), put));
        records_written_ += put.size();
        start_response(64).setCount(put.size());
        return Status::Ok();
      }
      case cp::StoreRequest::FINALIZE_DOCUMENTS: {
        GLM_ASSIGN_OR_RETURN(uint64_t n, FinalizeStagedDocuments(store_));
        start_response(64).setCount(n);
        return Status::Ok();
      }
      case cp::StoreRequest::GET_DOCUMENT_LENGTHS: {
        GLM_ASSIGN_OR_RETURN(std::vector<uint64_t> lengths, store_->ListDocumentLengths());
        if (lengths.size() * 8 + 1024 > static_cast<uint64_t>(options_.max_message_bytes)) {
          return ResourceExhaustedError("the document index exceeds the server's message limit");
        }
        auto list = start_response(lengths.size() + 64).initLengths(static_cast<unsigned>(lengths.size()));
        for (size_t i = 0; i < lengths.size(); ++i) list.set(static_cast<unsigned>(i), lengths[i]);
        return Status::Ok();
      }
      case cp::StoreRequest::GET_META: {
        GLM_ASSIGN_OR_RETURN(std::string value, store_->GetMeta(req.getGetMeta().cStr()));
        start_response(value.size() / 8 + 64)
            .setMeta(::capnp::Data::Reader(reinterpret_cast<const kj::byte*>(value.data()), value.size()));
        return Status::Ok();
      }
      case cp::StoreRequest::PUT_META: {
        auto g = req.getPutMeta();
        const std::string key = g.getKey().cStr();
        if (key.rfind(kRemoteMetaPrefix, 0) != 0) {
          return InvalidArgumentError("meta key '" + key + "' is not writable over the wire (only keys under '" +
                                      std::string(kRemoteMetaPrefix) + "')");
        }
        auto v = g.getValue();
        GLM_RETURN_IF_ERROR(store_->PutMeta(key, std::string_view(reinterpret_cast<const char*>(v.begin()), v.size())));
        start_response(64).setCount(1);
        return Status::Ok();
      }
      case cp::StoreRequest::GET_INFO: {
        auto info = start_response(64).initInfo();
        info.setFormatVersion(schema::kStoreFormatVersion);
        info.setTokenizerHash(store_->tokenizer_hash());
        return Status::Ok();
      }
      default:
        return InvalidArgumentError("unknown request kind " + std::to_string(static_cast<int>(req.which())) +
                                    "; HINT: upgrade the storage server");
    }
  });

  if (!status.ok()) {
    ++errors_;
    if (!readable) ++malformed_;
    if (!readable || status.code() == StatusCode::kDataLoss) {
      spdlog::warn("storage server {}: {}", endpoint_, status.ToString());
    }
    SetError(start_response(64 + status.message().size() / 8), status);
  }
  return wire::ToFrame(*builder);
}

}  // namespace glm::storage
