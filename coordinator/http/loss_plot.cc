#include "coordinator/http/loss_plot.h"

#include <cairo.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "common/options.h"

namespace glm::http {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Rgb {
  double r, g, b;
};

// Same colours as the dashboard.
Rgb ColorFor(const std::string& series, size_t index) {
  if (series == "total") return {0.114, 0.153, 0.2};
  if (series == "blank") return {0.184, 0.435, 0.871};
  if (series == "sentence") return {0.91, 0.451, 0.11};
  if (series == "document") return {0.122, 0.616, 0.333};
  const Rgb extra[] = {{0.608, 0.318, 0.878}, {0.82, 0.212, 0.184}, {0.059, 0.608, 0.69}};
  return extra[index % 3];
}

// Ticks at 1, 2 or 5 x 10^k, about `target` of them over [lo, hi].
std::vector<double> NiceTicks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo)) return {lo};
  double raw = (hi - lo) / target;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

std::string FormatTick(double v, double span) {
  char buf[32];
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e6)) {
    // Compact: 3e-4, 2.5e-4.
    int exponent = static_cast<int>(std::floor(std::log10(std::fabs(v))));
    double mantissa = v / std::pow(10.0, exponent);
    std::snprintf(buf, sizeof(buf), "%.2ge%d", mantissa, exponent);
  } else if (span >= 5 || v == std::floor(v)) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else if (span >= 0.5) {
    std::snprintf(buf, sizeof(buf), "%.1f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g", v);
  }
  return buf;
}

struct Series {
  std::string name;
  std::vector<double> values;  // aligned with the steps; NaN = missing
};

struct Box {
  double x0, y0, x1, y1;  // plot area in pixels
};

