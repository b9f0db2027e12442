// The HTTP server over real loopback HTTP (cpp-httplib's client).
#include "coordinator/http/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <regex>
#include <thread>

#include "coordinator/http/fake_status_provider.h"
#include "coordinator/http/prometheus_text.h"

namespace glm::http {
namespace {

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions options;
    options.port = 0;
    auto server = HttpServer::Start(options, &registry_, &provider_, &metrics_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_connection_timeout(5);
    client_->set_read_timeout(5);
  }

  httplib::Result Get(const std::string& path) { return client_->Get(path.c_str()); }

  MetricsRegistry registry_;
  GlmMetrics metrics_{&registry_};
  FakeStatusProvider provider_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpServerTest, MetricsScrapeParsesAndReflectsTheCluster) {
  for (int i = 0; i < 5; ++i) provider_.SimulateStep(1000 * i);
  metrics_.data_wait_seconds->Observe(0.003);
  auto res = Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kPrometheusContentType);
  auto parsed = ParsePrometheusText(res->body);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << res->body;
  EXPECT_EQ(parsed->Find("glm_trainer_step"), 5);
  EXPECT_EQ(parsed->Find("glm_nodes", {{"state", "alive"}}), 3);
  EXPECT_EQ(parsed->Find("glm_actors", {{"kind", "trainer"}, {"state", "running"}}), 2);
  EXPECT_EQ(parsed->Find("glm_tasks", {{"stage", "tokenize"}, {"state", "done"}}), 5);
  EXPECT_EQ(parsed->Find("glm_samples_consumed_total", {{"objective", "sentence"}}), 40);
  EXPECT_GT(*parsed->Find("glm_loss", {{"objective", "blank"}}), 2.0);
  EXPECT_EQ(parsed->Find("glm_data_wait_seconds_count"), 1);

  // Requests are counted. The server's logger runs after the response is
  // sent, on the worker thread, so wait for the count to show up.
  ASSERT_TRUE(Get("/healthz"));
  std::optional<double> healthz, scrapes;
  for (int i = 0; i < 200 && (healthz != 1 || !scrapes); ++i) {
    res = Get("/metrics");
    ASSERT_TRUE(res);
    parsed = ParsePrometheusText(res->body);
    ASSERT_TRUE(parsed.ok());
    healthz = parsed->Find("glm_http_requests_total", {{"path", "/healthz"}, {"code", "200"}});
    scrapes = parsed->Find("glm_http_requests_total", {{"path", "/metrics"}, {"code", "200"}});
    if (healthz != 1 || !scrapes) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(healthz, 1);
  ASSERT_TRUE(scrapes.has_value());
  EXPECT_GE(*scrapes, 1);
}

TEST_F(HttpServerTest, ConcurrentScrapesEachSeeConsistentStateGauges) {
  for (int i = 0; i < 3; ++i) provider_.SimulateStep(1000 * i);
  std::vector<std::thread> scrapers;
  std::atomic<int> good{0}, bad{0};
  for (int t = 0; t < 4; ++t) {
    scrapers.emplace_back([&] {
      httplib::Client client("127.0.0.1", server_->port());
      for (int i = 0; i < 20; ++i) {
        auto res = client.Get("/metrics");
        auto parsed = res ? ParsePrometheusText(res->body) : StatusOr<ParsedMetrics>(InternalError("no reply"));
        if (parsed.ok() && parsed->Find("glm_nodes", {{"state", "alive"}}) == 3 &&
            parsed->Find("glm_actors", {{"kind", "corruption"}, {"state", "running"}}) == 2) {
          good++;
        } else {
          bad++;
        }
      }
    });
  }
  for (auto& t : scrapers) t.join();
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(good, 80);
}

TEST_F(HttpServerTest, ApiStatusReturnsSnapshotAndOnlyNewerHistory) {
  for (int i = 0; i < 10; ++i) provider_.SimulateStep(1000 * i);
  auto res = Get("/api/status");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  auto json = nlohmann::json::parse(res->body);
  auto status = ClusterStatusFromJson(json);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->trainer.step, 10);
  EXPECT_EQ(status->nodes.size(), 3u);
  EXPECT_EQ(status->history.size(), 10u);
  EXPECT_EQ(json["poll_interval_ms"], 1000);

