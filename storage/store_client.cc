#include "storage/store_client.h"

#include <algorithm>
#include <map>

#include "schema/record_codec.h"
#include "schema/store_rpc.capnp.h"
#include "storage/store_wire.h"

namespace glm::storage {
namespace {

namespace cp = ::glm::schema::capnp;

Status Unsupported(const char* what) {
  return UnimplementedError(std::string("StoreClient does not ") + what +
                            "; HINT: do it in the process that owns the store");
}

cp::StoreRequest::Builder NewRequest(::capnp::MessageBuilder* b, uint64_t id) {
  auto r = b->initRoot<cp::StoreRequest>();
  r.setProtocolVersion(cp::STORE_PROTOCOL_VERSION);
  r.setRequestId(id);
  return r;
}

std::string Flat(::capnp::MessageBuilder& b) {
  kj::Array<::capnp::word> words = ::capnp::messageToFlatArray(b);
  return std::string(reinterpret_cast<const char*>(words.begin()), words.size() * sizeof(::capnp::word));
}

// Reads a one-frame answer: the server's error as a Status, else fn(response).
template <typename Fn>
Status ReadAnswer(const zmq::message_t& answer, uint64_t limit_words, const std::string& endpoint, Fn&& fn) {
  return wire::ReadFrame(answer.data(), answer.size(), limit_words, [&](::capnp::MessageReader& m) -> Status {
    auto r = m.getRoot<cp::StoreResponse>();
    if (r.isError()) {
      uint32_t code = r.getError().getCode();
      if (code == 0 || code > static_cast<uint32_t>(StatusCode::kInternal)) code = static_cast<uint32_t>(StatusCode::kInternal);
      return Status(static_cast<StatusCode>(code),
                    std::string(r.getError().getMessage().cStr()) + " (from storage server " + endpoint + ")");
    }
    return fn(r);
  });
}

}  // namespace

Status StoreClientOptions::Validate() const {
  if (endpoint.empty()) return InvalidArgumentError("the store client needs the server's endpoint");
  if (timeout_ms < 1) return InvalidArgumentError("timeout_ms must be at least 1");
  if (max_records_per_request < 1) return InvalidArgumentError("max_records_per_request must be at least 1");
  if (max_in_flight < 1) return InvalidArgumentError("max_in_flight must be at least 1");
  if (send_hwm < 1 || receive_hwm < 1) return InvalidArgumentError("send_hwm and receive_hwm must be at least 1");
  for (const std::string* k : {&curve_server_key, &curve_public_key, &curve_secret_key}) {
    if (!k->empty() && k->size() != 40) return InvalidArgumentError("CurveZMQ keys are 40 Z85 characters");
  }
  if (curve_server_key.empty() != curve_secret_key.empty() || curve_public_key.empty() != curve_secret_key.empty()) {
    return InvalidArgumentError("CurveZMQ needs all three keys: the server's public key and this client's pair");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<StoreClient>> StoreClient::Connect(zmq::context_t* context, StoreClientOptions options) {
  GLM_RETURN_IF_ERROR(options.Validate());
  zmq::socket_t socket;
  try {
    socket = zmq::socket_t(*context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::maxmsgsize, options.max_message_bytes);
    socket.set(zmq::sockopt::sndhwm, options.send_hwm);
    socket.set(zmq::sockopt::rcvhwm, options.receive_hwm);
    socket.set(zmq::sockopt::sndtimeo, options.timeout_ms);
    if (!options.curve_server_key.empty()) {
      socket.set(zmq::sockopt::curve_serverkey, options.curve_server_key);
      socket.set(zmq::sockopt::curve_publickey, options.curve_public_key);
      socket.set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
    }
    socket.connect(options.endpoint);
  } catch (const zmq::error_t& e) {
    return InvalidArgumentError("cannot connect to storage server " + options.endpoint + ": " + e.what());
  }
  std::unique_ptr<StoreClient> client(new StoreClient(std::move(options), std::move(socket)));
  ::capnp::MallocMessageBuilder b(32);
  const uint64_t id = client->NextId();
  NewRequest(&b, id).setGetInfo();
  std::lock_guard<std::mutex> lock(client->mu_);
  Status s = client->Call({{id, Flat(b)}}, [&](size_t, const zmq::message_t& answer) {
   return wire::ReadFrame(answer.data(), answer.size(), 1 << 20, [&](::capnp::MessageReader& m) -> Status {
    auto r = m.getRoot<cp::StoreResponse>();
    if (!r.isInfo()) return DataLossError("the server answered getInfo with something else");
    if (r.getInfo().getFormatVersion() > schema::kStoreFormatVersion) {
      return FailedPreconditionError("the store at " + client->options_.endpoint + " has format version " +
                                     std::to_string(r.getInfo().getFormatVersion()) + "; HINT: upgrade glm");
    }
    client->tokenizer_hash_ = r.getInfo().getTokenizerHash();
    // An older server reads only the record encodings of its own version.
    client->record_format_version_ = std::max<uint32_t>(1, r.getInfo().getFormatVersion());
    return Status::Ok();
  });
  });
  GLM_RETURN_IF_ERROR(s);
  return client;
}

StoreClient::StoreClient(StoreClientOptions options, zmq::socket_t socket)
    : options_(std::move(options)), socket_(std::move(socket)), answer_waiter_(options_.busy_poll) {}

StatusOr<zmq::message_t> StoreClient::Receive(uint64_t* request_id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  zmq::message_t frame;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!answer_waiter_.Wait(socket_, static_cast<int>(std::max<int64_t>(0, left.count())))) {
      return DeadlineExceededError("no answer from storage server " + options_.endpoint + " within " +
                                   std::to_string(options_.timeout_ms) +
                                   " ms; HINT: is it running and reachable (and are the CurveZMQ keys right)?");
    }
    if (socket_.recv(frame, zmq::recv_flags::dontwait)) break;  // else: woken without a message; poll again
  }
  while (frame.more()) {  // a stray multi-part message: keep the last frame
    zmq::message_t next;
    if (!socket_.recv(next, zmq::recv_flags::dontwait)) break;
    frame = std::move(next);
  }
  *request_id = 0;
  Status s = wire::ReadFrame(frame.data(), frame.size(), 1 << 20, [&](::capnp::MessageReader& m) -> Status {
    *request_id = m.getRoot<cp::StoreResponse>().getRequestId();
    return Status::Ok();
  });
  GLM_RETURN_IF_ERROR(s.WithContext("answer from storage server " + options_.endpoint));
  return frame;
}

Status StoreClient::Call(const std::vector<std::pair<uint64_t, std::string>>& requests, const AnswerFn& on_answer) {
  std::map<uint64_t, size_t> pending;  // request id -> position
  size_t sent = 0, received = 0;
  try {
    while (received < requests.size()) {
      while (sent < requests.size() && pending.size() < static_cast<size_t>(options_.max_in_flight)) {
        zmq::message_t msg(requests[sent].second.data(), requests[sent].second.size());
        if (!socket_.send(msg, zmq::send_flags::none)) {
          return DeadlineExceededError("storage server " + options_.endpoint + " did not take a request within " +
                                       std::to_string(options_.timeout_ms) + " ms (back-pressure); retry later");
        }
        pending[requests[sent].first] = sent;
        ++sent;
      }
      uint64_t id = 0;
      GLM_ASSIGN_OR_RETURN(zmq::message_t frame, Receive(&id));
      auto it = pending.find(id);
      if (it == pending.end()) continue;  // the answer to a request abandoned earlier
      const size_t position = it->second;
      pending.erase(it);
      ++received;
      // On an error the remaining answers arrive later and are dropped as stale.
      GLM_RETURN_IF_ERROR(on_answer(position, frame));
    }
  } catch (const zmq::error_t& e) {
    return UnavailableError("storage server " + options_.endpoint + ": " + e.what());
  }
  return Status::Ok();
}

namespace {

// Calls fn(base + i, record bytes) for every record of one answer; returns
// the server's error when the answer carries one, and the record count.
StatusOr<size_t> ForEachRecord(const zmq::message_t& a, const std::string& endpoint, size_t base,
                               const SampleStore::RecordVisitor& fn) {
  size_t count = 0;
  GLM_RETURN_IF_ERROR(wire::ReadFrame(a.data(), a.size(), a.size() / 4 + 1024, [&](::capnp::MessageReader& m) -> Status {
    auto r = m.getRoot<cp::StoreResponse>();
    if (r.isError()) {
      uint32_t code = r.getError().getCode();
      if (code == 0 || code > static_cast<uint32_t>(StatusCode::kInternal)) code = static_cast<uint32_t>(StatusCode::kInternal);
      return Status(static_cast<StatusCode>(code),
                    std::string(r.getError().getMessage().cStr()) + " (from storage server " + endpoint + ")");
    }
    if (!r.isRecords()) return DataLossError("storage server " + endpoint + " answered with no records");
    for (auto d : r.getRecords()) {
      GLM_RETURN_IF_ERROR(fn(base + count, std::string_view(reinterpret_cast<const char*>(d.begin()), d.size())));
      ++count;
    }
    return Status::Ok();
  }));
  return count;
}

}  // namespace

Status StoreClient::VisitRecords(const std::vector<std::pair<uint64_t, std::string>>& requests, size_t expected,
                                 const RecordVisitor& fn) {
  const size_t chunk = options_.max_records_per_request;
  size_t total = 0;
  GLM_RETURN_IF_ERROR(Call(requests, [&](size_t position, const zmq::message_t& frame) -> Status {
    GLM_ASSIGN_OR_RETURN(size_t n, ForEachRecord(frame, options_.endpoint, position * chunk,
                                                 [&](size_t i, std::string_view bytes) -> Status {
                                                   if (i >= expected) {
                                                     return DataLossError("storage server " + options_.endpoint +
                                                                          " sent more records than asked for");
                                                   }
                                                   return fn(i, bytes);
                                                 }));
    total += n;
    return Status::Ok();
  }));
  if (total != expected) {
    return DataLossError("storage server " + options_.endpoint + " sent " + std::to_string(total) + " records for " +
                         std::to_string(expected) + " asked");
  }
  return Status::Ok();
}

Status StoreClient::VisitEncodedSamples(const std::vector<SampleKey>& keys, const RecordVisitor& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<uint64_t, std::string>> requests;
  for (size_t b = 0; b < keys.size(); b += options_.max_records_per_request) {
    const size_t e = std::min<size_t>(keys.size(), b + options_.max_records_per_request);
    ::capnp::MallocMessageBuilder builder(16 + 3 * (e - b));
    const uint64_t id = NextId();
    auto list = NewRequest(&builder, id).initGetSamples(e - b);
    for (size_t i = b; i < e; ++i) {
      list[i - b].setObjective(static_cast<uint8_t>(keys[i].objective));
      list[i - b].setEpoch(keys[i].epoch);
      list[i - b].setIndex(keys[i].index);
    }
    requests.emplace_back(id, Flat(builder));
  }
  return VisitRecords(requests, keys.size(), fn);
}

Status StoreClient::VisitEncodedSampleRange(Objective objective, uint32_t epoch, uint64_t begin, uint64_t end,
                                            const RecordVisitor& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<uint64_t, std::string>> requests;
  for (uint64_t b = begin; b < end; b += options_.max_records_per_request) {
    const uint64_t e = std::min<uint64_t>(end, b + options_.max_records_per_request);
    ::capnp::MallocMessageBuilder builder(32);
    const uint64_t id = NextId();
    auto r = NewRequest(&builder, id).initGetSampleRange();
    r.setObjective(static_cast<uint8_t>(objective));
    r.setEpoch(epoch);
    r.setBegin(b);
    r.setEnd(e);
    requests.emplace_back(id, Flat(builder));
  }
  return VisitRecords(requests, end > begin ? end - begin : 0, fn);
}

StatusOr<std::vector<std::string>> StoreClient::MultiGetEncodedSamples(const std::vector<SampleKey>& keys) {
  std::vector<std::string> out(keys.size());
  GLM_RETURN_IF_ERROR(VisitEncodedSamples(keys, [&](size_t i, std::string_view v) {
    out[i].assign(v);
    return Status::Ok();
  }));
  return out;
}

StatusOr<std::vector<std::string>> StoreClient::GetEncodedSampleRange(Objective objective, uint32_t epoch,
                                                                      uint64_t begin, uint64_t end) {
  std::vector<std::string> out(end > begin ? end - begin : 0);
  GLM_RETURN_IF_ERROR(VisitEncodedSampleRange(objective, epoch, begin, end, [&](size_t i, std::string_view v) {
    out[i].assign(v);
    return Status::Ok();
  }));
  return out;
}

namespace {
Status DecodeAt(size_t i, std::string_view bytes, const std::vector<SampleKey>& keys, const schema::DecodeOptions& d,
                const std::string& endpoint, std::vector<Sample>* out) {
  Status s = schema::DecodeSampleInto(bytes, d, &(*out)[i]);
  if (!s.ok()) return s.WithContext(DescribeSampleKey(keys[i]) + " from storage server " + endpoint);
  if (!(KeyOf((*out)[i]) == keys[i])) {
    return DataLossError("storage server " + endpoint + " sent " + DescribeSampleKey(KeyOf((*out)[i])) + " for " +
                         DescribeSampleKey(keys[i]));
  }
  return Status::Ok();
}
}  // namespace

StatusOr<std::vector<Sample>> StoreClient::MultiGetSamples(const std::vector<SampleKey>& keys) {
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = tokenizer_hash_;
  std::vector<Sample> out(keys.size());
  GLM_RETURN_IF_ERROR(VisitEncodedSamples(
      keys, [&](size_t i, std::string_view v) { return DecodeAt(i, v, keys, d, options_.endpoint, &out); }));
  return out;
}

StatusOr<std::vector<Sample>> StoreClient::GetSampleRange(Objective objective, uint32_t epoch, uint64_t begin,
                                                          uint64_t end) {
  std::vector<SampleKey> keys;
  for (uint64_t i = begin; i < end; ++i) keys.push_back({objective, epoch, i});
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = tokenizer_hash_;
  std::vector<Sample> out(keys.size());
  GLM_RETURN_IF_ERROR(VisitEncodedSampleRange(objective, epoch, begin, end, [&](size_t i, std::string_view v) {
    return DecodeAt(i, v, keys, d, options_.endpoint, &out);
  }));
  return out;
}

Status StoreClient::PutSamples(const std::vector<Sample>& samples) {
  std::vector<std::string> records;
  records.reserve(samples.size());
  for (const Sample& s : samples)
    records.push_back(schema::EncodeSample(s, tokenizer_hash_, record_format_version_));
  return PutEncodedSamples(records);
}

Status StoreClient::PutEncodedSamples(const std::vector<std::string>& records) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t bytes = 0;
  for (const std::string& r : records) bytes += r.size();
  ::capnp::MallocMessageBuilder builder(bytes / 8 + 2 * records.size() + 32);
  const uint64_t id = NextId();
  auto list = NewRequest(&builder, id).initPutSamples(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    list.set(i, ::capnp::Data::Reader(reinterpret_cast<const kj::byte*>(records[i].data()), records[i].size()));
  }
  return Call({{id, Flat(builder)}}, [&](size_t, const zmq::message_t& answer) {
   return wire::ReadFrame(answer.data(), answer.size(), 1 << 20, [&](::capnp::MessageReader& m) -> Status {
    auto r = m.getRoot<cp::StoreResponse>();
    if (r.isError()) {
      uint32_t code = r.getError().getCode();
      if (code == 0 || code > static_cast<uint32_t>(StatusCode::kInternal)) code = static_cast<uint32_t>(StatusCode::kInternal);
      return Status(static_cast<StatusCode>(code),
                    std::string(r.getError().getMessage().cStr()) + " (from storage server " + options_.endpoint + ")");
    }
    if (!r.isPutDone() || r.getPutDone() != records.size()) {
      return DataLossError("storage server " + options_.endpoint + " did not confirm the put");
    }
    return Status::Ok();
  });
  });
}

