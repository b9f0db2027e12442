#include "coordinator/coordinator.h"

#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "common/options.h"

namespace glm::coordinator {
namespace {

constexpr char kJobKey[] = "meta/job";
constexpr char kPipelineKey[] = "meta/pipeline";
constexpr char kEpochKey[] = "meta/epoch";
// The checkpoint manifest: one key per checkpoint a trainer reported,
// "meta/checkpoint/<step, 20 digits>" -> {"step", "duration_ms", "trainer",
// "unix_ms"} (docs/runtime.md), the newest kCheckpointsKept kept.
constexpr char kCheckpointPrefix[] = "meta/checkpoint/";
constexpr size_t kCheckpointsKept = 100;

std::string CheckpointKey(int64_t step) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020lld", static_cast<long long>(step));
  return std::string(kCheckpointPrefix) + digits;
}
const char* const kObjectiveNames[] = {"blank", "sentence", "document"};

std::string TokenizeTaskId(uint32_t shard) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "tokenize/%06u", shard);
  return buf;
}

std::string CorruptTaskId(int objective, uint32_t epoch, uint64_t begin) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "corrupt/%s/%04u/%010" PRIu64, kObjectiveNames[objective], epoch, begin);
  return buf;
}

constexpr const char* kFinalizeTaskId = "finalize/0";

std::string NoopTaskId(int64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "noop/%09" PRId64, i);
  return buf;
}

}  // namespace

Status CoordinatorOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireAtLeast("heartbeat-interval-ms", heartbeat_interval_ms, 10));
  GLM_RETURN_IF_ERROR(RequireAtLeast("node-timeout-ms", node_timeout_ms, 2 * heartbeat_interval_ms));
  GLM_RETURN_IF_ERROR(RequireAtLeast("lease-ms", lease_ms, 2 * heartbeat_interval_ms));
  GLM_RETURN_IF_ERROR(RequireAtLeast("retry-backoff-base-ms", retry_backoff_base_ms, 0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("retry-backoff-max-ms", retry_backoff_max_ms, retry_backoff_base_ms));
  GLM_RETURN_IF_ERROR(RequireAtLeast("max-attempts", max_attempts, 1));
  GLM_RETURN_IF_ERROR(RequireAtLeast("actor-max-restarts", actor_max_restarts, 0));
  GLM_RETURN_IF_ERROR(RequireAtLeast("idle-retry-ms", idle_retry_ms, 1));
  return Status::Ok();
}

Coordinator::Coordinator(std::unique_ptr<rocksdb::DB> db, JobOptions job, CoordinatorOptions options,
                         Clock* clock)
    : db_(std::move(db)), job_(std::move(job)), options_(options), clock_(clock) {
  if (!options_.run_dir.empty()) run_metrics_ = std::make_unique<RunMetricsWriter>(options_.run_dir);
}

Coordinator::~Coordinator() = default;

StatusOr<std::unique_ptr<Coordinator>> Coordinator::Open(const std::string& state_dir, const JobOptions& job,
                                                         const CoordinatorOptions& options, Clock* clock) {
  GLM_RETURN_IF_ERROR(options.Validate());
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, state_dir, &raw);
  if (!s.ok()) {
    return FailedPreconditionError("cannot open the coordinator state in " + state_dir + ": " + s.ToString() +
                                   (s.IsIOError() ? " (is another coordinator using it?)" : ""));
  }
  std::unique_ptr<Coordinator> c(new Coordinator(std::unique_ptr<rocksdb::DB>(raw), job, options, clock));
  c->started_ms_ = clock->NowMs();
  std::string stored;
  if (c->db_->Get(rocksdb::ReadOptions(), kJobKey, &stored).ok()) {
    nlohmann::json j = nlohmann::json::parse(stored, nullptr, false);
    if (j.is_discarded()) return DataLossError("coordinator state " + state_dir + ": stored job is not JSON");
    GLM_ASSIGN_OR_RETURN(c->job_, JobOptions::FromJson(j));
    GLM_RETURN_IF_ERROR(c->Load());
    spdlog::info("resumed job '{}' from {}: phase {}, {} tasks", c->job_.job_id, state_dir, c->phase_,
                 c->tasks_.size());
  } else {
    GLM_RETURN_IF_ERROR(job.Validate());
    if (c->job_.output_dir.empty()) c->job_.output_dir = state_dir + "/output";
    std::vector<std::string> shards;
    if (job.noop_tasks == 0) {
      GLM_ASSIGN_OR_RETURN(shards, ListCorpusFiles(job.corpus));
    }
    GLM_RETURN_IF_ERROR(c->CreateJob(shards));
    spdlog::info("started job '{}': {} shards, objectives {}, {} epoch(s)", c->job_.job_id, shards.size(),
                 c->job_.objectives, c->job_.epochs);
  }
  // A new lease epoch per process start: lease ids never repeat across restarts.
  std::string epoch;
  if (c->db_->Get(rocksdb::ReadOptions(), kEpochKey, &epoch).ok()) c->lease_epoch_ = std::stoull(epoch) + 1;
  c->db_->Put(rocksdb::WriteOptions(), kEpochKey, std::to_string(c->lease_epoch_));
  c->LoadCheckpointManifest();
  c->Refill();
  return c;
}

void Coordinator::LoadCheckpointManifest() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const int64_t now = clock_->NowMs();
  for (it->Seek(kCheckpointPrefix); it->Valid() && it->key().starts_with(kCheckpointPrefix); it->Next()) {
    nlohmann::json j = nlohmann::json::parse(it->value().ToString(), nullptr, false);
    if (j.is_discarded() || !j.contains("step") || !j["step"].is_number_integer()) {
      spdlog::warn("coordinator state: skipping a malformed checkpoint record {}", it->key().ToString());
      continue;
    }
    checkpoints_.push_back({j["step"].get<int64_t>(), j.value("duration_ms", 0.0), now, j.value("trainer", "")});
  }
  if (!checkpoints_.empty()) {
    spdlog::info("checkpoint manifest: {} checkpoint(s), the newest at step {}", checkpoints_.size(),
                 checkpoints_.back().step);
  }
}

