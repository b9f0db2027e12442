// glm pipeline: the data pipeline alone on a local cluster: a coordinator
// and N worker processes on loopback, CURVE keys generated into the
// workdir. Prints one JSON line: throughput and the output digest.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cmd/commands.h"
#include "cmd/runtime_options.h"
#include "common/logging.h"
#include "common/options.h"
#include "dataloader/tokenizer.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_tools.h"
#include "transport/keys.h"
#include "worker/digest.h"

namespace glm::cmd {
namespace fs = std::filesystem;

std::string SelfExecutable() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

int SpawnProcess(const std::vector<std::string>& argv, const std::string& log_path, bool own_process_group) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (own_process_group) setpgid(0, 0);
  if (!log_path.empty()) {
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

StatusOr<std::string> StartLocalStoreServer(const std::string& store_dir, const std::string& tokenizer_dir,
                                            const std::string& keys_dir, const std::string& endpoint_file,
                                            const std::string& log_path, bool own_process_group, int* pid) {
  std::error_code ec;
  fs::remove(endpoint_file, ec);
  *pid = SpawnProcess({SelfExecutable(), "store", "serve", "--store", store_dir, "--tokenizer", tokenizer_dir,
                       "--bind", "tcp://127.0.0.1:" + std::to_string(FreePort()), "--keys", keys_dir,
                       "--endpoint-file", endpoint_file},
                      log_path, own_process_group);
  std::string endpoint;
  for (int i = 0; i < 1200 && endpoint.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::ifstream in(endpoint_file);
    std::getline(in, endpoint);
    if (endpoint.empty() && waitpid(*pid, nullptr, WNOHANG) == *pid) {
      *pid = -1;
      return UnavailableError("the storage server did not start (it exited); see " + log_path);
    }
  }
  if (endpoint.empty()) {
    kill(*pid, SIGKILL);
    waitpid(*pid, nullptr, 0);
    *pid = -1;
    return UnavailableError("the storage server did not start within 60 s; see " + log_path);
  }
  return endpoint;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

namespace {

struct PipelineOptions {
  std::string workdir = "runs/pipeline";  // Default: runs/pipeline
  int64_t workers = 2;                    // Default: 2 worker processes
  double worker_cpu = 1;                  // Default: 1 pipeline actor per worker
  bool fresh = true;                      // Default: true (wipe the workdir's state first)
  int64_t timeout_s = 3600;               // Default: 3600
  // executor "glm" only (the real data path):
  std::string tokenizer;                  // Default: "" = train one into WORKDIR/tokenizer first
  int32_t tokenizer_vocab_size = 8000;    // Default: 8000 (trained tokenizer only)
  int64_t tokenizer_max_sentences = 300000;  // Default: 300000 (trained tokenizer only)
  std::string text_split = "blank-line";  // Default: blank-line; or file (one document per file)
  int32_t seq_len = 512;                  // Default: 512 (SampleOptions::seq_length)
  double document_min_ratio = 0.5;        // Default: 0.5
  coordinator::JobOptions job;
  coordinator::CoordinatorOptions coordinator;

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("workers", workers, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("timeout-s", timeout_s, 1));
    GLM_RETURN_IF_ERROR(RequireInRange("worker-cpu", worker_cpu, 1, 1024));
    GLM_RETURN_IF_ERROR(RequireOneOf("text-split", text_split, {"blank-line", "file"}));
    GLM_RETURN_IF_ERROR(RequireAtLeast("seq-len", seq_len, 8));
    GLM_RETURN_IF_ERROR(RequireAtLeast("tokenizer-vocab-size", tokenizer_vocab_size, 64));
    GLM_RETURN_IF_ERROR(coordinator.Validate());
    return job.Validate();
  }
};

int RunPipeline(PipelineOptions o) {
  InitLogging("pipeline").IgnoreError();
  if (Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm pipeline: %s\n", s.message().c_str());
    return kExitUsage;
  }
  fs::path workdir = fs::absolute(o.workdir);
  std::error_code ec;
  if (o.fresh) {
    fs::remove_all(workdir / "state", ec);
    fs::remove_all(workdir / "output", ec);
    fs::remove_all(workdir / "store", ec);
  }
  fs::create_directories(workdir / "logs", ec);
  if (Status s = transport::GenerateClusterKeys((workdir / "keys").string(), true); !s.ok()) {
    std::fprintf(stderr, "glm pipeline: %s\n", s.message().c_str());
    return kExitFailure;
  }
  coordinator::JobOptions job = o.job;
  job.corpus = fs::absolute(job.corpus).string();
  if (job.output_dir.empty()) job.output_dir = (workdir / "output").string();
  std::string self = SelfExecutable();
  std::string keys = (workdir / "keys").string();
  const bool real = job.executor == "glm";
  auto wall_start = std::chrono::steady_clock::now();
  int store_pid = -1;
  std::string store_dir = (workdir / "store").string();
  if (real) {
    // 1. The tokenizer: given, or trained on the job's corpus first.
    std::string tokenizer_dir = o.tokenizer.empty() ? (workdir / "tokenizer").string() : fs::absolute(o.tokenizer).string();
    auto files = coordinator::ListCorpusFiles(job.corpus);
    if (!files.ok()) {
      std::fprintf(stderr, "glm pipeline: %s\n", files.status().message().c_str());
      return kExitUsage;
    }
    const bool have_tokenizer = dataloader::GlmTokenizer::Load(tokenizer_dir).ok();
    if (o.tokenizer.empty() && have_tokenizer) {
      std::fprintf(stderr, "glm pipeline: reusing the tokenizer in %s (delete it to train a new one)\n",
                   tokenizer_dir.c_str());
    }
    if (o.tokenizer.empty() && !have_tokenizer) {
      dataloader::TokenizerTrainOptions t;
      t.corpus.paths = *files;
      t.corpus.text_split = o.text_split;
      t.output_dir = tokenizer_dir;
      t.vocab_size = o.tokenizer_vocab_size;
      t.max_sentences = o.tokenizer_max_sentences;
      t.seed = job.seed;
      std::fprintf(stderr, "glm pipeline: training a %d-piece tokenizer on %zu files into %s\n", o.tokenizer_vocab_size,
                   files->size(), tokenizer_dir.c_str());
      auto trained = dataloader::TrainTokenizer(t, [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); });
      if (!trained.ok()) {
        std::fprintf(stderr, "glm pipeline: training the tokenizer: %s\n", trained.status().ToString().c_str());
        return kExitFailure;
      }
    }
    // 2. The storage actor: one process owns the store; executors reach it
    //    over CurveZMQ with the cluster's keys.
    auto started = StartLocalStoreServer(store_dir, tokenizer_dir, keys, (workdir / "store.endpoint").string(),
                                         (workdir / "logs" / "store.log").string(), false, &store_pid);
    if (!started.ok()) {
      std::fprintf(stderr, "glm pipeline: %s\n", started.status().message().c_str());
      return kExitFailure;
    }
    const std::string store_endpoint = *started;
    char buf[64];
    std::string params = "store=" + store_endpoint + ",store_keys=" + keys + ",tokenizer=" + tokenizer_dir +
                         ",text_split=" + o.text_split + ",seq_len=" + std::to_string(o.seq_len);
    std::snprintf(buf, sizeof(buf), ",document_min_ratio=%.17g", o.document_min_ratio);
    params += buf;
    job.params = job.params.empty() ? params : job.params + "," + params;
    spdlog::info("storage server {} (pid {}) serving {}", store_endpoint, store_pid, store_dir);
  }
  std::ofstream(workdir / "job.json") << job.ToJson().dump(2);
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
  auto opt = [](const std::string& name, int64_t v) { return std::vector<std::string>{"--" + name, std::to_string(v)}; };
  std::vector<std::string> cargs = {self, "coordinator", "--bind", endpoint, "--state", (workdir / "state").string(),
                                    "--keys", keys, "--job-file", (workdir / "job.json").string()};
  for (auto& kv : {opt("heartbeat-interval-ms", o.coordinator.heartbeat_interval_ms),
                   opt("node-timeout-ms", o.coordinator.node_timeout_ms), opt("lease-ms", o.coordinator.lease_ms),
                   opt("max-attempts", o.coordinator.max_attempts)}) {
    cargs.insert(cargs.end(), kv.begin(), kv.end());
  }
  auto start = std::chrono::steady_clock::now();
  int coordinator_pid = SpawnProcess(cargs, (workdir / "logs" / "coordinator.log").string());
  std::vector<int> worker_pids;
  for (int64_t i = 0; i < o.workers; ++i) {
    char res[64];
    std::snprintf(res, sizeof(res), "cpu=%g,gpu=0", o.worker_cpu);
    worker_pids.push_back(SpawnProcess({self, "worker", "--coordinator", endpoint, "--keys", keys, "--resources", res,
                                        "--node-id", "local-" + std::to_string(i)},
                                       (workdir / "logs" / ("worker-" + std::to_string(i) + ".log")).string()));
  }
  spdlog::info("local cluster: coordinator {} (pid {}), {} workers; logs in {}", endpoint, coordinator_pid,
               o.workers, (workdir / "logs").string());
  nlohmann::json status;
  bool done = false;
  auto last_progress = start;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(o.timeout_s)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto j = QueryCoordinatorStatus(endpoint, keys, 2000);
    if (!j.ok()) continue;
    status = *j;
    if (std::chrono::steady_clock::now() - last_progress >= std::chrono::seconds(1)) {
      last_progress = std::chrono::steady_clock::now();
      std::fprintf(stderr, "glm pipeline: %.0f s  documents %s  samples %s  corpus MB %.2f\n",
                   std::chrono::duration<double>(last_progress - start).count(), status["documents"].dump().c_str(),
                   status["samples"].dump().c_str(), status.value("corpus_bytes_done", uint64_t{0}) / 1e6);
    }
    if (status.value("done", false)) {
      done = true;
      break;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Workers leave by themselves once the job is done; then stop the coordinator.
  for (int pid : worker_pids) {
    if (!done) kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
  kill(coordinator_pid, SIGTERM);
  waitpid(coordinator_pid, nullptr, 0);
  if (store_pid > 0) {
    kill(store_pid, SIGTERM);
    waitpid(store_pid, nullptr, 0);
  }
  if (!done) {
    std::fprintf(stderr, "glm pipeline: not done after %lld s; see %s\n", static_cast<long long>(o.timeout_s),
                 (workdir / "logs").string().c_str());
    return kExitFailure;
  }
  uint64_t bytes = status.value("corpus_bytes_done", uint64_t{0});
  double cores = static_cast<double>(o.workers) * o.worker_cpu;
  if (real) {
    storage::StoreOptions so;
    so.path = store_dir;
    so.mode = storage::OpenMode::kReadOnly;
    auto store = storage::RocksDbSampleStore::Open(so);
    if (!store.ok()) {
      std::fprintf(stderr, "glm pipeline: %s\n", store.status().ToString().c_str());
      return kExitFailure;
    }
    auto digest = storage::DigestStore(store->get());
    if (!digest.ok()) {
      std::fprintf(stderr, "glm pipeline: %s\n", digest.status().ToString().c_str());
      return kExitFailure;
    }
    double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    nlohmann::json out = {{"command", "pipeline"},
                          {"store", store_dir},
                          {"digest", digest->hex},
                          {"documents", digest->num_documents},
                          {"samples", digest->num_samples},
                          {"samples_by_objective", status["samples"]},
                          {"seconds", seconds},
                          {"seconds_total", total},  // tokenizer trained or loaded, store started, run
                          {"corpus_bytes", bytes},
                          {"mb_per_s", bytes / 1e6 / seconds},
                          {"mb_per_s_per_core", bytes / 1e6 / seconds / cores},
                          {"workers", o.workers},
                          {"cores", cores},
                          {"dead_letters", status["dead_letters"].size()}};
    std::cout << out.dump() << std::endl;
    return status["dead_letters"].empty() ? kExitOk : kExitFailure;
  }
  auto digest = worker::DigestOutput(job.output_dir);
  if (!digest.ok()) {
    std::fprintf(stderr, "glm pipeline: %s\n", digest.status().message().c_str());
    return kExitFailure;
  }
  nlohmann::json out = {{"command", "pipeline"},
                        {"digest", digest->sha256_hex},
                        {"records", digest->num_records},
                        {"records_by_prefix", digest->records_by_prefix},
                        {"seconds", seconds},
                        {"corpus_bytes", bytes},
                        {"mb_per_s", bytes / 1e6 / seconds},
                        {"mb_per_s_per_core", bytes / 1e6 / seconds / cores},
                        {"workers", o.workers},
                        {"samples", status["samples"]},
                        {"documents", status["documents"]},
                        {"dead_letters", status["dead_letters"].size()}};
  std::cout << out.dump() << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterPipelineCommand(CLI::App* app, CommandRegistry* registry) {
  auto o = std::make_shared<PipelineOptions>();
  CLI::App* sub = app->add_subcommand("pipeline", "Run the data pipeline alone on a local cluster");
  AddConfigOption(sub, "");
  AddOption(sub, "workdir", &o->workdir, "Directory for keys, coordinator state, output and logs");
  AddOption(sub, "workers", &o->workers, "Worker processes to start");
  AddOption(sub, "worker-cpu", &o->worker_cpu, "cpu each worker declares (one pipeline actor per cpu)");
  AddOption(sub, "fresh", &o->fresh, "Wipe the workdir's state and output first");
  AddOption(sub, "timeout-s", &o->timeout_s, "Give up after this many seconds");
  AddOption(sub, "tokenizer", &o->tokenizer, "executor glm: tokenizer directory (\"\" = train one into WORKDIR/tokenizer)");
  AddOption(sub, "tokenizer-vocab-size", &o->tokenizer_vocab_size, "executor glm: vocabulary of a trained tokenizer");
  AddOption(sub, "tokenizer-max-sentences", &o->tokenizer_max_sentences, "executor glm: sentences to train it on");
  AddOption(sub, "text-split", &o->text_split, "executor glm: plain text documents: blank-line or file");
  AddOption(sub, "seq-len", &o->seq_len, "executor glm: sample length (SampleOptions::seq_length)");
  AddOption(sub, "document-min-ratio", &o->document_min_ratio, "executor glm: document objective's minimum span ratio");
  AddJobOptions(sub, &o->job);
  AddCoordinatorOptions(sub, &o->coordinator);
  registry->Add(sub, [o] { return RunPipeline(*o); }, [o] { return o->Validate(); });
}

}  // namespace glm::cmd
