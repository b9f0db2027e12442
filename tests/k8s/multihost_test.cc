// glm across hosts: network namespaces (tests/k8s/netns_lab.h) stand in for
// the pods of k8s/ — the coordinator, the storage actor and two workers,
// each in its own namespace with its own address, started with the command
// lines the manifests use (binding 0.0.0.0, reaching the others by address)
// — run configs/pipeline-tiny.yaml's job. One worker's link is cut
// (`ip link set eth0 down`) once samples are being produced: its leases
// expire, its work is re-leased to the other worker, and the job finishes
// with the same `glm store digest` as an undisturbed run (glm pipeline on
// loopback with the same tokenizer). Skips, saying why, where network
// namespaces cannot be made (not root, no iproute2, no permission).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/k8s/netns_lab.h"
#include "tests/testing/run_command.h"

namespace glm {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::NetnsLab;
using testing::RunCommand;

const char* kFiles[] = {"1790_george_washington_n.txt", "1791_george_washington_n.txt",
                        "1792_george_washington_n.txt", "1793_george_washington_n.txt"};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Last JSON object line of `output` with `key`, or null.
nlohmann::json LastJsonWith(const std::string& output, const std::string& key) {
  std::istringstream in(output);
  std::string line;
  nlohmann::json last;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains(key)) last = j;
  }
  return last;
}

class K8sMultiHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path sotu = fs::path(GLM_SOURCE_DIR) / "data" / "sotu";
    if (!fs::exists(sotu / kFiles[0]))
      GTEST_SKIP() << "no SOTU corpus in " << sotu << "; run scripts/setup";
    lab_ = std::make_unique<NetnsLab>();
    if (std::string why = lab_->Create(); !why.empty()) {
      GTEST_SKIP() << "cannot make network namespaces here, so no multi-host run: " << why;
    }
    dir_ = fs::temp_directory_path() / ("glm_k8s_multihost_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "corpus");
    fs::create_directories(dir_ / "logs");
    for (const char* f : kFiles) fs::copy_file(sotu / f, dir_ / "corpus" / f);
  }
  void TearDown() override {
    lab_.reset();  // processes and namespaces go first, whatever happened
    // Kept when the test failed, or on request (GLM_TEST_KEEP=1), for its logs.
    if (!HasFailure() && !dir_.empty() && std::getenv("GLM_TEST_KEEP") == nullptr)
      fs::remove_all(dir_);
  }

  // The environment of a "pod": nothing from this process leaks in.
  std::vector<std::string> PodEnv() const { return {"PATH=/usr/bin:/bin", "GLM_LOG_LEVEL=info"}; }
  std::string Log(const std::string& name) const {
    return (dir_ / "logs" / (name + ".log")).string();
  }
  std::string Logs() const {
    std::string all;
    for (const auto& e : fs::directory_iterator(dir_ / "logs")) {
      std::string text = Slurp(e.path());
      if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
      all += "==== " + e.path().filename().string() + "\n" + text + "\n";
    }
    return all;
  }

  // `glm status --json` asked from inside host `from`.
  nlohmann::json Status(const std::string& from, const std::string& coordinator) {
    std::string out;
    int rc =
        lab_->Exec(from,
                   std::string(GLM_BINARY) + " status --json --timeout-ms 1500 --coordinator " +
                       coordinator + " --keys " + (dir_ / "keys").string(),
                   &out);
    if (rc != 0) return nlohmann::json();
    return LastJsonWith(out, "done");
  }

  std::unique_ptr<NetnsLab> lab_;
  fs::path dir_;
};

