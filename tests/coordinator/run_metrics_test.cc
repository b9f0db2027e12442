// A real Coordinator with options.run_dir: trainer rank 0's reports become
// TensorBoard steps (read back with the independent reader) and
// coordinator-metrics.jsonl lines, each step once, across a restart; I/O
// failures are logged and never refuse a report.
#include "coordinator/run_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "coordinator/coordinator.h"
#include "tests/coordinator/event_file_reader.h"

namespace glm::coordinator {
namespace {
namespace fs = std::filesystem;
using glm::testing::Layout;
using glm::testing::ReadEventFile;
using glm::testing::ScalarsOf;
using glm::testing::SummaryEvents;

TrainerReport Report(int64_t step, int64_t rank = 0, int64_t world = 2) {
  TrainerReport r;
  r.trainer_id = "trainer/" + std::to_string(rank);
  r.rank = rank;
  r.world_size = world;
  r.step = step;
  r.max_steps = 100;
  r.loss = 5.0 - 0.25 * static_cast<double>(step);
  r.objective_loss = {4.0, NAN, 6.0};  // no sentence samples in the step
  r.lr = 1e-3 * static_cast<double>(step);
  r.grad_norm = 0.5 + static_cast<double>(step);
  r.tokens_per_s = 1000 + 100 * rank;
  r.data_wait_ms = 0;  // a real zero: still written
  r.allreduce_ms = 3;
  r.step_ms = 40;
  return r;
}

std::vector<nlohmann::json> ReadJsonl(const fs::path& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::vector<fs::path> EventFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class RunMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("glm_run_metrics_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    job_.noop_tasks = 4;  // no corpus needed: reports are what matters here
    options_.run_dir = (root_ / "run").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<Coordinator> Open() {
    auto c = Coordinator::Open((root_ / "state").string(), job_, options_, &clock_);
    GLM_CHECK(c.ok()) << c.status();
    return std::move(c).value();
  }

  fs::path root_;
  JobOptions job_;
  CoordinatorOptions options_;
  ManualClock clock_{1000};
};

TEST_F(RunMetricsTest, RankZeroStepsBecomeTensorBoardEventsAndJsonLinesOnce) {
  auto c = Open();
  EXPECT_FALSE(fs::exists(root_ / "run"));  // nothing until the first step
  const double before = UnixSecondsNow();
  for (int64_t step = 1; step <= 3; ++step) {
    ASSERT_TRUE(c->ReportTrainer(Report(step, 1)).ok());  // rank 1 first: not written itself
    ASSERT_TRUE(c->ReportTrainer(Report(step, 0)).ok());
  }
  ASSERT_TRUE(c->ReportTrainer(Report(3, 0)).ok());  // a retried report: not written twice
  ASSERT_TRUE(c->ReportTrainer(Report(0, 0)).ok());  // nothing trained yet: not written
  const double after = UnixSecondsNow();

  auto files = EventFiles(root_ / "run" / "tensorboard");
  ASSERT_EQ(files.size(), 1u);
  auto contents = ReadEventFile(files[0].string());
  ASSERT_EQ(contents.error, "");
  // file_version, the file's START at its first step, then one record per step.
  EXPECT_EQ(Layout(contents), "V S1 1 2 3");
  EXPECT_EQ(contents.events[0].file_version(), "brain.Event:2");
  const auto steps = SummaryEvents(contents);
  ASSERT_EQ(steps.size(), 3u);
  for (int64_t step = 1; step <= 3; ++step) {
    const auto& e = steps[step - 1];
    EXPECT_EQ(e.step(), step);
    EXPECT_GE(e.wall_time(), before);
    EXPECT_LE(e.wall_time(), after);
    auto s = ScalarsOf(e);
    EXPECT_FLOAT_EQ(s.at("loss"), static_cast<float>(5.0 - 0.25 * step));
    EXPECT_FLOAT_EQ(s.at("loss/blank"), 4.0f);
    EXPECT_EQ(s.count("loss/sentence"), 0u);  // NaN: left out
    EXPECT_FLOAT_EQ(s.at("loss/document"), 6.0f);
    EXPECT_FLOAT_EQ(s.at("lr"), static_cast<float>(1e-3 * step));
    EXPECT_FLOAT_EQ(s.at("grad_norm"), static_cast<float>(0.5 + step));
    EXPECT_FLOAT_EQ(s.at("tokens_per_s"), 1000.0f + 1100.0f);  // both ranks' latest reports
    EXPECT_EQ(s.at("data_wait_ms"), 0.0f);
    EXPECT_FLOAT_EQ(s.at("step_ms"), 40.0f);
    EXPECT_FLOAT_EQ(s.at("allreduce_ms"), 3.0f);
    EXPECT_EQ(s.at("world_size"), 2.0f);
    EXPECT_EQ(s.size(), 10u);
  }

  auto lines = ReadJsonl(root_ / "run" / kRunMetricsJsonl);
  ASSERT_EQ(lines.size(), 3u);
  for (int64_t step = 1; step <= 3; ++step) {
    const nlohmann::json& j = lines[step - 1];
    EXPECT_EQ(j["step"], step);
    EXPECT_EQ(j["wall_time"].get<double>(), steps[step - 1].wall_time());
    EXPECT_DOUBLE_EQ(j["loss"].get<double>(), 5.0 - 0.25 * step);
    EXPECT_FALSE(j.contains("loss/sentence"));
    EXPECT_EQ(j["loss/document"], 6.0);
    EXPECT_EQ(j["grad_norm"], 0.5 + step);
    EXPECT_EQ(j["tokens_per_s"], 2100.0);
    EXPECT_EQ(j["world_size"], 2);
    EXPECT_TRUE(j["world_size"].is_number_integer());
  }
  // The trainer's own file name is left alone.
  EXPECT_FALSE(fs::exists(root_ / "run" / "metrics.jsonl"));
}

TEST_F(RunMetricsTest, GoingBackIsWrittenAsATensorBoardRestartAtThatStep) {
  auto c = Open();
  for (int64_t step : {1, 2, 3, 4, 2, 3}) {  // a trainer resumed from its step-1 checkpoint
    ASSERT_TRUE(c->ReportTrainer(Report(step, 0, 1)).ok());
  }
  auto files = EventFiles(root_ / "run" / "tensorboard");
  ASSERT_EQ(files.size(), 1u);
  auto contents = ReadEventFile(files[0].string());
  ASSERT_EQ(contents.error, "");
  EXPECT_EQ(Layout(contents), "V S1 1 2 3 4 S2 2 3");
  const auto& marker = contents.events[6];
  ASSERT_TRUE(marker.has_session_log());
  EXPECT_NE(marker.session_log().msg().find("step 4"), std::string::npos) << marker.session_log().msg();
  auto lines = ReadJsonl(root_ / "run" / kRunMetricsJsonl);
  std::vector<int64_t> json_steps;
  for (const auto& j : lines) json_steps.push_back(j["step"].get<int64_t>());
  EXPECT_EQ(json_steps, (std::vector<int64_t>{1, 2, 3, 4, 2, 3}));
}

TEST_F(RunMetricsTest, ARankNotHeardYetCountsAsRankZerosThroughput) {
  auto c = Open();
  ASSERT_TRUE(c->ReportTrainer(Report(1, 0, 4)).ok());  // ranks 1..3 silent so far
  ASSERT_TRUE(c->ReportTrainer(Report(1, 2, 4)).ok());
  ASSERT_TRUE(c->ReportTrainer(Report(2, 0, 4)).ok());
  auto lines = ReadJsonl(root_ / "run" / kRunMetricsJsonl);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["tokens_per_s"], 4 * 1000.0);
  EXPECT_EQ(lines[1]["tokens_per_s"], 3 * 1000.0 + 1200.0);
}

TEST_F(RunMetricsTest, ARestartedCoordinatorGoesOnAfterTheLastWrittenStepInANewEventFile) {
  {
    auto c = Open();
    for (int64_t step = 1; step <= 2; ++step) ASSERT_TRUE(c->ReportTrainer(Report(step, 0, 1)).ok());
  }
  // A line cut short by a crash at the end of the JSONL file.
  std::ofstream(root_ / "run" / kRunMetricsJsonl, std::ios::app) << "{\"step\": 3, \"lo";
  {
    auto c = Open();
    ASSERT_TRUE(c->ReportTrainer(Report(2, 0, 1)).ok());  // the trainer's retry from before the restart
    ASSERT_TRUE(c->ReportTrainer(Report(3, 0, 1)).ok());
  }
  auto files = EventFiles(root_ / "run" / "tensorboard");
  ASSERT_EQ(files.size(), 2u);
  std::vector<std::string> layouts;
  for (const fs::path& f : files) {
    auto contents = ReadEventFile(f.string());
    ASSERT_EQ(contents.error, "") << f;
    EXPECT_EQ(contents.events[0].file_version(), "brain.Event:2");
    layouts.push_back(Layout(contents));
  }
  // The new file starts at the next step: its START drops nothing.
  EXPECT_EQ(layouts, (std::vector<std::string>{"V S1 1 2", "V S3 3"}));
  std::ifstream in(root_ / "run" / kRunMetricsJsonl);
  std::vector<int64_t> json_steps;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) json_steps.push_back(j["step"].get<int64_t>());
  }
  EXPECT_EQ(json_steps, (std::vector<int64_t>{1, 2, 3}));  // the cut line stays apart from the new one
}

