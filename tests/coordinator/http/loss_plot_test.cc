#include "coordinator/http/loss_plot.h"

#include <cairo.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace glm::http {
namespace {

namespace fs = std::filesystem;

// A synthetic run: decaying losses per objective, warm-up then cosine lr.
std::string SyntheticJsonl(int steps, bool with_sentence) {
  std::ostringstream out;
  for (int s = 1; s <= steps; ++s) {
    double blank = 2 + 8 * std::exp(-s / 40.0), sentence = 2.5 + 8 * std::exp(-s / 60.0),
           document = 3 + 8 * std::exp(-s / 80.0);
    double lr = 3e-4 * (s < 20 ? s / 20.0 : 0.5 * (1 + std::cos(M_PI * (s - 20) / (steps - 20))));
    out << "{\"step\":" << s << ",\"loss\":" << (blank + document + (with_sentence ? sentence : 0)) / (with_sentence ? 3 : 2)
        << ",\"loss_blank\":" << blank;
    if (with_sentence) out << ",\"loss_sentence\":" << sentence;
    out << ",\"loss_document\":" << document << ",\"lr\":" << lr << ",\"tokens_per_second\":20000}\n";
  }
  return out.str();
}

std::string OutputDir() {
  fs::path dir = fs::path(GLM_BINARY_DIR) / "test-output" / "plot";
  fs::create_directories(dir);
  return dir.string();
}

// Pixels within `tolerance` of the colour (r, g, b in 0..255).
int CountPixels(const std::string& png, int r, int g, int b, int tolerance, int* width, int* height) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(png.c_str());
  EXPECT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS) << png;
  *width = cairo_image_surface_get_width(s);
  *height = cairo_image_surface_get_height(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  int count = 0;
  for (int y = 0; y < *height; ++y) {
    const uint32_t* row = reinterpret_cast<const uint32_t*>(data + y * stride);
    for (int x = 0; x < *width; ++x) {
      int pr = (row[x] >> 16) & 0xff, pg = (row[x] >> 8) & 0xff, pb = row[x] & 0xff;
      if (std::abs(pr - r) <= tolerance && std::abs(pg - g) <= tolerance && std::abs(pb - b) <= tolerance) ++count;
    }
  }
  cairo_surface_destroy(s);
  return count;
}

TEST(MetricsJsonlTest, ParsesObjectiveLossesAndOptionalFields) {
  auto points = ParseMetricsJsonl(
      "{\"step\":1,\"loss\":5.5,\"loss_blank\":5,\"loss_document\":6,\"lr\":0.001,\"extra\":\"ignored\"}\n"
      "\n"
      "{\"step\":2,\"loss\":null,\"loss_sentence\":4.5}\n");
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 2u);
  EXPECT_EQ((*points)[0].objective_loss.at("blank"), 5);
  EXPECT_EQ((*points)[0].objective_loss.at("document"), 6);
  EXPECT_EQ((*points)[0].learning_rate, 0.001);
  EXPECT_TRUE(std::isnan((*points)[1].loss));
  EXPECT_TRUE(std::isnan((*points)[1].learning_rate));
  EXPECT_EQ((*points)[1].objective_loss.size(), 1u);
}

TEST(MetricsJsonlTest, AResumedRunReplacesTheStepsItRedid) {
  auto points = ParseMetricsJsonl(
      "{\"step\":1,\"loss\":9}\n{\"step\":2,\"loss\":8}\n{\"step\":3,\"loss\":7}\n"
      "{\"step\":3,\"loss\":6.5}\n{\"step\":4,\"loss\":6}\n");
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 4u);
  EXPECT_EQ((*points)[2].loss, 6.5);
}

TEST(MetricsJsonlTest, MalformedLinesNameTheLine) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"{\"step\":1}\n{\"step\":2,\n", "line 2: not JSON"},
      {"[1,2]\n", "line 1: not a JSON object"},
      {"{\"loss\":1}\n", "line 1: needs an integer \"step\""},
      {"{\"step\":1.5}\n", "needs an integer \"step\""},
      {"{\"step\":1,\"loss_blank\":\"high\"}\n", "line 1: field loss_blank is not a number"},
  };
  for (const Case& c : cases) {
    auto points = ParseMetricsJsonl(c.text);
    ASSERT_FALSE(points.ok()) << c.text;
    EXPECT_NE(points.status().message().find(c.error), std::string::npos) << points.status();
  }
  auto missing = ReadMetricsJsonl("/nonexistent/metrics.jsonl");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(LossPlotTest, DrawsEveryObjectiveInItsColourAtTheRequestedSize) {
  auto points = ParseMetricsJsonl(SyntheticJsonl(300, true));
  ASSERT_TRUE(points.ok());
  const std::string png = OutputDir() + "/loss.png";
  LossPlotOptions options;
  options.title = "Synthetic run";
  ASSERT_TRUE(WriteLossPlotPng(*points, options, png).ok());
  int w = 0, h = 0;
  // blank #2f6fde, sentence #e8731c, document #1f9d55, lr #9b51e0.
  EXPECT_GT(CountPixels(png, 0x2f, 0x6f, 0xde, 30, &w, &h), 300);
  EXPECT_EQ(w, 1200);
  EXPECT_EQ(h, 800);
  EXPECT_GT(CountPixels(png, 0xe8, 0x73, 0x1c, 30, &w, &h), 300);
  EXPECT_GT(CountPixels(png, 0x1f, 0x9d, 0x55, 30, &w, &h), 300);
  EXPECT_GT(CountPixels(png, 0x9b, 0x51, 0xe0, 30, &w, &h), 200);
}

TEST(LossPlotTest, LeavesOutObjectivesTheRunDidNotTrain) {
  auto points = ParseMetricsJsonl(SyntheticJsonl(100, false));
  ASSERT_TRUE(points.ok());
  const std::string png = OutputDir() + "/loss_no_sentence.png";
  LossPlotOptions options;
  options.width_px = 800;
  options.height_px = 500;
  options.show_lr = false;
  ASSERT_TRUE(WriteLossPlotPng(*points, options, png).ok());
  int w = 0, h = 0;
  EXPECT_EQ(CountPixels(png, 0xe8, 0x73, 0x1c, 30, &w, &h), 0);  // no sentence curve or legend
  EXPECT_EQ(CountPixels(png, 0x9b, 0x51, 0xe0, 30, &w, &h), 0);  // no lr panel
  EXPECT_GT(CountPixels(png, 0x2f, 0x6f, 0xde, 30, &w, &h), 100);
  EXPECT_EQ(w, 800);
}

TEST(LossPlotTest, RefusesRunsWithoutLossAndUnwritableOutputs) {
  auto points = ParseMetricsJsonl("{\"step\":1,\"lr\":0.1}\n");
  ASSERT_TRUE(points.ok());
  Status s = WriteLossPlotPng(*points, {}, OutputDir() + "/never.png");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("no step has a finite loss"), std::string::npos);
  points = ParseMetricsJsonl(SyntheticJsonl(10, true));
  ASSERT_TRUE(points.ok());
  s = WriteLossPlotPng(*points, {}, "/nonexistent/dir/loss.png");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/dir/loss.png"), std::string::npos);
  LossPlotOptions tiny;
  tiny.width_px = 10;
  EXPECT_EQ(WriteLossPlotPng(*points, tiny, OutputDir() + "/never.png").code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace glm::http
