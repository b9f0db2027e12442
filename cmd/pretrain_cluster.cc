#include "cmd/pretrain_cluster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "cmd/commands.h"
#include "cmd/runtime_options.h"
#include "common/logging.h"
#include "coordinator/job.h"
#include "dataloader/tokenizer.h"
#include "storage/rocksdb_sample_store.h"
#include "transport/keys.h"
#include "worker/trainer/batch_plan.h"
#include "worker/training/dataset.h"

namespace glm::cmd {
namespace fs = std::filesystem;

std::vector<std::string> ConfigArgs(const training::PretrainConfig& c) {
  auto num = [](double v) {
    char b[40];
    std::snprintf(b, sizeof b, "%.17g", v);
    return std::string(b);
  };
  auto i = [](int64_t v) { return std::to_string(v); };
  return {"--preset",           c.model_preset,
          "--corpus",           c.corpus,
          "--vocab-size",       i(c.vocab_size),
          "--tokenizer-max-sentences", i(c.tokenizer_max_sentences),
          "--seq-length",       i(c.seq_length),
          "--heldout-every",    i(c.heldout_every),
          "--validation-samples", i(c.validation_samples),
          "--data-seed",        std::to_string(c.data_seed),
          "--objectives-blank", num(c.objective_weights[0]),
          "--objectives-sentence", num(c.objective_weights[1]),
          "--objectives-document", num(c.objective_weights[2]),
          "--max-steps",        i(c.max_steps),
          "--global-batch-size", i(c.global_batch_size),
          "--micro-batch-size", i(c.micro_batch_size),
          "--lr",               num(c.lr),
          "--warmup",           num(c.warmup),
          "--decay",            c.decay,
          "--min-lr-ratio",     num(c.min_lr_ratio),
          "--weight-decay",     num(c.weight_decay),
          "--checkpoint-every", i(c.checkpoint_every),
          "--keep-checkpoints", i(c.keep_checkpoints),
          "--seed",             std::to_string(c.seed),
          "--threads",          i(c.threads),
          "--overlap-allreduce", c.overlap_allreduce ? "true" : "false",
          "--infill-examples",  i(c.infill_examples)};
}

namespace {

void Say(const std::string& line) {
  std::fprintf(stderr, "glm pretrain: %s\n", line.c_str());
  std::fflush(stderr);
}

// One child process of the local cluster.
struct Child {
  std::string name;  // "store", "coordinator", "worker-0", "trainer-0"
  int pid = -1;
  std::string log;   // "" = the terminal
  bool exited = false;
  int status = 0;
};

class LocalCluster {
 public:
  explicit LocalCluster(fs::path logs) : logs_(std::move(logs)) {}
  ~LocalCluster() { StopAll(SIGKILL); }

  Child* Spawn(const std::string& name, const std::vector<std::string>& argv, bool to_terminal) {
    Child c;
    c.name = name;
    c.log = to_terminal ? "" : (logs_ / (name + ".log")).string();
    // Own process groups: a Ctrl-C reaches the driver only, which forwards
    // exactly one SIGINT to the trainers (a second would kill them).
    c.pid = SpawnProcess(argv, c.log, /*own_process_group=*/true);
    children_.push_back(c);
    return &children_.back();
  }

  // A child started elsewhere, watched and stopped like the others.
  Child* Adopt(const std::string& name, int pid, const std::string& log) {
    Child c;
    c.name = name;
    c.pid = pid;
    c.log = log;
    children_.push_back(c);
    return &children_.back();
  }

  // Reaps exited children without blocking.
  void Poll() {
    for (Child& c : children_) {
      if (c.exited || c.pid <= 0) continue;
      int status = 0;
      if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
        c.exited = true;
        c.status = status;
      }
    }
  }

  int Wait(Child* c) {
    if (!c->exited) {
      waitpid(c->pid, &c->status, 0);
      c->exited = true;
    }
    return ExitCode(*c);
  }