TEST_F(K8sMultiHostTest, PipelineSurvivesCuttingAWorkersLinkWithTheSameStoreDigest) {
  const std::string glm = GLM_BINARY;
  // Cluster keys and the job's tokenizer, made once, as the init containers do.
  auto keys = RunCommand(glm + " keys generate --output " + (dir_ / "keys").string());
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  auto tok = RunCommand(glm + " tokenizer train --input " + (dir_ / "corpus").string() +
                        " --output " + (dir_ / "tokenizer").string() +
                        " --vocab-size 512 --seed 1234 --text-split blank-line");
  ASSERT_EQ(tok.exit_code, 0) << tok.output;

  // The undisturbed reference: the same job on loopback (glm pipeline),
  // running meanwhile.
  pid_t reference = fork();
  if (reference == 0) {
    const std::string cmd = glm + " pipeline --config " + GLM_SOURCE_DIR +
                            "/configs/pipeline-tiny.yaml --corpus " + (dir_ / "corpus").string() +
                            " --workdir " + (dir_ / "reference").string() + " --tokenizer " +
                            (dir_ / "tokenizer").string() + " --timeout-s 120 >" +
                            Log("reference") + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_GT(reference, 0);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{reference};

  // The hosts.
  const std::string coord_ip = lab_->AddHost("coord");
  ASSERT_FALSE(coord_ip.empty()) << lab_->error();
  const std::string store_ip = lab_->AddHost("store");
  ASSERT_FALSE(store_ip.empty()) << lab_->error();
  const std::string w0_ip = lab_->AddHost("w0");
  ASSERT_FALSE(w0_ip.empty()) << lab_->error();
  const std::string w1_ip = lab_->AddHost("w1");
  ASSERT_FALSE(w1_ip.empty()) << lab_->error();

  // The storage actor (k8s: StatefulSet glm-store).
  const std::string store_endpoint = "tcp://" + store_ip + ":5601";
  const fs::path endpoint_file = dir_ / "store.endpoint";
  pid_t store =
      lab_->Spawn("store",
                  {glm, "store", "serve", "--store", (dir_ / "store").string(), "--tokenizer",
                   (dir_ / "tokenizer").string(), "--keys", (dir_ / "keys").string(), "--bind",
                   "tcp://0.0.0.0:5601", "--endpoint-file", endpoint_file.string()},
                  PodEnv(), Log("store"));
  ASSERT_GT(store, 0);
  for (int i = 0; i < 300 && !fs::exists(endpoint_file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(endpoint_file)) << Logs();
  // w0 reaches the store over the bridge (a TCP connect from its namespace).
  const std::string reach_store = "timeout 2 bash -c 'exec 3<>/dev/tcp/" + store_ip + "/5601'";
  std::string out;
  ASSERT_EQ(lab_->Exec("w0", reach_store, &out), 0) << out;

  // The job file (k8s: ConfigMap glm-config, job.json), with the store's
  // address and the items slowed down so the cut lands mid-run.
  nlohmann::json job = {
      {"job_id", "multihost"},
      {"corpus", (dir_ / "corpus").string()},
      {"output_dir", (dir_ / "output").string()},
      {"seed", 1234},
      {"executor", "glm"},
      {"objectives", "blank,sentence,document"},
      {"epochs", 1},
      {"samples_per_epoch", 256},
      {"samples_per_task", 32},
      {"global_batch_size", 48},
      {"max_batches_ahead", 8},
      {"auto_consume", true},
      {"noop_tasks", 0},
      {"params",
       "store=" + store_endpoint + ",store_keys=" + (dir_ / "keys").string() +
           ",tokenizer=" + (dir_ / "tokenizer").string() +
           ",text_split=blank-line,seq_len=128,document_min_ratio=0.5,item_delay_us=10000"}};
  std::ofstream(dir_ / "job.json") << job.dump(2);

  // The coordinator (k8s: Deployment glm-coordinator), then two workers
  // (Deployment glm-worker) that reach it by address.
  pid_t coordinator = lab_->Spawn(
      "coord",
      {glm, "coordinator", "--bind", "tcp://0.0.0.0:5555", "--state", (dir_ / "state").string(),
       "--keys", (dir_ / "keys").string(), "--job-file", (dir_ / "job.json").string(),
       "--heartbeat-interval-ms", "200", "--node-timeout-ms", "1500", "--lease-ms", "2000"},
      PodEnv(), Log("coordinator"));
  ASSERT_GT(coordinator, 0);
  const std::string coordinator_endpoint = "tcp://" + coord_ip + ":5555";
  std::vector<pid_t> workers;
  for (const char* w : {"w0", "w1"}) {
    workers.push_back(
        lab_->Spawn(w,
                    {glm, "worker", "--coordinator", coordinator_endpoint, "--keys",
                     (dir_ / "keys").string(), "--resources", "cpu=1", "--node-id", w},
                    PodEnv(), Log(w)));
    ASSERT_GT(workers.back(), 0);
  }

  // Cut w0's link once samples are being produced (the corrupt phase) while
  // both workers hold leased tasks, so w0 takes work with it.
  nlohmann::json status;
  bool cut = false, done = false, w0_lost = false;
  auto has_node = [](const nlohmann::json& s, const std::string& id) {
    for (const auto& n : s["nodes"]) {
      if (n.value("id", "") == id) return true;
    }
    return false;
  };
  auto leased = [](const nlohmann::json& s) {
    const auto& corrupt = s["tasks"]["corrupt"];
    return corrupt.is_object() ? corrupt.value("leased", int64_t{0}) : int64_t{0};
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    // Often enough to catch the corrupt phase (item_delay_us stretches it to
    // a few seconds) even when the store writes fast.
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    nlohmann::json s = Status("w1", coordinator_endpoint);
    if (!s.is_object()) continue;
    status = s;
    if (cut && !has_node(s, "w0")) w0_lost = true;
    if (!cut && s["samples"].is_object() && s["samples"].value("blank", 0) > 0 && leased(s) >= 2 &&
        has_node(s, "w0")) {
      ASSERT_TRUE(lab_->SetLink("w0", false)) << lab_->error();
      cut = true;
      EXPECT_NE(lab_->Exec("w0", reach_store, &out), 0)
          << "w0 still reaches the store after the cut";
    }
    if (s.value("done", false)) {
      done = true;
      break;
    }
  }
  ASSERT_TRUE(cut) << "the job never reached the corrupt phase; last status " << status.dump()
                   << "\n"
                   << Logs();
  ASSERT_TRUE(done) << "not done after 120 s; last status " << status.dump() << "\n" << Logs();
  EXPECT_TRUE(status["dead_letters"].empty()) << status.dump();
  // The coordinator declared w0 lost (its leases expired and were re-leased).
  EXPECT_TRUE(w0_lost) << "w0 was still listed as alive after the cut\n" << Logs();

  // w1 leaves by itself once the job is done; w0 never hears it (cut off).
  int w1_status = lab_->Stop(workers[1], 10000);
  EXPECT_TRUE(WIFEXITED(w1_status) && WEXITSTATUS(w1_status) == 0) << Logs();
  lab_->Stop(workers[0], 3000);
  lab_->Stop(coordinator, 5000);
  int store_status = lab_->Stop(store, 10000);
  EXPECT_TRUE(WIFEXITED(store_status) && WEXITSTATUS(store_status) == 0) << Logs();

  int ref_status = 0;
  waitpid(reference, &ref_status, 0);
  reaper.pid = -1;
  ASSERT_TRUE(WIFEXITED(ref_status) && WEXITSTATUS(ref_status) == 0) << Logs();
  auto ref_digest =
      RunCommand(glm + " store digest --json --store " + (dir_ / "reference" / "store").string());
  ASSERT_EQ(ref_digest.exit_code, 0) << ref_digest.output;
  nlohmann::json expected = LastJsonWith(ref_digest.output, "digest");
  ASSERT_TRUE(expected.is_object()) << ref_digest.output;
  ASSERT_EQ(expected["samples"], 768) << ref_digest.output;

  auto digest = RunCommand(glm + " store digest --json --store " + (dir_ / "store").string());
  ASSERT_EQ(digest.exit_code, 0) << digest.output;
  nlohmann::json got = LastJsonWith(digest.output, "digest");
  ASSERT_TRUE(got.is_object()) << digest.output;
  EXPECT_EQ(got["digest"], expected["digest"]) << "store differs from the undisturbed run\n"
                                               << Logs();
  EXPECT_EQ(got["samples"], 768);
  EXPECT_EQ(got["documents"], expected["documents"]);
  EXPECT_NE(Slurp(Log("coordinator")).find("node w0 lost"), std::string::npos) << Logs();
}

}  // namespace
}  // namespace glm

