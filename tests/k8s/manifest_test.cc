// k8s/: every overlay (a) renders with `kubectl kustomize`, (b) validates
// against the Kubernetes API schema (tests/k8s/validator: kubernetes-models,
// unknown fields rejected as `kubectl --validate=strict` does), (c) runs
// only command lines glm accepts: each container's command and args, with
// its env and $(VAR) references expanded as the kubelet does and its
// ConfigMap volumes laid out as mounted, passes `glm ... --check-args`; and
// (d) its pieces agree with each other (world size and Job size, tokenizer
// corpus and job corpus, endpoints and Services, declared and requested
// cpus, ...). Skips, saying why, only when kubectl, node or the validator's
// npm packages are missing (scripts/setup installs them).
#include <glob.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/run_command.h"

namespace glm {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::RunCommand;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// 'text' for /bin/sh.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// An executable on PATH (or $GLM_KUBECTL for kubectl), or "".
std::string FindTool(const std::string& name) {
  if (name == "kubectl") {
    if (const char* env = std::getenv("GLM_KUBECTL"); env != nullptr && *env != '\0') return env;
  }
  const char* path = std::getenv("PATH");
  std::stringstream ss(path == nullptr ? "/usr/bin:/bin" : path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    fs::path candidate = fs::path(dir) / name;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

fs::path ValidatorModules() {
  return fs::path(GLM_SOURCE_DIR) / ".cache" / "npm" / "k8s-validator" / "node_modules";
}

// A copy of k8s/ in `dir` with freshly generated keys, as docs/kubernetes.md
// tells a user to make it.
void PrepareTree(const fs::path& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(fs::path(GLM_SOURCE_DIR) / "k8s", dir / "k8s", fs::copy_options::recursive);
  fs::remove_all(dir / "k8s" / "base" / "keys");
  auto keys = RunCommand(std::string(GLM_BINARY) + " keys generate --output " +
                         (dir / "k8s/base/keys").string());
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
}

struct Rendered {
  int exit_code = -1;
  std::string yaml;    // stdout
  std::string errors;  // stderr: warnings, errors
  std::vector<YAML::Node> objects;
};

Rendered Render(const std::string& kubectl, const fs::path& overlay, const fs::path& scratch) {
  Rendered r;
  const fs::path out = scratch / (overlay.filename().string() + ".yaml");
  const fs::path err = scratch / (overlay.filename().string() + ".err");
  auto run = RunCommand("(" + Quote(kubectl) + " kustomize " + Quote(overlay.string()) + " >" +
                        Quote(out.string()) + " 2>" + Quote(err.string()) + ")");
  r.exit_code = run.exit_code;
  r.yaml = Slurp(out);
  r.errors = Slurp(err) + run.output;
  if (r.exit_code == 0) {
    for (const YAML::Node& doc : YAML::LoadAll(r.yaml)) {
      if (doc.IsMap()) r.objects.push_back(doc);
    }
  }
  return r;
}

std::string KindName(const YAML::Node& o) {
  return o["kind"].as<std::string>() + "/" + o["metadata"]["name"].as<std::string>();
}

// The object of `kind` whose name is `name` or, for generated ConfigMaps and
// Secrets, `name`-HASH.
YAML::Node Find(const std::vector<YAML::Node>& objects, const std::string& kind,
                const std::string& name) {
  for (const YAML::Node& o : objects) {
    if (o["kind"].as<std::string>() != kind) continue;
    const std::string n = o["metadata"]["name"].as<std::string>();
    if (n == name || (n.rfind(name + "-", 0) == 0 && n.size() == name.size() + 11)) return o;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// The pod template of a workload, or an undefined node.
YAML::Node PodSpec(const YAML::Node& o) {
  const std::string kind = o["kind"].as<std::string>();
  if (kind == "Deployment" || kind == "StatefulSet" || kind == "Job" || kind == "DaemonSet") {
    return o["spec"]["template"]["spec"];
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// One container as the kubelet would start it, for one pod of its workload.
struct PodContainer {
  std::string where;                                // "Job/glm-trainer[1] trainer"
  std::vector<std::string> argv;                    // command + args, $(VAR) expanded
  std::map<std::string, std::string> env;           // resolved values
  std::map<std::string, std::string> config_files;  // mounted path -> content (ConfigMap volumes)
  YAML::Node container;
};

// $(NAME) -> env value, $$ -> $, as Kubernetes expands command and args.
std::string Expand(const std::string& s, const std::map<std::string, std::string>& env) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '(') {
      size_t close = s.find(')', i);
      if (close != std::string::npos) {
        std::string name = s.substr(i + 2, close - i - 2);
        auto it = env.find(name);
        if (it != env.end()) {
          out += it->second;
          i = close;
          continue;
        }
      }
    }
    out += s[i];
  }
  return out;
}

// Every container (init containers too) of every pod the workloads would
// create; an indexed Job yields one pod per completion index.
std::vector<PodContainer> PodContainers(const std::vector<YAML::Node>& objects,
                                        std::vector<std::string>* errors) {
  std::vector<PodContainer> out;
  for (const YAML::Node& o : objects) {
    YAML::Node spec = PodSpec(o);
    if (!spec) continue;
    int pods = 1;
    const bool indexed = o["kind"].as<std::string>() == "Job" && o["spec"]["completionMode"] &&
                         o["spec"]["completionMode"].as<std::string>() == "Indexed";
    if (indexed) pods = o["spec"]["completions"].as<int>();
    for (int index = 0; index < pods; ++index) {
      for (const char* list : {"initContainers", "containers"}) {
        if (!spec[list]) continue;
        for (const YAML::Node& c : spec[list]) {
          PodContainer pc;
          pc.container = c;
          pc.where = KindName(o) + (indexed ? "[" + std::to_string(index) + "]" : "") + " " +
                     c["name"].as<std::string>();
          if (c["env"]) {
            for (const YAML::Node& e : c["env"]) {
              const std::string name = e["name"].as<std::string>();
              std::string value;
              if (e["value"]) {
                value = Expand(e["value"].as<std::string>(), pc.env);
              } else if (e["valueFrom"] && e["valueFrom"]["fieldRef"]) {
                const std::string field = e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>();
                if (field == "metadata.annotations['batch.kubernetes.io/job-completion-index']" &&
                    indexed) {
                  value = std::to_string(index);
                } else if (field == "metadata.name") {
                  value = o["metadata"]["name"].as<std::string>() + "-" + std::to_string(index);
                } else if (field == "metadata.namespace") {
                  value = "default";
                } else {
                  errors->push_back(pc.where + ": env " + name + ": fieldRef " + field +
                                    " is not simulated here");
                }
              } else {
                errors->push_back(pc.where + ": env " + name +
                                  ": only value and fieldRef are simulated here");
              }
              pc.env[name] = value;
            }
          }
          std::vector<std::string> raw;
          if (c["command"]) {
            for (const YAML::Node& a : c["command"]) raw.push_back(a.as<std::string>());
          }
          if (c["args"]) {
            for (const YAML::Node& a : c["args"]) raw.push_back(a.as<std::string>());
          }
          for (const std::string& a : raw) pc.argv.push_back(Expand(a, pc.env));
          // ConfigMap volumes: the files the container sees.
          std::map<std::string, YAML::Node> volumes;
          if (spec["volumes"]) {
            for (const YAML::Node& v : spec["volumes"]) volumes[v["name"].as<std::string>()] = v;
          }
          if (o["spec"]["volumeClaimTemplates"]) {  // a StatefulSet's per-pod volumes
            for (const YAML::Node& t : o["spec"]["volumeClaimTemplates"]) {
              volumes[t["metadata"]["name"].as<std::string>()] = t;
            }
          }
          if (c["volumeMounts"]) {
            for (const YAML::Node& m : c["volumeMounts"]) {
              auto v = volumes.find(m["name"].as<std::string>());
              if (v == volumes.end()) {
                errors->push_back(pc.where + ": volumeMount " + m["name"].as<std::string>() +
                                  " has no volume");
                continue;
              }
              if (!v->second["configMap"]) continue;
              const std::string cm_name = v->second["configMap"]["name"].as<std::string>();
              YAML::Node cm;
              for (const YAML::Node& x : objects) {
                if (x["kind"].as<std::string>() == "ConfigMap" &&
                    x["metadata"]["name"].as<std::string>() == cm_name)
                  cm = x;
              }
              if (!cm) {
                errors->push_back(pc.where + ": ConfigMap " + cm_name +
                                  " is not in the rendered objects");
                continue;
              }
              for (const auto& kv : cm["data"]) {
                pc.config_files[m["mountPath"].as<std::string>() + "/" +
                                kv.first.as<std::string>()] = kv.second.as<std::string>();
              }
            }
          }
          out.push_back(std::move(pc));
        }
      }
    }
  }
  return out;
}

// The value after `flag` in argv ("--flag V" or "--flag=V"), or "".
std::string Flag(const std::vector<std::string>& argv, const std::string& flag) {
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == flag && i + 1 < argv.size()) return argv[i + 1];
    if (argv[i].rfind(flag + "=", 0) == 0) return argv[i].substr(flag.size() + 1);
  }
  return "";
}

// "key: value" of a flat YAML config file.
std::string ConfigValue(const std::string& yaml, const std::string& key) {
  YAML::Node n = YAML::Load(yaml);
  std::string dashed = key, underscored = key;
  for (char& c : dashed) c = c == '_' ? '-' : c;
  for (char& c : underscored) c = c == '-' ? '_' : c;
  if (n[dashed]) return n[dashed].as<std::string>();
  if (n[underscored]) return n[underscored].as<std::string>();
  return "";
}

// params "k=v,k=v" of job.json.
std::map<std::string, std::string> Params(const std::string& params) {
  std::map<std::string, std::string> out;
  std::stringstream ss(params);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

// Kubernetes cpu quantity ("2", "500m") in millicores.
int64_t MilliCpu(const std::string& q) {
  if (!q.empty() && q.back() == 'm') return std::stoll(q.substr(0, q.size() - 1));
  return static_cast<int64_t>(std::stod(q) * 1000);
}

class K8sOverlayTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    kubectl_ = FindTool("kubectl");
    if (kubectl_.empty()) {
      GTEST_SKIP()
          << "kubectl not found on PATH (nor $GLM_KUBECTL): scripts/setup installs Debian's "
             "kubernetes-client";
    }
    dir_ = fs::temp_directory_path() / ("glm_k8s_" + GetParam() + "_" + std::to_string(getpid()));
    PrepareTree(dir_);
    rendered_ = Render(kubectl_, dir_ / "k8s" / "overlays" / GetParam(), dir_);
    ASSERT_EQ(rendered_.exit_code, 0) << kubectl_ << " kustomize failed:\n" << rendered_.errors;
    ASSERT_FALSE(rendered_.objects.empty()) << rendered_.yaml;
  }
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }

