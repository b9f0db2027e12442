#include "worker/agent.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "common/options.h"
#include "transport/mailbox.h"
#include "transport/socket.h"

namespace glm::worker {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

JobSpec JobFromWire(wire::JobSpec::Reader j) {
  JobSpec job;
  job.job_id = j.getJobId().cStr();
  job.seed = j.getSeed();
  job.output_dir = j.getOutputDir().cStr();
  job.executor = j.getExecutor().cStr();
  for (auto p : j.getParams()) job.params[p.getKey().cStr()] = p.getValue().cStr();
  return job;
}

struct Shared {
  zmq::context_t* context;
  transport::ClientKeys keys;
  std::string endpoint;
  std::string node_id;
  JobSpec job;
  const ExecutorRegistry* registry;
  int call_timeout_ms;
  transport::SocketOptions socket_options;
  std::atomic<bool> cancel{false};
};

// An actor that leases tasks of its kinds and runs them with executors.
class PipelineActor : public transport::Actor<int> {
 public:
  PipelineActor(std::string id, std::vector<std::string> task_kinds, Shared* shared)
      : Actor<int>(std::move(id), std::chrono::milliseconds(2)),
        task_kinds_(std::move(task_kinds)),
        shared_(shared) {}
  ~PipelineActor() override { Join(); }

  void Drain() { draining_ = true; }
  bool finished() const { return finished_.load(); }
  bool crashed() const { return crashed_.load(); }
  std::string crash_reason() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return crash_reason_;
  }
  uint64_t current_lease() const { return current_lease_.load(); }
  bool idle() const { return current_lease_.load() == 0; }

 protected:
  void OnStart() override {
    auto socket = transport::ClientSocket::Connect(shared_->context, shared_->endpoint, shared_->keys,
                                                   shared_->socket_options);
    if (!socket.ok()) {
      Crash(socket.status().ToString());
      return;
    }
    socket_ = std::move(socket).value();
  }

  void Handle(int) override {}

  void OnIdle() override {
    if (crashed_ || draining_) {
      finished_ = true;
      Stop();
      return;
    }
    int64_t now = NowMs();
    if (now < next_try_ms_) return;
    transport::EnvelopeBuilder request(++request_id_);
    auto l = request.envelope().initLeaseRequest();
    l.setNodeId(shared_->node_id);
    l.setActorId(id());
    auto kinds = l.initTaskKinds(static_cast<unsigned>(task_kinds_.size()));
    for (size_t i = 0; i < task_kinds_.size(); ++i) kinds.set(i, task_kinds_[i]);
    auto reply = socket_->Call(request, shared_->call_timeout_ms);
    if (!reply.ok() || !(*reply)->envelope().isLeaseReply()) {
      backoff_ms_ = std::min<int64_t>(2000, backoff_ms_ * 2);
      next_try_ms_ = NowMs() + backoff_ms_;
      return;
    }
    backoff_ms_ = 50;
    auto lr = (*reply)->envelope().getLeaseReply();
    switch (lr.which()) {
      case wire::LeaseReply::TASK:
        RunTask(TaskSpecFromWire(lr.getTask()));
        return;
      case wire::LeaseReply::RETRY_AFTER_MS:
        next_try_ms_ = NowMs() + lr.getRetryAfterMs();
        return;
      case wire::LeaseReply::JOB_DONE:
        next_try_ms_ = NowMs() + 1000;
        return;
      case wire::LeaseReply::REREGISTER:
        next_try_ms_ = NowMs() + 200;
        return;
    }
  }

  void OnStop() override { socket_.reset(); }

 private:
  void Crash(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    crash_reason_ = reason;
    crashed_ = true;
  }

