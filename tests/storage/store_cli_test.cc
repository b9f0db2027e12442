// `glm store stats|verify|digest|export` as a user runs them: the real
// binary on stores written through the library.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "schema/record_codec.h"
#include "storage/rocksdb_sample_store.h"
#include "storage/synthetic.h"
#include "tests/testing/run_command.h"

namespace glm::storage {
namespace {

namespace fs = std::filesystem;
using ::glm::testing::Contains;
using ::glm::testing::RunCommand;

class StoreCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(::testing::TempDir()) / ("cli_" + std::to_string(getpid()) + "_" + std::to_string(++counter));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<RocksDbSampleStore> Write(const std::string& name, bool reverse) {
    StoreOptions o;
    o.path = (dir_ / name).string();
    o.tokenizer_hash = 0xabc;
    auto store = std::move(RocksDbSampleStore::Open(o)).value();
    std::vector<Sample> samples;
    for (int obj = 0; obj < 3; ++obj) {
      for (uint64_t i = 0; i < 4; ++i) samples.push_back(MakeSyntheticSample(static_cast<Objective>(obj), 0, i, 32));
    }
    if (reverse) std::reverse(samples.begin(), samples.end());
    for (const Sample& s : samples) EXPECT_TRUE(store->PutSamples({s}).ok());
    EXPECT_TRUE(store->PutDocuments({MakeSyntheticDocument(0, 20), MakeSyntheticDocument(1, 30)}).ok());
    return store;
  }
  std::string Glm(const std::string& args) { return std::string(GLM_BINARY) + " " + args; }
  fs::path dir_;
};

TEST_F(StoreCliTest, StatsCountsFamiliesObjectivesAndEpochsAsJson) {
  Write("a", false).reset();
  auto r = RunCommand(Glm("store stats --json --store " + (dir_ / "a").string() + " 2>/dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["families"]["samples"]["records"], 12);
  EXPECT_EQ(j["families"]["docs"]["records"], 2);
  EXPECT_EQ(j["families"]["docs"]["tokens"], 50);
  EXPECT_EQ(j["tokenizer_hash"], "0000000000000abc");
  ASSERT_EQ(j["samples_by_epoch"].size(), 3u);
  EXPECT_EQ(j["samples_by_epoch"][2]["objective"], "document");
  EXPECT_GT(j["bytes_on_disk"].get<uint64_t>(), 0u);
}

// (Each run of the binary costs seconds of LibTorch loading: the passing
// case of verify is tested through the library in store_tools_test.)
TEST_F(StoreCliTest, VerifyNamesEachBadKeyAndExitsNonZero) {
  auto store = Write("a", false);
  const std::string path = (dir_ / "a").string();
  ASSERT_TRUE(store->PutRawForTesting(RocksDbSampleStore::Family::kSamples,
                                      EncodeSampleKey({Objective::kSentence, 0, 2}), "garbage!").ok());
  ASSERT_TRUE(store->PutRawForTesting(RocksDbSampleStore::Family::kDocs, EncodeDocKey(1), "12345678").ok());
  store.reset();
  auto bad = RunCommand(Glm("store verify --store " + path));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "samples/sentence/epoch=0/index=2")) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "docs/id=1")) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "2 bad records")) << bad.output;
}

TEST_F(StoreCliTest, DigestIsTheSameForTheSameContentWrittenInAnotherOrder) {
  Write("a", false).reset();
  Write("b", true).reset();
  auto a = RunCommand(Glm("store digest --store " + (dir_ / "a").string() + " 2>/dev/null"));
  auto b = RunCommand(Glm("store digest --store " + (dir_ / "b").string() + " 2>/dev/null"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.output.size(), 65u) << a.output;  // 64 hex digits and a newline
}

TEST_F(StoreCliTest, ExportWritesOneJsonLinePerSampleOfTheObjective) {
  Write("a", false).reset();
  auto r = RunCommand(Glm("store export --json --objective sentence --store " + (dir_ / "a").string() +
                          " 2>/dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    Sample expected = MakeSyntheticSample(Objective::kSentence, 0, n, 32);
    EXPECT_EQ(j["objective"], "sentence");
    EXPECT_EQ(j["index"], n);
    EXPECT_EQ(j["layout"], "blank");
    EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), expected.tokens);
    EXPECT_EQ(j["loss_mask"].get<std::vector<uint8_t>>(), expected.loss_mask);
    EXPECT_EQ(j["block_position_ids"].get<std::vector<int32_t>>(), expected.block_position_ids);
    EXPECT_EQ(j["spans"][0][0], expected.spans[0].first);
    EXPECT_EQ(j["sep"], expected.sep);
    ++n;
  }
  EXPECT_EQ(n, 4);
}

TEST_F(StoreCliTest, MissingStoreSaysWhatToDo) {
  auto missing = RunCommand(Glm("store stats --store " + (dir_ / "nope").string()));
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_TRUE(Contains(missing.output, "no store at")) << missing.output;
  EXPECT_TRUE(Contains(missing.output, "HINT")) << missing.output;
}

TEST_F(StoreCliTest, BenchStoreRunsAndPrintsEveryRate) {
  auto r = RunCommand(Glm("bench store --samples 64 --batch 16 --repeats 1 --seq-len 64 --dir " +
                          (dir_ / "bench").string() + " 2>/dev/null"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  nlohmann::json j = nlohmann::json::parse(r.output);
  for (const char* key : {"write_samples_per_s", "local_range_read_samples_per_s", "local_multiget_samples_per_s",
                          "remote_range_read_samples_per_s", "remote_multiget_samples_per_s",
                          "remote_over_local_range_read_per_s", "remote_over_local_multiget_per_cpu_s", "remote_write_samples_per_s", "encode_samples_per_s", "decode_samples_per_s"}) {
    EXPECT_GT(j[key].get<double>(), 0) << key;
  }
}

}  // namespace
}  // namespace glm::storage