  std::string kubectl_;
  fs::path dir_;
  Rendered rendered_;
};

TEST_P(K8sOverlayTest, RendersEveryPartOfTheDeployment) {
  const auto& o = rendered_.objects;
  for (auto [kind, name] : std::vector<std::pair<std::string, std::string>>{
           {"Deployment", "glm-coordinator"},
           {"Service", "glm-coordinator"},
           {"PersistentVolumeClaim", "glm-coordinator-state"},
           {"StatefulSet", "glm-store"},
           {"Service", "glm-store"},
           {"Deployment", "glm-worker"},
           {"HorizontalPodAutoscaler", "glm-worker"},
           {"Job", "glm-trainer"},
           {"ConfigMap", "glm-config"},
           {"Secret", "glm-server-keys"},
           {"Secret", "glm-client-keys"},
           {"NetworkPolicy", "glm-coordinator"},
           {"NetworkPolicy", "glm-store"},
           {"PodDisruptionBudget", "glm-coordinator"},
           {"PodDisruptionBudget", "glm-store"},
           {"PodDisruptionBudget", "glm-worker"},
           {"PodDisruptionBudget", "glm-trainer"},
       }) {
    EXPECT_TRUE(Find(o, kind, name))
        << kind << " " << name << " missing from overlay " << GetParam();
  }
  // The keys in the Secrets are the ones glm keys generate wrote.
  YAML::Node server = Find(o, "Secret", "glm-server-keys");
  ASSERT_TRUE(server);
  std::set<std::string> keys;
  for (const auto& kv : server["data"]) keys.insert(kv.first.as<std::string>());
  EXPECT_EQ(keys, (std::set<std::string>{"allowed_clients", "server.pub", "server.secret"}));
  YAML::Node client = Find(o, "Secret", "glm-client-keys");
  ASSERT_TRUE(client);
  keys.clear();
  for (const auto& kv : client["data"]) keys.insert(kv.first.as<std::string>());
  EXPECT_EQ(keys, (std::set<std::string>{"client.pub", "client.secret", "server.pub"}));
}