TEST_F(RunMetricsTest, AnUnwritableEventDirectoryIsLoggedAndTheJsonlAndReportsGoOn) {
  fs::create_directories(root_ / "run");
  std::ofstream(root_ / "run" / "tensorboard") << "not a directory";
  auto c = Open();
  for (int64_t step = 1; step <= 3; ++step) EXPECT_TRUE(c->ReportTrainer(Report(step, 0, 1)).ok());
  EXPECT_EQ(ReadJsonl(root_ / "run" / kRunMetricsJsonl).size(), 3u);
  // Recorded once, as an event people see in glm status / the dashboard.
  int failures = 0;
  const nlohmann::json status = c->StatusJson();
  for (const auto& e : status["events"]) {
    if (e.dump().find("run_metrics_failed") != std::string::npos) {
      ++failures;
      EXPECT_NE(e.dump().find((root_ / "run" / "tensorboard").string()), std::string::npos) << e.dump();
    }
  }
  EXPECT_EQ(failures, 1) << status["events"].dump();
  EXPECT_EQ(c->last_report_seq(), 3u);
}

TEST_F(RunMetricsTest, AJsonlWriteErrorNamesTheFileOnceAndTheEventFileGoesOn) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  fs::create_directories(root_ / "run");
  fs::create_symlink("/dev/full", root_ / "run" / kRunMetricsJsonl);  // every flush: ENOSPC
  RunMetricsWriter w((root_ / "run").string());
  Status first = w.WriteStep(Report(1, 0, 1), 1000);
  EXPECT_EQ(first.code(), StatusCode::kInternal);
  EXPECT_NE(first.message().find((root_ / "run" / kRunMetricsJsonl).string()), std::string::npos) << first;
  EXPECT_TRUE(w.WriteStep(Report(2, 0, 1), 1000).ok());  // reported once, then skipped
  auto contents = ReadEventFile(w.events_path());
  ASSERT_EQ(contents.error, "");
  EXPECT_EQ(Layout(contents), "V S1 1 2");
  EXPECT_EQ(w.last_written_step(), 2);
}

TEST_F(RunMetricsTest, NoRunDirectoryWritesNothing) {
  options_.run_dir.clear();
  auto c = Open();
  ASSERT_TRUE(c->ReportTrainer(Report(1, 0, 1)).ok());
  EXPECT_FALSE(fs::exists(root_ / "run"));
}

}  // namespace
}  // namespace glm::coordinator