  res = Get("/api/status?history_after=7");
  ASSERT_TRUE(res);
  status = ClusterStatusFromJson(nlohmann::json::parse(res->body));
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->history.size(), 3u);
  EXPECT_EQ(status->history.front().step, 8);

  res = Get("/api/status?max_history=2");
  ASSERT_TRUE(res);
  status = ClusterStatusFromJson(nlohmann::json::parse(res->body));
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->history.size(), 2u);
  EXPECT_EQ(status->history.back().step, 10);
}

TEST_F(HttpServerTest, ApiStatusRejectsBadQueryParametersWith400) {
  for (const char* query : {"history_after=abc", "history_after=-5", "max_history=1x"}) {
    auto res = Get(std::string("/api/status?") + query);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << query;
    EXPECT_NE(nlohmann::json::parse(res->body)["error"].get<std::string>().find("query parameter"),
              std::string::npos);
  }
}

TEST_F(HttpServerTest, ReadyzFollowsTheProviderAndHealthzIsAlwaysOk) {
  provider_.SetReady(false, "waiting for 2 trainers");
  auto res = Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "not ready: waiting for 2 trainers\n");
  res = Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  provider_.SetReady(true, "");
  res = Get("/readyz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpServerTest, ServesTheDashboardAndEveryAssetItReferencesLocally) {
  auto res = Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const std::string html = res->body;
  EXPECT_NE(html.find("<title>glm dashboard</title>"), std::string::npos);
  // Self-contained: nothing is loaded from another host.
  std::regex ref(R"((?:src|href)="([^"]+)\")");
  int local = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), ref); it != std::sregex_iterator(); ++it) {
    const std::string url = (*it)[1];
    if (url.rfind("data:", 0) == 0) continue;
    ASSERT_EQ(url[0], '/') << "non-local reference " << url;
    auto asset = Get(url);
    ASSERT_TRUE(asset);
    EXPECT_EQ(asset->status, 200) << url;
    EXPECT_FALSE(asset->body.empty()) << url;
    ++local;
  }
  EXPECT_GE(local, 4);  // two styles, two scripts (plus links)
  auto uplot = Get("/static/uPlot.min.js");
  ASSERT_TRUE(uplot);
  EXPECT_NE(uplot->body.find("uPlot"), std::string::npos);
  EXPECT_EQ(uplot->get_header_value("Content-Type"), "text/javascript; charset=utf-8");
}

TEST_F(HttpServerTest, UnknownPathsAre404) {
  for (const char* path : {"/nope", "/static/missing.js", "/static/../CMakeLists.txt"}) {
    auto res = Get(path);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404) << path;
  }
}

TEST(HttpServerStartTest, PortInUseIsUnavailableAndNamesTheFlag) {
  MetricsRegistry registry;
  FakeStatusProvider provider;
  HttpServerOptions options;
  options.port = 0;
  auto first = HttpServer::Start(options, &registry, &provider, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  options.port = (*first)->port();
  auto second = HttpServer::Start(options, &registry, &provider, nullptr);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("choose another --http"), std::string::npos);
}

TEST(HttpServerStartTest, RejectsInvalidOptions) {
  MetricsRegistry registry;
  FakeStatusProvider provider;
  HttpServerOptions options;
  options.port = 70000;
  auto server = HttpServer::Start(options, &registry, &provider, nullptr);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("http-port"), std::string::npos);
  options.port = 0;
  options.address = "203.0.113.7";  // TEST-NET-3: not an address of this machine
  server = HttpServer::Start(options, &registry, &provider, nullptr);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kUnavailable);
}

TEST(HttpServerStartTest, StopIsIdempotentAndRefusesNewConnections) {
  MetricsRegistry registry;
  FakeStatusProvider provider;
  HttpServerOptions options;
  options.port = 0;
  auto server = HttpServer::Start(options, &registry, &provider, nullptr);
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  (*server)->Stop();
  (*server)->Stop();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  EXPECT_FALSE(client.Get("/healthz"));
}

}  // namespace
}  // namespace glm::http
