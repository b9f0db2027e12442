#include "coordinator/http/coordinator_status.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace glm::http {
namespace {

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A number field, or `fallback` when absent, null or not a number.
double Num(const nlohmann::json& j, const char* key, double fallback = 0) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}
int64_t Int(const nlohmann::json& j, const char* key, int64_t fallback = 0) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : fallback;
}
std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}
const nlohmann::json& Arr(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : kEmpty;
}
const nlohmann::json& Obj(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

const char* const kObjectives[] = {"blank", "sentence", "document"};

}  // namespace

ClusterStatus ClusterStatusFromCoordinatorJson(const nlohmann::json& j, int64_t now_ms, int64_t trainer_silent_ms) {
  ClusterStatus s;
  s.job = Str(j, "job_id");
  s.time_ms = now_ms;
  s.started_ms = now_ms - static_cast<int64_t>(Num(j, "uptime_s") * 1000);

  // Trainers: the newest step leads; rank 0 (else the leader) gives loss and lr.
  const nlohmann::json* lead = nullptr;
  double tokens_per_s = 0;
  for (const auto& t : Arr(j, "trainers")) {
    const bool live = Int(t, "last_report_ms_ago") <= trainer_silent_ms;
    if (live) tokens_per_s += Num(t, "tokens_per_s");
    s.trainer.step = std::max(s.trainer.step, Int(t, "step"));
    s.trainer.max_steps = std::max(s.trainer.max_steps, Int(t, "max_steps"));
    s.trainer.world_size = std::max<int>(s.trainer.world_size, static_cast<int>(Int(t, "world_size")));
    if (lead == nullptr || (Int(t, "rank") == 0 && Int(*lead, "rank") != 0) ||
        (Int(t, "rank") == Int(*lead, "rank") && Int(t, "step") > Int(*lead, "step"))) {
      lead = &t;
    }
    s.actors.push_back({Str(t, "id"), "trainer", "", live ? "running" : "silent", 0});
  }
  if (lead != nullptr) {
    s.trainer.loss = Num(*lead, "loss", NAN);
    s.trainer.learning_rate = Num(*lead, "lr");
    const double step_ms = Num(*lead, "step_ms");
    if (step_ms > 0) s.throughput.samples_per_second = Num(j, "global_batch_size") * 1000.0 / step_ms;
  }
  s.throughput.tokens_per_second = tokens_per_s;
  const bool training = lead != nullptr && (s.trainer.max_steps == 0 || s.trainer.step < s.trainer.max_steps);
  s.phase = training ? "training" : j.value("done", false) ? "done" : Str(j, "phase");

  for (const auto& n : Arr(j, "nodes")) {
    NodeStatus node;
    node.id = Str(n, "id");
    node.address = Str(n, "hostname") + " pid " + std::to_string(Int(n, "pid"));
    node.state = Str(n, "state");
    node.last_heartbeat_ms = now_ms - Int(n, "last_seen_ms_ago");
    node.num_cpus = Num(n, "cpu");
    node.num_gpus = Num(n, "gpu");
    node.memory_bytes = Int(n, "memory_mb") << 20;
    node.num_actors = static_cast<int>(Int(n, "actors"));
    s.nodes.push_back(std::move(node));
  }
  for (const auto& a : Arr(j, "actor_list")) {
    s.actors.push_back({Str(a, "id"), Str(a, "kind"), Str(a, "node"), Str(a, "state"),
                        static_cast<int>(Int(a, "restarts"))});
  }

  // Stages in pipeline order, then any other task kind.
  const nlohmann::json& tasks = Obj(j, "tasks");
  std::vector<std::string> kinds;
  for (const char* known : {"tokenize", "finalize", "corrupt", "noop"}) {
    if (tasks.contains(known)) kinds.push_back(known);
  }
  for (const auto& [kind, counts] : tasks.items()) {
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  }
  for (const std::string& kind : kinds) {
    const nlohmann::json& c = tasks[kind];
    StageStatus st;
    st.stage = kind;
    st.pending = Int(c, "pending");
    st.leased = Int(c, "leased");
    st.done = Int(c, "done");
    st.failed = Int(c, "dead");
    st.total = std::max(st.pending + st.leased + st.done + st.failed, Int(Obj(j, "tasks_planned"), kind.c_str()));
    s.stages.push_back(st);
  }

  // Objective mix: consumed from the trainers' cumulative counts.
  const nlohmann::json& targets = Obj(j, "objective_target_rate");
  const nlohmann::json& produced = Obj(j, "samples");
  int64_t consumed_total = 0;
  for (const char* o : kObjectives) {
    if (!targets.contains(o) && !produced.contains(o)) continue;
    ObjectiveStatus os;
    os.objective = o;
    os.produced = Int(produced, o);
    os.target_rate = Num(targets, o);
    for (const auto& t : Arr(j, "trainers")) os.consumed = std::max(os.consumed, Int(Obj(t, "objective_samples"), o));
    consumed_total += os.consumed;
    s.objectives.push_back(os);
  }
  for (ObjectiveStatus& os : s.objectives) {
    os.consumed_rate = consumed_total > 0 ? static_cast<double>(os.consumed) / consumed_total : 0;
  }

  for (const auto& d : Arr(j, "dead_letters")) {
    s.failures.push_back({s.started_ms, "dead_letter", Str(d, "task"),
                          "dead after " + std::to_string(Int(d, "attempts")) + " attempts: " + Str(d, "reason")});
  }
  for (const auto& d : Arr(j, "dead_actors")) {
    s.failures.push_back({s.started_ms, "actor_dead", Str(d, "actor"), Str(d, "reason")});
  }
  for (const auto& e : Arr(j, "events")) {
    s.failures.push_back({now_ms - Int(e, "ms_ago"), Str(e, "kind"), Str(e, "subject"), Str(e, "message")});
  }
  std::stable_sort(s.failures.begin(), s.failures.end(),
                   [](const FailureEvent& a, const FailureEvent& b) { return a.time_ms < b.time_ms; });
  if (s.failures.size() > 100) s.failures.erase(s.failures.begin(), s.failures.end() - 100);

  for (const auto& c : Arr(j, "checkpoints")) {
    CheckpointStatus cs;
    cs.step = Int(c, "step");
    cs.time_ms = now_ms - Int(c, "ms_ago");
    cs.duration_s = Num(c, "duration_ms") / 1000.0;
    cs.state = "complete";
    cs.path = "step-" + std::to_string(cs.step) + " (" + Str(c, "trainer") + ")";
    s.checkpoints.push_back(std::move(cs));
  }
  return s;
}

