// The "test" executor family: simple, real, deterministic executors that let
// the runtime prove its exactly-once properties with real processes before
// the real tokenizer, corruption and storage executors are plugged in.
//
//   tokenize: reads the shard's bytes, splits documents at blank lines, and
//     writes doc/<shard:06>/<n:08> -> FNV-1a hashes of the words, one per
//     document, in one atomic batch.
//   corrupt:  writes sample/<objective>/<epoch:04>/<index:010> -> 32 bytes of
//     a counter-based hash of (seed, objective, epoch, index), in one batch.
//   noop:     nothing (the coordinator benchmark).
// Params: item_delay_us (sleep per record, to make runs long enough to
// kill things in), fail_task (a task id that always fails, retryable).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "schema/records.h"
#include "worker/executor.h"

namespace glm::worker {
namespace {
namespace fs = std::filesystem;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint32_t Fnv1a(const std::string& s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) h = (h ^ c) * 16777619u;
  return h;
}

// One RocksDB per node and process, shared by the node's actor threads.
std::shared_ptr<rocksdb::DB> NodeStore(const std::string& path, Status* status) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<rocksdb::DB>> open;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto db = open[path].lock()) return db;
  std::error_code ec;
  fs::create_directories(path, ec);
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) {
    *status = UnavailableError("cannot open node store " + path + ": " + s.ToString());
    return nullptr;
  }
  std::shared_ptr<rocksdb::DB> db(raw);
  open[path] = db;
  return db;
}

class TestExecutor : public TaskExecutor {
 public:
  explicit TestExecutor(std::shared_ptr<rocksdb::DB> db, const ExecutorContext& context)
      : db_(std::move(db)) {
    delay_us_ = std::stoll(context.job().Param("item_delay_us", "0"));
    fail_task_ = context.job().Param("fail_task");
  }

  StatusOr<TaskResult> Run(const TaskSpec& task, const ExecutorContext& context) override {
    if (!fail_task_.empty() && task.id == fail_task_) return UnavailableError("injected failure (fail_task)");
    if (task.kind == "tokenize") return Tokenize(task, context);
    if (task.kind == "corrupt") return Corrupt(task, context);
    return TaskResult{};
  }

 private:
  Status Pause(const ExecutorContext& context) {
    if (context.cancelled()) return AbortedError("worker is draining");
    if (delay_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us_));
    return Status::Ok();
  }

  Status Commit(rocksdb::WriteBatch* batch) {
    rocksdb::Status s = db_->Write(rocksdb::WriteOptions(), batch);
    if (!s.ok()) return UnavailableError("node store write failed: " + s.ToString());
    return Status::Ok();
  }

  StatusOr<TaskResult> Tokenize(const TaskSpec& task, const ExecutorContext& context) {
    std::ifstream in(task.shard_path, std::ios::binary);
    if (!in) return FailedPreconditionError("cannot read shard " + task.shard_path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    uint64_t end = task.end_byte ? std::min<uint64_t>(task.end_byte, text.size()) : text.size();
    text = text.substr(std::min<uint64_t>(task.begin_byte, end), end - std::min<uint64_t>(task.begin_byte, end));
    rocksdb::WriteBatch batch;
    uint64_t docs = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t next = text.find("\n\n", pos);
      if (next == std::string::npos) next = text.size();
      std::string doc = text.substr(pos, next - pos);
      pos = next + 2;
      std::string value;
      size_t w = 0;
      while (w < doc.size()) {
        size_t e = doc.find_first_of(" \t\n\r", w);
        if (e == std::string::npos) e = doc.size();
        if (e > w) value += std::to_string(Fnv1a(doc.substr(w, e - w))) + " ";
        w = e + 1;
      }
      if (value.empty()) continue;
      GLM_RETURN_IF_ERROR(Pause(context));
      char key[48];
      std::snprintf(key, sizeof(key), "doc/%06u/%08" PRIu64, task.shard_index, docs++);
      batch.Put(key, value);
    }
    GLM_RETURN_IF_ERROR(Commit(&batch));
    return TaskResult{docs, text.size()};
  }

  StatusOr<TaskResult> Corrupt(const TaskSpec& task, const ExecutorContext& context) {
    rocksdb::WriteBatch batch;
    std::string name(ObjectiveName(static_cast<Objective>(task.objective)));
    uint64_t seed = context.job().seed;
    for (uint64_t i = task.begin; i < task.end; ++i) {
      GLM_RETURN_IF_ERROR(Pause(context));
      uint64_t h = SplitMix64(seed ^ SplitMix64((uint64_t(task.objective) << 56) ^ (uint64_t(task.epoch) << 40) ^ i));
      std::string value;
      for (int k = 0; k < 4; ++k) {
        h = SplitMix64(h);
        value.append(reinterpret_cast<const char*>(&h), 8);
      }
      char key[64];
      std::snprintf(key, sizeof(key), "sample/%s/%04u/%010" PRIu64, name.c_str(), task.epoch, i);
      batch.Put(key, value);
    }
    GLM_RETURN_IF_ERROR(Commit(&batch));
    return TaskResult{task.end - task.begin, 0};
  }

  std::shared_ptr<rocksdb::DB> db_;
  int64_t delay_us_ = 0;
  std::string fail_task_;
};

}  // namespace

void RegisterTestExecutors(ExecutorRegistry* registry) {
  ExecutorFactory factory = [](const ExecutorContext& context) -> StatusOr<std::unique_ptr<TaskExecutor>> {
    Status status;
    std::string path = (fs::path(context.job().output_dir) / "nodes" / context.node_id()).string();
    auto db = NodeStore(path, &status);
    if (!db) return status;
    return std::unique_ptr<TaskExecutor>(new TestExecutor(std::move(db), context));
  };
  for (const char* kind : {"tokenize", "corrupt", "noop"}) registry->Register("test", kind, factory);
}

}  // namespace glm::worker