Status Coordinator::CreateJob(const std::vector<std::string>& shards) {
  objectives_ = job_.ObjectiveIds();
  next_g_.assign(objectives_.size(), 0);
  corrupt_tasks_.assign(objectives_.size(), {});
  frontier_index_.assign(objectives_.size(), 0);
  frontier_g_.assign(objectives_.size(), 0);
  phase_ = job_.noop_tasks > 0 ? "noop" : "tokenize";
  rocksdb::WriteBatch batch;
  batch.Put(kJobKey, job_.ToJson().dump());
  for (size_t i = 0; i < shards.size(); ++i) {
    Task t;
    t.spec.id = TokenizeTaskId(static_cast<uint32_t>(i));
    t.spec.kind = "tokenize";
    t.spec.shard_index = static_cast<uint32_t>(i);
    t.spec.shard_path = shards[i];
    AddTask(std::move(t), &batch);
  }
  PersistPipeline(&batch);
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), &batch);
  if (!s.ok()) return InternalError("cannot write the coordinator state: " + s.ToString());
  return Status::Ok();
}

Status Coordinator::Load() {
  objectives_ = job_.ObjectiveIds();
  next_g_.assign(objectives_.size(), 0);
  corrupt_tasks_.assign(objectives_.size(), {});
  frontier_index_.assign(objectives_.size(), 0);
  frontier_g_.assign(objectives_.size(), 0);
  std::string value;
  if (db_->Get(rocksdb::ReadOptions(), kPipelineKey, &value).ok()) {
    nlohmann::json p = nlohmann::json::parse(value, nullptr, false);
    if (p.is_discarded()) return DataLossError("stored pipeline cursor is not JSON");
    phase_ = p.value("phase", "tokenize");
    samples_per_epoch_ = p.value("samples_per_epoch", int64_t{0});
    consumed_step_ = p.value("consumed_step", int64_t{-1});
    num_noop_created_ = p.value("noop_created", int64_t{0});
    auto g = p.value("next_g", std::vector<int64_t>());
    if (g.size() == next_g_.size()) next_g_ = g;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::vector<std::pair<uint64_t, std::string>> corrupt_order;
  for (it->Seek("task/"); it->Valid() && it->key().starts_with("task/"); it->Next()) {
    nlohmann::json j = nlohmann::json::parse(it->value().ToString(), nullptr, false);
    if (j.is_discarded()) return DataLossError("stored task " + it->key().ToString() + " is not JSON");
    Task t;
    t.spec.id = it->key().ToString().substr(5);
    t.spec.kind = j.value("kind", "");
    t.order = j.value("order", uint64_t{0});
    std::string state = j.value("state", "pending");
    t.state = state == "done" ? TaskState::kDone : state == "dead" ? TaskState::kDead : TaskState::kPending;
    t.attempts = j.value("attempts", 0u);
    t.last_error = j.value("error", "");
    t.output_count = j.value("count", uint64_t{0});
    t.output_bytes = j.value("bytes", uint64_t{0});
    t.spec.shard_index = j.value("shard", 0u);
    t.spec.shard_path = j.value("path", "");
    t.spec.objective = j.value("objective", 0);
    t.spec.epoch = j.value("epoch", 0u);
    t.spec.begin = j.value("begin", uint64_t{0});
    t.spec.end = j.value("end", uint64_t{0});
    next_order_ = std::max(next_order_, t.order + 1);
    if (t.spec.kind == "corrupt") corrupt_order.emplace_back(t.order, t.spec.id);
    std::string id = t.spec.id;
    auto [pos, inserted] = tasks_.emplace(id, std::move(t));
    if (pos->second.state == TaskState::kPending) {
      ready_[pos->second.spec.kind].emplace(pos->second.order, id);
    }
  }
  std::sort(corrupt_order.begin(), corrupt_order.end());
  for (auto& [order, id] : corrupt_order) {
    const Task& t = tasks_.at(id);
    for (size_t s = 0; s < objectives_.size(); ++s) {
      if (objectives_[s] != t.spec.objective) continue;
      int64_t end_g = static_cast<int64_t>(t.spec.epoch) * samples_per_epoch_ + static_cast<int64_t>(t.spec.end);
      corrupt_tasks_[s].emplace_back(end_g, id);
    }
  }
  for (it->Seek("node/"); it->Valid() && it->key().starts_with("node/"); it->Next()) {
    nlohmann::json j = nlohmann::json::parse(it->value().ToString(), nullptr, false);
    if (j.is_discarded()) continue;
    Node n;
    n.id = it->key().ToString().substr(5);
    n.hostname = j.value("hostname", "");
    n.pid = j.value("pid", 0u);
    n.resources.cpu = j.value("cpu", 0.0);
    n.resources.gpu = j.value("gpu", 0.0);
    n.resources.memory_mb = j.value("memory_mb", uint64_t{0});
    n.last_seen_ms = clock_->NowMs();  // grace: node_timeout_ms to re-register
    n.confirmed = false;
    nodes_[n.id] = n;
  }
  for (it->Seek("actor/"); it->Valid() && it->key().starts_with("actor/"); it->Next()) {
    nlohmann::json j = nlohmann::json::parse(it->value().ToString(), nullptr, false);
    if (j.is_discarded()) continue;
    FixedActor a;
    a.assignment.actor_id = it->key().ToString().substr(6);
    a.assignment.kind = j.value("kind", "");
    a.assignment.task_kinds = j.value("task_kinds", std::vector<std::string>());
    a.demand.cpu = j.value("cpu", 0.0);
    a.demand.gpu = j.value("gpu", 0.0);
    a.demand.memory_mb = j.value("memory_mb", uint64_t{0});
    a.node_id = j.value("node", "");
    a.restarts = j.value("restarts", int64_t{0});
    a.dead = j.value("dead", false);
    a.reason = j.value("reason", "");
    auto node = nodes_.find(a.node_id);
    if (node != nodes_.end() && !a.dead) {
      node->second.used.cpu += a.demand.cpu;
      node->second.used.gpu += a.demand.gpu;
      node->second.used.memory_mb += a.demand.memory_mb;
    } else {
      a.node_id.clear();
    }
    actors_[a.assignment.actor_id] = a;
  }
  for (auto& [id, t] : tasks_) {
    if (t.state == TaskState::kDone || t.state == TaskState::kDead) ++num_terminal_;
  }
  AdvanceFrontiers();
  return Status::Ok();
}

void Coordinator::Write(rocksdb::WriteBatch* batch) {
  rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), batch);
  // The state database failing under us is not survivable in-process: die,
  // and let the restart resume from what is on disk.
  GLM_CHECK(s.ok()) << "coordinator state write failed: " << s.ToString();
}

