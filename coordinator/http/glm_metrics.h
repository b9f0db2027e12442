// The metrics glm exposes on /metrics, by name. One GlmMetrics registers them
// all in a MetricsRegistry; components keep child pointers and update them.
//
// Name                                 Type       Labels          What
// glm_nodes                            gauge      state           nodes per state (alive, suspect, dead)
// glm_actors                           gauge      kind, state     actors per kind and state
// glm_tasks                            gauge      stage, state    tasks per pipeline stage (tokenize,
//                                                                 corrupt, ...) and state (pending,
//                                                                 leased, done, failed)
// glm_samples_produced_total           counter    objective       samples written (blank, sentence, document)
// glm_samples_consumed_total           counter    objective       samples read by trainers
// glm_objective_target_rate            gauge      objective       configured share of each global batch
// glm_objective_mix_drift              gauge      objective       consumed share minus target share
// glm_trainer_step                     gauge                      last completed optimizer step
// glm_loss                             gauge      objective       last step's loss ("all" = the total)
// glm_learning_rate                    gauge                      last step's learning rate
// glm_tokens_per_second                gauge                      training throughput, all ranks
// glm_data_wait_seconds                histogram                  trainer time blocked on the next batch
// glm_allreduce_seconds                histogram                  gradient all-reduce time per step
// glm_checkpoint_duration_seconds      histogram                  wall time to write one checkpoint
// glm_checkpoints_total                counter    result          checkpoints (ok, failed)
// glm_actor_restarts_total             counter    kind            actor restarts after failures
// glm_node_failures_total              counter                    nodes declared dead
// glm_http_requests_total              counter    path, code      requests served by the HTTP server
//
// docs/observability.md is the user-facing copy of this table.
//
// Thread-safety: the pointers are set in the constructor and never change;
// the metrics themselves are thread-safe. Ownership: the registry owns the
// metrics and must outlive this struct's users.
#ifndef GLM_COORDINATOR_HTTP_GLM_METRICS_H_
#define GLM_COORDINATOR_HTTP_GLM_METRICS_H_

#include "coordinator/http/metrics.h"

namespace glm::http {

struct ClusterStatus;

struct GlmMetrics {
  explicit GlmMetrics(MetricsRegistry* registry);

  // Sets the state gauges (nodes, actors, tasks), the objective rates and
  // drift, and the trainer gauges from one status snapshot. States that no
  // longer occur drop to 0 rather than vanishing, so graphs go to zero.
  void RecordClusterState(const ClusterStatus& status);

  Family<Gauge>* nodes;
  Family<Gauge>* actors;
  Family<Gauge>* tasks;
  Family<Counter>* samples_produced;
  Family<Counter>* samples_consumed;
  Family<Gauge>* objective_target_rate;
  Family<Gauge>* objective_mix_drift;
  Gauge* trainer_step;
  Family<Gauge>* loss;
  Gauge* learning_rate;
  Gauge* tokens_per_second;
  Histogram* data_wait_seconds;
  Histogram* allreduce_seconds;
  Histogram* checkpoint_duration_seconds;
  Family<Counter>* checkpoints;
  Family<Counter>* actor_restarts;
  Counter* node_failures;
  Family<Counter>* http_requests;
};

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_GLM_METRICS_H_
