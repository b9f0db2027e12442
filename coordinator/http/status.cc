#include "coordinator/http/status.h"

#include <cmath>

namespace glm::http {

// Field names here are the JSON format (docs/observability.md).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NodeStatus, id, address, state, last_heartbeat_ms,
                                                num_cpus, num_gpus, memory_bytes, num_actors)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ActorStatus, id, kind, node_id, state, restarts)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StageStatus, stage, pending, leased, done, failed, total)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ObjectiveStatus, objective, produced, consumed,
                                                target_rate, consumed_rate)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ThroughputStatus, tokens_per_second,
                                                samples_per_second, produced_samples_per_second)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainerStatus, step, max_steps, world_size,
                                                generation, loss, learning_rate)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FailureEvent, time_ms, kind, subject, message)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CheckpointStatus, step, time_ms, duration_s, bytes,
                                                path, state)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MetricsPoint, step, time_ms, loss, objective_loss,
                                                learning_rate, tokens_per_second)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ClusterStatus, format_version, job, phase, time_ms,
                                                started_ms, trainer, throughput, nodes, actors,
                                                stages, objectives, failures, checkpoints, history,
                                                coordinator)

nlohmann::json ToJson(const ClusterStatus& status) { return status; }

namespace {

// JSON has no NaN: ToJson writes a non-finite number (a diverged loss, a
// loss not measured yet) as null. Reading back, a null (or a NaN not yet
// written out) is a missing field, which keeps its default. "coordinator" is kept as it is.
void DropNulls(nlohmann::json* j, bool top) {
  if (j->is_object()) {
    for (auto it = j->begin(); it != j->end();) {
      if (it->is_null() || (it->is_number_float() && !std::isfinite(it->get<double>()))) {
        it = j->erase(it);
        continue;
      }
      if (!(top && it.key() == "coordinator")) DropNulls(&it.value(), false);
      ++it;
    }
  } else if (j->is_array()) {
    for (auto& e : *j) DropNulls(&e, false);
  }
}

}  // namespace

StatusOr<ClusterStatus> ClusterStatusFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return InvalidArgumentError("status JSON is not an object");
  ClusterStatus status;
  try {
    nlohmann::json cleaned = json;
    DropNulls(&cleaned, true);
    status = cleaned.get<ClusterStatus>();
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("status JSON: ") + e.what());
  }
  if (status.format_version > kStatusFormatVersion) {
    return InvalidArgumentError("status JSON has format_version " +
                                std::to_string(status.format_version) + "; this glm reads up to " +
                                std::to_string(kStatusFormatVersion) + ". HINT: upgrade glm");
  }
  return status;
}

}  // namespace glm::http