void Coordinator::PersistTask(const Task& t, rocksdb::WriteBatch* batch) {
  nlohmann::json j = {{"kind", t.spec.kind},
                      {"order", t.order},
                      {"state", t.state == TaskState::kDone   ? "done"
                                : t.state == TaskState::kDead ? "dead"
                                                              : "pending"},
                      {"attempts", t.attempts}};
  if (!t.last_error.empty()) j["error"] = t.last_error;
  if (t.output_count) j["count"] = t.output_count;
  if (t.output_bytes) j["bytes"] = t.output_bytes;
  if (t.spec.kind == "tokenize") {
    j["shard"] = t.spec.shard_index;
    j["path"] = t.spec.shard_path;
  } else if (t.spec.kind == "corrupt") {
    j["objective"] = t.spec.objective;
    j["epoch"] = t.spec.epoch;
    j["begin"] = t.spec.begin;
    j["end"] = t.spec.end;
  }
  if (batch) {
    batch->Put("task/" + t.spec.id, j.dump());
  } else {
    rocksdb::WriteBatch b;
    b.Put("task/" + t.spec.id, j.dump());
    Write(&b);
  }
}

void Coordinator::PersistPipeline(rocksdb::WriteBatch* batch) {
  nlohmann::json p = {{"phase", phase_},
                      {"samples_per_epoch", samples_per_epoch_},
                      {"consumed_step", consumed_step_},
                      {"noop_created", num_noop_created_},
                      {"next_g", next_g_}};
  if (batch) {
    batch->Put(kPipelineKey, p.dump());
  } else {
    rocksdb::WriteBatch b;
    b.Put(kPipelineKey, p.dump());
    Write(&b);
  }
}

void Coordinator::PersistNode(const Node& n) {
  rocksdb::WriteBatch b;
  if (n.dead) {
    b.Delete("node/" + n.id);
  } else {
    nlohmann::json j = {{"hostname", n.hostname},
                        {"pid", n.pid},
                        {"cpu", n.resources.cpu},
                        {"gpu", n.resources.gpu},
                        {"memory_mb", n.resources.memory_mb}};
    b.Put("node/" + n.id, j.dump());
  }
  Write(&b);
}

void Coordinator::PersistActor(const FixedActor& a) {
  nlohmann::json j = {{"kind", a.assignment.kind}, {"task_kinds", a.assignment.task_kinds},
                      {"cpu", a.demand.cpu},       {"gpu", a.demand.gpu},
                      {"memory_mb", a.demand.memory_mb}, {"node", a.node_id},
                      {"restarts", a.restarts},    {"dead", a.dead},
                      {"reason", a.reason}};
  rocksdb::WriteBatch b;
  b.Put("actor/" + a.assignment.actor_id, j.dump());
  Write(&b);
}

void Coordinator::AddTask(Task task, rocksdb::WriteBatch* batch) {
  if (tasks_.count(task.spec.id)) return;  // same deterministic id: already known
  task.order = next_order_++;
  task.state = TaskState::kPending;
  PersistTask(task, batch);
  std::string id = task.spec.id;
  auto pos = tasks_.emplace(id, std::move(task)).first;
  ready_[pos->second.spec.kind].emplace(pos->second.order, id);
}

int64_t Coordinator::BatchPerObjective() const {
  const int64_t n = static_cast<int64_t>(std::max<size_t>(1, objectives_.size()));
  return (job_.global_batch_size + n - 1) / n;
}

int64_t Coordinator::TotalPerObjective() const {
  const int64_t total = samples_per_epoch_ * job_.epochs;
  return job_.max_samples > 0 ? std::min(total, job_.max_samples) : total;
}