  static int ExitCode(const Child& c) {
    if (WIFEXITED(c.status)) return WEXITSTATUS(c.status);
    if (WIFSIGNALED(c.status)) return 128 + WTERMSIG(c.status);
    return 1;
  }

  // SIGTERM to the named children (all when empty), then wait up to
  // `grace` before SIGKILL.
  void Stop(const std::vector<std::string>& prefixes, std::chrono::seconds grace) {
    auto matches = [&](const Child& c) {
      if (prefixes.empty()) return true;
      for (const auto& p : prefixes) {
        if (c.name.rfind(p, 0) == 0) return true;
      }
      return false;
    };
    for (Child& c : children_) {
      if (!c.exited && matches(c)) kill(c.pid, SIGTERM);
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
      Poll();
      bool alive = false;
      for (const Child& c : children_) alive |= !c.exited && matches(c);
      if (!alive || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (Child& c : children_) {
      if (!c.exited && matches(c)) {
        kill(c.pid, SIGKILL);
        Wait(&c);
      }
    }
  }

  void StopAll(int sig) {
    for (Child& c : children_) {
      if (!c.exited && c.pid > 0) {
        kill(c.pid, sig);
        Wait(&c);
      }
    }
  }

  std::vector<Child>& children() { return children_; }

 private:
  fs::path logs_;
  std::vector<Child> children_;  // reserved up front: Spawn's pointers stay valid
};

// A store in `dir` made for this config that already holds every sample it
// needs: trainers can read it without running the pipeline.
bool StoreIsComplete(const fs::path& dir, const std::string& fingerprint, const trainer::ObjectiveCounts& needed) {
  if (!fs::exists(dir / "CURRENT")) return false;
  storage::StoreOptions so;
  so.path = dir.string();
  so.mode = storage::OpenMode::kReadOnly;
  auto store = storage::RocksDbSampleStore::Open(so);
  if (!store.ok()) return false;
  auto manifest = training::ReadDatasetManifest(**store);
  if (!manifest.ok() || manifest->fingerprint != fingerprint) return false;
  for (int o = 0; o < kNumObjectives; ++o) {
    if (needed[o] == 0) continue;
    if (manifest->stored_samples[o] < needed[o]) return false;
    // The manifest is written before the samples: check the last one is there.
    const uint64_t per = manifest->samples_per_epoch[o], last_index = needed[o] - 1;
    if (per == 0) return false;
    auto last = (*store)->GetSampleRange(static_cast<Objective>(o), static_cast<uint32_t>(last_index / per),
                                         last_index % per, last_index % per + 1);
    if (!last.ok()) return false;
  }
  return true;
}

std::string ReadLine(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

int RunLocalPretrain(const LocalPretrainOptions& o, const std::atomic<bool>* stop) {
  training::PretrainConfig config = o.config;
  if (o.trainers < 1 || o.trainers > 64) {
    Say("--trainers must be in [1, 64], got " + std::to_string(o.trainers));
    return kExitUsage;
  }
  if (o.workers < 1 || o.workers > 256) {
    Say("--workers must be in [1, 256], got " + std::to_string(o.workers));
    return kExitUsage;
  }
  if (config.global_batch_size % o.trainers != 0) {
    Say("--global-batch-size " + std::to_string(config.global_batch_size) + " must be divisible by --trainers " +
        std::to_string(o.trainers));
    return kExitUsage;
  }
  // Trainers on one machine share its cores: more compute threads than cores
  // in all makes every one of them slower (measured: 2 trainers x 2 threads on
  // 2 cores took 3.0x as long per step as 2 x 1: 3.8 s vs 1.27 s, preset small).
  const int64_t cores = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  if (o.trainers > 1 && (config.threads == 0 ? cores : config.threads) * o.trainers > cores) {
    const int64_t per_trainer = std::max<int64_t>(1, cores / o.trainers);
    Say(std::to_string(o.trainers) + " trainers on " + std::to_string(cores) + " cores: " +
        std::to_string(per_trainer) + " compute thread(s) each (--threads " + std::to_string(config.threads) +
        " would oversubscribe the cores)");
    config.threads = per_trainer;
  }
  const fs::path w = fs::absolute(o.workdir);
  const fs::path cluster = w / "cluster";
  const fs::path logs = w / "logs";
  const fs::path store_dir = w / "store";
  const fs::path tokenizer_dir = w / "tokenizer";
  std::error_code ec;
  fs::create_directories(logs, ec);
  fs::create_directories(cluster, ec);
  if (ec) {
    Say("cannot create " + logs.string() + ": " + ec.message());
    return kExitFailure;
  }

  // What the run reads from the store: enough samples of each objective.
  trainer::MixerOptions mixer;
  mixer.weights = config.objective_weights;
  auto m = trainer::ObjectiveMixer::Create(mixer, config.global_batch_size);
  if (!m.ok()) {
    Say(m.status().message());
    return kExitUsage;
  }
  const trainer::ObjectiveCounts needed = m->ConsumedAfter(config.max_steps);
  const std::string fingerprint = training::DataFingerprint(config);
  const std::string self = SelfExecutable();
  LocalCluster local(logs);
  local.children().reserve(8 + o.workers + o.trainers);

  std::vector<std::string> samples_args;  // how trainers reach the samples
  std::string coordinator_endpoint, keys = (cluster / "keys").string();
  Child* coordinator = nullptr;
  Child* store = nullptr;
  if (StoreIsComplete(store_dir, fingerprint, needed)) {
    Say("reusing the store " + store_dir.string() + " (same data config, every sample there): no pipeline needed");
    samples_args = {"--store", store_dir.string()};
  } else {
    fs::remove_all(store_dir, ec);
    fs::remove_all(cluster / "state", ec);
    // 1. The tokenizer, trained here once (the store is stamped with it).
    auto tokenizer = training::EnsureTokenizer(config, tokenizer_dir.string(), Say);
    if (!tokenizer.ok()) {
      Say(tokenizer.status().message());
      return tokenizer.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
    }
    if (Status s = transport::GenerateClusterKeys(keys, true); !s.ok()) {
      Say(s.message());
      return kExitFailure;
    }
    // 2. The storage actor.
    int store_pid = -1;
    auto started = StartLocalStoreServer(store_dir.string(), tokenizer_dir.string(), keys,
                                         (cluster / "store.endpoint").string(), (logs / "store.log").string(),
                                         /*own_process_group=*/true, &store_pid);
    if (!started.ok()) {
      Say(started.status().message());
      return kExitFailure;
    }
    const std::string store_endpoint = *started;
    store = local.Adopt("store", store_pid, (logs / "store.log").string());
    // 3. The job: tokenize every corpus file, finalize (held-out split,
    //    validation samples, dataset manifest), then exactly the training
    //    samples max_steps reads, in the trainers' order.
    coordinator::JobOptions job;
    job.job_id = "pretrain";
    std::string corpus;
    for (const std::string& part : training::ResolveCorpus(config.corpus)) {
      corpus += (corpus.empty() ? "" : ",") + fs::absolute(part).string();
    }
    job.corpus = corpus;
    job.output_dir = (cluster / "output").string();
    job.seed = config.data_seed;
    job.executor = "glm";
    std::string objectives, dataset_objectives;
    uint64_t most = 0;
    for (int k = 0; k < kNumObjectives; ++k) {
      if (config.objective_weights[k] <= 0) continue;
      const std::string name(ObjectiveName(static_cast<Objective>(k)));
      objectives += (objectives.empty() ? "" : ",") + name;
      dataset_objectives += (dataset_objectives.empty() ? "" : ":") + name;
      most = std::max<uint64_t>(most, needed[k]);
    }
    job.objectives = objectives;
    job.epochs = 1 << 20;  // as many as max_samples needs
    job.max_samples = static_cast<int64_t>(most);
    job.finalize = true;
    job.auto_consume = false;  // back-pressure: the trainers' step reports move the cursor
    job.global_batch_size = config.global_batch_size;
    job.samples_per_task = 64;
    job.params = "store=" + store_endpoint + ",store_keys=" + keys + ",tokenizer=" + tokenizer_dir.string() +
                 ",seq_len=" + std::to_string(config.seq_length) +
                 ",heldout_every=" + std::to_string(config.heldout_every) +
                 ",validation_samples=" + std::to_string(config.validation_samples) +
                 ",epochs=" + std::to_string(job.epochs) + ",max_samples=" + std::to_string(job.max_samples) +
                 ",dataset_objectives=" + dataset_objectives + ",fingerprint=" + fingerprint;
    if (Status s = job.Validate(); !s.ok()) {
      Say("the pipeline job: " + s.message());
      return kExitUsage;
    }
    std::ofstream(cluster / "job.json") << job.ToJson().dump(2) << "\n";
    coordinator_endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
    std::vector<std::string> cargs = {self,   "coordinator", "--bind",     coordinator_endpoint,
                                      "--state", (cluster / "state").string(), "--keys", keys,
                                      "--job-file", (cluster / "job.json").string(),
                                      // The trainer group: the first generation waits for every trainer;
                                      // a fixed rendezvous port survives a coordinator restart.
                                      "--trainers", std::to_string(o.trainers),
                                      "--rendezvous-port", std::to_string(FreePort()),
                                      "--run-dir", w.string()};
    const fs::path url_file = w / "dashboard.url";
    fs::remove(url_file, ec);
    if (!o.dashboard.empty()) {
      cargs.insert(cargs.end(), {"--http", o.dashboard, "--http-endpoint-file", url_file.string()});
    }
    coordinator = local.Spawn("coordinator", cargs, false);
    for (int64_t i = 0; i < o.workers; ++i) {
      local.Spawn("worker-" + std::to_string(i),
                  {self, "worker", "--coordinator", coordinator_endpoint, "--keys", keys, "--resources",
                   "cpu=1,gpu=0", "--node-id", "local-" + std::to_string(i)},
                  false);
    }
    Say("local cluster: storage server " + store_endpoint + ", coordinator " + coordinator_endpoint + ", " +
        std::to_string(o.workers) + " workers; logs in " + logs.string() + " (`glm status --coordinator " +
        coordinator_endpoint + " --keys " + keys + "`)");
    if (!o.dashboard.empty()) {
      for (int i = 0; i < 100 && !fs::exists(url_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (fs::exists(url_file)) Say("dashboard: " + ReadLine(url_file));
    }
    samples_args = {"--store-endpoint", store_endpoint, "--keys", keys, "--coordinator", coordinator_endpoint};
  }

  // 4. The trainers: rank 0 on the terminal, the others into logs/. With a
  //    coordinator they form its elastic trainer group (--rank is only the
  //    preferred rank of the first generation); a reused store has no
  //    coordinator: a fixed group whose rank 0 hosts the rendezvous.
  const bool elastic = coordinator != nullptr;
  const std::string rendezvous = "127.0.0.1:" + std::to_string(FreePort());
  std::vector<Child*> trainers;
  for (int64_t r = 0; r < o.trainers; ++r) {
    std::vector<std::string> targs = {self, "train", "--workdir",
                                      r == 0 ? w.string() : (w / "ranks" / std::to_string(r)).string()};
    targs.insert(targs.end(), samples_args.begin(), samples_args.end());
    if (elastic) {
      targs.insert(targs.end(), {"--rank", std::to_string(r)});
    } else {
      targs.insert(targs.end(), {"--rank", std::to_string(r), "--world-size", std::to_string(o.trainers),
                                 "--rendezvous", rendezvous});
    }
    if (o.resume) targs.push_back("--resume");
    if (o.json && r == 0) targs.push_back("--json");
    if (r != 0) targs.push_back("--quiet");
    for (const std::string& a : ConfigArgs(config)) targs.push_back(a);
    trainers.push_back(local.Spawn("trainer-" + std::to_string(r), targs, r == 0));
  }

  // 5. Watch: forward one Ctrl-C, show the pipeline's progress while the
  //    trainers wait for data, notice a process of the cluster dying.
  bool forwarded = false;
  std::set<std::string> lost;  // trainers the elastic group lost
  const auto started = std::chrono::steady_clock::now();
  std::string failure;
  std::string last_phase;
  auto last_status = std::chrono::steady_clock::now() - std::chrono::seconds(10);
  for (;;) {
    local.Poll();
    bool trainers_done = true;
    for (Child* t : trainers) trainers_done &= t->exited;
    if (trainers_done) break;
    if (stop != nullptr && stop->load() && !forwarded) {
      for (Child* t : trainers) {
        if (!t->exited) kill(t->pid, SIGINT);
      }
      forwarded = true;
    }
    for (Child* t : trainers) {
      if (!t->exited || LocalCluster::ExitCode(*t) == 0) continue;
      if (forwarded && LocalCluster::ExitCode(*t) == 130) continue;  // stopped by our Ctrl-C: the others follow
      if (elastic && t != trainers[0] && !forwarded) {
        // The trainer group goes on without it (coordinator/trainer_group.h).
        if (lost.insert(t->name).second) {
          Say(t->name + " exited with " + std::to_string(LocalCluster::ExitCode(*t)) + (t->log.empty() ? "" : " (see " + t->log + ")") +
              "; the trainer group continues without it");
        }
        continue;
      }
      if (failure.empty()) {
        failure = t->name + " exited with " + std::to_string(LocalCluster::ExitCode(*t)) +
                  (t->log.empty() ? "" : "; see " + t->log);
      }
    }
    for (Child* c : {store, coordinator}) {
      if (c != nullptr && c->exited && failure.empty()) {
        failure = "the " + c->name + " exited with " + std::to_string(LocalCluster::ExitCode(*c)) + "; see " + c->log;
      }
    }
    if (!failure.empty()) break;
    if (coordinator != nullptr && std::chrono::steady_clock::now() - last_status >= std::chrono::seconds(2)) {
      last_status = std::chrono::steady_clock::now();
      auto j = QueryCoordinatorStatus(coordinator_endpoint, keys, 1000);
      if (j.ok()) {
        const std::string phase = j->value("done", false) ? "done" : j->value("phase", "");
        if (phase != last_phase) {
          const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          char at[32];
          std::snprintf(at, sizeof at, "%.1f s", seconds);
          Say("pipeline " + phase + " at " + at + ": documents " + j->value("documents", nlohmann::json(0)).dump() +
              ", samples " + j->value("samples", nlohmann::json::object()).dump() +
              (j->value("dead_letters", nlohmann::json::array()).empty()
                   ? std::string()
                   : ", dead letters " + j->at("dead_letters").dump()));
        }
        last_phase = phase;
        // A job that ended with dead letters before the dataset exists (a
        // dead finalize task: too few documents, a bad corpus) leaves the
        // trainers waiting for a manifest that never comes.
        const auto& dead = j->value("dead_letters", nlohmann::json::array());
        if (phase == "done" && !dead.empty()) {
          bool dataset_dead = false;
          for (const auto& d : dead) dataset_dead |= d.value("task", "").rfind("tokenize", 0) == 0 ||
                                                     d.value("task", "").rfind("finalize", 0) == 0;
          if (dataset_dead) failure = "the pipeline could not build the dataset: " + dead.dump();
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  int code = kExitOk;
  if (!failure.empty()) {
    Say(failure + "; stopping the cluster");
    code = kExitFailure;
    local.Stop({"trainer"}, std::chrono::seconds(30));
  } else {
    code = LocalCluster::ExitCode(*trainers[0]);
    for (Child* t : trainers) {
      const int c = LocalCluster::ExitCode(*t);
      if (c != 0 && c != 130 && code == kExitOk && lost.count(t->name) == 0) code = c;
    }
  }
  // The pipeline's processes: workers leave by themselves once the job is
  // done; whatever remains is stopped (they keep no state the next run needs
  // that is not in RocksDB).
  local.Stop({"worker"}, std::chrono::seconds(15));
  local.Stop({"coordinator", "store"}, std::chrono::seconds(15));
  return code;
}

}  // namespace glm::cmd