  void RunTask(const TaskSpec& task) {
    current_lease_ = task.lease_id;
    ExecutorContext context(shared_->node_id, shared_->job, &shared_->cancel);
    StatusOr<TaskResult> result = InternalError("not run");
    try {
      auto& executor = executors_[task.kind];
      if (!executor) {
        auto created = shared_->registry->Create(shared_->job.executor, task.kind, context);
        if (created.ok()) executor = std::move(created).value();
        else result = created.status();
      }
      if (executor) result = executor->Run(task, context);
    } catch (const std::exception& e) {
      // A crashed actor body: report the task, then the actor.
      result = InternalError(std::string("executor threw: ") + e.what());
      Crash(result.status().message());
    }
    transport::EnvelopeBuilder report(++request_id_);
    if (result.ok()) {
      auto d = report.envelope().initTaskDone();
      d.setNodeId(shared_->node_id);
      d.setTaskId(task.id);
      d.setLeaseId(task.lease_id);
      d.setOutputCount(result->output_count);
      d.setOutputBytes(result->output_bytes);
    } else {
      bool abandoned = shared_->cancel.load() && result.status().code() == StatusCode::kAborted;
      auto f = report.envelope().initTaskFailed();
      f.setNodeId(shared_->node_id);
      f.setTaskId(task.id);
      f.setLeaseId(task.lease_id);
      f.setReason(result.status().ToString());
      StatusCode code = result.status().code();
      f.setRetryable(result.status().IsRetryable() || code == StatusCode::kAborted || code == StatusCode::kInternal);
      f.setAbandoned(abandoned);
    }
    // Report until acknowledged or the lease would have expired anyway; a
    // lost report only means the task runs again (same keys, same bytes).
    int64_t give_up = NowMs() + std::max<int64_t>(task.lease_ms, 1000);
    while (NowMs() < give_up) {
      auto ack = socket_->Call(report, shared_->call_timeout_ms);
      if (ack.ok()) break;
      if (shared_->cancel.load()) break;
    }
    current_lease_ = 0;
  }

  std::vector<std::string> task_kinds_;
  Shared* shared_;
  std::unique_ptr<transport::ClientSocket> socket_;
  std::map<std::string, std::unique_ptr<TaskExecutor>> executors_;
  uint64_t request_id_ = 0;
  int64_t next_try_ms_ = 0;
  int64_t backoff_ms_ = 50;
  std::atomic<bool> draining_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> crashed_{false};
  std::atomic<uint64_t> current_lease_{0};
  mutable std::mutex mutex_;
  std::string crash_reason_;
};

std::string DefaultNodeId() {
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  std::ostringstream id;
  id << host << "-" << getpid() << "-" << std::hex << (rd() & 0xffff);
  return id.str();
}

}  // namespace

Status AgentOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireNonEmpty("coordinator", coordinator));
  GLM_RETURN_IF_ERROR(RequireNonEmpty("keys", keys_dir));
  GLM_RETURN_IF_ERROR(RequireAtLeast("call-timeout-ms", call_timeout_ms, 10));
  GLM_RETURN_IF_ERROR(RequireAtLeast("drain-timeout-ms", drain_timeout_ms, 0));
  GLM_RETURN_IF_ERROR(RequireInRange("busy-poll-us", busy_poll_us, 0, 1000000));
  auto r = ParseResources(resources);
  if (!r.ok()) return r.status();
  return Status::Ok();
}

StatusOr<ParsedResources> ParseResources(const std::string& text) {
  ParsedResources r;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    try {
      size_t used = 0;
      double v = std::stod(value, &used);
      if (used != value.size() || v < 0) throw std::invalid_argument(value);
      if (key == "cpu") r.cpu = v;
      else if (key == "gpu") r.gpu = v;
      else if (key == "memory") r.memory_mb = static_cast<uint64_t>(v);
      else throw std::invalid_argument(key);
    } catch (const std::exception&) {
      return InvalidArgumentError(DescribeOption("resources") + ": bad item '" + item +
                                  "'; expected cpu=N,gpu=N,memory=MiB with non-negative numbers");
    }
  }
  return r;
}

NodeAgent::NodeAgent(AgentOptions options, const ExecutorRegistry* registry)
    : options_(std::move(options)), registry_(registry) {}