std::vector<ActorAssignment> Coordinator::FillActorsFor(const Node& node) const {
  std::vector<ActorAssignment> out;
  int n = static_cast<int>(std::floor(node.resources.cpu - node.used.cpu + 1e-9));
  for (int i = 0; i < n; ++i) {
    ActorAssignment a;
    a.actor_id = "pipeline/" + node.id + "/" + std::to_string(i);
    if (dead_fill_actors_.count(a.actor_id)) continue;
    a.kind = "pipeline";
    a.task_kinds = phase_ == "noop" ? std::vector<std::string>{"noop"}
                                    : std::vector<std::string>{"tokenize", "finalize", "corrupt"};
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<ActorAssignment> Coordinator::ActorsOn(const std::string& node_id) const {
  std::vector<ActorAssignment> out;
  auto node = nodes_.find(node_id);
  if (node == nodes_.end() || node->second.dead) return out;
  for (const auto& [id, a] : actors_) {
    if (!a.dead && a.node_id == node_id) out.push_back(a.assignment);
  }
  for (auto& a : FillActorsFor(node->second)) out.push_back(std::move(a));
  return out;
}

RegisterResult Coordinator::Register(const std::string& node_id, const Resources& resources,
                                     const std::string& hostname, uint32_t pid) {
  RegisterResult r;
  if (node_id.empty() || node_id.size() > 200) {
    r.reason = "node id must be 1..200 characters";
    return r;
  }
  if (resources.cpu < 0 || resources.gpu < 0) {
    r.reason = "resources must not be negative";
    return r;
  }
  Node& n = nodes_[node_id];
  bool known = !n.id.empty() && !n.dead;
  if (!known) n = Node();
  n.id = node_id;
  n.hostname = hostname;
  n.pid = pid;
  n.resources = resources;
  n.last_seen_ms = clock_->NowMs();
  n.confirmed = true;
  n.draining = false;
  PersistNode(n);
  spdlog::info("node {} {} (host {}, pid {}, cpu {}, gpu {}, memory {} MiB)", node_id,
               known ? "re-registered" : "registered", hostname, pid, resources.cpu, resources.gpu,
               resources.memory_mb);
  PlaceActors();
  r.accepted = true;
  r.actors = ActorsOn(node_id);
  return r;
}

HeartbeatResult Coordinator::Heartbeat(const std::string& node_id, const std::vector<uint64_t>& held_leases,
                                       bool draining) {
  HeartbeatResult r;
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.confirmed || it->second.dead) {
    r.reregister = true;
    return r;
  }
  Node& n = it->second;
  int64_t now = clock_->NowMs();
  n.last_seen_ms = now;
  if (draining && !n.draining) spdlog::info("node {} is draining", node_id);
  n.draining = draining;
  for (uint64_t lease : held_leases) {
    auto l = leases_.find(lease);
    if (l == leases_.end()) continue;
    Task& t = tasks_.at(l->second);
    if (t.lease_node == node_id) t.lease_expiry_ms = now + options_.lease_ms;
  }
  r.job_done = job_done();
  r.actors = ActorsOn(node_id);
  return r;
}

LeaseResult Coordinator::Lease(const std::string& node_id, const std::string& actor_id,
                               const std::vector<std::string>& task_kinds) {
  LeaseResult r;
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.confirmed || it->second.dead) {
    r.kind = LeaseResult::kReregister;
    return r;
  }
  Node& n = it->second;
  int64_t now = clock_->NowMs();
  n.last_seen_ms = now;
  if (job_done()) {
    r.kind = LeaseResult::kJobDone;
    return r;
  }
  r.kind = LeaseResult::kRetryAfter;
  r.retry_after_ms = options_.idle_retry_ms;
  if (n.draining) return r;
  std::set<std::pair<uint64_t, std::string>>* best = nullptr;
  for (const std::string& kind : task_kinds) {
    auto q = ready_.find(kind);
    if (q == ready_.end() || q->second.empty()) continue;
    if (!best || *q->second.begin() < *best->begin()) best = &q->second;
  }
  if (!best) return r;
  std::string task_id = best->begin()->second;
  best->erase(best->begin());
  Task& t = tasks_.at(task_id);
  t.state = TaskState::kLeased;
  ++t.attempts;
  t.lease_id = (lease_epoch_ << 40) | next_lease_++;
  t.lease_node = node_id;
  t.lease_expiry_ms = now + options_.lease_ms;
  leases_[t.lease_id] = task_id;
  PersistTask(t);
  spdlog::debug("leased {} (attempt {}) to {} on {}", task_id, t.attempts, actor_id, node_id);
  r.kind = LeaseResult::kTask;
  r.task = t.spec;
  r.task.attempt = t.attempts;
  r.task.lease_id = t.lease_id;
  return r;
}

void Coordinator::TaskDone(const std::string& node_id, const std::string& task_id, uint64_t lease_id,
                           uint64_t output_count, uint64_t output_bytes) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) {
    spdlog::warn("node {} reported unknown task {} done; ignored", node_id, task_id);
    return;
  }
  Task& t = it->second;
  if (t.state == TaskState::kDone) return;  // a duplicate run: same keys, nothing to do
  if (t.state == TaskState::kLeased) {
    leases_.erase(t.lease_id);
  } else if (t.state == TaskState::kPending) {
    ready_[t.spec.kind].erase({t.order, t.spec.id});
    delayed_.erase({t.not_before_ms, t.spec.id});
  }
  if (t.state != TaskState::kDead) ++num_terminal_;
  if (t.lease_id != lease_id) {
    spdlog::debug("task {} done under an older lease {} (current {})", task_id, lease_id, t.lease_id);
  }
  t.state = TaskState::kDone;
  t.output_count = output_count;
  t.output_bytes = output_bytes;
  t.lease_id = 0;
  PersistTask(t);
  session_bytes_ += output_bytes;
  ++session_tasks_;
  if (t.spec.kind == "corrupt") AdvanceFrontiers();
  Refill();
}

void Coordinator::TaskFailed(const std::string& node_id, const std::string& task_id, uint64_t lease_id,
                             const std::string& reason, bool retryable, bool abandoned) {
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) return;
  Task& t = it->second;
  if (t.state != TaskState::kLeased || t.lease_id != lease_id) return;  // stale report
  if (abandoned) {
    spdlog::info("node {} gave back {}: {}", node_id, task_id, reason);
    Requeue(t, reason, false);
    return;
  }
  spdlog::warn("task {} failed on node {} (attempt {}): {}", task_id, node_id, t.attempts, reason);
  if (!retryable) t.attempts = static_cast<uint32_t>(options_.max_attempts);
  Requeue(t, reason, true);
}

