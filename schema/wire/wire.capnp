# glm wire protocol: every message between the coordinator and node agents
# (workers), and between benchmark peers. Documented in docs/wire-protocol.md.
#
# One ZeroMQ message part carries exactly one Envelope, serialised as a Cap'n
# Proto flat array (unpacked, segment table first). The receiver reads it with
# traversal and nesting limits and drops (and counts) anything it cannot
# decode or does not expect; nothing on the wire is ever fatal.
#
# Versioning: `Envelope.version` is the protocol major version (kWireVersion
# in transport/codec.h, currently 1). A receiver drops envelopes of another
# major version and answers a Register with RegisterAck.accepted = false and a
# reason. Within a major version, fields are only ever added (Cap'n Proto's
# rules keep old readers and writers compatible); a removed meaning bumps the
# version.
@0x8e7ffe4c3cca72c0;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("glm::wire");

# Resources a node declares and an actor demands. Units: cpu in cores,
# gpu in devices, memory in MiB.
struct Resources {
  cpu @0 :Float64;       # cores (may be fractional)
  gpu @1 :Float64;       # accelerator devices
  memoryMb @2 :UInt64;   # MiB of host memory
}

# One free-form setting of the job (executor parameters the runtime does not
# interpret, e.g. a tokenizer path).
struct Param {
  key @0 :Text;
  value @1 :Text;
}

# The settings every process of a job must agree on, issued by the
# coordinator in RegisterAck (never per-process flags).
struct JobSpec {
  jobId @0 :Text;            # stable name of the job; part of every output path
  seed @1 :UInt64;           # job seed (contract 1: samples are pure functions of it)
  outputDir @2 :Text;        # where executors write their stores
  executor @3 :Text;         # executor family the workers must run, e.g. "test"
  params @4 :List(Param);    # executor settings, passed through untouched
}

# One unit of leased work. `id` is deterministic (derived from what the task
# is), so a retried task is recognisably the same task.
struct Task {
  id @0 :Text;               # e.g. "tokenize/000012", "corrupt/blank/0/000000200-000000300"
  kind @1 :Text;             # executor kind: "tokenize", "corrupt", "noop"
  attempt @2 :UInt32;        # 1 for the first lease, 2 for the first retry, ...
  leaseId @3 :UInt64;        # names this lease; echoed in TaskDone/TaskFailed
  leaseMs @4 :UInt32;        # the lease lasts this long unless renewed by heartbeats
  union {
    none @5 :Void;           # kinds without parameters (noop)
    shard @6 :ShardParams;   # kind "tokenize"
    corrupt @7 :CorruptParams;  # kind "corrupt"
  }
}

# A corpus shard: one file (or a byte range of it).
struct ShardParams {
  index @0 :UInt32;          # dense shard index in the manifest
  path @1 :Text;             # file path as the coordinator sees it (shared file system)
  beginByte @2 :UInt64;      # first byte of the shard
  endByte @3 :UInt64;        # one past the last byte; 0 = end of file
}

# A range of samples of one objective in one epoch.
struct CorruptParams {
  objective @0 :UInt8;       # glm::Objective: 0 blank, 1 sentence, 2 document
  epoch @1 :UInt32;          # epoch number, from 0
  begin @2 :UInt64;          # first sample index within (objective, epoch)
  end @3 :UInt64;            # one past the last sample index
}

# An actor the coordinator placed on a node.
struct ActorAssignment {
  actorId @0 :Text;          # e.g. "pipeline/node-a/0" or "trainer/3"
  kind @1 :Text;             # actor kind; selects the actor body on the worker
  taskKinds @2 :List(Text);  # task kinds this actor leases
}

# worker -> coordinator: hello (first message, and again after the
# coordinator answered `reregister`).
struct Register {
  nodeId @0 :Text;           # chosen by the worker, unique per process start
  resources @1 :Resources;   # what the node offers
  hostname @2 :Text;         # for humans (glm status)
  pid @3 :UInt32;            # for humans
}