StatusOr<Document> StoreClient::GetDocument(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  ::capnp::MallocMessageBuilder builder(32);
  const uint64_t request_id = NextId();
  NewRequest(&builder, request_id).initGetDocuments(1).set(0, id);
  std::optional<Document> doc;
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = tokenizer_hash_;
  GLM_RETURN_IF_ERROR(VisitRecords({{request_id, Flat(builder)}}, 1, [&](size_t, std::string_view bytes) -> Status {
    StatusOr<Document> got = schema::DecodeDocument(bytes, d);
    if (!got.ok()) return got.status().WithContext(DescribeDocKey(id) + " from storage server " + options_.endpoint);
    doc = std::move(got).value();
    return Status::Ok();
  }));
  if (!doc || doc->id != id) return DataLossError("storage server " + options_.endpoint + " did not send " + DescribeDocKey(id));
  return std::move(*doc);
}

StatusOr<std::string> StoreClient::RoundTripRawForTesting(const std::string& frame) {
  std::lock_guard<std::mutex> lock(mu_);
  zmq::message_t msg(frame.data(), frame.size());
  if (!socket_.send(msg, zmq::send_flags::none)) return DeadlineExceededError("send");
  uint64_t id = 0;
  GLM_ASSIGN_OR_RETURN(zmq::message_t answer, Receive(&id));
  return std::string(static_cast<const char*>(answer.data()), answer.size());
}

