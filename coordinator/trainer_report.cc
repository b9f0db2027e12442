#include "coordinator/trainer_report.h"

#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include "transport/codec.h"
#include "transport/keys.h"
#include "transport/socket.h"

namespace glm::coordinator {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

nlohmann::json NumberOrNull(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

Status TrainerReport::Validate() const {
  if (trainer_id.empty() || trainer_id.size() > 200) {
    return InvalidArgumentError("trainer report: trainer_id must be 1..200 characters, got " +
                                std::to_string(trainer_id.size()));
  }
  if (world_size < 1) return InvalidArgumentError("trainer report: world_size must be >= 1");
  if (rank < 0 || rank >= world_size) {
    return InvalidArgumentError("trainer report: rank " + std::to_string(rank) + " not in [0, world_size " +
                                std::to_string(world_size) + ")");
  }
  if (step < 0) return InvalidArgumentError("trainer report: step must be >= 0");
  if (max_steps < 0) return InvalidArgumentError("trainer report: max_steps must be >= 0");
  for (int64_t n : objective_samples) {
    if (n < 0) return InvalidArgumentError("trainer report: objective_samples must be >= 0");
  }
  return Status::Ok();
}

void TrainerReportToWire(const TrainerReport& r, wire::TrainerReport::Builder out) {
  out.setTrainerId(r.trainer_id);
  out.setRank(r.rank);
  out.setWorldSize(r.world_size);
  out.setStep(r.step);
  out.setMaxSteps(r.max_steps);
  out.setLoss(r.loss);
  auto losses = out.initObjectiveLoss(3);
  auto samples = out.initObjectiveSamples(3);
  for (unsigned i = 0; i < 3; ++i) {
    losses.set(i, r.objective_loss[i]);
    samples.set(i, r.objective_samples[i]);
  }
  out.setLr(r.lr);
  out.setTokensPerS(r.tokens_per_s);
  out.setDataWaitMs(r.data_wait_ms);
  out.setAllreduceMs(r.allreduce_ms);
  out.setStepMs(r.step_ms);
  out.setCheckpointStep(r.checkpoint_step);
  out.setCheckpointMs(r.checkpoint_ms);
  out.setGradNorm(r.grad_norm);
}

TrainerReport TrainerReportFromWire(wire::TrainerReport::Reader in) {
  TrainerReport r;
  r.trainer_id = in.getTrainerId().cStr();
  r.rank = in.getRank();
  r.world_size = in.getWorldSize();
  r.step = in.getStep();
  r.max_steps = in.getMaxSteps();
  r.loss = in.getLoss();
  auto losses = in.getObjectiveLoss();
  auto samples = in.getObjectiveSamples();
  for (unsigned i = 0; i < 3; ++i) {
    r.objective_loss[i] = i < losses.size() ? losses[i] : NAN;
    r.objective_samples[i] = i < samples.size() ? samples[i] : 0;
  }
  r.lr = in.getLr();
  r.tokens_per_s = in.getTokensPerS();
  r.data_wait_ms = in.getDataWaitMs();
  r.allreduce_ms = in.getAllreduceMs();
  r.step_ms = in.getStepMs();
  r.checkpoint_step = in.getCheckpointStep();
  r.checkpoint_ms = in.getCheckpointMs();
  r.grad_norm = in.getGradNorm();
  return r;
}

nlohmann::json TrainerReportToJson(const TrainerReport& r) {
  nlohmann::json losses = nlohmann::json::object();
  nlohmann::json samples = nlohmann::json::object();
  for (int i = 0; i < 3; ++i) {
    losses[kReportObjectiveNames[i]] = NumberOrNull(r.objective_loss[i]);
    samples[kReportObjectiveNames[i]] = r.objective_samples[i];
  }
  return {{"id", r.trainer_id},
          {"rank", r.rank},
          {"world_size", r.world_size},
          {"step", r.step},
          {"max_steps", r.max_steps},
          {"loss", NumberOrNull(r.loss)},
          {"objective_loss", losses},
          {"objective_samples", samples},
          {"lr", NumberOrNull(r.lr)},
          {"grad_norm", NumberOrNull(r.grad_norm)},
          {"tokens_per_s", NumberOrNull(r.tokens_per_s)},
          {"data_wait_ms", NumberOrNull(r.data_wait_ms)},
          {"allreduce_ms", NumberOrNull(r.allreduce_ms)},
          {"step_ms", NumberOrNull(r.step_ms)},
          {"checkpoint_step", r.checkpoint_step},
          {"checkpoint_ms", NumberOrNull(r.checkpoint_ms)}};
}

// The request/reply socket under a reporter.
class TrainerReporter::Channel {
 public:
  virtual ~Channel() = default;
  virtual StatusOr<std::unique_ptr<transport::DecodedEnvelope>> Call(transport::EnvelopeBuilder& message,
                                                                     int timeout_ms) = 0;
};

namespace {

class CurveChannel : public TrainerReporter::Channel {
 public:
  static StatusOr<std::unique_ptr<CurveChannel>> Open(const std::string& endpoint, const std::string& keys_dir) {
    GLM_ASSIGN_OR_RETURN(transport::ClientKeys keys, transport::LoadClientKeys(keys_dir));
    auto channel = std::unique_ptr<CurveChannel>(new CurveChannel());
    GLM_ASSIGN_OR_RETURN(channel->socket_, transport::ClientSocket::Connect(&channel->context_, endpoint, keys,
                                                                            transport::SocketOptions()));
    return channel;
  }
  ~CurveChannel() override { socket_.reset(); }
  StatusOr<std::unique_ptr<transport::DecodedEnvelope>> Call(transport::EnvelopeBuilder& message,
                                                             int timeout_ms) override {
    return socket_->Call(message, timeout_ms);
  }

 private:
  CurveChannel() = default;
  zmq::context_t context_;  // outlives socket_ (declared first, destroyed last)
  std::unique_ptr<transport::ClientSocket> socket_;
};

// Plain TCP (no CURVE): for clusters run without keys (tests, a trusted
// network). The coordinator must then also run without CURVE.
class PlainChannel : public TrainerReporter::Channel {
 public:
  static StatusOr<std::unique_ptr<PlainChannel>> Open(const std::string& endpoint) {
    auto channel = std::unique_ptr<PlainChannel>(new PlainChannel());
    try {
      zmq::socket_t& s = channel->socket_;
      s.set(zmq::sockopt::linger, 0);
      s.set(zmq::sockopt::immediate, 1);
      s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(channel->limits_.max_message_bytes));
      s.set(zmq::sockopt::reconnect_ivl, 100);
      s.set(zmq::sockopt::reconnect_ivl_max, 2000);
      s.connect(endpoint);
    } catch (const zmq::error_t& e) {
      return InvalidArgumentError("cannot connect to " + endpoint + ": " + e.what() +
                                  " (expected e.g. tcp://127.0.0.1:5555)");
    }
    return channel;
  }
  StatusOr<std::unique_ptr<transport::DecodedEnvelope>> Call(transport::EnvelopeBuilder& message,
                                                             int timeout_ms) override {
    const uint64_t id = message.envelope().getRequestId();
    const int64_t deadline = SteadyMs() + timeout_ms;
    kj::Array<capnp::word> words = message.Encode();
    zmq::const_buffer bytes(words.begin(), words.size() * sizeof(capnp::word));
    while (true) {
      try {
        if (socket_.send(bytes, zmq::send_flags::dontwait)) break;
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) return UnavailableError(std::string("send failed: ") + e.what());
      }
      if (SteadyMs() >= deadline) return DeadlineExceededError("no connection to the coordinator");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    while (true) {
      const int64_t left = deadline - SteadyMs();
      if (left <= 0) return DeadlineExceededError("no reply within " + std::to_string(timeout_ms) + " ms");
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      try {
        if (zmq::poll(&item, 1, std::chrono::milliseconds(left)) <= 0) continue;
        zmq::message_t part;
        if (!socket_.recv(part, zmq::recv_flags::dontwait)) continue;
        if (part.more()) continue;  // not ours: our peer sends single parts
        auto decoded = transport::DecodeEnvelope(part.data(), part.size(), limits_);
        if (decoded.ok() && (*decoded)->envelope().getRequestId() == id) return std::move(decoded).value();
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) return UnavailableError(std::string("receive failed: ") + e.what());
      }
    }
  }

 private:
  PlainChannel() : socket_(context_, zmq::socket_type::dealer) {}
  transport::DecodeLimits limits_;
  zmq::context_t context_;
  zmq::socket_t socket_;
};

}  // namespace