void Coordinator::Requeue(Task& t, const std::string& reason, bool count_attempt) {
  leases_.erase(t.lease_id);
  t.lease_id = 0;
  t.lease_node.clear();
  if (!count_attempt && t.attempts > 0) --t.attempts;
  t.last_error = reason;
  if (count_attempt) {
    ++num_task_retries_;
    RecordEvent(static_cast<int64_t>(t.attempts) >= options_.max_attempts ? "task_dead" : "task_retry", t.spec.id,
                reason);
  }
  if (static_cast<int64_t>(t.attempts) >= options_.max_attempts) {
    t.state = TaskState::kDead;
    ++num_terminal_;
    spdlog::error("task {} is dead after {} attempts: {}", t.spec.id, t.attempts, reason);
    PersistTask(t);
    if (t.spec.kind == "corrupt") AdvanceFrontiers();
    return;
  }
  t.state = TaskState::kPending;
  PersistTask(t);
  if (count_attempt && options_.retry_backoff_base_ms > 0) {
    int64_t backoff = options_.retry_backoff_base_ms;
    for (uint32_t i = 1; i < t.attempts && backoff < options_.retry_backoff_max_ms; ++i) backoff *= 2;
    t.not_before_ms = clock_->NowMs() + std::min(backoff, options_.retry_backoff_max_ms);
    delayed_.emplace(t.not_before_ms, t.spec.id);
  } else {
    ready_[t.spec.kind].emplace(t.order, t.spec.id);
  }
}

void Coordinator::ActorFailed(const std::string& node_id, const std::string& actor_id,
                              const std::string& reason) {
  auto fixed = actors_.find(actor_id);
  int64_t restarts = 0;
  if (fixed != actors_.end()) {
    restarts = ++fixed->second.restarts;
  } else {
    restarts = ++fill_restarts_[actor_id];
  }
  bool dead = restarts > options_.actor_max_restarts;
  spdlog::warn("actor {} on node {} failed ({}): {}", actor_id, node_id,
               dead ? "restart limit reached, now dead" : "restart " + std::to_string(restarts), reason);
  ++num_actor_restarts_;
  RecordEvent(dead ? "actor_dead" : "actor_restart", actor_id, "on node " + node_id + ": " + reason);
  if (fixed != actors_.end()) {
    FixedActor& a = fixed->second;
    if (dead) {
      a.dead = true;
      a.reason = reason;
      auto n = nodes_.find(a.node_id);
      if (n != nodes_.end()) {
        n->second.used.cpu -= a.demand.cpu;
        n->second.used.gpu -= a.demand.gpu;
        n->second.used.memory_mb -= a.demand.memory_mb;
      }
    }
    PersistActor(a);
  } else if (dead) {
    dead_fill_actors_.insert(actor_id);
  }
}

void Coordinator::Consumed(int64_t step) {
  if (step <= consumed_step_) return;
  consumed_step_ = step;
  PersistPipeline();
  Refill();
}

Status Coordinator::ReportTrainer(const TrainerReport& report) {
  GLM_RETURN_IF_ERROR(report.Validate());
  Consumed(report.step - 1);
  const int64_t now = clock_->NowMs();
  TrainerState& state = trainers_[report.trainer_id];
  const bool known_checkpoint =
      std::any_of(checkpoints_.begin(), checkpoints_.end(),
                  [&](const CheckpointRecord& c) { return c.step == report.checkpoint_step; });
  if (report.checkpoint_step >= 0 && !known_checkpoint) {
    checkpoints_.push_back({report.checkpoint_step, report.checkpoint_ms, now, report.trainer_id});
    // The manifest in the state database (a failure loses only this line of
    // it: logged, never fatal to the report).
    rocksdb::WriteBatch batch;
    const int64_t unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    batch.Put(CheckpointKey(report.checkpoint_step),
              nlohmann::json({{"step", report.checkpoint_step},
                              {"duration_ms", report.checkpoint_ms},
                              {"trainer", report.trainer_id},
                              {"unix_ms", unix_ms}})
                  .dump());
    if (checkpoints_.size() > kCheckpointsKept) {
      batch.Delete(CheckpointKey(checkpoints_.front().step));
      checkpoints_.pop_front();
    }
    rocksdb::Status ws = db_->Write(rocksdb::WriteOptions(), &batch);
    if (!ws.ok()) spdlog::error("cannot record checkpoint {} in the coordinator state: {}", report.checkpoint_step, ws.ToString());
  }
  state.latest = report;
  state.received_ms = now;
  report_log_.push_back({next_report_seq_++, now, report});
  if (report_log_.size() > kReportLogCapacity) report_log_.pop_front();
  if (run_metrics_ != nullptr && report.rank == 0) {
    // Each file's first failure comes back once; the report stays accepted.
    Status s = run_metrics_->WriteStep(report, JobTokensPerS(report));
    if (!s.ok()) {
      spdlog::error("step {}: run metrics: {} (that file is no longer written)", report.step, s.message());
      RecordEvent("run_metrics_failed", options_.run_dir, s.message());
    }
  }
  return Status::Ok();
}

double Coordinator::JobTokensPerS(const TrainerReport& rank0) const {
  std::vector<const TrainerState*> by_rank(static_cast<size_t>(rank0.world_size), nullptr);
  for (const auto& [id, t] : trainers_) {
    const TrainerReport& r = t.latest;
    if (r.world_size != rank0.world_size || r.rank < 0 || r.rank >= r.world_size) continue;
    const TrainerState*& best = by_rank[static_cast<size_t>(r.rank)];
    if (best == nullptr || r.step > best->latest.step ||
        (r.step == best->latest.step && t.received_ms > best->received_ms)) {
      best = &t;
    }
  }
  double sum = 0;
  for (const TrainerState* t : by_rank) {
    sum += t != nullptr ? t->latest.tokens_per_s : rank0.tokens_per_s;
  }
  return sum;
}