Status StoreClient::PutDocuments(const std::vector<Document>&) { return Unsupported("write documents"); }
Status StoreClient::BuildDocumentIndex() { return Unsupported("build the document index"); }

StatusOr<std::vector<uint64_t>> StoreClient::ListDocumentLengths() {
  std::lock_guard<std::mutex> lock(mu_);
  ::capnp::MallocMessageBuilder builder(32);
  const uint64_t id = NextId();
  NewRequest(&builder, id).setGetDocumentLengths();
  std::vector<uint64_t> lengths;
  GLM_RETURN_IF_ERROR(Call({{id, Flat(builder)}}, [&](size_t, const zmq::message_t& answer) {
    return ReadAnswer(answer, options_.max_message_bytes / 4, options_.endpoint, [&](cp::StoreResponse::Reader r) -> Status {
      if (!r.isLengths()) return DataLossError("storage server " + options_.endpoint + " did not send the document lengths");
      for (uint64_t n : r.getLengths()) lengths.push_back(n);
      return Status::Ok();
    });
  }));
  return lengths;
}

Status StoreClient::StageDocuments(uint32_t shard, const std::vector<Document>& docs) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t per = options_.max_records_per_request;
  for (size_t first = 0; first < docs.size(); first += per) {
    const size_t n = std::min(per, docs.size() - first);
    std::vector<std::string> records;
    size_t bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      records.push_back(schema::EncodeDocument(docs[first + i], tokenizer_hash_));
      bytes += records.back().size();
    }
    ::capnp::MallocMessageBuilder builder(bytes / 8 + 2 * n + 32);
    const uint64_t id = NextId();
    auto g = NewRequest(&builder, id).initStageDocuments();
    g.setShard(shard);
    g.setFirstLocal(first);
    auto list = g.initDocuments(static_cast<unsigned>(n));
    for (size_t i = 0; i < n; ++i) {
      list.set(static_cast<unsigned>(i), ::capnp::Data::Reader(reinterpret_cast<const kj::byte*>(records[i].data()), records[i].size()));
    }
    GLM_RETURN_IF_ERROR(Call({{id, Flat(builder)}}, [&](size_t, const zmq::message_t& answer) {
      return ReadAnswer(answer, 1 << 20, options_.endpoint, [&](cp::StoreResponse::Reader r) -> Status {
        if (!r.isCount() || r.getCount() != n) {
          return DataLossError("storage server " + options_.endpoint + " did not confirm the staged documents");
        }
        return Status::Ok();
      });
    }));
  }
  return Status::Ok();
}

