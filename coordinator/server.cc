#include "coordinator/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace glm::coordinator {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void FillActors(const std::vector<ActorAssignment>& actors,
                capnp::List<wire::ActorAssignment>::Builder out) {
  for (size_t i = 0; i < actors.size(); ++i) {
    out[i].setActorId(actors[i].actor_id);
    out[i].setKind(actors[i].kind);
    auto kinds = out[i].initTaskKinds(static_cast<unsigned>(actors[i].task_kinds.size()));
    for (size_t k = 0; k < actors[i].task_kinds.size(); ++k) kinds.set(k, actors[i].task_kinds[k]);
  }
}

std::vector<std::string> ToStrings(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> out;
  for (auto t : list) out.emplace_back(t.cStr());
  return out;
}

}  // namespace

void FillJobSpec(const JobOptions& job, wire::JobSpec::Builder spec) {
  spec.setJobId(job.job_id);
  spec.setSeed(job.seed);
  spec.setOutputDir(job.output_dir);
  spec.setExecutor(job.executor);
  auto params = job.ParamMap();
  auto list = spec.initParams(static_cast<unsigned>(params.size()));
  unsigned i = 0;
  for (const auto& [k, v] : params) {
    list[i].setKey(k);
    list[i].setValue(v);
    ++i;
  }
}

CoordinatorServer::CoordinatorServer(Coordinator* coordinator, transport::ServerSocket* socket,
                                     ServerOptions options)
    : coordinator_(coordinator), socket_(socket), options_(options) {}

void CoordinatorServer::Run(const std::atomic<bool>* stop) {
  int64_t next_tick = SteadyMs();
  int64_t next_publish = next_tick;
  while (!stop->load()) {
    int64_t now = SteadyMs();
    if (now >= next_tick) {
      coordinator_->Tick();
      next_tick = now + options_.tick_ms;
    }
    if (options_.publish && now >= next_publish) {
      options_.publish(*coordinator_, StatusWithTransport());
      const int64_t took = SteadyMs() - now;
      next_publish = now + took + std::max<int64_t>({1, options_.publish_interval_ms, 20 * took});
    }
    auto in = socket_->Receive(static_cast<int>(std::max<int64_t>(1, next_tick - now)));
    if (!in) continue;
    // Drain a burst before the next tick check.
    do {
      try {
        Dispatch(in->peer, in->message->envelope());
      } catch (const kj::Exception& e) {
        // A field read past the checked structure: drop, never fatal.
        ++num_unexpected_;
        spdlog::warn("dropped a message from peer: {}", e.getDescription().cStr());
      }
      in = socket_->Receive(0);
    } while (in && !stop->load());
  }
}

nlohmann::json CoordinatorServer::StatusWithTransport() const {
  nlohmann::json j = coordinator_->StatusJson();
  if (options_.trainer_group != nullptr) j["trainer_group"] = options_.trainer_group->StatusJson();
  j["transport"] = {{"received", socket_->num_received()},
                    {"dropped_malformed", socket_->num_dropped()},
                    {"dropped_unexpected", num_unexpected_.load()},
                    {"refused_peers", socket_->num_refused()}};
  return j;
}

