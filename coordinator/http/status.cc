#include "coordinator/http/status.h"

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

StatusOr<ClusterStatus> ClusterStatusFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return InvalidArgumentError("status JSON is not an object");
  ClusterStatus status;
  try {
    status = json.get<ClusterStatus>();
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