# coordinator -> worker: the answer to Register.
struct RegisterAck {
  accepted @0 :Bool;
  reason @1 :Text;                      # why not, when refused
  job @2 :JobSpec;                      # the job's settings
  actors @3 :List(ActorAssignment);     # actors this node must host now
  heartbeatIntervalMs @4 :UInt32;       # send Heartbeat this often
}

# worker -> coordinator, every heartbeatIntervalMs.
struct Heartbeat {
  nodeId @0 :Text;
  heldLeases @1 :List(UInt64);   # leases the node's actors still work on; renewed
  draining @2 :Bool;             # SIGTERM received: lease nothing new to this node
}

# coordinator -> worker: the answer to Heartbeat.
struct HeartbeatAck {
  reregister @0 :Bool;                  # unknown node (e.g. coordinator restarted): send Register
  actors @1 :List(ActorAssignment);     # the node's full actor set now (start new, stop missing)
  jobDone @2 :Bool;                     # no work will ever come: the worker may exit
}

# actor -> coordinator: give me a task I can run.
struct LeaseRequest {
  nodeId @0 :Text;
  actorId @1 :Text;
  taskKinds @2 :List(Text);      # kinds this actor runs
}

# coordinator -> actor.
struct LeaseReply {
  union {
    task @0 :Task;               # a lease
    retryAfterMs @1 :UInt32;     # nothing now (back-pressure, dependencies); ask again later
    jobDone @2 :Void;            # nothing ever again
    reregister @3 :Void;         # unknown node: register first
  }
}

# actor -> coordinator: the leased task finished; its outputs are written.
struct TaskDone {
  nodeId @0 :Text;
  taskId @1 :Text;
  leaseId @2 :UInt64;
  outputCount @3 :UInt64;        # records written (documents for tokenize, samples for corrupt)
  outputBytes @4 :UInt64;        # input bytes consumed (for throughput)
}

# actor -> coordinator: the leased task failed.
struct TaskFailed {
  nodeId @0 :Text;
  taskId @1 :Text;
  leaseId @2 :UInt64;
  reason @3 :Text;               # kept in the dead-letter list if retries run out
  retryable @4 :Bool;            # false: dead-letter at once
  abandoned @5 :Bool;            # given back unrun or unfinished (SIGTERM): re-queue, no attempt counted
}

# worker -> coordinator: an actor died (its body threw or returned an error).
struct ActorFailed {
  nodeId @0 :Text;
  actorId @1 :Text;
  reason @2 :Text;
}

# any -> coordinator: the consumer (trainers) has consumed every global batch
# up to and including step `step`; production may run further ahead.
# A trainer sends it after each optimizer step with `report` set (step =
# report.step - 1); the coordinator keeps the report for /metrics,
# /api/status, the dashboard and `glm status`. Senders without a report
# (and coordinators that predate it) use `step` alone.
struct Consumed {
  step @0 :Int64;
  report @1 :TrainerReport;      # optional: absent = back-pressure only
}

# One trainer rank's progress after an optimizer step (coordinator/
# trainer_report.h). Times in milliseconds; NaN = not measured / objective
# absent from the step.
struct TrainerReport {
  trainerId @0 :Text;            # e.g. "trainer/0"
  rank @1 :Int64;
  worldSize @2 :Int64;
  step @3 :Int64;                # optimizer steps finished: batches [0, step) consumed
  maxSteps @4 :Int64;            # 0 = unbounded
  loss @5 :Float64;              # total loss of the last step
  objectiveLoss @6 :List(Float64);    # [blank, sentence, document]
  objectiveSamples @7 :List(Int64);   # [blank, sentence, document], cumulative over batches [0, step)
  lr @8 :Float64;
  tokensPerS @9 :Float64;        # this rank's training throughput
  dataWaitMs @10 :Float64;       # last step: time blocked on the next batch
  allreduceMs @11 :Float64;      # last step: gradient all-reduce
  stepMs @12 :Float64;           # last step: wall time
  checkpointStep @13 :Int64 = -1;  # last checkpoint written (-1: none yet)
  checkpointMs @14 :Float64;     # its duration
  gradNorm @15 :Float64 = nan;   # last step: global gradient norm before clipping (NaN: not sent)
}