CoordinatorStatusProvider::CoordinatorStatusProvider(GlmMetrics* metrics, CoordinatorStatusOptions options)
    : options_(options), metrics_(metrics), history_(std::max<size_t>(4, options.history_capacity)) {
  snapshot_.phase = "starting";
}

void CoordinatorStatusProvider::RecordReports(const std::vector<coordinator::Coordinator::LoggedReport>& reports,
                                              int64_t now_ms) {
  for (const auto& logged : reports) {
    const coordinator::TrainerReport& r = logged.report;
    if (std::isfinite(r.tokens_per_s)) tokens_per_s_[r.trainer_id] = r.tokens_per_s;
    if (metrics_ != nullptr) {
      if (std::isfinite(r.data_wait_ms) && r.data_wait_ms >= 0) {
        metrics_->data_wait_seconds->Observe(r.data_wait_ms / 1000);
      }
      if (std::isfinite(r.allreduce_ms) && r.allreduce_ms >= 0 && r.world_size > 1) {
        metrics_->allreduce_seconds->Observe(r.allreduce_ms / 1000);
      }
    }
    if (r.rank != 0 || !std::isfinite(r.loss)) continue;
    MetricsPoint p;
    p.step = r.step;
    p.time_ms = now_ms;  // within one publish interval of its arrival
    p.loss = r.loss;
    for (int o = 0; o < 3; ++o) {
      if (std::isfinite(r.objective_loss[o])) p.objective_loss[kObjectives[o]] = r.objective_loss[o];
    }
    p.learning_rate = std::isfinite(r.lr) ? r.lr : 0;
    for (const auto& [id, tps] : tokens_per_s_) p.tokens_per_second += tps;
    history_.Append(p);
  }
}

void CoordinatorStatusProvider::Publish(const coordinator::Coordinator& coordinator, const nlohmann::json& status) {
  const int64_t now_ms = UnixMs();
  RecordReports(coordinator.ReportsSince(last_report_seq_), now_ms);
  last_report_seq_ = coordinator.last_report_seq();
  ClusterStatus s = ClusterStatusFromCoordinatorJson(status, now_ms, options_.trainer_silent_ms);

  // Data pipeline rate over the last publish interval (smoothed).
  int64_t produced = 0;
  for (const ObjectiveStatus& o : s.objectives) produced += o.produced;
  if (last_produced_ >= 0 && now_ms > last_produced_ms_) {
    const double rate = static_cast<double>(produced - last_produced_) * 1000.0 / (now_ms - last_produced_ms_);
    produced_per_s_ = 0.7 * produced_per_s_ + 0.3 * std::max(0.0, rate);
  }
  last_produced_ = produced;
  last_produced_ms_ = now_ms;
  s.throughput.produced_samples_per_second = produced_per_s_;

  if (metrics_ != nullptr) {
    for (const CheckpointStatus& c : s.checkpoints) {
      if (!checkpoints_seen_.insert(c.step).second) continue;
      metrics_->checkpoint_duration_seconds->Observe(c.duration_s);
      metrics_->checkpoints->WithLabels({"ok"})->Increment();
    }
    const nlohmann::json& counters = Obj(status, "counters");
    metrics_->node_failures->AdvanceTo(Num(counters, "node_failures"));
    std::map<std::string, double> restarts;
    for (const ActorStatus& a : s.actors) restarts[a.kind] += a.restarts;
    for (const auto& [kind, n] : restarts) metrics_->actor_restarts->WithLabels({kind})->AdvanceTo(n);
  }

  s.coordinator = status;
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_ = std::move(s);
  published_ = true;
  num_publishes_++;
}

void CoordinatorStatusProvider::SetNotReady(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  not_ready_reason_ = reason;
}

ClusterStatus CoordinatorStatusProvider::GetStatus(const StatusQuery& query) {
  ClusterStatus out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = snapshot_;
  }
  if (out.time_ms == 0) out.time_ms = UnixMs();
  out.history = history_.Since(query.history_after_step, static_cast<size_t>(std::max(0, query.max_history_points)));
  return out;
}

bool CoordinatorStatusProvider::IsReady(std::string* reason) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool ready = published_ && !stopping_;
  if (!ready && reason != nullptr) *reason = not_ready_reason_;
  return ready;
}

}  // namespace glm::http
