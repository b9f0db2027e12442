#include "coordinator/http/fake_status_provider.h"

#include <cmath>

namespace glm::http {
namespace {

const char* const kObjectives[] = {"blank", "sentence", "document"};

}  // namespace

FakeStatusProvider::FakeStatusProvider() {
  status_.job = "fake";
  status_.phase = "starting";
}

void FakeStatusProvider::Set(ClusterStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const MetricsPoint& p : status.history) history_.Append(p);
  status.history.clear();
  status_ = std::move(status);
}

void FakeStatusProvider::SetReady(bool ready, std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_ = ready;
  not_ready_reason_ = std::move(reason);
}

void FakeStatusProvider::SimulateStep(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  ClusterStatus& s = status_;
  if (s.nodes.empty()) {
    s.job = "simulated";
    s.started_ms = now_ms;
    s.trainer.max_steps = 2000;
    s.trainer.world_size = 2;
    s.trainer.generation = 1;
    for (int n = 0; n < 3; ++n) {
      NodeStatus node;
      node.id = "node-" + std::to_string(n);
      node.address = "127.0.0.1:" + std::to_string(7100 + n);
      node.state = "alive";
      node.num_cpus = 8;
      node.num_gpus = n < 2 ? 1 : 0;
      node.memory_bytes = int64_t{32} << 30;
      s.nodes.push_back(node);
    }
    s.actors = {{"trainer-0", "trainer", "node-0", "running", 0},
                {"trainer-1", "trainer", "node-1", "running", 0},
                {"tokenizer-0", "tokenizer", "node-2", "running", 0},
                {"corruption-0", "corruption", "node-2", "running", 0},
                {"corruption-1", "corruption", "node-2", "running", 0},
                {"storage-0", "storage", "node-2", "running", 0}};
    for (auto& node : s.nodes) {
      node.num_actors = 0;
      for (const auto& a : s.actors) node.num_actors += a.node_id == node.id;
    }
    s.stages = {{"tokenize", 0, 0, 0, 0, 40}, {"corrupt", 0, 0, 0, 0, 0}};
    for (const char* o : kObjectives) s.objectives.push_back({o, 0, 0, 1.0 / 3, 0});
  }
  s.phase = "running";
  s.time_ms = now_ms;
  const int64_t step = ++s.trainer.step;
  // Heartbeats: nodes 0 and 1 every step, node 2 every third step.
  for (size_t n = 0; n < s.nodes.size(); ++n) {
    if (n < 2 || step % 3 == 0) s.nodes[n].last_heartbeat_ms = now_ms;
  }
  // Pipeline: tokenize finishes within 40 steps; corruption stays ahead.
  StageStatus& tok = s.stages[0];
  tok.done = std::min<int64_t>(tok.total, step);
  tok.leased = std::min<int64_t>(2, tok.total - tok.done);
  tok.pending = tok.total - tok.done - tok.leased;
  StageStatus& cor = s.stages[1];
  cor.total = 8 * step + 16;
  cor.done = 8 * step;
  cor.leased = 4;
  cor.pending = 12;
  const int64_t batch = 24;
  for (size_t o = 0; o < s.objectives.size(); ++o) {
    s.objectives[o].produced = (8 * step + 16) * 16 / 3;
    s.objectives[o].consumed = step * batch / 3 + (o == 0 && step % 2 ? 1 : 0);
  }
  int64_t total_consumed = 0;
  for (const auto& o : s.objectives) total_consumed += o.consumed;
  for (auto& o : s.objectives) o.consumed_rate = double(o.consumed) / double(total_consumed);
  // A restart every 25 steps, a checkpoint every 20.
  if (step % 25 == 0) {
    ActorStatus& a = s.actors[3];
    a.restarts++;
    s.failures.push_back({now_ms, "actor_restart", a.id, "exited with signal 9; restarted on " + a.node_id});
    if (s.failures.size() > 20) s.failures.erase(s.failures.begin());
  }
  if (step % 20 == 0) {
    s.checkpoints.push_back({step, now_ms, 0.8 + 0.01 * double(step % 7), 48 << 20,
                             "runs/simulated/checkpoints/step-" + std::to_string(step), "complete"});
    if (s.checkpoints.size() > 20) s.checkpoints.erase(s.checkpoints.begin());
  }
  // Losses: decaying curves with a little deterministic wiggle.
  const double t = double(step);
  MetricsPoint p;
  p.step = step;
  p.time_ms = now_ms;
  p.objective_loss["blank"] = 2.0 + 8.0 * std::exp(-t / 60) + 0.08 * std::sin(t * 0.7);
  p.objective_loss["sentence"] = 2.4 + 8.0 * std::exp(-t / 80) + 0.08 * std::sin(t * 0.9);
  p.objective_loss["document"] = 2.8 + 8.0 * std::exp(-t / 100) + 0.08 * std::sin(t * 1.1);
  p.loss = (p.objective_loss["blank"] + p.objective_loss["sentence"] + p.objective_loss["document"]) / 3;
  const double warmup = 50;
  p.learning_rate = 3e-4 * (t < warmup ? t / warmup : 0.5 * (1 + std::cos(M_PI * (t - warmup) / 2000)));
  p.tokens_per_second = 21000 + 1500 * std::sin(t * 0.3);
  s.trainer.loss = p.loss;
  s.trainer.learning_rate = p.learning_rate;
  s.throughput.tokens_per_second = p.tokens_per_second;
  s.throughput.samples_per_second = p.tokens_per_second / 128;
  s.throughput.produced_samples_per_second = 1.2 * s.throughput.samples_per_second;
  history_.Append(p);
}

ClusterStatus FakeStatusProvider::GetStatus(const StatusQuery& query) {
  num_status_calls_++;
  std::lock_guard<std::mutex> lock(mu_);
  ClusterStatus out = status_;
  out.history = history_.Since(query.history_after_step, static_cast<size_t>(query.max_history_points));
  return out;
}

bool FakeStatusProvider::IsReady(std::string* reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ready_ && reason != nullptr) *reason = not_ready_reason_;
  return ready_;
}

}  // namespace glm::http