StatusOr<uint64_t> StoreClient::FinalizeDocuments() {
  std::lock_guard<std::mutex> lock(mu_);
  ::capnp::MallocMessageBuilder builder(32);
  const uint64_t id = NextId();
  NewRequest(&builder, id).setFinalizeDocuments();
  uint64_t count = 0;
  GLM_RETURN_IF_ERROR(Call({{id, Flat(builder)}}, [&](size_t, const zmq::message_t& answer) {
    return ReadAnswer(answer, 1 << 20, options_.endpoint, [&](cp::StoreResponse::Reader r) -> Status {
      if (!r.isCount()) return DataLossError("storage server " + options_.endpoint + " did not confirm finalizing");
      count = r.getCount();
      return Status::Ok();
    });
  }));
  return count;
}

StatusOr<std::vector<Document>> StoreClient::GetDocuments(const std::vector<uint64_t>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<uint64_t, std::string>> requests;
  const size_t per = options_.max_records_per_request;
  for (size_t first = 0; first < ids.size(); first += per) {
    const size_t n = std::min(per, ids.size() - first);
    ::capnp::MallocMessageBuilder builder(n + 32);
    const uint64_t id = NextId();
    auto list = NewRequest(&builder, id).initGetDocuments(static_cast<unsigned>(n));
    for (size_t i = 0; i < n; ++i) list.set(static_cast<unsigned>(i), ids[first + i]);
    requests.emplace_back(id, Flat(builder));
  }
  std::vector<Document> docs(ids.size());
  schema::DecodeOptions d;
  d.expected_tokenizer_hash = tokenizer_hash_;
  GLM_RETURN_IF_ERROR(VisitRecords(requests, ids.size(), [&](size_t i, std::string_view bytes) -> Status {
    StatusOr<Document> got = schema::DecodeDocument(bytes, d);
    if (!got.ok()) return got.status().WithContext(DescribeDocKey(ids[i]) + " from storage server " + options_.endpoint);
    if (got->id != ids[i]) return DataLossError("storage server " + options_.endpoint + " sent the wrong document for " + DescribeDocKey(ids[i]));
    docs[i] = std::move(got).value();
    return Status::Ok();
  }));
  return docs;
}
Status StoreClient::PutMeta(std::string_view key, std::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  ::capnp::MallocMessageBuilder builder(value.size() / 8 + key.size() / 8 + 64);
  const uint64_t id = NextId();
  auto g = NewRequest(&builder, id).initPutMeta();
  g.setKey(std::string(key));
  g.setValue(::capnp::Data::Reader(reinterpret_cast<const kj::byte*>(value.data()), value.size()));
  return Call({{id, Flat(builder)}}, [&](size_t, const zmq::message_t& answer) {
    return ReadAnswer(answer, 1 << 20, options_.endpoint, [&](cp::StoreResponse::Reader r) -> Status {
      if (!r.isCount()) return DataLossError("storage server " + options_.endpoint + " did not confirm the meta write");
      return Status::Ok();
    });
  });
}

StatusOr<std::string> StoreClient::GetMeta(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  ::capnp::MallocMessageBuilder builder(key.size() / 8 + 64);
  const uint64_t id = NextId();
  NewRequest(&builder, id).setGetMeta(std::string(key));
  std::string value;
  GLM_RETURN_IF_ERROR(Call({{id, Flat(builder)}}, [&](size_t, const zmq::message_t& answer) {
    return ReadAnswer(answer, options_.max_message_bytes / 8, options_.endpoint, [&](cp::StoreResponse::Reader r) -> Status {
      if (!r.isMeta()) return DataLossError("storage server " + options_.endpoint + " did not send the meta value");
      auto v = r.getMeta();
      value.assign(reinterpret_cast<const char*>(v.begin()), v.size());
      return Status::Ok();
    });
  }));
  return value;
}
Status StoreClient::DeleteMeta(std::string_view) { return Unsupported("delete meta keys"); }
StatusOr<std::vector<std::pair<std::string, std::string>>> StoreClient::ScanMeta(std::string_view) {
  return Unsupported("scan meta keys");
}
Status StoreClient::WriteMeta(const std::vector<MetaWrite>&) { return Unsupported("write meta keys"); }

}  // namespace glm::storage