Status NodeAgent::Run(const std::atomic<bool>* drain) {
  GLM_RETURN_IF_ERROR(options_.Validate());
  GLM_ASSIGN_OR_RETURN(ParsedResources resources, ParseResources(options_.resources));
  GLM_ASSIGN_OR_RETURN(transport::ClientKeys keys, transport::LoadClientKeys(options_.keys_dir));
  zmq::context_t context;
  Shared shared;
  shared.context = &context;
  shared.keys = keys;
  shared.endpoint = options_.coordinator;
  shared.node_id = options_.node_id.empty() ? DefaultNodeId() : options_.node_id;
  shared.registry = registry_;
  shared.call_timeout_ms = options_.call_timeout_ms;
  shared.socket_options.busy_poll.spin_us = options_.busy_poll_us;
  GLM_ASSIGN_OR_RETURN(auto socket, transport::ClientSocket::Connect(&context, options_.coordinator, keys,
                                                                     shared.socket_options));
  std::map<std::string, std::unique_ptr<PipelineActor>> actors;
  std::vector<std::unique_ptr<PipelineActor>> retiring;
  uint64_t request_id = 0;
  bool registered = false;
  bool job_known = false;
  int64_t heartbeat_ms = 1000;
  int64_t next_heartbeat = 0;
  int64_t register_backoff = 100;
  int64_t drain_deadline = -1;
  bool job_done = false;

  auto reconcile = [&](capnp::List<wire::ActorAssignment>::Reader wanted) {
    std::set<std::string> ids;
    for (auto a : wanted) {
      std::string id = a.getActorId().cStr();
      ids.insert(id);
      if (actors.count(id) || drain_deadline >= 0) continue;
      if (std::string(a.getKind().cStr()) != "pipeline") {
        spdlog::warn("no actor body for kind '{}' (actor {}); skipped", a.getKind().cStr(), id);
        continue;
      }
      std::vector<std::string> kinds;
      for (auto k : a.getTaskKinds()) kinds.emplace_back(k.cStr());
      auto actor = std::make_unique<PipelineActor>(id, kinds, &shared);
      actor->Start();
      spdlog::info("started actor {}", id);
      actors[id] = std::move(actor);
    }
    for (auto it = actors.begin(); it != actors.end();) {
      if (ids.count(it->first)) {
        ++it;
        continue;
      }
      spdlog::info("stopping actor {} (no longer placed here)", it->first);
      it->second->Drain();
      retiring.push_back(std::move(it->second));
      it = actors.erase(it);
    }
  };

  auto do_register = [&]() -> bool {
    transport::EnvelopeBuilder b(++request_id);
    auto r = b.envelope().initRegister();
    r.setNodeId(shared.node_id);
    auto res = r.initResources();
    res.setCpu(resources.cpu);
    res.setGpu(resources.gpu);
    res.setMemoryMb(resources.memory_mb);
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    r.setHostname(host);
    r.setPid(static_cast<uint32_t>(getpid()));
    auto reply = socket->Call(b, options_.call_timeout_ms);
    if (!reply.ok() || !(*reply)->envelope().isRegisterAck()) return false;
    auto ack = (*reply)->envelope().getRegisterAck();
    if (!ack.getAccepted()) {
      spdlog::error("coordinator refused registration: {}", ack.getReason().cStr());
      return false;
    }
    if (!job_known) {
      shared.job = JobFromWire(ack.getJob());
      job_known = true;
    }
    heartbeat_ms = std::max<uint32_t>(10, ack.getHeartbeatIntervalMs());
    spdlog::info("registered as {} with {} ({} actors)", shared.node_id, options_.coordinator,
                 ack.getActors().size());
    reconcile(ack.getActors());
    return true;
  };

  while (true) {
    int64_t now = NowMs();
    // Reap crashed and retired actors.
    for (auto it = actors.begin(); it != actors.end();) {
      if (it->second->crashed()) {
        std::string reason = it->second->crash_reason();
        it->second->Join();
        spdlog::warn("actor {} crashed: {}", it->first, reason);
        transport::EnvelopeBuilder b(++request_id);
        auto f = b.envelope().initActorFailed();
        f.setNodeId(shared.node_id);
        f.setActorId(it->first);
        f.setReason(reason);
        socket->Call(b, options_.call_timeout_ms).status().IgnoreError();
        it = actors.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = retiring.begin(); it != retiring.end();) {
      if ((*it)->finished()) it = retiring.erase(it);
      else ++it;
    }
    phase_ = drain_deadline >= 0 || (drain && drain->load()) ? kDraining : registered ? kRegistered : kRegistering;
    if (drain && drain->load() && drain_deadline < 0) {
      spdlog::info("draining: finishing leased work (up to {} ms), leasing nothing new", options_.drain_timeout_ms);
      drain_deadline = now + options_.drain_timeout_ms;
      for (auto& [id, a] : actors) a->Drain();
      next_heartbeat = 0;
    }
    if (drain_deadline >= 0) {
      bool all_idle = true;
      for (auto& [id, a] : actors) all_idle = all_idle && a->idle();
      if (now >= drain_deadline && !shared.cancel.load()) {
        spdlog::warn("drain timeout: giving back unfinished tasks");
        shared.cancel = true;
      }
      if (all_idle || !registered) {
        for (auto& [id, a] : actors) a->Join();
        actors.clear();
        retiring.clear();
        if (registered) {
          transport::EnvelopeBuilder b(++request_id);
          auto h = b.envelope().initHeartbeat();
          h.setNodeId(shared.node_id);
          h.setDraining(true);
          socket->Call(b, options_.call_timeout_ms).status().IgnoreError();
        }
        spdlog::info("drained; leaving");
        phase_ = kStopped;
        return Status::Ok();
      }
    }
    if (!registered) {
      if (drain_deadline >= 0) continue;
      registered = do_register();
      if (!registered) {
        std::this_thread::sleep_for(std::chrono::milliseconds(register_backoff));
        register_backoff = std::min<int64_t>(2000, register_backoff * 2);
        continue;
      }
      register_backoff = 100;
      phase_ = kRegistered;
      next_heartbeat = NowMs() + heartbeat_ms;
    }
    if (now >= next_heartbeat) {
      transport::EnvelopeBuilder b(++request_id);
      auto h = b.envelope().initHeartbeat();
      h.setNodeId(shared.node_id);
      h.setDraining(drain_deadline >= 0);
      std::vector<uint64_t> held;
      for (auto& [id, a] : actors) {
        if (a->current_lease()) held.push_back(a->current_lease());
      }
      for (auto& a : retiring) {
        if (a->current_lease()) held.push_back(a->current_lease());
      }
      auto list = h.initHeldLeases(static_cast<unsigned>(held.size()));
      for (size_t i = 0; i < held.size(); ++i) list.set(i, held[i]);
      auto reply = socket->Call(b, options_.call_timeout_ms);
      next_heartbeat = NowMs() + heartbeat_ms;
      if (reply.ok() && (*reply)->envelope().isHeartbeatAck()) {
        auto ack = (*reply)->envelope().getHeartbeatAck();
        if (ack.getReregister()) {
          spdlog::info("coordinator does not know this node (restarted?): registering again");
          registered = do_register();
        } else {
          if (drain_deadline < 0) reconcile(ack.getActors());
          job_done = ack.getJobDone();
        }
      } else if (!reply.ok()) {
        spdlog::debug("heartbeat: {}", reply.status().message());
      }
    }
    if (job_done && options_.exit_when_done && drain_deadline < 0) {
      bool all_idle = true;
      for (auto& [id, a] : actors) all_idle = all_idle && a->idle();
      if (all_idle) {
        for (auto& [id, a] : actors) a->Drain();
        for (auto& [id, a] : actors) a->Join();
        spdlog::info("job done; leaving");
        phase_ = kStopped;
        return Status::Ok();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool NodeAgent::Ready(std::string* reason) const {
  const int phase = phase_.load();
  if (phase == kRegistered) return true;
  if (reason != nullptr) {
    *reason = phase == kRegistering ? "registering with the coordinator at " + options_.coordinator
              : phase == kDraining  ? "draining"
                                    : "stopped";
  }
  return false;
}

}  // namespace glm::worker