class Painter {
 public:
  explicit Painter(cairo_t* cr) : cr_(cr) {
    cairo_select_font_face(cr_, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  void Color(Rgb c, double alpha = 1) { cairo_set_source_rgba(cr_, c.r, c.g, c.b, alpha); }
  void Line(double x0, double y0, double x1, double y1, double width) {
    cairo_set_line_width(cr_, width);
    cairo_move_to(cr_, x0, y0);
    cairo_line_to(cr_, x1, y1);
    cairo_stroke(cr_);
  }
  // Text anchored by (ax, ay) in [0,1] of its extents: 0.5,0.5 centres it.
  void Text(const std::string& s, double x, double y, double size, double ax, double ay,
            bool bold = false, double angle = 0) {
    cairo_select_font_face(cr_, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr_, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr_, s.c_str(), &e);
    cairo_save(cr_);
    cairo_translate(cr_, x, y);
    cairo_rotate(cr_, angle);
    cairo_move_to(cr_, -e.x_bearing - ax * e.width, -e.y_bearing - ay * e.height);
    cairo_show_text(cr_, s.c_str());
    cairo_restore(cr_);
  }
  double TextWidth(const std::string& s, double size) {
    cairo_set_font_size(cr_, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr_, s.c_str(), &e);
    return e.x_advance;
  }
  cairo_t* cr() { return cr_; }

 private:
  cairo_t* cr_;
};

const Rgb kInk{0.114, 0.153, 0.2};
const Rgb kMuted{0.42, 0.467, 0.522};
const Rgb kGrid{0.91, 0.925, 0.94};

// Axes, grid, ticks and the curves of one panel. Returns nothing; draws.
void DrawPanel(Painter* p, const Box& box, const std::vector<double>& steps,
               const std::vector<Series>& series, const std::string& y_label, bool x_labels,
               double x_lo, double x_hi) {
  double y_lo = std::numeric_limits<double>::infinity(), y_hi = -y_lo;
  for (const Series& s : series) {
    for (double v : s.values) {
      if (std::isfinite(v)) {
        y_lo = std::min(y_lo, v);
        y_hi = std::max(y_hi, v);
      }
    }
  }
  if (!std::isfinite(y_lo)) return;
  if (y_hi - y_lo < 1e-12) {
    double pad = std::max(std::fabs(y_hi) * 0.05, 1e-6);
    y_lo -= pad;
    y_hi += pad;
  }
  const double pad = (y_hi - y_lo) * 0.05;
  y_lo -= pad;
  y_hi += pad;
  auto X = [&](double x) { return box.x0 + (x - x_lo) / (x_hi - x_lo) * (box.x1 - box.x0); };
  auto Y = [&](double y) { return box.y1 - (y - y_lo) / (y_hi - y_lo) * (box.y1 - box.y0); };

  // Grid and ticks.
  double widest_tick = 0;
  for (double t : NiceTicks(y_lo, y_hi, 6)) {
    if (t < y_lo || t > y_hi) continue;
    widest_tick = std::max(widest_tick, p->TextWidth(FormatTick(t, y_hi - y_lo), 13));
    p->Color(kGrid);
    p->Line(box.x0, Y(t), box.x1, Y(t), 1);
    p->Color(kInk);
    p->Line(box.x0 - 5, Y(t), box.x0, Y(t), 1);
    p->Color(kMuted);
    p->Text(FormatTick(t, y_hi - y_lo), box.x0 - 9, Y(t), 13, 1, 0.5);
  }
  for (double t : NiceTicks(x_lo, x_hi, 8)) {
    if (t < x_lo || t > x_hi) continue;
    p->Color(kGrid);
    p->Line(X(t), box.y0, X(t), box.y1, 1);
    p->Color(kInk);
    p->Line(X(t), box.y1, X(t), box.y1 + 5, 1);
    if (x_labels) {
      p->Color(kMuted);
      p->Text(FormatTick(t, x_hi - x_lo), X(t), box.y1 + 9, 13, 0.5, 0);
    }
  }
  // Axes.
  p->Color(kInk);
  p->Line(box.x0, box.y0, box.x0, box.y1, 1.2);
  p->Line(box.x0, box.y1, box.x1, box.y1, 1.2);
  p->Text(y_label, box.x0 - 22 - widest_tick, (box.y0 + box.y1) / 2, 14, 0.5, 1, false, -M_PI / 2);

  // Curves; a gap where a value is missing.
  cairo_t* cr = p->cr();
  cairo_save(cr);
  cairo_rectangle(cr, box.x0, box.y0 - 2, box.x1 - box.x0 + 2, box.y1 - box.y0 + 2);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  // Draw "total" last so it sits on top.
  std::vector<size_t> order;
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].name != "total") order.push_back(i);
  }
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].name == "total") order.push_back(i);
  }
  for (size_t i : order) {
    const Series& s = series[i];
    p->Color(ColorFor(s.name, i));
    cairo_set_line_width(cr, s.name == "total" ? 2.2 : 1.8);
    if (s.name == "total") {
      const double dash[] = {7, 4};
      cairo_set_dash(cr, dash, 2, 0);
    } else {
      cairo_set_dash(cr, nullptr, 0, 0);
    }
    bool drawing = false;
    for (size_t k = 0; k < steps.size(); ++k) {
      if (!std::isfinite(s.values[k])) {
        drawing = false;
        continue;
      }
      if (drawing) {
        cairo_line_to(cr, X(steps[k]), Y(s.values[k]));
      } else {
        cairo_move_to(cr, X(steps[k]), Y(s.values[k]));
        drawing = true;
      }
    }
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

void DrawLegend(Painter* p, const Box& box, const std::vector<Series>& series) {
  const double size = 13, row = 20, swatch = 26;
  double width = 0;
  for (const Series& s : series) width = std::max(width, p->TextWidth(s.name, size));
  const double w = width + swatch + 26, h = row * series.size() + 12;
  const double x = box.x1 - w - 10, y = box.y0 + 10;
  cairo_t* cr = p->cr();
  cairo_rectangle(cr, x, y, w, h);
  p->Color({1, 1, 1}, 0.92);
  cairo_fill_preserve(cr);
  p->Color(kMuted);
  cairo_set_line_width(cr, 0.8);
  cairo_stroke(cr);
  for (size_t i = 0; i < series.size(); ++i) {
    const double cy = y + 6 + row * (i + 0.5);
    p->Color(ColorFor(series[i].name, i));
    if (series[i].name == "total") {
      const double dash[] = {7, 4};
      cairo_set_dash(cr, dash, 2, 0);
    }
    p->Line(x + 8, cy, x + 8 + swatch, cy, series[i].name == "total" ? 2.2 : 2.5);
    cairo_set_dash(cr, nullptr, 0, 0);
    p->Color(kInk);
    p->Text(series[i].name, x + swatch + 16, cy, size, 0, 0.5);
  }
}

double NumberOrNaN(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return kNaN;
  if (!it->is_number()) throw std::invalid_argument(std::string("field ") + key + " is not a number");
  return it->get<double>();
}

}  // namespace

StatusOr<std::vector<MetricsPoint>> ParseMetricsJsonl(const std::string& text) {
  std::vector<MetricsPoint> points;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto where = [&] { return "metrics.jsonl line " + std::to_string(line_no) + ": "; };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      return InvalidArgumentError(where() + "not JSON (" + e.what() + ")");
    }
    if (!j.is_object()) return InvalidArgumentError(where() + "not a JSON object");
    auto step = j.find("step");
    if (step == j.end() || !step->is_number_integer()) {
      return InvalidArgumentError(where() + "needs an integer \"step\"");
    }
    MetricsPoint p;
    p.step = step->get<int64_t>();
    try {
      p.loss = NumberOrNaN(j, "loss");
      p.learning_rate = NumberOrNaN(j, "lr");
      p.tokens_per_second = NumberOrNaN(j, "tokens_per_second");
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key().rfind("loss_", 0) == 0 && it.key().size() > 5) {
          double v = NumberOrNaN(j, it.key().c_str());
          if (std::isfinite(v)) p.objective_loss[it.key().substr(5)] = v;
        }
      }
      if (j.contains("time_ms") && j["time_ms"].is_number()) p.time_ms = j["time_ms"].get<int64_t>();
    } catch (const std::invalid_argument& e) {
      return InvalidArgumentError(where() + e.what());
    }
    // A resumed run: drop what the earlier attempt logged from this step on.
    while (!points.empty() && points.back().step >= p.step) points.pop_back();
    points.push_back(std::move(p));
  }
  return points;
}

