// glm plot: loss curves from a run's metrics.jsonl into a PNG, without a
// browser (coordinator/http/loss_plot.h; format in docs/observability.md).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "coordinator/http/loss_plot.h"

namespace glm::cmd {
namespace {

struct PlotOptions {
  std::string run;           // Default: none (required): the run directory with metrics.jsonl
  std::string output;        // Default: "" = RUN/loss.png
  int width = 1200;          // Default: 1200 pixels
  int height = 800;          // Default: 800 pixels
  std::string title;         // Default: "" = "Training loss: <run directory name>"
  bool no_lr = false;        // Default: false (draw the learning-rate panel when lr is logged)

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireNonEmpty("run", run));
    GLM_RETURN_IF_ERROR(RequireInRange("width", width, 300, 10000));
    GLM_RETURN_IF_ERROR(RequireInRange("height", height, 200, 10000));
    return Status::Ok();
  }
};

int RunPlot(const PlotOptions& options) {
  if (Status s = options.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm plot: %s\n", s.message().c_str());
    return kExitUsage;
  }
  namespace fs = std::filesystem;
  const fs::path run(options.run);
  const std::string metrics_path = (run / "metrics.jsonl").string();
  auto points = http::ReadMetricsJsonl(metrics_path);
  if (!points.ok()) {
    std::fprintf(stderr, "glm plot: %s\n", points.status().message().c_str());
    return kExitFailure;
  }
  http::LossPlotOptions plot;
  plot.width_px = options.width;
  plot.height_px = options.height;
  plot.show_lr = !options.no_lr;
  std::string name = fs::absolute(run).lexically_normal().filename().string();
  if (name.empty()) name = fs::absolute(run).lexically_normal().parent_path().filename().string();
  plot.title = options.title.empty() ? "Training loss: " + name : options.title;
  const std::string output = options.output.empty() ? (run / "loss.png").string() : options.output;
  if (Status s = http::WriteLossPlotPng(*points, plot, output); !s.ok()) {
    std::fprintf(stderr, "glm plot: %s: %s\n", metrics_path.c_str(), s.message().c_str());
    return kExitFailure;
  }
  nlohmann::json j = {{"output", output}, {"points", points->size()}};
  if (!points->empty()) {
    j["first_step"] = points->front().step;
    j["last_step"] = points->back().step;
  }
  std::cout << j.dump() << std::endl;
  return kExitOk;
}

}  // namespace

void RegisterPlotCommand(CLI::App* app, CommandRegistry* registry) {
  auto options = std::make_shared<PlotOptions>();
  CLI::App* sub = app->add_subcommand(
      "plot", "Draw loss curves (per objective, over steps) from a run's metrics.jsonl into a PNG");
  AddConfigOption(sub, "");
  AddOption(sub, "run", &options->run, "Run directory containing metrics.jsonl")->required();
  AddOption(sub, "output", &options->output, "PNG to write (default: RUN/loss.png)");
  AddOption(sub, "width", &options->width, "Image width in pixels");
  AddOption(sub, "height", &options->height, "Image height in pixels");
  AddOption(sub, "title", &options->title, "Title (default: \"Training loss: <run name>\")");
  AddFlag(sub, "no-lr", &options->no_lr, "Leave out the learning-rate panel");
  registry->Add(sub, [options] { return RunPlot(*options); });
}

}  // namespace glm::cmd