std::vector<Coordinator::LoggedReport> Coordinator::ReportsSince(uint64_t after_seq) const {
  auto first = std::upper_bound(report_log_.begin(), report_log_.end(), after_seq,
                                [](uint64_t seq, const LoggedReport& r) { return seq < r.seq; });
  return std::vector<LoggedReport>(first, report_log_.end());
}

void Coordinator::RecordEvent(const std::string& kind, const std::string& subject, const std::string& message) {
  events_.push_back({clock_->NowMs(), kind, subject, message});
  if (events_.size() > 100) events_.pop_front();
}

Status Coordinator::AddActor(const std::string& actor_id, const std::string& kind,
                             const std::vector<std::string>& task_kinds, const Resources& demand) {
  if (actors_.count(actor_id)) return AlreadyExistsError("actor " + actor_id + " exists");
  FixedActor a;
  a.assignment = {actor_id, kind, task_kinds};
  a.demand = demand;
  actors_[actor_id] = a;
  PersistActor(a);
  PlaceActors();
  return Status::Ok();
}

void Coordinator::PlaceActors() {
  for (auto& [id, a] : actors_) {
    if (a.dead || !a.node_id.empty()) continue;
    Node* best = nullptr;
    for (auto& [nid, n] : nodes_) {
      if (n.dead || !n.confirmed || n.draining) continue;
      bool fits = n.resources.cpu - n.used.cpu + 1e-9 >= a.demand.cpu &&
                  n.resources.gpu - n.used.gpu + 1e-9 >= a.demand.gpu &&
                  n.resources.memory_mb - n.used.memory_mb >= a.demand.memory_mb;
      if (!fits) continue;
      if (!best || n.resources.cpu - n.used.cpu > best->resources.cpu - best->used.cpu) best = &n;
    }
    if (!best) continue;
    a.node_id = best->id;
    best->used.cpu += a.demand.cpu;
    best->used.gpu += a.demand.gpu;
    best->used.memory_mb += a.demand.memory_mb;
    PersistActor(a);
    spdlog::info("placed actor {} on node {}", id, best->id);
  }
}

void Coordinator::MarkNodeDead(Node& n, const std::string& why) {
  spdlog::warn("node {} lost: {}", n.id, why);
  n.dead = true;
  ++num_node_failures_;
  RecordEvent("node_lost", n.id, why);
  std::vector<std::string> lost;
  for (auto& [lease, task_id] : leases_) {
    if (tasks_.at(task_id).lease_node == n.id) lost.push_back(task_id);
  }
  for (const std::string& id : lost) Requeue(tasks_.at(id), "node " + n.id + " lost: " + why, true);
  for (auto& [id, a] : actors_) {
    if (a.dead || a.node_id != n.id) continue;
    a.node_id.clear();
    if (++a.restarts > options_.actor_max_restarts) {
      a.dead = true;
      a.reason = "node " + n.id + " lost and the restart limit is reached";
    }
    PersistActor(a);
  }
  n.used = Resources();
  PersistNode(n);
}

void Coordinator::Tick() {
  int64_t now = clock_->NowMs();
  for (auto& [id, n] : nodes_) {
    if (n.dead) continue;
    if (now - n.last_seen_ms > options_.node_timeout_ms) {
      MarkNodeDead(n, n.confirmed ? "no heartbeat for " + std::to_string(now - n.last_seen_ms) + " ms"
                                  : "did not re-register after the coordinator restarted");
    }
  }
  std::vector<std::string> expired;
  for (auto& [lease, task_id] : leases_) {
    if (tasks_.at(task_id).lease_expiry_ms < now) expired.push_back(task_id);
  }
  for (const std::string& id : expired) {
    Task& t = tasks_.at(id);
    Requeue(t, "lease expired on node " + t.lease_node, true);
  }
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string id = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    Task& t = tasks_.at(id);
    if (t.state == TaskState::kPending) ready_[t.spec.kind].emplace(t.order, id);
  }
  PlaceActors();
  Refill();
}

void Coordinator::AdvanceFrontiers() {
  for (size_t s = 0; s < corrupt_tasks_.size(); ++s) {
    auto& list = corrupt_tasks_[s];
    while (frontier_index_[s] < list.size()) {
      const Task& t = tasks_.at(list[frontier_index_[s]].second);
      if (t.state != TaskState::kDone && t.state != TaskState::kDead) break;
      frontier_g_[s] = list[frontier_index_[s]].first;
      ++frontier_index_[s];
    }
  }
  if (job_.auto_consume) {
    int64_t produced = produced_step();
    if (produced > consumed_step_) consumed_step_ = produced;
  }
}

int64_t Coordinator::produced_step() const {
  if (phase_ != "corrupt" || objectives_.empty()) return -1;
  int64_t b = BatchPerObjective();
  int64_t total = TotalPerObjective();
  int64_t step = INT64_MAX;
  for (size_t s = 0; s < objectives_.size(); ++s) {
    int64_t g = frontier_g_[s];
    int64_t full = g >= total ? (total + b - 1) / b : g / b;
    step = std::min(step, full - 1);
  }
  return step;
}

