#include "coordinator/http/prometheus_text.h"

#include <gtest/gtest.h>

#include <cmath>

namespace glm::http {
namespace {

TEST(PrometheusTextTest, WritesHelpTypeAndEscapedLabels) {
  MetricsRegistry registry;
  registry.AddCounter("req_total", "Requests\nserved \\ here", {"path"})
      ->WithLabels({"/a\"b\\c\nd"})
      ->Increment(3);
  registry.AddGauge("temp", "t")->Get()->Set(0.25);
  EXPECT_EQ(WritePrometheusText(registry),
            "# HELP req_total Requests\\nserved \\\\ here\n"
            "# TYPE req_total counter\n"
            "req_total{path=\"/a\\\"b\\\\c\\nd\"} 3\n"
            "# HELP temp t\n"
            "# TYPE temp gauge\n"
            "temp 0.25\n");
}

TEST(PrometheusTextTest, HistogramWritesCumulativeBucketsSumAndCount) {
  MetricsRegistry registry;
  Histogram* h = registry.AddHistogram("lat_seconds", "l", {"op"}, {0.1, 1})->WithLabels({"put"});
  h->Observe(0.05);
  h->Observe(0.5);
  h->Observe(3);
  EXPECT_EQ(WritePrometheusText(registry),
            "# HELP lat_seconds l\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{op=\"put\",le=\"0.1\"} 1\n"
            "lat_seconds_bucket{op=\"put\",le=\"1\"} 2\n"
            "lat_seconds_bucket{op=\"put\",le=\"+Inf\"} 3\n"
            "lat_seconds_sum{op=\"put\"} 3.5499999999999998\n"
            "lat_seconds_count{op=\"put\"} 3\n");
}

TEST(PrometheusTextTest, RoundTripsThroughTheParser) {
  MetricsRegistry registry;
  registry.AddCounter("a_total", "a", {"x", "y"})->WithLabels({"1", "q\"uote"})->Increment(5);
  registry.AddGauge("b", "b")->Get()->Set(-INFINITY);
  registry.AddGauge("c", "c")->Get()->Set(1e-7);
  registry.AddHistogram("d", "d", {}, {1, 2})->Get()->Observe(1.5);
  auto parsed = ParsePrometheusText(WritePrometheusText(registry));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->types.at("a_total"), MetricType::kCounter);
  EXPECT_EQ(parsed->types.at("d"), MetricType::kHistogram);
  EXPECT_EQ(parsed->help.at("a_total"), "a");
  EXPECT_EQ(parsed->Find("a_total", {{"x", "1"}, {"y", "q\"uote"}}), 5);
  EXPECT_TRUE(std::isinf(*parsed->Find("b")));
  EXPECT_DOUBLE_EQ(*parsed->Find("c"), 1e-7);
  EXPECT_EQ(parsed->Find("d_bucket", {{"le", "2"}}), 1);
  EXPECT_EQ(parsed->Find("d_count"), 1);
  EXPECT_EQ(parsed->All("d_bucket").size(), 3u);
}

TEST(PrometheusTextTest, ParserAcceptsTimestampsAndComments) {
  auto parsed = ParsePrometheusText("# a comment\n# TYPE x gauge\nx{a=\"b\"} 2 1700000000000\n\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->Find("x", {{"a", "b"}}), 2);
}

TEST(PrometheusTextTest, ParserRejectsMalformedTextNamingTheLine) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"x 1\n", "line 1: sample x has no preceding # TYPE"},
      {"# TYPE x gauge\nx one\n", "line 2: bad value 'one'"},
      {"# TYPE x gauge\nx{a=\"b} 1\n", "line 2: unterminated value of label a"},
      {"# TYPE x gauge\nx{a=b} 1\n", "line 2: expected =\" after label a"},
      {"# TYPE x gauge\nx{a=\"1\",a=\"2\"} 1\n", "label a given twice"},
      {"# TYPE x summary\n", "unsupported metric type 'summary'"},
      {"# TYPE x gauge\nx 1 2 3\n", "trailing text"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
       "not increasing and cumulative"},
      {"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "le=\"+Inf\""},
      {"# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", "_count missing or not equal"},
  };
  for (const Case& c : cases) {
    auto parsed = ParsePrometheusText(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.error), std::string::npos)
        << parsed.status().message() << " vs " << c.error;
  }
}

}  // namespace
}  // namespace glm::http
