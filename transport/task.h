// TaskSpec: one unit of leased work as the coordinator hands it out and an
// executor receives it (the plain C++ form of wire::Task).
//
// Thread-safety: plain value.
#ifndef GLM_TRANSPORT_TASK_H_
#define GLM_TRANSPORT_TASK_H_

#include <cstdint>
#include <string>

#include "schema/wire/wire.capnp.h"

namespace glm {

struct TaskSpec {
  std::string id;     // deterministic: "tokenize/000012", "corrupt/blank/0000/0000000200"
  std::string kind;   // "tokenize", "corrupt", "noop"
  uint32_t attempt = 0;   // 1 for the first lease
  uint64_t lease_id = 0;  // echo in TaskDone / TaskFailed
  uint32_t lease_ms = 0;  // lease length, renewed by heartbeats
  // kind "tokenize": a corpus shard
  uint32_t shard_index = 0;
  std::string shard_path;
  uint64_t begin_byte = 0;
  uint64_t end_byte = 0;  // 0 = end of file
  // kind "corrupt": samples [begin, end) of (objective, epoch)
  int objective = 0;  // glm::Objective
  uint32_t epoch = 0;
  uint64_t begin = 0;
  uint64_t end = 0;
};

inline void TaskSpecToWire(const TaskSpec& s, wire::Task::Builder t) {
  t.setId(s.id);
  t.setKind(s.kind);
  t.setAttempt(s.attempt);
  t.setLeaseId(s.lease_id);
  t.setLeaseMs(s.lease_ms);
  if (s.kind == "tokenize") {
    auto p = t.initShard();
    p.setIndex(s.shard_index);
    p.setPath(s.shard_path);
    p.setBeginByte(s.begin_byte);
    p.setEndByte(s.end_byte);
  } else if (s.kind == "corrupt") {
    auto p = t.initCorrupt();
    p.setObjective(static_cast<uint8_t>(s.objective));
    p.setEpoch(s.epoch);
    p.setBegin(s.begin);
    p.setEnd(s.end);
  } else {
    t.setNone();
  }
}

inline TaskSpec TaskSpecFromWire(wire::Task::Reader t) {
  TaskSpec s;
  s.id = t.getId().cStr();
  s.kind = t.getKind().cStr();
  s.attempt = t.getAttempt();
  s.lease_id = t.getLeaseId();
  s.lease_ms = t.getLeaseMs();
  if (t.isShard()) {
    auto p = t.getShard();
    s.shard_index = p.getIndex();
    s.shard_path = p.getPath().cStr();
    s.begin_byte = p.getBeginByte();
    s.end_byte = p.getEndByte();
  } else if (t.isCorrupt()) {
    auto p = t.getCorrupt();
    s.objective = p.getObjective();
    s.epoch = p.getEpoch();
    s.begin = p.getBegin();
    s.end = p.getEnd();
  }
  return s;
}

}  // namespace glm

#endif  // GLM_TRANSPORT_TASK_H_