StatusOr<std::vector<MetricsPoint>> ReadMetricsJsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return NotFoundError("cannot read " + path +
                         "; a training run writes metrics.jsonl into its run directory "
                         "(format: docs/observability.md)");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto points = ParseMetricsJsonl(buffer.str());
  if (!points.ok()) return points.status().WithContext(path);
  return points;
}

Status LossPlotOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireInRange("width", width_px, 300, 10000));
  GLM_RETURN_IF_ERROR(RequireInRange("height", height_px, 200, 10000));
  return Status::Ok();
}

Status WriteLossPlotPng(const std::vector<MetricsPoint>& points, const LossPlotOptions& options,
                        const std::string& output_path) {
  GLM_RETURN_IF_ERROR(options.Validate());
  // Series: total first, then the objectives in their usual order.
  std::vector<std::string> names = {"total"};
  for (const MetricsPoint& p : points) {
    for (const auto& [objective, v] : p.objective_loss) {
      if (std::find(names.begin(), names.end(), objective) == names.end()) names.push_back(objective);
    }
  }
  const std::vector<std::string> order = {"total", "blank", "sentence", "document"};
  auto rank = [&](const std::string& n) {
    auto it = std::find(order.begin(), order.end(), n);
    return it == order.end() ? order.size() : size_t(it - order.begin());
  };
  std::stable_sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    return rank(a) != rank(b) ? rank(a) < rank(b) : a < b;
  });
  std::vector<double> steps;
  std::vector<Series> loss;
  for (const std::string& n : names) loss.push_back({n, {}});
  Series lr{"lr", {}};
  bool any_loss = false, any_lr = false;
  for (const MetricsPoint& p : points) {
    steps.push_back(double(p.step));
    for (Series& s : loss) {
      double v = kNaN;
      if (s.name == "total") {
        v = p.loss;
      } else if (auto it = p.objective_loss.find(s.name); it != p.objective_loss.end()) {
        v = it->second;
      }
      any_loss |= std::isfinite(v);
      s.values.push_back(v);
    }
    lr.values.push_back(p.learning_rate);
    any_lr |= std::isfinite(p.learning_rate);
  }
  if (!any_loss) {
    return FailedPreconditionError("no step has a finite loss to plot (expected \"loss\" or "
                                   "\"loss_<objective>\" fields; docs/observability.md)");
  }
  // Drop series that never have a value (e.g. no total loss logged).
  loss.erase(std::remove_if(loss.begin(), loss.end(),
                            [](const Series& s) {
                              return std::none_of(s.values.begin(), s.values.end(),
                                                  [](double v) { return std::isfinite(v); });
                            }),
             loss.end());

  const double W = options.width_px, H = options.height_px;
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, options.width_px, options.height_px);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  Painter painter(cr);

  double x_lo = steps.front(), x_hi = steps.back();
  if (x_hi <= x_lo) {
    x_lo -= 1;
    x_hi += 1;
  }
  const bool lr_panel = options.show_lr && any_lr;
  const double left = 92, right = W - 28, top = 58, bottom = H - 62;
  const double gap = 28;
  const double loss_bottom = lr_panel ? top + (bottom - top - gap) * 0.72 : bottom;
  Box loss_box{left, top, right, loss_bottom};
  painter.Color(kInk);
  painter.Text(options.title.empty() ? "Training loss" : options.title, W / 2, 20, 18, 0.5, 0, true);
  DrawPanel(&painter, loss_box, steps, loss, "loss", !lr_panel, x_lo, x_hi);
  DrawLegend(&painter, loss_box, loss);
  if (lr_panel) {
    Box lr_box{left, loss_bottom + gap, right, bottom};
    DrawPanel(&painter, lr_box, steps, {lr}, "learning rate", true, x_lo, x_hi);
  }
  painter.Color(kInk);
  painter.Text("step", (left + right) / 2, H - 24, 14, 0.5, 0.5);

  cairo_destroy(cr);
  cairo_surface_flush(surface);
  cairo_status_t status = cairo_surface_write_to_png(surface, output_path.c_str());
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    return UnavailableError("cannot write " + output_path + ": " + cairo_status_to_string(status));
  }
  return Status::Ok();
}

}  // namespace glm::http