void Coordinator::Refill() {
  if (phase_ == "noop") {
    if (num_noop_created_ >= job_.noop_tasks) return;
    // Small batches, often: a large batch would stall leasing for its write.
    auto& q = ready_["noop"];
    if (q.size() >= 4096) return;
    rocksdb::WriteBatch batch;
    for (int i = 0; i < 256 && num_noop_created_ < job_.noop_tasks; ++i) {
      Task t;
      t.spec.id = NoopTaskId(num_noop_created_++);
      t.spec.kind = "noop";
      AddTask(std::move(t), &batch);
    }
    PersistPipeline(&batch);
    Write(&batch);
    return;
  }
  if (phase_ == "tokenize") {
    uint64_t docs = 0;
    for (const auto& [id, t] : tasks_) {
      if (t.spec.kind != "tokenize") continue;
      if (t.state != TaskState::kDone && t.state != TaskState::kDead) return;
      docs += t.output_count;
    }
    if (job_.finalize) {
      phase_ = "finalize";
      spdlog::info("tokenize phase done: {} documents; finalizing", docs);
      Task t;
      t.spec.id = kFinalizeTaskId;
      t.spec.kind = "finalize";
      rocksdb::WriteBatch batch;
      AddTask(std::move(t), &batch);
      PersistPipeline(&batch);
      Write(&batch);
    } else {
      samples_per_epoch_ = job_.samples_per_epoch > 0 ? job_.samples_per_epoch : static_cast<int64_t>(docs);
      phase_ = "corrupt";
      spdlog::info("tokenize phase done: {} documents; {} samples per epoch per objective", docs,
                   samples_per_epoch_);
      PersistPipeline();
    }
  }
  if (phase_ == "finalize") {
    // One task; its output count is the epoch size (the glm executors: the
    // training tokens over the sample length). Dead: nothing to corrupt, the
    // job ends with the dead letter saying why.
    auto it = tasks_.find(kFinalizeTaskId);
    if (it == tasks_.end()) {
      Task t;
      t.spec.id = kFinalizeTaskId;
      t.spec.kind = "finalize";
      rocksdb::WriteBatch batch;
      AddTask(std::move(t), &batch);
      Write(&batch);
      return;
    }
    if (it->second.state != TaskState::kDone && it->second.state != TaskState::kDead) return;
    samples_per_epoch_ = it->second.state == TaskState::kDead ? 0
                         : job_.samples_per_epoch > 0          ? job_.samples_per_epoch
                                                               : static_cast<int64_t>(it->second.output_count);
    phase_ = "corrupt";
    spdlog::info("finalize done: {} samples per epoch per objective", samples_per_epoch_);
    PersistPipeline();
  }
  // Corrupt phase: create tasks up to the back-pressure window.
  int64_t b = BatchPerObjective();
  int64_t total = TotalPerObjective();
  int64_t limit_step = consumed_step_ + job_.max_batches_ahead;
  bool created = false;
  rocksdb::WriteBatch batch;
  for (size_t s = 0; s < objectives_.size(); ++s) {
    while (next_g_[s] < total && next_g_[s] / b <= limit_step) {
      int64_t g = next_g_[s];
      uint32_t epoch = static_cast<uint32_t>(g / samples_per_epoch_);
      int64_t begin = g % samples_per_epoch_;
      int64_t end = std::min({begin + job_.samples_per_task, samples_per_epoch_, begin + (total - g)});
      Task t;
      t.spec.id = CorruptTaskId(objectives_[s], epoch, static_cast<uint64_t>(begin));
      t.spec.kind = "corrupt";
      t.spec.objective = objectives_[s];
      t.spec.epoch = epoch;
      t.spec.begin = static_cast<uint64_t>(begin);
      t.spec.end = static_cast<uint64_t>(end);
      next_g_[s] = g + (end - begin);
      corrupt_tasks_[s].emplace_back(next_g_[s], t.spec.id);
      AddTask(std::move(t), &batch);
      created = true;
    }
  }
  if (created) {
    PersistPipeline(&batch);
    Write(&batch);
  }
}

bool Coordinator::job_done() const {
  if (num_terminal_ != tasks_.size()) return false;
  if (phase_ == "noop") return num_noop_created_ >= job_.noop_tasks;
  if (phase_ != "corrupt") return false;
  int64_t total = TotalPerObjective();
  for (int64_t g : next_g_) {
    if (g < total) return false;
  }
  return true;
}

std::map<std::string, int64_t> Coordinator::TaskCounts() const {
  std::map<std::string, int64_t> counts = {{"pending", 0}, {"leased", 0}, {"done", 0}, {"dead", 0}};
  for (const auto& [id, t] : tasks_) {
    switch (t.state) {
      case TaskState::kPending: ++counts["pending"]; break;
      case TaskState::kLeased: ++counts["leased"]; break;
      case TaskState::kDone: ++counts["done"]; break;
      case TaskState::kDead: ++counts["dead"]; break;
    }
  }
  return counts;
}

std::vector<std::pair<std::string, std::string>> Coordinator::DeadLetters() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [id, t] : tasks_) {
    if (t.state == TaskState::kDead) out.emplace_back(id, t.last_error);
  }
  return out;
}

