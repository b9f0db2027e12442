// Loss curves without a browser: reads a run's metrics.jsonl and draws the
// loss per objective over steps (and the learning rate below it) into a PNG,
// for reports and papers. Behind `glm plot`.
//
// metrics.jsonl (docs/observability.md): one JSON object per line, one line
// per optimizer step, written by the trainer:
//   {"step": 12, "loss": 6.91, "loss_blank": 6.5, "loss_sentence": 7.0,
//    "loss_document": 7.2, "lr": 0.0003, "tokens_per_second": 21000, "time_ms": ...}
// `step` is required; every other field is optional (an objective that was
// not in a step has no loss_* field; null means not finite). Unknown fields
// are ignored. A step not above the previous line's step means the run
// resumed from a checkpoint: the later lines replace the earlier ones from
// that step on.
//
// Rendering uses cairo (Debian's libcairo2-dev): anti-aliased lines and real
// fonts (DejaVu) give print-quality output, and cairo writes the PNG.
//
// Thread-safety: free functions; no shared state.
#ifndef GLM_COORDINATOR_HTTP_LOSS_PLOT_H_
#define GLM_COORDINATOR_HTTP_LOSS_PLOT_H_

#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/http/status.h"

namespace glm::http {

// Parses metrics.jsonl text into points (ascending steps; loss_<objective>
// fields go to objective_loss[<objective>]). InvalidArgument names the line.
StatusOr<std::vector<MetricsPoint>> ParseMetricsJsonl(const std::string& text);
// Reads and parses `path`. NotFound when it does not exist.
StatusOr<std::vector<MetricsPoint>> ReadMetricsJsonl(const std::string& path);

struct LossPlotOptions {
  int width_px = 1200;   // Default: 1200
  int height_px = 800;   // Default: 800
  std::string title;     // Default: "" = "Training loss"
  bool show_lr = true;   // Default: true; a learning-rate panel when any point has lr
  Status Validate() const;
};

// Draws the curves and writes a PNG to `output_path`. FailedPrecondition if
// no point has a loss; the write's failure otherwise.
Status WriteLossPlotPng(const std::vector<MetricsPoint>& points, const LossPlotOptions& options,
                        const std::string& output_path);

}  // namespace glm::http

#endif  // GLM_COORDINATOR_HTTP_LOSS_PLOT_H_
