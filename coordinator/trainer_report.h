// Trainer -> coordinator progress reports.
//
// After each optimizer step a trainer rank sends a TrainerReport. The
// coordinator (1) treats it as Consumed(step - 1): the data pipeline's
// back-pressure window moves, and (2) keeps it: the latest report per
// trainer and a bounded log of recent reports, which feed /metrics,
// /api/status, the dashboard (coordinator/http/) and `glm status`.
//
// On the wire a report rides in the `Consumed` message (schema/wire/
// wire.capnp, field `report`), so coordinators and tools that know only
// Consumed.step keep working; docs/wire-protocol.md documents the fields.
//
// Thread-safety: TrainerReport is a value. A TrainerReporter may be called
// from any thread (calls are serialized inside).
#ifndef GLM_COORDINATOR_TRAINER_REPORT_H_
#define GLM_COORDINATOR_TRAINER_REPORT_H_

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "coordinator/trainer_group.h"
#include "schema/wire/wire.capnp.h"

namespace glm::coordinator {

// Index of objective_loss / objective_samples: glm::Objective order.
inline constexpr const char* kReportObjectiveNames[3] = {"blank", "sentence", "document"};

struct TrainerReport {
  std::string trainer_id;            // e.g. "trainer/0"
  int64_t rank = 0, world_size = 1;
  int64_t step = 0;                  // optimizer steps finished: global batches [0, step) are consumed
  int64_t max_steps = 0;             // 0 = unbounded
  double loss = NAN;                 // total loss of the last step (NAN: none yet)
  // Last step's loss per objective (blank, sentence, document); NAN where the
  // objective had no samples in the step.
  std::array<double, 3> objective_loss = {NAN, NAN, NAN};
  // Samples of each objective in global batches [0, step), all ranks
  // together: ObjectiveMixer::ConsumedAfter(step). Every rank sends the same.
  std::array<int64_t, 3> objective_samples = {0, 0, 0};
  // lr: last step's learning rate. tokens_per_s: this rank's throughput (the
  // coordinator sums the ranks). data_wait_ms, allreduce_ms, step_ms: the
  // last step's time blocked on its batch, in the gradient all-reduce, and
  // in total.
  double lr = 0, tokens_per_s = 0, data_wait_ms = 0, allreduce_ms = 0, step_ms = 0;
  // Last step's global gradient norm before clipping (NaN: not measured;
  // also what a report from a trainer that predates the field reads as).
  double grad_norm = NAN;
  int64_t checkpoint_step = -1;      // last checkpoint written (-1: none yet)
  double checkpoint_ms = 0;          // its duration

  // InvalidArgument naming the field: trainer_id 1..200 characters, world_size
  // >= 1, 0 <= rank < world_size, step >= 0, max_steps >= 0, sample counts >= 0.
  Status Validate() const;
};

void TrainerReportToWire(const TrainerReport& report, wire::TrainerReport::Builder out);
TrainerReport TrainerReportFromWire(wire::TrainerReport::Reader in);
// JSON form (StatusJson's "trainers" section): NaN values are null.
nlohmann::json TrainerReportToJson(const TrainerReport& report);

class TrainerReporter {
 public:
  // keys_dir: cluster keys (server.pub, client.pub, client.secret; transport/keys.h); "" = plain TCP.
  // Connects in the background (no round trip here): errors are only for bad
  // keys (NotFound / InvalidArgument) or a malformed endpoint (InvalidArgument).
  static StatusOr<std::unique_ptr<TrainerReporter>> Connect(const std::string& coordinator_endpoint,
                                                            const std::string& keys_dir, int timeout_ms = 2000);
  ~TrainerReporter();
  TrainerReporter(const TrainerReporter&) = delete;
  TrainerReporter& operator=(const TrainerReporter&) = delete;

  // Tells the coordinator the step is consumed (Coordinator::Consumed(step - 1): back-pressure) and
  // records the report for /metrics, /api/status and the dashboard. Unavailable/DeadlineExceeded when
  // the coordinator is away (the caller logs and goes on; a later report catches up).
  // Waits at most timeout_ms; after a failure, calls within the next backoff
  // (250 ms doubling to 5 s) fail Unavailable at once instead of waiting
  // again, so a trainer loses at most one timeout while the coordinator is
  // away. InvalidArgument for a report that fails Validate() or that the
  // coordinator refuses.
  Status Report(const TrainerReport& report);

  // The trainer group protocol (coordinator/trainer_group.h): one round trip
  // of at most timeout_ms (0 = the reporter's timeout), without the report
  // backoff. Unavailable / DeadlineExceeded when the coordinator is away (the
  // caller retries), Internal for an unexpected answer.
  StatusOr<TrainerSyncReply> Sync(const TrainerSyncRequest& request, int timeout_ms = 0);
  // `glm checkpoint`: asks the coordinator to have the trainer group write a
  // checkpoint; the step it will be written at (-1: the group's next
  // boundary). FailedPrecondition with the coordinator's reason when refused.
  StatusOr<int64_t> RequestCheckpoint(const std::string& reason);

  uint64_t num_sent() const;    // reports the coordinator acknowledged
  uint64_t num_failed() const;  // reports that did not reach it

  class Channel;  // the socket: CURVE (transport::ClientSocket) or plain TCP

 private:
  TrainerReporter(std::unique_ptr<Channel> channel, std::string endpoint, int timeout_ms);

  mutable std::mutex mu_;
  std::unique_ptr<Channel> channel_;  // guarded by mu_
  const std::string endpoint_;
  const int timeout_ms_;
  uint64_t next_request_id_ = 1;   // guarded by mu_
  int64_t retry_after_ms_ = 0;     // steady ms; guarded by mu_
  int64_t backoff_ms_ = 0;         // guarded by mu_
  uint64_t num_sent_ = 0;          // guarded by mu_
  uint64_t num_failed_ = 0;        // guarded by mu_
};

}  // namespace glm::coordinator

#endif  // GLM_COORDINATOR_TRAINER_REPORT_H_
