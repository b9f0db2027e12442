// glm pipeline with the real data path (executor "glm") as real processes on
// loopback: coordinator, two workers, the storage server. The store it
// produces from four SOTU addresses has the same `glm store digest` as the
// same documents and samples built in this process (TokenizeCorpus +
// SampleFactory, written to a RocksDB store directly), also when a worker
// is kill -9'd in the middle of the corrupt phase.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "dataloader/document_source.h"
#include "dataloader/sample_factory.h"
#include "dataloader/tokenizer.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/store_tools.h"
#include "tests/testing/run_command.h"

namespace glm {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;

const char* kFiles[] = {"1790_george_washington_n.txt", "1791_george_washington_n.txt",
                        "1792_george_washington_n.txt", "1793_george_washington_n.txt"};

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The pipeline's final JSON line.
nlohmann::json PipelineResult(const std::string& output) {
  std::istringstream in(output);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.rfind("{\"cores\"", 0) == 0 || line.find("\"command\":\"pipeline\"") != std::string::npos) last = line;
  }
  if (last.empty()) return nlohmann::json();
  return nlohmann::json::parse(last, nullptr, false);
}

// The reference: the same corpus, tokenizer and sample options, built here.
std::string OracleDigest(const fs::path& corpus, const fs::path& tokenizer_dir, const fs::path& store_dir) {
  auto tokenizer = dataloader::GlmTokenizer::Load(tokenizer_dir.string());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  if (!tokenizer.ok()) return "";
  dataloader::CorpusOptions c;
  c.paths = {corpus.string()};
  dataloader::CorpusStats stats;
  auto docs = dataloader::TokenizeCorpus(c, **tokenizer, &stats);
  EXPECT_TRUE(docs.ok()) << docs.status();
  dataloader::InMemoryDocumentSource source(*docs);
  dataloader::SampleOptions so;
  so.seq_length = 128;  // configs/pipeline-tiny.yaml
  so.seed = 1234;
  dataloader::SampleFactory factory(&source, (*tokenizer)->vocab(), so);
  storage::StoreOptions o;
  o.path = store_dir.string();
  o.tokenizer_hash = (*tokenizer)->hash();
  auto store = storage::RocksDbSampleStore::Open(o);
  EXPECT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->PutDocuments(source.documents()).ok());
  EXPECT_TRUE((*store)->BuildDocumentIndex().ok());
  for (Objective obj : {Objective::kBlank, Objective::kSentence, Objective::kDocument}) {
    std::vector<Sample> samples;
    for (uint64_t i = 0; i < 256; ++i) {
      auto s = factory.Make(obj, 0, i);
      EXPECT_TRUE(s.ok()) << s.status();
      samples.push_back(std::move(s).value());
    }
    EXPECT_TRUE((*store)->PutSamples(samples).ok());
  }
  auto digest = storage::DigestStore(store->get());
  EXPECT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(digest->num_documents, docs->size());
  EXPECT_EQ(digest->num_samples, 3u * 256u);
  return digest->hex;
}

// pid of this run's worker `node` (found by its command line), or -1.
pid_t FindWorker(const std::string& workdir, const std::string& node) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = Slurp(e.path() / "cmdline");
    for (char& ch : cmdline) if (ch == '\0') ch = ' ';
    if (cmdline.find(" worker ") != std::string::npos && cmdline.find(workdir) != std::string::npos &&
        cmdline.find("--node-id " + node) != std::string::npos) {
      return std::stoi(name);
    }
  }
  return -1;
}

class GlmPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path sotu = fs::path(GLM_SOURCE_DIR) / "data" / "sotu";
    if (!fs::exists(sotu / kFiles[0])) GTEST_SKIP() << "no SOTU corpus in " << sotu << "; run scripts/setup";
    dir_ = fs::temp_directory_path() / ("glm_pipeline_it_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "corpus");
    for (const char* f : kFiles) fs::copy_file(sotu / f, dir_ / "corpus" / f);
  }
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }
  std::string PipelineCommand(const std::string& run, const std::string& extra) {
    return std::string(GLM_BINARY) + " pipeline --config " + GLM_SOURCE_DIR + "/configs/pipeline-tiny.yaml" +
           " --corpus " + (dir_ / "corpus").string() + " --workdir " + (dir_ / run).string() +
           " --heartbeat-interval-ms 200 --node-timeout-ms 1500 --lease-ms 2000 --timeout-s 90 " + extra;
  }
  fs::path dir_;
};

TEST_F(GlmPipelineTest, StoreDigestEqualsInProcessBuildAlsoAfterKill9OfAWorker) {
  // 1. Fault-free, training the tokenizer first.
  auto r1 = RunCommand(PipelineCommand("run1", "") + " 2>&1");
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  nlohmann::json j1 = PipelineResult(r1.output);
  ASSERT_TRUE(j1.is_object()) << r1.output;
  EXPECT_EQ(j1["samples"], 768) << r1.output;
  EXPECT_GT(j1["mb_per_s_per_core"].get<double>(), 0) << r1.output;
  EXPECT_NE(r1.output.find("training a 512-piece tokenizer"), std::string::npos) << r1.output;

  const std::string oracle = OracleDigest(dir_ / "corpus", dir_ / "run1" / "tokenizer", dir_ / "oracle");
  ASSERT_FALSE(oracle.empty());
  EXPECT_EQ(j1["digest"], oracle);
  auto cli = RunCommand(std::string(GLM_BINARY) + " store digest --store " + (dir_ / "run1" / "store").string());
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_EQ(cli.output.substr(0, 64), oracle);

  // 2. The same job, slowed down, with worker local-0 kill -9'd mid-run.
  const std::string run2 = (dir_ / "run2").string();
  const std::string log = (dir_ / "run2.out").string();
  pid_t pipeline = fork();
  if (pipeline == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::string cmd = PipelineCommand("run2", "--tokenizer " + (dir_ / "run1" / "tokenizer").string() +
                                                  " --params item_delay_us=8000");
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill once samples are being produced: the corrupt phase has started
  // when the storage server has finalized the documents.
  pid_t victim = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (std::regex_search(Slurp(log), std::regex("samples \\{\"blank\":[1-9]"))) {
      victim = FindWorker(run2, "local-0");
      break;
    }
  }
  ASSERT_GT(victim, 0) << "no worker to kill; pipeline output:\n" << Slurp(log);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  int status = 0;
  waitpid(pipeline, &status, 0);
  std::string out2 = Slurp(log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out2;
  nlohmann::json j2 = PipelineResult(out2);
  ASSERT_TRUE(j2.is_object()) << out2;
  EXPECT_EQ(j2["digest"], oracle) << out2;
  EXPECT_EQ(j2["samples"], 768) << out2;
}

TEST_F(GlmPipelineTest, MissingTokenizerIsAClearErrorNotAHang) {
  auto r = RunCommand(PipelineCommand("bad", "--tokenizer " + (dir_ / "nope").string()) + " 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("storage server did not start"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace glm