StatusOr<std::unique_ptr<TrainerReporter>> TrainerReporter::Connect(const std::string& coordinator_endpoint,
                                                                    const std::string& keys_dir, int timeout_ms) {
  if (coordinator_endpoint.empty()) {
    return InvalidArgumentError("trainer reporter: empty coordinator endpoint (expected e.g. tcp://127.0.0.1:5555)");
  }
  if (timeout_ms < 1) return InvalidArgumentError("trainer reporter: timeout_ms must be >= 1");
  std::unique_ptr<Channel> channel;
  if (keys_dir.empty()) {
    GLM_ASSIGN_OR_RETURN(channel, PlainChannel::Open(coordinator_endpoint));
  } else {
    GLM_ASSIGN_OR_RETURN(channel, CurveChannel::Open(coordinator_endpoint, keys_dir));
  }
  return std::unique_ptr<TrainerReporter>(
      new TrainerReporter(std::move(channel), coordinator_endpoint, timeout_ms));
}

TrainerReporter::TrainerReporter(std::unique_ptr<Channel> channel, std::string endpoint, int timeout_ms)
    : channel_(std::move(channel)), endpoint_(std::move(endpoint)), timeout_ms_(timeout_ms) {}

TrainerReporter::~TrainerReporter() = default;

Status TrainerReporter::Report(const TrainerReport& report) {
  GLM_RETURN_IF_ERROR(report.Validate());
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = SteadyMs();
  if (now < retry_after_ms_) {
    ++num_failed_;
    return UnavailableError("coordinator " + endpoint_ + " did not answer recently; retrying in " +
                            std::to_string(retry_after_ms_ - now) + " ms");
  }
  transport::EnvelopeBuilder b(next_request_id_++);
  auto consumed = b.envelope().initConsumed();
  consumed.setStep(report.step - 1);
  TrainerReportToWire(report, consumed.initReport());
  auto reply = channel_->Call(b, timeout_ms_);
  if (!reply.ok()) {
    ++num_failed_;
    backoff_ms_ = backoff_ms_ == 0 ? 250 : std::min<int64_t>(5000, backoff_ms_ * 2);
    retry_after_ms_ = SteadyMs() + backoff_ms_;
    const std::string why = "coordinator " + endpoint_ + ": " + reply.status().message();
    return reply.status().code() == StatusCode::kDeadlineExceeded ? DeadlineExceededError(why)
                                                                   : UnavailableError(why);
  }
  backoff_ms_ = 0;
  retry_after_ms_ = 0;
  auto e = (*reply)->envelope();
  if (!e.isAck()) {
    ++num_failed_;
    return InternalError("coordinator " + endpoint_ + " answered a trainer report with " +
                         transport::EnvelopeKindName(e.which()));
  }
  if (!e.getAck().getOk()) {
    ++num_failed_;
    return InvalidArgumentError("coordinator refused the trainer report: " +
                                std::string(e.getAck().getDetail().cStr()));
  }
  ++num_sent_;
  return Status::Ok();
}