TEST_P(K8sOverlayTest, EveryObjectValidatesAgainstTheKubernetesApiSchema) {
  const std::string node = FindTool("node");
  if (node.empty()) GTEST_SKIP() << "node not found: scripts/setup installs Debian's nodejs";
  if (!fs::exists(ValidatorModules() / "kubernetes-models")) {
    GTEST_SKIP() << "the validator's npm packages are not in " << ValidatorModules()
                 << ": run scripts/setup";
  }
  auto r = RunCommand(
      Quote(node) + " " + GLM_SOURCE_DIR + "/tests/k8s/validator/validate.cjs --modules " +
      Quote(ValidatorModules().string()) + " " + Quote((dir_ / (GetParam() + ".yaml")).string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(std::to_string(rendered_.objects.size()) + " objects, 0 problems"),
            std::string::npos)
      << r.output;
}

TEST_P(K8sOverlayTest, EveryContainerCommandLinePassesGlmCheckArgs) {
  std::vector<std::string> errors;
  auto containers = PodContainers(rendered_.objects, &errors);
  EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  ASSERT_GE(containers.size(), 5u);
  std::set<std::string> commands;
  for (const PodContainer& pc : containers) {
    SCOPED_TRACE(pc.where);
    ASSERT_GE(pc.argv.size(), 2u) << "no command line";
    ASSERT_EQ(pc.argv[0], "glm") << "every container runs glm";
    // The ConfigMap files where the container would see them, under root.
    const fs::path root = dir_ / "pods" / std::to_string(commands.size());
    for (const auto& [path, content] : pc.config_files) {
      fs::create_directories((root / path.substr(1)).parent_path());
      std::ofstream(root / path.substr(1)) << content;
    }
    // Paths under a ConfigMap mount point into root ("/config/x" and "--f=/config/x").
    std::set<std::string> mounts;
    for (const auto& entry : pc.config_files)
      mounts.insert(fs::path(entry.first).parent_path().string());
    auto relocate = [&](const std::string& arg) {
      const size_t eq = arg.rfind("--", 0) == 0 ? arg.find('=') : std::string::npos;
      const size_t start = eq == std::string::npos ? 0 : eq + 1;
      for (const std::string& dir : mounts) {
        if (arg.compare(start, dir.size() + 1, dir + "/") == 0) {
          return arg.substr(0, start) + (root / dir.substr(1)).string() +
                 arg.substr(start + dir.size());
        }
      }
      return arg;
    };
    // A clean environment: only what the pod spec sets.
    std::string cmd = "env -i PATH=/usr/bin:/bin";
    for (const auto& [name, value] : pc.env) cmd += " " + Quote(name + "=" + relocate(value));
    cmd += " " + std::string(GLM_BINARY);
    for (size_t i = 1; i < pc.argv.size(); ++i) cmd += " " + Quote(relocate(pc.argv[i]));
    cmd += " --check-args";
    auto r = RunCommand(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
    EXPECT_NE(r.output.find("arguments OK"), std::string::npos) << cmd << "\n" << r.output;
    commands.insert(pc.argv[1] +
                    (pc.argv[1] == "store" || pc.argv[1] == "tokenizer" ? " " + pc.argv[2] : ""));
  }
  EXPECT_EQ(commands, (std::set<std::string>{"coordinator", "store serve", "tokenizer train",
                                             "worker", "train"}));
}

TEST_P(K8sOverlayTest, PartsAgreeWithEachOther) {
  const auto& objects = rendered_.objects;
  std::vector<std::string> errors;
  auto containers = PodContainers(objects, &errors);
  ASSERT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
  std::map<std::string, const PodContainer*> by;  // "Deployment/glm-worker worker" (index 0)
  for (const PodContainer& pc : containers) {
    std::string key = std::regex_replace(pc.where, std::regex("\\[\\d+\\]"), "");
    if (!by.count(key)) by[key] = &pc;
  }
  const PodContainer* coordinator = by["Deployment/glm-coordinator coordinator"];
  const PodContainer* store = by["StatefulSet/glm-store store"];
  const PodContainer* store_tok = by["StatefulSet/glm-store tokenizer"];
  const PodContainer* worker = by["Deployment/glm-worker worker"];
  const PodContainer* worker_tok = by["Deployment/glm-worker tokenizer"];
  const PodContainer* trainer = by["Job/glm-trainer trainer"];
  const PodContainer* trainer_tok = by["Job/glm-trainer tokenizer"];
  ASSERT_TRUE(coordinator && store && store_tok && worker && worker_tok && trainer && trainer_tok);

  // The job file the coordinator reads, and what its executors will use.
  const std::string job_path = Flag(coordinator->argv, "--job-file");
  ASSERT_TRUE(coordinator->config_files.count(job_path))
      << job_path << " is not mounted from the ConfigMap";
  nlohmann::json job = nlohmann::json::parse(coordinator->config_files.at(job_path));
  auto params = Params(job["params"].get<std::string>());
  // The tokenizer: every init container trains the same one, from the job's
  // corpus, where the job's executors and the dataset manifest say it is.
  for (const PodContainer* tok : {store_tok, worker_tok, trainer_tok}) {
    EXPECT_EQ(tok->argv, store_tok->argv) << tok->where << " trains a different tokenizer";
    EXPECT_EQ(Flag(tok->argv, "--input"), job["corpus"].get<std::string>()) << tok->where;
    EXPECT_EQ(Flag(tok->argv, "--output"), params["tokenizer"]) << tok->where;
  }
  const std::string tok_config = store_tok->config_files.at(Flag(store_tok->argv, "--config"));
  EXPECT_EQ(ConfigValue(tok_config, "seed"), std::to_string(job["seed"].get<uint64_t>()));
  EXPECT_EQ(ConfigValue(tok_config, "text-split"), params["text_split"]);
  EXPECT_EQ(Flag(store->argv, "--tokenizer"), params["tokenizer"]);
  // Endpoints name the Services that exist, on the ports the pods listen on.
  EXPECT_EQ(params["store"], "tcp://glm-store-0.glm-store:5601");
  EXPECT_EQ(Flag(trainer->argv, "--store-endpoint"), params["store"]);
  EXPECT_EQ(Flag(store->argv, "--bind"), "tcp://0.0.0.0:5601");
  EXPECT_EQ(Find(objects, "StatefulSet", "glm-store")["spec"]["serviceName"].as<std::string>(),
            "glm-store");
  EXPECT_EQ(Flag(worker->argv, "--coordinator"), "tcp://glm-coordinator:5555");
  EXPECT_EQ(Flag(trainer->argv, "--keys"), params["store_keys"]);
  EXPECT_EQ(Flag(coordinator->argv, "--bind"), "tcp://0.0.0.0:5555");
  std::set<int> coordinator_ports;
  for (const auto& p : Find(objects, "Service", "glm-coordinator")["spec"]["ports"])
    coordinator_ports.insert(p["port"].as<int>());
  EXPECT_EQ(coordinator_ports, (std::set<int>{5555, 8265, 29500}));
  EXPECT_EQ(params["store_keys"], "/keys");
  // Workers declare the cpus they request.
  const std::string resources = Flag(worker->argv, "--resources");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(resources, m, std::regex("cpu=([0-9.]+)"))) << resources;
  EXPECT_EQ(static_cast<int64_t>(std::stod(m[1]) * 1000),
            MilliCpu(worker->container["resources"]["requests"]["cpu"].as<std::string>()));
  // Trainers: the coordinator's trainer group waits for completions =
  // parallelism of them (GLM_TRAINERS) and hosts the rendezvous on the port
  // its Service exposes; each pod prefers its completion index as rank and
  // names no world size or rendezvous of its own (that would make a fixed group).
  YAML::Node job_obj = Find(objects, "Job", "glm-trainer");
  const int completions = job_obj["spec"]["completions"].as<int>();
  EXPECT_EQ(job_obj["spec"]["parallelism"].as<int>(), completions);
  ASSERT_EQ(coordinator->env.count("GLM_TRAINERS"), 1u);
  EXPECT_EQ(coordinator->env.at("GLM_TRAINERS"), std::to_string(completions));
  EXPECT_EQ(Flag(coordinator->argv, "--rendezvous-port"), "29500");
  std::set<std::string> ranks;
  for (const PodContainer& pc : containers) {
    if (pc.where.rfind("Job/glm-trainer[", 0) != 0 || pc.argv.size() < 2 || pc.argv[1] != "train")
      continue;
    EXPECT_EQ(Flag(pc.argv, "--world-size"), "") << pc.where;
    EXPECT_EQ(Flag(pc.argv, "--rendezvous"), "") << pc.where;
    EXPECT_EQ(Flag(pc.argv, "--coordinator"), "tcp://glm-coordinator:5555") << pc.where;
    ranks.insert(Flag(pc.argv, "--rank"));
  }
  std::set<std::string> expected_ranks;
  for (int i = 0; i < completions; ++i) expected_ranks.insert(std::to_string(i));
  EXPECT_EQ(ranks, expected_ranks);
  const std::string pretrain = trainer->config_files.at(Flag(trainer->argv, "--config"));
  EXPECT_EQ(ConfigValue(pretrain, "seq_length"), params["seq_len"]);
  EXPECT_EQ(ConfigValue(pretrain, "vocab_size"), ConfigValue(tok_config, "vocab-size"));
  // The finalize phase splits and describes the data as the trainers' config says.
  EXPECT_TRUE(job.value("finalize", false))
      << "trainers need the dataset manifest the finalize phase writes";
  EXPECT_EQ(ConfigValue(pretrain, "heldout_every"), params["heldout_every"]);
  EXPECT_EQ(ConfigValue(pretrain, "validation_samples"), params["validation_samples"]);
  EXPECT_EQ(ConfigValue(pretrain, "data_seed"), std::to_string(job["seed"].get<uint64_t>()));
  EXPECT_EQ(std::to_string(job["max_samples"].get<int64_t>()), params["max_samples"]);
  // Held-out documents need at least heldout_every documents: the image's
  // corpus (/opt/glm/corpus/sotu) is the repository's data/sotu.
  const std::string corpus = job["corpus"].get<std::string>();
  const std::string in_image = "/opt/glm/corpus/sotu/";
  if (corpus.rfind(in_image, 0) == 0 && fs::exists(fs::path(GLM_SOURCE_DIR) / "data" / "sotu")) {
    glob_t g{};
    const std::string pattern =
        std::string(GLM_SOURCE_DIR) + "/data/sotu/" + corpus.substr(in_image.size());
    size_t files = glob(pattern.c_str(), 0, nullptr, &g) == 0 ? g.gl_pathc : 0;
    globfree(&g);
    EXPECT_GE(static_cast<double>(files), std::stod(params["heldout_every"]))
        << corpus << ": too few documents to hold out every " << params["heldout_every"] << "th";
  }
  // Enough samples for max_steps (equal objective weights: a third of each batch).
  const double steps = std::stod(ConfigValue(pretrain, "max_steps"));
  const double batch = std::stod(ConfigValue(pretrain, "global_batch_size"));
  EXPECT_GE(job["max_samples"].get<double>(), steps * batch / 3 + 1)
      << "the pipeline stops before the trainers do";
  // SIGTERM checkpoints: the trainers get minutes, not the default 30 s.
  EXPECT_GE(job_obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as<int>(), 120);
  // Every pod carries the label the NetworkPolicies admit.
  for (const YAML::Node& o : objects) {
    if (!PodSpec(o)) continue;
    EXPECT_EQ(
        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"].as<std::string>(),
        "glm")
        << KindName(o);
  }
  // Probes: HTTP /readyz and /healthz on the ports glm serves them on.
  for (const PodContainer* pc : {coordinator, worker}) {
    const std::string http = Flag(pc->argv, "--http");
    const std::string port = http.substr(http.rfind(':') + 1);
    std::map<std::string, std::string> named;
    for (const auto& p : pc->container["ports"])
      named[p["name"].as<std::string>()] = p["containerPort"].as<std::string>();
    EXPECT_EQ(pc->container["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz")
        << pc->where;
    EXPECT_EQ(pc->container["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz")
        << pc->where;
    EXPECT_EQ(named[pc->container["readinessProbe"]["httpGet"]["port"].as<std::string>()], port)
        << pc->where;
  }
  // gpu: each trainer asks for a GPU; cpu-dev: none anywhere.
  YAML::Node limits = trainer->container["resources"]["limits"];
  if (GetParam() == "gpu") {
    ASSERT_TRUE(limits["nvidia.com/gpu"]) << "gpu overlay trainers must request nvidia.com/gpu";
    EXPECT_GE(limits["nvidia.com/gpu"].as<int>(), 1);
  } else {
    EXPECT_FALSE(rendered_.yaml.find("nvidia.com/gpu") != std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(Overlays, K8sOverlayTest, ::testing::Values("cpu-dev", "gpu"),
                         [](const auto& info) {
                           return std::string(info.param == "cpu-dev" ? "CpuDev" : "Gpu");
                         });

// The checks themselves catch mistakes: a broken manifest fails each.
class K8sBrokenManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("glm_k8s_broken_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(K8sBrokenManifestTest, ValidatorRejectsAWrongTypeAnUnknownFieldAndAnUnknownKind) {
  const std::string node = FindTool("node");
  if (node.empty()) GTEST_SKIP() << "node not found: scripts/setup installs Debian's nodejs";
  if (!fs::exists(ValidatorModules() / "kubernetes-models")) {
    GTEST_SKIP() << "the validator's npm packages are not in " << ValidatorModules()
                 << ": run scripts/setup";
  }
  std::ofstream(dir_ / "bad.yaml") << R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
spec:
  replicas: two
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
      - name: c
        image: glm
        imagePullPolicyy: Always
---
apiVersion: v1
kind: Service
metadata:
  name: fine
spec:
  ports:
  - port: 80
---
apiVersion: glm.example/v1
kind: Pretrain
metadata:
  name: custom
)";
  auto r = RunCommand(
      Quote(node) + " " + GLM_SOURCE_DIR + "/tests/k8s/validator/validate.cjs --modules " +
      Quote(ValidatorModules().string()) + " " + Quote((dir_ / "bad.yaml").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("spec/replicas must be integer"), std::string::npos) << r.output;
  EXPECT_NE(
      r.output.find("Pretrain custom: apiVersion glm.example/v1 kind Pretrain is not a built-in"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("3 objects, 2 problems"), std::string::npos) << r.output;
  // With the type fixed, the unknown field is what remains.
  std::string text = Slurp(dir_ / "bad.yaml");
  text = std::regex_replace(text, std::regex("replicas: two"), "replicas: 2");
  std::ofstream(dir_ / "bad.yaml") << text;
  r = RunCommand(Quote(node) + " " + GLM_SOURCE_DIR +
                 "/tests/k8s/validator/validate.cjs --modules " +
                 Quote(ValidatorModules().string()) + " " + Quote((dir_ / "bad.yaml").string()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(
                "Deployment typo: unknown field spec.template.spec.containers.0.imagePullPolicyy"),
            std::string::npos)
      << r.output;
}

TEST_F(K8sBrokenManifestTest, KustomizeFailsWithoutTheKeysAndSaysWhichFile) {
  const std::string kubectl = FindTool("kubectl");
  if (kubectl.empty())
    GTEST_SKIP() << "kubectl not found: scripts/setup installs Debian's kubernetes-client";
  fs::copy(fs::path(GLM_SOURCE_DIR) / "k8s", dir_ / "k8s", fs::copy_options::recursive);
  fs::remove_all(dir_ / "k8s" / "base" / "keys");
  Rendered r = Render(kubectl, dir_ / "k8s" / "overlays" / "cpu-dev", dir_);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.errors.find("server.pub"), std::string::npos) << r.errors;
}

// Keeps k8s/runtime-packages.txt (what the slim image installs) in step
// with what the image copies, build/glm and the SentencePiece shim it
// dlopens (libglm_spm_shim.so, next to it): every shared library either names
// (DT_NEEDED) must come from a listed Debian package (apt brings those
// packages' own dependencies, so the libraries they load in turn are
// covered).
class K8sRuntimeImageTest : public ::testing::TestWithParam<std::string> {};

TEST_P(K8sRuntimeImageTest, RuntimePackagesProvideEveryLibraryItNeeds) {
  if (FindTool("dpkg-query").empty() || FindTool("ldd").empty() || FindTool("objdump").empty()) {
    GTEST_SKIP() << "needs dpkg-query, ldd and objdump (Debian: dpkg, libc-bin, binutils)";
  }
  const std::string file = (fs::path(GLM_BINARY).parent_path() / GetParam()).string();
  ASSERT_TRUE(fs::exists(file)) << file;
  std::set<std::string> listed;
  std::istringstream in(Slurp(fs::path(GLM_SOURCE_DIR) / "k8s" / "runtime-packages.txt"));
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream words(line);
    std::string w;
    while (words >> w) listed.insert(w);
  }
  ASSERT_FALSE(listed.empty());
  auto needed = RunCommand("objdump -p " + Quote(file));
  ASSERT_EQ(needed.exit_code, 0) << needed.output;
  auto ldd = RunCommand("ldd " + Quote(file));
  ASSERT_EQ(ldd.exit_code, 0) << ldd.output;
  std::map<std::string, std::string> resolved;  // soname -> path
  std::istringstream libs(ldd.output);
  std::smatch m;
  while (std::getline(libs, line)) {
    if (std::regex_search(line, m, std::regex("^\\s*(\\S+) => (/\\S+)"))) {
      resolved[m[1]] = m[2];
    } else if (std::regex_search(line, m, std::regex("^\\s*(/\\S+) \\("))) {  // the dynamic loader
      resolved[fs::path(m[1].str()).filename().string()] = m[1];
    }
  }
  std::istringstream entries(needed.output);
  std::vector<std::pair<std::string, std::string>> libraries;  // soname, path
  while (std::getline(entries, line)) {
    if (!std::regex_search(line, m, std::regex("NEEDED\\s+(\\S+)"))) continue;
    const std::string soname = m[1];
    ASSERT_TRUE(resolved.count(soname)) << soname << " is not found by ldd:\n" << ldd.output;
    libraries.emplace_back(soname, resolved[soname]);
  }
  // One dpkg-query for all: "package[:arch]: path" per line. A path no
  // package owns (an alternatives link such as libblas.so.3) is looked up
  // again as the file it links to.
  std::string query = "dpkg-query -S";
  for (const auto& lib : libraries)
    query += " " + Quote(lib.second) + " " + Quote(fs::canonical(lib.second).string());
  auto owners = RunCommand(query + " 2>/dev/null");
  std::map<std::string, std::string> owner;  // path -> package
  std::istringstream owned(owners.output);
  while (std::getline(owned, line)) {
    if (std::regex_search(line, m, std::regex("^([^:,]+)(:[a-z0-9]+)?: (/\\S+)$")))
      owner[m[3]] = m[1];
  }
  int checked = 0;
  for (const auto& [soname, path] : libraries) {
    std::string package = owner.count(path) ? owner[path] : owner[fs::canonical(path).string()];
    ASSERT_FALSE(package.empty()) << path << " belongs to no Debian package:\n" << owners.output;
    EXPECT_TRUE(listed.count(package)) << soname << " (" << path << ") comes from " << package
                                       << ", which k8s/runtime-packages.txt does not list";
    ++checked;
  }
  EXPECT_GE(checked, 4) << needed.output;
}

INSTANTIATE_TEST_SUITE_P(ImageFiles, K8sRuntimeImageTest,
                         ::testing::Values("glm", "libglm_spm_shim.so"), [](const auto& info) {
                           return std::string(info.param == "glm" ? "Glm" : "SpmShim");
                         });

}  // namespace
}  // namespace glm
