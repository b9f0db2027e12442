#include "coordinator/http/glm_metrics.h"

#include <map>
#include <string>
#include <vector>

#include "coordinator/http/status.h"

namespace glm::http {

GlmMetrics::GlmMetrics(MetricsRegistry* r)
    : nodes(r->AddGauge("glm_nodes", "Nodes per state (alive, suspect, dead).", {"state"})),
      actors(r->AddGauge("glm_actors", "Actors per kind and state.", {"kind", "state"})),
      tasks(r->AddGauge("glm_tasks", "Tasks per pipeline stage and state (pending, leased, done, failed).",
                        {"stage", "state"})),
      samples_produced(r->AddCounter("glm_samples_produced_total",
                                     "Samples written to the store, per objective.", {"objective"})),
      samples_consumed(r->AddCounter("glm_samples_consumed_total",
                                     "Samples read by the trainers, per objective.", {"objective"})),
      objective_target_rate(r->AddGauge("glm_objective_target_rate",
                                        "Configured share of each global batch, per objective.",
                                        {"objective"})),
      objective_mix_drift(r->AddGauge(
          "glm_objective_mix_drift",
          "Consumed share minus target share, per objective (0 = exact mix).", {"objective"})),
      trainer_step(r->AddGauge("glm_trainer_step", "Last completed optimizer step.")->Get()),
      loss(r->AddGauge("glm_loss", "Loss of the last step, per objective (\"all\" = total).",
                       {"objective"})),
      learning_rate(r->AddGauge("glm_learning_rate", "Learning rate of the last step.")->Get()),
      tokens_per_second(
          r->AddGauge("glm_tokens_per_second", "Training throughput over all ranks.")->Get()),
      data_wait_seconds(r->AddHistogram("glm_data_wait_seconds",
                                        "Time a trainer waited for its next batch, per step.", {},
                                        ExponentialBuckets(0.0005, 2, 16))
                            ->Get()),
      allreduce_seconds(r->AddHistogram("glm_allreduce_seconds",
                                        "Gradient all-reduce time per step.", {},
                                        ExponentialBuckets(0.0005, 2, 16))
                            ->Get()),
      checkpoint_duration_seconds(r->AddHistogram("glm_checkpoint_duration_seconds",
                                                  "Wall time to write one checkpoint.", {},
                                                  ExponentialBuckets(0.05, 2, 14))
                                      ->Get()),
      checkpoints(r->AddCounter("glm_checkpoints_total", "Checkpoints written, by result (ok, failed).",
                                {"result"})),
      actor_restarts(r->AddCounter("glm_actor_restarts_total", "Actor restarts after failures.",
                                   {"kind"})),
      node_failures(r->AddCounter("glm_node_failures_total", "Nodes declared dead.")->Get()),
      http_requests(r->AddCounter("glm_http_requests_total",
                                  "Requests served by the coordinator's HTTP server.",
                                  {"path", "code"})) {}

void GlmMetrics::RecordClusterState(const ClusterStatus& status) {
  // Count first, then Set: concurrent scrapes each end by setting complete
  // values, so they cannot add up twice (ResetAll + Add could).
  std::map<std::vector<std::string>, double> node_counts, actor_counts;
  for (const NodeStatus& node : status.nodes) node_counts[{node.state}] += 1;
  for (const ActorStatus& actor : status.actors) actor_counts[{actor.kind, actor.state}] += 1;
  nodes->ResetAll();
  for (const auto& [labels, n] : node_counts) nodes->WithLabels(labels)->Set(n);
  actors->ResetAll();
  for (const auto& [labels, n] : actor_counts) actors->WithLabels(labels)->Set(n);
  for (const StageStatus& stage : status.stages) {
    tasks->WithLabels({stage.stage, "pending"})->Set(static_cast<double>(stage.pending));
    tasks->WithLabels({stage.stage, "leased"})->Set(static_cast<double>(stage.leased));
    tasks->WithLabels({stage.stage, "done"})->Set(static_cast<double>(stage.done));
    tasks->WithLabels({stage.stage, "failed"})->Set(static_cast<double>(stage.failed));
  }
  for (const ObjectiveStatus& o : status.objectives) {
    samples_produced->WithLabels({o.objective})->AdvanceTo(static_cast<double>(o.produced));
    samples_consumed->WithLabels({o.objective})->AdvanceTo(static_cast<double>(o.consumed));
    objective_target_rate->WithLabels({o.objective})->Set(o.target_rate);
    objective_mix_drift->WithLabels({o.objective})->Set(o.consumed_rate - o.target_rate);
  }
  trainer_step->Set(static_cast<double>(status.trainer.step));
  learning_rate->Set(status.trainer.learning_rate);
  tokens_per_second->Set(status.throughput.tokens_per_second);
  loss->WithLabels({"all"})->Set(status.trainer.loss);
  if (!status.history.empty() && status.history.back().step == status.trainer.step) {
    const MetricsPoint& last = status.history.back();
    loss->WithLabels({"all"})->Set(last.loss);
    for (const auto& [objective, value] : last.objective_loss) loss->WithLabels({objective})->Set(value);
  }
}

}  // namespace glm::http