void CoordinatorServer::Dispatch(const std::string& peer, wire::Envelope::Reader e) {
  transport::EnvelopeBuilder reply(e.getRequestId());
  auto out = reply.envelope();
  switch (e.which()) {
    case wire::Envelope::REGISTER: {
      auto r = e.getRegister();
      auto res = r.getResources();
      Resources resources{res.getCpu(), res.getGpu(), res.getMemoryMb()};
      RegisterResult result =
          coordinator_->Register(r.getNodeId().cStr(), resources, r.getHostname().cStr(), r.getPid());
      auto ack = out.initRegisterAck();
      ack.setAccepted(result.accepted);
      ack.setReason(result.reason);
      ack.setHeartbeatIntervalMs(static_cast<uint32_t>(coordinator_->options().heartbeat_interval_ms));
      FillJobSpec(coordinator_->job(), ack.initJob());
      FillActors(result.actors, ack.initActors(static_cast<unsigned>(result.actors.size())));
      break;
    }
    case wire::Envelope::HEARTBEAT: {
      auto h = e.getHeartbeat();
      std::vector<uint64_t> held;
      for (uint64_t lease : h.getHeldLeases()) held.push_back(lease);
      HeartbeatResult result = coordinator_->Heartbeat(h.getNodeId().cStr(), held, h.getDraining());
      auto ack = out.initHeartbeatAck();
      ack.setReregister(result.reregister);
      ack.setJobDone(result.job_done);
      FillActors(result.actors, ack.initActors(static_cast<unsigned>(result.actors.size())));
      break;
    }
    case wire::Envelope::LEASE_REQUEST: {
      auto l = e.getLeaseRequest();
      LeaseResult result =
          coordinator_->Lease(l.getNodeId().cStr(), l.getActorId().cStr(), ToStrings(l.getTaskKinds()));
      auto lr = out.initLeaseReply();
      switch (result.kind) {
        case LeaseResult::kTask: {
          TaskSpec spec = result.task;
          spec.lease_ms = static_cast<uint32_t>(coordinator_->options().lease_ms);
          TaskSpecToWire(spec, lr.initTask());
          break;
        }
        case LeaseResult::kRetryAfter:
          lr.setRetryAfterMs(static_cast<uint32_t>(result.retry_after_ms));
          break;
        case LeaseResult::kJobDone:
          lr.setJobDone();
          break;
        case LeaseResult::kReregister:
          lr.setReregister();
          break;
      }
      break;
    }
    case wire::Envelope::TASK_DONE: {
      auto d = e.getTaskDone();
      coordinator_->TaskDone(d.getNodeId().cStr(), d.getTaskId().cStr(), d.getLeaseId(), d.getOutputCount(),
                             d.getOutputBytes());
      out.initAck().setOk(true);
      break;
    }
    case wire::Envelope::TASK_FAILED: {
      auto f = e.getTaskFailed();
      coordinator_->TaskFailed(f.getNodeId().cStr(), f.getTaskId().cStr(), f.getLeaseId(), f.getReason().cStr(),
                               f.getRetryable(), f.getAbandoned());
      out.initAck().setOk(true);
      break;
    }
    case wire::Envelope::ACTOR_FAILED: {
      auto f = e.getActorFailed();
      coordinator_->ActorFailed(f.getNodeId().cStr(), f.getActorId().cStr(), f.getReason().cStr());
      out.initAck().setOk(true);
      break;
    }
    case wire::Envelope::CONSUMED: {
      auto c = e.getConsumed();
      auto ack = out.initAck();
      if (c.hasReport()) {
        // A trainer's report: Consumed(report.step - 1) and the report kept.
        Status s = coordinator_->ReportTrainer(TrainerReportFromWire(c.getReport()));
        ack.setOk(s.ok());
        if (!s.ok()) ack.setDetail(s.message());
      } else {
        coordinator_->Consumed(c.getStep());
        ack.setOk(true);
      }
      break;
    }
    case wire::Envelope::TRAINER_SYNC: {
      auto t = e.getTrainerSync();
      TrainerSyncRequest request;
      switch (t.getKind()) {
        case wire::TrainerSync::Kind::JOIN: request.kind = TrainerSyncRequest::kJoin; break;
        case wire::TrainerSync::Kind::BOUNDARY: request.kind = TrainerSyncRequest::kBoundary; break;
        case wire::TrainerSync::Kind::FAILED: request.kind = TrainerSyncRequest::kFailed; break;
        case wire::TrainerSync::Kind::HEARTBEAT: request.kind = TrainerSyncRequest::kHeartbeat; break;
      }
      request.trainer_id = t.getTrainerId().cStr();
      request.generation = t.getGeneration();
      request.rank = t.getRank();
      request.world_size = t.getWorldSize();
      request.step = t.getStep();
      request.leaving = t.getLeaving();
      TrainerSyncReply result;
      if (request.trainer_id.empty() || request.trainer_id.size() > 200 || request.step < 0 ||
          request.world_size < 1 || request.rank < 0 ||
          (request.kind != TrainerSyncRequest::kJoin && request.rank >= request.world_size)) {
        ++num_unexpected_;
        result.action = TrainerSyncReply::kStop;
        result.reason = "malformed trainer sync (empty or long trainer id, negative step, rank outside the world)";
      } else if (options_.trainer_group == nullptr) {
        result.action = TrainerSyncReply::kStop;
        result.reason = "this coordinator runs no trainer group";
      } else {
        result = options_.trainer_group->Handle(request);
      }
      auto r = out.initTrainerSyncReply();
      switch (result.action) {
        case TrainerSyncReply::kContinue: r.setAction(wire::TrainerSyncReply::Action::CONTINUE); break;
        case TrainerSyncReply::kSwitch: r.setAction(wire::TrainerSyncReply::Action::SWITCH); break;
        case TrainerSyncReply::kWait: r.setAction(wire::TrainerSyncReply::Action::WAIT); break;
        case TrainerSyncReply::kStop: r.setAction(wire::TrainerSyncReply::Action::STOP); break;
      }
      r.setGeneration(result.generation);
      r.setRank(result.rank);
      r.setWorldSize(result.world_size);
      r.setCheckpoint(result.checkpoint);
      r.setRetryAfterMs(static_cast<uint32_t>(std::max<int64_t>(0, result.retry_ms)));
      r.setReason(result.reason);
      r.setStoreHost(result.store_host);
      r.setStorePort(result.store_port);
      break;
    }
    case wire::Envelope::CHECKPOINT_REQUEST: {
      auto r = out.initCheckpointReply();
      if (options_.trainer_group == nullptr) {
        r.setAccepted(false);
        r.setDetail("this coordinator runs no trainer group");
      } else {
        StatusOr<int64_t> at = options_.trainer_group->RequestCheckpoint();
        r.setAccepted(at.ok());
        r.setStep(at.ok() ? *at : -1);
        if (!at.ok()) r.setDetail(at.status().message());
        if (at.ok()) {
          spdlog::info("checkpoint requested ({}): at step {}", e.getCheckpointRequest().getReason().cStr(), *at);
        }
      }
      break;
    }
    case wire::Envelope::STATUS_REQUEST:
      out.initStatusReply().setJson(StatusWithTransport().dump());
      break;
    case wire::Envelope::PING: {
      auto pong = out.initPong();
      pong.setId(e.getPing().getId());
      pong.setPayload(e.getPing().getPayload());
      break;
    }
    default:
      ++num_unexpected_;
      spdlog::debug("dropped an unexpected {} message", transport::EnvelopeKindName(e.which()));
      return;
  }
  socket_->Send(peer, reply).IgnoreError();
}

}  // namespace glm::coordinator
