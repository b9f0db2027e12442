#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>

#include "worker/agent.h"
#include "worker/digest.h"
#include "worker/executor.h"

namespace glm::worker {
namespace {
namespace fs = std::filesystem;

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("glm_worker_test_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
             std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::ofstream(root_ / "shard.txt") << "one two three\n\nfour five\n\n\n\nsix\n";
    job_.job_id = "t";
    job_.seed = 99;
    job_.output_dir = (root_ / "out").string();
    job_.executor = "test";
    RegisterTestExecutors(&registry_);
  }
  void TearDown() override { fs::remove_all(root_); }

  TaskResult Run(const std::string& node, const TaskSpec& task) {
    ExecutorContext context(node, job_, nullptr);
    auto executor = registry_.Create("test", task.kind, context);
    GLM_CHECK(executor.ok()) << executor.status();
    auto result = (*executor)->Run(task, context);
    GLM_CHECK(result.ok()) << result.status();
    return *result;
  }

  TaskSpec Tokenize() {
    TaskSpec t;
    t.id = "tokenize/000000";
    t.kind = "tokenize";
    t.shard_path = (root_ / "shard.txt").string();
    return t;
  }
  TaskSpec Corrupt(uint64_t begin, uint64_t end) {
    TaskSpec t;
    t.id = "corrupt/x";
    t.kind = "corrupt";
    t.objective = 1;
    t.epoch = 2;
    t.begin = begin;
    t.end = end;
    return t;
  }

  fs::path root_;
  JobSpec job_;
  ExecutorRegistry registry_;
};

TEST_F(WorkerTest, ParsesDeclaredResourcesAndRejectsBadOnes) {
  auto r = ParseResources("cpu=2.5,gpu=1,memory=4096");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cpu, 2.5);
  EXPECT_EQ(r->gpu, 1);
  EXPECT_EQ(r->memory_mb, 4096u);
  EXPECT_FALSE(ParseResources("cpu=-1").ok());
  EXPECT_FALSE(ParseResources("cpu=two").ok());
  auto bad = ParseResources("tpu=1");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tpu=1"), std::string::npos);
}

TEST_F(WorkerTest, UnknownExecutorKindIsNotFound) {
  ExecutorContext context("n", job_, nullptr);
  auto e = registry_.Create("test", "train", context);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(registry_.Create("glm", "tokenize", context).ok());
}

TEST_F(WorkerTest, TestExecutorsSplitDocumentsAndWriteDeterministicSamples) {
  TaskResult t = Run("a", Tokenize());
  EXPECT_EQ(t.output_count, 3u);  // three non-empty documents
  TaskResult c = Run("a", Corrupt(10, 20));
  EXPECT_EQ(c.output_count, 10u);
  auto d = DigestOutput(job_.output_dir);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->num_records, 13u);
  EXPECT_EQ(d->records_by_prefix["doc"], 3u);
  EXPECT_EQ(d->records_by_prefix["sample/sentence"], 10u);
}

TEST_F(WorkerTest, RerunsOnOtherNodesLeaveTheSameDigest) {
  Run("a", Tokenize());
  Run("a", Corrupt(0, 8));
  std::string once = DigestOutput(job_.output_dir)->sha256_hex;
  // The same tasks again, split differently across two other nodes.
  Run("b", Corrupt(0, 4));
  Run("c", Corrupt(0, 8));
  Run("c", Tokenize());
  auto twice = DigestOutput(job_.output_dir);
  ASSERT_TRUE(twice.ok()) << twice.status();
  EXPECT_EQ(twice->sha256_hex, once);
  EXPECT_EQ(twice->num_node_stores, 3u);
}

TEST_F(WorkerTest, DigestRejectsConflictingValuesUnderOneKey) {
  Run("a", Corrupt(0, 2));
  job_.seed = 100;  // a non-deterministic executor, in effect
  Run("b", Corrupt(0, 2));
  auto d = DigestOutput(job_.output_dir);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
}

TEST_F(WorkerTest, CancelledExecutorReturnsAborted) {
  std::atomic<bool> cancel{true};
  ExecutorContext context("a", job_, &cancel);
  auto e = registry_.Create("test", "corrupt", context);
  ASSERT_TRUE(e.ok());
  auto r = (*e)->Run(Corrupt(0, 5), context);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kAborted);
}

TEST_F(WorkerTest, AgentWithoutKeysFailsWithAHint) {
  AgentOptions o;
  o.keys_dir = (root_ / "nokeys").string();
  NodeAgent agent(o, &registry_);
  std::atomic<bool> drain{false};
  Status s = agent.Run(&drain);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("glm keys generate"), std::string::npos);
}

TEST(AgentOptionsTest, BusyPollIsMicrosecondsFromZero) {
  AgentOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.busy_poll_us = 0;  // always sleep
  EXPECT_TRUE(o.Validate().ok());
  o.busy_poll_us = -1;
  Status s = o.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("busy-poll-us"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace glm::worker
