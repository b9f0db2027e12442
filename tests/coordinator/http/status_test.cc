#include "coordinator/http/status.h"

#include <gtest/gtest.h>

namespace glm::http {
namespace {

TEST(StatusJsonTest, RoundTripsEveryField) {
  ClusterStatus s;
  s.job = "tiny";
  s.phase = "running";
  s.time_ms = 5;
  s.trainer.step = 3;
  s.trainer.world_size = 2;
  s.nodes = {{"node-0", "127.0.0.1:5000", "alive", 123, 4, 1, 1 << 20, 3}};
  s.actors = {{"trainer-0", "trainer", "node-0", "running", 1}};
  s.stages = {{"tokenize", 1, 2, 3, 4, 10}};
  s.objectives = {{"blank", 10, 8, 0.5, 0.5}};
  s.failures = {{9, "actor_restart", "trainer-0", "exit 134"}};
  s.checkpoints = {{2, 7, 1.5, 1000, "runs/x/step-2", "complete"}};
  MetricsPoint p;
  p.step = 3;
  p.loss = 2;
  p.objective_loss = {{"blank", 1.5}};
  p.learning_rate = 0.01;
  s.history = {p};
  nlohmann::json j = ToJson(s);
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_EQ(j["nodes"][0]["last_heartbeat_ms"], 123);
  EXPECT_EQ(j["history"][0]["objective_loss"]["blank"], 1.5);
  auto back = ClusterStatusFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ToJson(*back), j);
}

TEST(StatusJsonTest, MissingFieldsKeepDefaults) {
  auto s = ClusterStatusFromJson(nlohmann::json::parse(R"({"job":"j","trainer":{"step":4}})"));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->job, "j");
  EXPECT_EQ(s->trainer.step, 4);
  EXPECT_TRUE(s->nodes.empty());
}

TEST(StatusJsonTest, RejectsWrongTypesAndNewerVersions) {
  EXPECT_FALSE(ClusterStatusFromJson(nlohmann::json::parse("[1]")).ok());
  auto wrong = ClusterStatusFromJson(nlohmann::json::parse(R"({"trainer":{"step":"four"}})"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  auto newer = ClusterStatusFromJson(nlohmann::json::parse(R"({"format_version":99})"));
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.status().message().find("format_version 99"), std::string::npos);
}

}  // namespace
}  // namespace glm::http