namespace glm {
namespace {

// The k8s pretraining job across hosts: coordinator, storage actor, two
// workers and two trainers (glm train --store-endpoint ... --rank R
// --world-size 2 --rendezvous <rank 0's address>:29500, one shared --workdir
// as the manifests mount /checkpoints), each in its own namespace. The
// pipeline tokenizes, finalizes (held-out split, dataset manifest) and
// produces samples while the trainers wait for them; both trainers finish
// max_steps and rank 0 leaves a checkpoint.
TEST_F(K8sMultiHostTest, PretrainJobTrainsWithTwoTrainersOnTheirOwnHosts) {
  const std::string glm = GLM_BINARY;
  auto help = RunCommand(glm + " train --help");
  if (!Contains(help.output, "--store-endpoint") || !Contains(help.output, "--rendezvous")) {
    GTEST_SKIP() << "glm train has no --store-endpoint/--rendezvous yet";
  }
  auto keys = RunCommand(glm + " keys generate --output " + (dir_ / "keys").string());
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  // configs/tiny.yaml's corpus, the 1790s: held-out documents need at least
  // heldout_every of them.
  for (const auto& e : fs::directory_iterator(fs::path(GLM_SOURCE_DIR) / "data" / "sotu")) {
    const std::string name = e.path().filename().string();
    if (name.rfind("179", 0) == 0 && e.path().extension() == ".txt" &&
        !fs::exists(dir_ / "corpus" / name)) {
      fs::copy_file(e.path(), dir_ / "corpus" / name);
    }
  }
  auto tok = RunCommand(glm + " tokenizer train --input " + (dir_ / "corpus").string() +
                        " --output " + (dir_ / "tokenizer").string() +
                        " --vocab-size 512 --seed 1 --text-split blank-line");
  ASSERT_EQ(tok.exit_code, 0) << tok.output;
  std::map<std::string, std::string> ip;
  for (const char* host : {"coord", "store", "w0", "w1", "t0", "t1"}) {
    ip[host] = lab_->AddHost(host);
    ASSERT_FALSE(ip[host].empty()) << lab_->error();
  }
  const fs::path endpoint_file = dir_ / "store.endpoint";
  pid_t store =
      lab_->Spawn("store",
                  {glm, "store", "serve", "--store", (dir_ / "store").string(), "--tokenizer",
                   (dir_ / "tokenizer").string(), "--keys", (dir_ / "keys").string(), "--bind",
                   "tcp://0.0.0.0:5601", "--endpoint-file", endpoint_file.string()},
                  PodEnv(), Log("store"));
  ASSERT_GT(store, 0);
  for (int i = 0; i < 300 && !fs::exists(endpoint_file); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(endpoint_file)) << Logs();
  const std::string store_endpoint = "tcp://" + ip["store"] + ":5601";
  // k8s/overlays/cpu-dev's job and pretrain.yaml, shrunk to 4 steps.
  const std::string params =
      "store=" + store_endpoint + ",store_keys=" + (dir_ / "keys").string() +
      ",tokenizer=" + (dir_ / "tokenizer").string() +
      ",text_split=blank-line,seq_len=128,heldout_every=5,validation_samples=4,epochs=1048576,"
      "max_samples=64,dataset_objectives=blank:sentence:document";
  nlohmann::json job = {{"job_id", "multihost-pretrain"},
                        {"corpus", (dir_ / "corpus").string()},
                        {"output_dir", ""},
                        {"seed", 1},
                        {"executor", "glm"},
                        {"objectives", "blank,sentence,document"},
                        {"epochs", 1048576},
                        {"samples_per_epoch", 0},
                        {"max_samples", 64},
                        {"finalize", true},
                        {"samples_per_task", 32},
                        {"global_batch_size", 12},
                        {"max_batches_ahead", 8},
                        {"auto_consume", true},
                        {"noop_tasks", 0},
                        {"params", params}};
  std::ofstream(dir_ / "job.json") << job.dump(2);
  std::ofstream(dir_ / "pretrain.yaml")
      << "preset: tiny\ncorpus: " << (dir_ / "corpus").string()
      << "\nvocab_size: 512\nseq_length: 128\nheldout_every: 5\n"
         "validation_samples: 4\ndata_seed: 1\nmax_steps: 4\nglobal_batch_size: 12\n"
         "micro_batch_size: 6\nlr: 0.005\nwarmup: 0.05\ncheckpoint_every: 0\n"
         "keep_checkpoints: 1\nseed: 1234\nthreads: 1\ninfill_examples: 0\n";
  pid_t coordinator = lab_->Spawn(
      "coord",
      {glm, "coordinator", "--bind", "tcp://0.0.0.0:5555", "--state", (dir_ / "state").string(),
       "--keys", (dir_ / "keys").string(), "--job-file", (dir_ / "job.json").string()},
      PodEnv(), Log("coordinator"));
  ASSERT_GT(coordinator, 0);
  std::vector<pid_t> workers;
  for (const char* w : {"w0", "w1"}) {
    workers.push_back(
        lab_->Spawn(w,
                    {glm, "worker", "--coordinator", "tcp://" + ip["coord"] + ":5555", "--keys",
                     (dir_ / "keys").string(), "--resources", "cpu=1", "--node-id", w},
                    PodEnv(), Log(w)));
  }
  // The trainers, as the Indexed Job runs them (rank from the env).
  std::vector<pid_t> trainers;
  for (int rank = 0; rank < 2; ++rank) {
    std::vector<std::string> env = PodEnv();
    env.push_back("GLM_RANK=" + std::to_string(rank));
    env.push_back("GLM_RESUME=true");
    trainers.push_back(
        lab_->Spawn(rank == 0 ? "t0" : "t1",
                    {glm, "train", "--store-endpoint", store_endpoint, "--keys",
                     (dir_ / "keys").string(), "--world-size", "2", "--rendezvous",
                     ip["t0"] + ":29500", "--workdir", (dir_ / "checkpoints").string(), "--config",
                     (dir_ / "pretrain.yaml").string(), "--wait-for-data-s", "60"},
                    env, Log("trainer-" + std::to_string(rank))));
    ASSERT_GT(trainers.back(), 0);
  }
  for (int rank = 0; rank < 2; ++rank) {
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 1800 && !exited; ++i) {  // 180 s
      exited = waitpid(trainers[rank], &status, WNOHANG) == trainers[rank];
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!exited) lab_->Stop(trainers[rank], 1000);
    ASSERT_TRUE(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "trainer " << rank << (exited ? " failed" : " did not finish") << "\n"
        << Logs();
  }
  // Rank 0's checkpoint of the last step (checkpoints/step-<N, zero-padded>).
  int64_t last_step = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "checkpoints" / "checkpoints", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step-", 0) == 0)
      last_step = std::max<int64_t>(last_step, std::stoll(name.substr(5)));
  }
  EXPECT_EQ(last_step, 4) << Logs();
  EXPECT_TRUE(fs::exists(dir_ / "checkpoints" / "eval.json")) << Logs();
  for (pid_t w : workers) lab_->Stop(w, 5000);
  lab_->Stop(coordinator, 5000);
  lab_->Stop(store, 5000);
}

}  // namespace
}  // namespace glm