nlohmann::json Coordinator::StatusJson() const {
  int64_t now = clock_->NowMs();
  nlohmann::json j;
  j["job_id"] = job_.job_id;
  j["phase"] = phase_;
  j["done"] = job_done();
  nlohmann::json nodes = nlohmann::json::array();
  int64_t num_actors = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.dead) continue;
    auto actors = ActorsOn(id);
    num_actors += static_cast<int64_t>(actors.size());
    nodes.push_back({{"id", id},
                     {"hostname", n.hostname},
                     {"pid", n.pid},
                     {"cpu", n.resources.cpu},
                     {"gpu", n.resources.gpu},
                     {"memory_mb", n.resources.memory_mb},
                     {"state", !n.confirmed ? "unconfirmed" : n.draining ? "draining" : "alive"},
                     {"actors", actors.size()},
                     {"last_seen_ms_ago", now - n.last_seen_ms}});
  }
  j["nodes"] = nodes;
  j["actors"] = num_actors;
  std::map<std::string, std::map<std::string, int64_t>> tasks;
  std::map<int, uint64_t> samples;
  uint64_t docs = 0, bytes = 0;
  for (const auto& [id, t] : tasks_) {
    const char* state = t.state == TaskState::kPending  ? "pending"
                        : t.state == TaskState::kLeased ? "leased"
                        : t.state == TaskState::kDone   ? "done"
                                                        : "dead";
    ++tasks[t.spec.kind][state];
    if (t.state != TaskState::kDone) continue;
    if (t.spec.kind == "tokenize") {
      docs += t.output_count;
      bytes += t.output_bytes;
    } else if (t.spec.kind == "corrupt") {
      samples[t.spec.objective] += t.output_count;
    }
  }
  j["tasks"] = tasks;
  nlohmann::json by_objective;
  for (int o : objectives_) by_objective[kObjectiveNames[o]] = samples[o];
  j["samples"] = by_objective;
  j["documents"] = docs;
  j["corpus_bytes_done"] = bytes;
  j["samples_per_epoch"] = samples_per_epoch_;
  j["produced_step"] = produced_step();
  j["consumed_step"] = consumed_step_;
  double seconds = std::max<int64_t>(1, now - started_ms_) / 1000.0;
  j["uptime_s"] = seconds;
  j["tasks_per_s"] = session_tasks_ / seconds;
  j["corpus_bytes_per_s"] = session_bytes_ / seconds;
  nlohmann::json dead = nlohmann::json::array();
  for (const auto& [id, t] : tasks_) {
    if (t.state == TaskState::kDead && dead.size() < 50) {
      dead.push_back({{"task", id}, {"attempts", t.attempts}, {"reason", t.last_error}});
    }
  }
  j["dead_letters"] = dead;
  nlohmann::json dead_actors = nlohmann::json::array();
  for (const auto& [id, a] : actors_) {
    if (a.dead) dead_actors.push_back({{"actor", id}, {"reason", a.reason}});
  }
  for (const auto& id : dead_fill_actors_) dead_actors.push_back({{"actor", id}, {"reason", "restart limit"}});
  j["dead_actors"] = dead_actors;
  AddObservabilityJson(now, &j);
  return j;
}

// What people watch beyond `glm status`'s summary (docs/observability.md):
// actors one by one, trainers' latest reports, checkpoints, recent events.
void Coordinator::AddObservabilityJson(int64_t now, nlohmann::json* out) const {
  nlohmann::json& j = *out;
  nlohmann::json actor_list = nlohmann::json::array();
  for (const auto& [id, a] : actors_) {
    actor_list.push_back({{"id", id},
                          {"kind", a.assignment.kind},
                          {"node", a.node_id},
                          {"state", a.dead ? "dead" : a.node_id.empty() ? "pending" : "running"},
                          {"restarts", a.restarts}});
  }
  for (const auto& [nid, n] : nodes_) {
    if (n.dead) continue;
    for (const ActorAssignment& a : FillActorsFor(n)) {
      auto restarts = fill_restarts_.find(a.actor_id);
      actor_list.push_back({{"id", a.actor_id},
                            {"kind", a.kind},
                            {"node", nid},
                            {"state", n.draining ? "draining" : "running"},
                            {"restarts", restarts == fill_restarts_.end() ? 0 : restarts->second}});
    }
  }
  for (const auto& id : dead_fill_actors_) {
    auto restarts = fill_restarts_.find(id);
    actor_list.push_back({{"id", id},
                          {"kind", "pipeline"},
                          {"node", ""},
                          {"state", "dead"},
                          {"restarts", restarts == fill_restarts_.end() ? 0 : restarts->second}});
  }
  j["actor_list"] = actor_list;
  nlohmann::json trainers = nlohmann::json::array();
  for (const auto& [id, t] : trainers_) {
    nlohmann::json r = TrainerReportToJson(t.latest);
    r["last_report_ms_ago"] = now - t.received_ms;
    trainers.push_back(std::move(r));
  }
  j["trainers"] = trainers;
  nlohmann::json checkpoints = nlohmann::json::array();
  for (const CheckpointRecord& c : checkpoints_) {
    checkpoints.push_back({{"step", c.step},
                           {"duration_ms", c.duration_ms},
                           {"ms_ago", now - c.received_ms},
                           {"trainer", c.trainer_id}});
  }
  j["checkpoints"] = checkpoints;
  nlohmann::json events = nlohmann::json::array();
  for (const Event& e : events_) {
    events.push_back({{"ms_ago", now - e.time_ms}, {"kind", e.kind}, {"subject", e.subject}, {"message", e.message}});
  }
  j["events"] = events;
  nlohmann::json targets = nlohmann::json::object();
  for (int o : objectives_) targets[kObjectiveNames[o]] = 1.0 / static_cast<double>(objectives_.size());
  j["objective_target_rate"] = targets;
  j["global_batch_size"] = job_.global_batch_size;
  // Tasks the job will have in all, where known: every tokenize task exists
  // from the start; corrupt tasks are created with back-pressure, but their
  // number is fixed once the epoch size is (tasks never span epochs).
  nlohmann::json planned = nlohmann::json::object();
  if (j["tasks"].contains("tokenize")) {
    int64_t tokenize = 0;
    for (const auto& [state, n] : j["tasks"]["tokenize"].items()) tokenize += n.get<int64_t>();
    planned["tokenize"] = tokenize;
  }
  if (phase_ == "corrupt" && samples_per_epoch_ > 0 && job_.samples_per_task > 0) {
    const int64_t spt = job_.samples_per_task;
    const int64_t total = TotalPerObjective();  // epochs, capped by max_samples
    const int64_t per_epoch = (samples_per_epoch_ + spt - 1) / spt;
    const int64_t rest = total % samples_per_epoch_;
    const int64_t per_objective = total / samples_per_epoch_ * per_epoch + (rest + spt - 1) / spt;
    planned["corrupt"] = per_objective * static_cast<int64_t>(objectives_.size());
  }
  if (phase_ == "noop") planned["noop"] = job_.noop_tasks;
  j["tasks_planned"] = planned;
  j["counters"] = {{"node_failures", num_node_failures_},
                   {"actor_restarts", num_actor_restarts_},
                   {"task_retries", num_task_retries_},
                   {"trainer_reports", next_report_seq_ - 1}};
}

}  // namespace glm::coordinator
