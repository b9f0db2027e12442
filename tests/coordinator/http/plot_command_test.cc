// `glm plot` end to end: the real binary on a synthetic run directory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/testing/run_command.h"

namespace glm {
namespace {

namespace fs = std::filesystem;
using testing::Contains;
using testing::RunCommand;

fs::path FreshDir(const std::string& name) {
  fs::path dir = fs::path(GLM_BINARY_DIR) / "test-output" / "plot_command" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void WriteSyntheticMetrics(const fs::path& run, int steps) {
  std::ofstream out(run / "metrics.jsonl");
  for (int s = 1; s <= steps; ++s) {
    double b = 2 + 8 * std::exp(-s / 40.0), t = 2.5 + 8 * std::exp(-s / 60.0), d = 3 + 8 * std::exp(-s / 80.0);
    out << "{\"step\":" << s << ",\"loss\":" << (b + t + d) / 3 << ",\"loss_blank\":" << b
        << ",\"loss_sentence\":" << t << ",\"loss_document\":" << d << ",\"lr\":" << 1e-4 * std::min(1.0, s / 20.0)
        << "}\n";
  }
}

bool IsPng(const fs::path& path, int* width, int* height) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[24] = {};
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!in || std::memcmp(header, signature, 8) != 0) return false;
  auto be32 = [&](int at) { return (header[at] << 24) | (header[at + 1] << 16) | (header[at + 2] << 8) | header[at + 3]; };
  *width = be32(16);
  *height = be32(20);
  return true;
}

// One invocation (the binary loads LibTorch: seconds on a busy machine).
TEST(PlotCommandTest, DrawsLossPngIntoTheRunDirectoryAtTheRequestedSize) {
  fs::path run = FreshDir("ok");
  WriteSyntheticMetrics(run, 200);
  auto r = RunCommand(std::string(GLM_BINARY) + " plot --run " + run.string() + " --width 900 --height 600");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(Contains(r.output, "\"points\":200")) << r.output;
  EXPECT_TRUE(Contains(r.output, "\"last_step\":200")) << r.output;
  int w = 0, h = 0;
  ASSERT_TRUE(IsPng(run / "loss.png", &w, &h));  // default --output
  EXPECT_EQ(w, 900);
  EXPECT_EQ(h, 600);
}

TEST(PlotCommandTest, MissingOrBrokenMetricsFailWithAClearMessage) {
  fs::path empty = FreshDir("empty");
  auto r = RunCommand(std::string(GLM_BINARY) + " plot --run " + empty.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "metrics.jsonl")) << r.output;
  EXPECT_TRUE(Contains(r.output, "docs/observability.md")) << r.output;

  fs::path broken = FreshDir("broken");
  std::ofstream(broken / "metrics.jsonl") << "{\"step\":1,\"loss\":3}\n{\"step\":2,\"loss\":\n";
  r = RunCommand(std::string(GLM_BINARY) + " plot --run " + broken.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(Contains(r.output, "line 2")) << r.output;
}

}  // namespace
}  // namespace glm