# coordinator -> sender of TaskDone / TaskFailed / ActorFailed / Consumed.
struct Ack {
  ok @0 :Bool;
  detail @1 :Text;
}

# glm status -> coordinator.
struct StatusRequest {
  unused @0 :Void;
}

# coordinator -> glm status: a JSON document (schema in docs/wire-protocol.md),
# human-facing and free to grow without a version bump.
struct StatusReply {
  json @0 :Text;
}

# trainer -> coordinator: the trainer group protocol (coordinator/
# trainer_group.h): joining, every step boundary, a failed collective, and a
# liveness beat. Answered by TrainerSyncReply.
struct TrainerSync {
  kind @0 :Kind;
  trainerId @1 :Text;        # unique per trainer process, e.g. "host/1234/9f3a"
  generation @2 :Int64;      # the generation the trainer is in (-1: none yet)
  rank @3 :Int64;            # its rank there
  worldSize @4 :Int64;       # that generation's size
  step @5 :Int64;            # completed optimizer steps
  leaving @6 :Bool;          # kind boundary: SIGTERM received, leave the group

  enum Kind {
    join @0;                 # wants into the group
    boundary @1;             # finished `step` steps: what now?
    failed @2;               # a collective of `generation` failed: next membership?
    heartbeat @3;            # alive (sent every second from a background thread)
  }
}

# coordinator -> trainer.
struct TrainerSyncReply {
  action @0 :Action;
  generation @1 :Int64;      # action switch: the membership to join
  rank @2 :Int64;
  worldSize @3 :Int64;
  checkpoint @4 :Bool;       # write a checkpoint at this boundary first
  retryAfterMs @5 :UInt32;   # action wait: ask again after this long
  reason @6 :Text;           # action wait / stop: for the log
  storeHost @7 :Text;        # the c10d rendezvous store ("" = the coordinator's host)
  storePort @8 :Int32;       # 0 = none: the trainer must have been given one

  enum Action {
    continue @0;             # train the next step
    switch @1;               # join generation/rank/worldSize (SyncState) now
    wait @2;                 # not yet: ask again
    stop @3;                 # leave (after the checkpoint, if asked)
  }
}

# glm checkpoint -> coordinator: checkpoint the trainer group soon.
struct CheckpointRequest {
  reason @0 :Text;           # for the log
}

# coordinator -> glm checkpoint.
struct CheckpointReply {
  accepted @0 :Bool;
  step @1 :Int64;            # the boundary it will be written at (-1: the group's next one)
  detail @2 :Text;           # why not, when refused
}

# Benchmark call (glm bench rpc): echo `payload` back in Pong.
struct Ping {
  id @0 :UInt64;
  payload @1 :Data;
}

struct Pong {
  id @0 :UInt64;
  payload @1 :Data;
}

struct Envelope {
  version @0 :UInt16;   # protocol major version; 1
  requestId @16 :UInt64;  # set by the caller; a reply echoes its request's id (0 = none)
  union {
    register @1 :Register;
    registerAck @2 :RegisterAck;
    heartbeat @3 :Heartbeat;
    heartbeatAck @4 :HeartbeatAck;
    leaseRequest @5 :LeaseRequest;
    leaseReply @6 :LeaseReply;
    taskDone @7 :TaskDone;
    taskFailed @8 :TaskFailed;
    actorFailed @9 :ActorFailed;
    consumed @10 :Consumed;
    ack @11 :Ack;
    statusRequest @12 :StatusRequest;
    statusReply @13 :StatusReply;
    ping @14 :Ping;
    pong @15 :Pong;
    trainerSync @17 :TrainerSync;
    trainerSyncReply @18 :TrainerSyncReply;
    checkpointRequest @19 :CheckpointRequest;
    checkpointReply @20 :CheckpointReply;
  }
}
