#include "coordinator/http/metrics.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "coordinator/http/glm_metrics.h"
#include "coordinator/http/prometheus_text.h"
#include "coordinator/http/status.h"

namespace glm::http {
namespace {

TEST(MetricsTest, CounterIgnoresNegativeAndNanIncrements) {
  Counter c;
  c.Increment();
  c.Increment(2.5);
  c.Increment(-10);
  c.Increment(std::nan(""));
  EXPECT_DOUBLE_EQ(c.Value(), 3.5);
  c.AdvanceTo(2);  // never goes down
  EXPECT_DOUBLE_EQ(c.Value(), 3.5);
  c.AdvanceTo(10);
  EXPECT_DOUBLE_EQ(c.Value(), 10);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  MetricsRegistry registry;
  Counter* c = registry.AddCounter("c_total", "c", {"k"})->WithLabels({"x"});
  Gauge* g = registry.AddGauge("g", "g")->Get();
  Histogram* h = registry.AddHistogram("h_seconds", "h", {}, {0.5, 1})->Get();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c->Increment();
        g->Add(1);
        h->Observe(0.75);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_DOUBLE_EQ(c->Value(), 40000);
  EXPECT_DOUBLE_EQ(g->Value(), 40000);
  Histogram::Snapshot s = h->Read();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_DOUBLE_EQ(s.sum, 30000);
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, 40000, 40000}));
}

TEST(MetricsTest, HistogramBucketUpperBoundIsInclusive) {
  Histogram h({1, 2});
  h.Observe(1);
  h.Observe(1.5);
  h.Observe(7);
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_DOUBLE_EQ(s.sum, 9.5);
}

TEST(MetricsTest, SameLabelsReturnTheSameChild) {
  MetricsRegistry registry;
  Family<Gauge>* f = registry.AddGauge("nodes", "n", {"state"});
  EXPECT_EQ(f->WithLabels({"alive"}), f->WithLabels({"alive"}));
  EXPECT_NE(f->WithLabels({"alive"}), f->WithLabels({"dead"}));
}

TEST(MetricsDeathTest, DuplicateOrInvalidNamesDie) {
  MetricsRegistry registry;
  registry.AddGauge("g", "g");
  EXPECT_DEATH(registry.AddCounter("g", "again"), "registered twice");
  EXPECT_DEATH(registry.AddGauge("9bad", "x"), "invalid metric name");
  EXPECT_DEATH(registry.AddGauge("ok", "x", {"le"}), "invalid label name");
  Family<Gauge>* f = registry.AddGauge("two", "x", {"a", "b"});
  EXPECT_DEATH(f->WithLabels({"only-one"}), "label values");
}

TEST(GlmMetricsTest, ExposesEveryMetricTheIssueNames) {
  MetricsRegistry registry;
  GlmMetrics m(&registry);
  ClusterStatus status;
  status.nodes = {{"n0", "", "alive", 1, 1, 0, 0, 2}, {"n1", "", "alive", 1, 1, 0, 0, 2},
                  {"n2", "", "dead", 1, 1, 0, 0, 0}};
  status.actors = {{"t0", "trainer", "n0", "running", 0}, {"k0", "tokenizer", "n1", "restarting", 2}};
  status.stages = {{"corrupt", 3, 2, 10, 1, 16}};
  status.objectives = {{"blank", 100, 60, 0.5, 0.6}, {"document", 50, 40, 0.5, 0.4}};
  status.trainer.step = 7;
  status.trainer.loss = 4.5;
  status.trainer.learning_rate = 1e-4;
  status.throughput.tokens_per_second = 1234;
  MetricsPoint p;
  p.step = 7;
  p.loss = 4.5;
  p.objective_loss = {{"blank", 4.0}, {"document", 5.0}};
  status.history = {p};
  m.RecordClusterState(status);
  m.data_wait_seconds->Observe(0.01);
  m.allreduce_seconds->Observe(0.02);
  m.checkpoint_duration_seconds->Observe(1.5);

  auto parsed = ParsePrometheusText(WritePrometheusText(registry));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const ParsedMetrics& pm = *parsed;
  EXPECT_EQ(pm.Find("glm_nodes", {{"state", "alive"}}), 2);
  EXPECT_EQ(pm.Find("glm_nodes", {{"state", "dead"}}), 1);
  EXPECT_EQ(pm.Find("glm_actors", {{"kind", "tokenizer"}, {"state", "restarting"}}), 1);
  EXPECT_EQ(pm.Find("glm_tasks", {{"stage", "corrupt"}, {"state", "leased"}}), 2);
  EXPECT_EQ(pm.Find("glm_samples_produced_total", {{"objective", "blank"}}), 100);
  EXPECT_EQ(pm.Find("glm_samples_consumed_total", {{"objective", "document"}}), 40);
  EXPECT_NEAR(*pm.Find("glm_objective_mix_drift", {{"objective", "blank"}}), 0.1, 1e-12);
  EXPECT_EQ(pm.Find("glm_trainer_step"), 7);
  EXPECT_EQ(pm.Find("glm_loss", {{"objective", "document"}}), 5.0);
  EXPECT_EQ(pm.Find("glm_loss", {{"objective", "all"}}), 4.5);
  EXPECT_EQ(pm.Find("glm_tokens_per_second"), 1234);
  EXPECT_EQ(pm.Find("glm_data_wait_seconds_count"), 1);
  EXPECT_EQ(pm.Find("glm_allreduce_seconds_count"), 1);
  EXPECT_EQ(pm.Find("glm_checkpoint_duration_seconds_sum"), 1.5);
  for (const char* name : {"glm_checkpoints_total", "glm_actor_restarts_total",
                           "glm_node_failures_total", "glm_http_requests_total", "glm_learning_rate",
                           "glm_objective_target_rate"}) {
    EXPECT_TRUE(pm.types.count(name)) << name;
  }

  // A node that recovers: the dead gauge drops to 0 instead of staying at 1.
  status.nodes[2].state = "alive";
  m.RecordClusterState(status);
  parsed = ParsePrometheusText(WritePrometheusText(registry));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Find("glm_nodes", {{"state", "dead"}}), 0);
  EXPECT_EQ(parsed->Find("glm_nodes", {{"state", "alive"}}), 3);
}

}  // namespace
}  // namespace glm::http
