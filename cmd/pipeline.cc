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
#include "transport/keys.h"
#include "worker/digest.h"

namespace glm::cmd {
namespace fs = std::filesystem;

std::string SelfExecutable() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

int SpawnProcess(const std::vector<std::string>& argv, const std::string& log_path) {
  pid_t pid = fork();
  if (pid != 0) return pid;
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

namespace {

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

struct PipelineOptions {
  std::string workdir = "runs/pipeline";  // Default: runs/pipeline
  int64_t workers = 2;                    // Default: 2 worker processes
  double worker_cpu = 1;                  // Default: 1 pipeline actor per worker
  bool fresh = true;                      // Default: true (wipe the workdir's state first)
  int64_t timeout_s = 3600;               // Default: 3600
  coordinator::JobOptions job;
  coordinator::CoordinatorOptions coordinator;

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("workers", workers, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("timeout-s", timeout_s, 1));
    GLM_RETURN_IF_ERROR(RequireInRange("worker-cpu", worker_cpu, 1, 1024));
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
  }
  fs::create_directories(workdir / "logs", ec);
  if (Status s = transport::GenerateClusterKeys((workdir / "keys").string(), true); !s.ok()) {
    std::fprintf(stderr, "glm pipeline: %s\n", s.message().c_str());
    return kExitFailure;
  }
  coordinator::JobOptions job = o.job;
  job.corpus = fs::absolute(job.corpus).string();
  if (job.output_dir.empty()) job.output_dir = (workdir / "output").string();
  std::ofstream(workdir / "job.json") << job.ToJson().dump(2);
  std::string endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
  std::string self = SelfExecutable();
  std::string keys = (workdir / "keys").string();
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
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(o.timeout_s)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto j = QueryCoordinatorStatus(endpoint, keys, 2000);
    if (!j.ok()) continue;
    status = *j;
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
  if (!done) {
    std::fprintf(stderr, "glm pipeline: not done after %lld s; see %s\n", static_cast<long long>(o.timeout_s),
                 (workdir / "logs").string().c_str());
    return kExitFailure;
  }
  auto digest = worker::DigestOutput(job.output_dir);
  if (!digest.ok()) {
    std::fprintf(stderr, "glm pipeline: %s\n", digest.status().message().c_str());
    return kExitFailure;
  }
  uint64_t bytes = status.value("corpus_bytes_done", uint64_t{0});
  double cores = static_cast<double>(o.workers) * o.worker_cpu;
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
  AddJobOptions(sub, &o->job);
  AddCoordinatorOptions(sub, &o->coordinator);
  registry->Add(sub, [o] { return RunPipeline(*o); });
}

}  // namespace glm::cmd