StatusOr<TrainerSyncReply> TrainerReporter::Sync(const TrainerSyncRequest& request, int timeout_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  transport::EnvelopeBuilder b(next_request_id_++);
  auto t = b.envelope().initTrainerSync();
  switch (request.kind) {
    case TrainerSyncRequest::kJoin: t.setKind(wire::TrainerSync::Kind::JOIN); break;
    case TrainerSyncRequest::kBoundary: t.setKind(wire::TrainerSync::Kind::BOUNDARY); break;
    case TrainerSyncRequest::kFailed: t.setKind(wire::TrainerSync::Kind::FAILED); break;
    case TrainerSyncRequest::kHeartbeat: t.setKind(wire::TrainerSync::Kind::HEARTBEAT); break;
  }
  t.setTrainerId(request.trainer_id);
  t.setGeneration(request.generation);
  t.setRank(request.rank);
  t.setWorldSize(request.world_size);
  t.setStep(request.step);
  t.setLeaving(request.leaving);
  auto reply = channel_->Call(b, timeout_ms > 0 ? timeout_ms : timeout_ms_);
  if (!reply.ok()) {
    const std::string why = "coordinator " + endpoint_ + ": " + reply.status().message();
    return reply.status().code() == StatusCode::kDeadlineExceeded ? DeadlineExceededError(why)
                                                                   : UnavailableError(why);
  }
  auto e = (*reply)->envelope();
  if (!e.isTrainerSyncReply()) {
    return InternalError("coordinator " + endpoint_ + " answered a trainer sync with " +
                         transport::EnvelopeKindName(e.which()) + " (an older coordinator?)");
  }
  auto r = e.getTrainerSyncReply();
  TrainerSyncReply out;
  switch (r.getAction()) {
    case wire::TrainerSyncReply::Action::CONTINUE: out.action = TrainerSyncReply::kContinue; break;
    case wire::TrainerSyncReply::Action::SWITCH: out.action = TrainerSyncReply::kSwitch; break;
    case wire::TrainerSyncReply::Action::WAIT: out.action = TrainerSyncReply::kWait; break;
    case wire::TrainerSyncReply::Action::STOP: out.action = TrainerSyncReply::kStop; break;
  }
  out.generation = r.getGeneration();
  out.rank = r.getRank();
  out.world_size = r.getWorldSize();
  out.checkpoint = r.getCheckpoint();
  out.retry_ms = r.getRetryAfterMs();
  out.reason = r.getReason().cStr();
  out.store_host = r.getStoreHost().cStr();
  out.store_port = r.getStorePort();
  if (out.action == TrainerSyncReply::kSwitch &&
      (out.world_size < 1 || out.rank < 0 || out.rank >= out.world_size || out.generation < 0)) {
    return InternalError("coordinator " + endpoint_ + " sent an impossible membership: rank " +
                         std::to_string(out.rank) + " of " + std::to_string(out.world_size));
  }
  return out;
}

StatusOr<int64_t> TrainerReporter::RequestCheckpoint(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  transport::EnvelopeBuilder b(next_request_id_++);
  b.envelope().initCheckpointRequest().setReason(reason);
  auto reply = channel_->Call(b, timeout_ms_);
  if (!reply.ok()) {
    return UnavailableError("coordinator " + endpoint_ + ": " + reply.status().message());
  }
  auto e = (*reply)->envelope();
  if (!e.isCheckpointReply()) {
    return InternalError("coordinator " + endpoint_ + " answered a checkpoint request with " +
                         transport::EnvelopeKindName(e.which()));
  }
  auto r = e.getCheckpointReply();
  if (!r.getAccepted()) return FailedPreconditionError(r.getDetail().cStr());
  return r.getStep();
}

uint64_t TrainerReporter::num_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return num_sent_;
}

uint64_t TrainerReporter::num_failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return num_failed_;
}

}  // namespace glm::coordinator
