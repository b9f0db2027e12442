#include "coordinator/run_metrics.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace glm::coordinator {
namespace {

namespace fs = std::filesystem;

// The step of the last line in a JSONL file that parses (-1: none; only the
// last 64 KiB are read). Lines that do not parse (a line cut by a crash) are
// skipped.
int64_t LastStepIn(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return -1;  // absent, or e.g. a device: nothing to resume from
  std::ifstream in(path, std::ios::binary);
  if (!in) return -1;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 65536);
  std::string tail(static_cast<size_t>(std::max<std::streamoff>(0, size - from)), '\0');
  in.seekg(from);
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  tail.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
  std::istringstream lines(tail);
  std::string line;
  if (from > 0) std::getline(lines, line);  // likely a partial line
  int64_t last = -1;
  while (std::getline(lines, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer()) {
      last = j["step"].get<int64_t>();
    }
  }
  return last;
}

// Whether the file exists, is not empty and its last byte is not '\n'.
bool EndsMidLine(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  if (in.tellg() <= 0) return false;
  in.seekg(-1, std::ios::end);
  char c = 0;
  in.get(c);
  return c != '\n';
}

void Append(Status s, Status* result) {
  if (s.ok()) return;
  *result = result->ok() ? s : Status(result->code(), result->message() + "; " + s.message());
}

}  // namespace

RunMetricsWriter::RunMetricsWriter(std::string run_dir) : run_dir_(std::move(run_dir)) {}

RunMetricsWriter::~RunMetricsWriter() {
  if (jsonl_ != nullptr) std::fclose(jsonl_);
}

std::vector<TensorBoardScalar> RunMetricsWriter::StepScalars(const TrainerReport& r, double tokens_per_s) {
  std::vector<TensorBoardScalar> out;
  auto add = [&out](const char* tag, double v) {
    if (std::isfinite(v)) out.push_back({tag, v});
  };
  add("loss", r.loss);
  add("loss/blank", r.objective_loss[0]);
  add("loss/sentence", r.objective_loss[1]);
  add("loss/document", r.objective_loss[2]);
  add("lr", r.lr);
  add("grad_norm", r.grad_norm);
  add("tokens_per_s", tokens_per_s);
  add("data_wait_ms", r.data_wait_ms);
  add("step_ms", r.step_ms);
  add("allreduce_ms", r.allreduce_ms);
  add("world_size", static_cast<double>(r.world_size));
  return out;
}

void RunMetricsWriter::Start() {
  started_ = true;
  const std::string jsonl = (fs::path(run_dir_) / kRunMetricsJsonl).string();
  last_step_ = LastStepIn(jsonl);
}

Status RunMetricsWriter::WriteStep(const TrainerReport& report, double tokens_per_s, double wall_time) {
  if (!started_) Start();
  if (report.step < 1 || report.step == last_step_) return Status::Ok();  // nothing trained yet; a repeat
  const bool went_back = report.step < last_step_;
  if (went_back) {
    spdlog::info("run metrics: trainer rank 0 went back from step {} to {} (resumed from a checkpoint): "
                 "a restart in the TensorBoard file",
                 last_step_, report.step);
  }
  const int64_t previous = last_step_;
  last_step_ = report.step;
  const std::vector<TensorBoardScalar> scalars = StepScalars(report, tokens_per_s);
  Status result = Status::Ok();

  if (!events_failed_) {
    if (events_ == nullptr) {
      auto opened = TensorBoardWriter::Open((fs::path(run_dir_) / kRunTensorBoardDir).string(), wall_time);
      if (opened.ok()) {
        events_ = std::move(opened).value();
      } else {
        events_failed_ = true;
        Append(opened.status(), &result);
      }
    }
    if (events_ != nullptr) {
      // A SessionLog START before a file's first step and before a step that
      // went back (TensorBoard takes the first START of a run as its start and
      // each later one as a restart that drops the events from that step on).
      Status s = Status::Ok();
      if (events_->num_records() == 1) {
        s = events_->WriteSessionStart(report.step, wall_time, "coordinator writes from step " +
                                                                   std::to_string(report.step));
      } else if (went_back) {
        s = events_->WriteSessionStart(report.step, wall_time, "went back from step " + std::to_string(previous));
      }
      if (s.ok()) s = events_->WriteScalars(report.step, wall_time, scalars);
      if (!s.ok()) {
        events_failed_ = true;
        events_.reset();
        Append(s, &result);
      }
    }
  }

  if (!jsonl_failed_) {
    const std::string path = (fs::path(run_dir_) / kRunMetricsJsonl).string();
    if (jsonl_ == nullptr) {
      std::error_code ec;
      fs::create_directories(run_dir_, ec);
      const bool mid_line = EndsMidLine(path);
      jsonl_ = std::fopen(path.c_str(), "a");
      if (jsonl_ == nullptr) {
        jsonl_failed_ = true;
        Append(InternalError("run metrics: cannot open " + path + ": " + std::strerror(errno)), &result);
      } else if (mid_line) {
        std::fputc('\n', jsonl_);  // end the line a crash cut short
      }
    }
    if (jsonl_ != nullptr) {
      nlohmann::ordered_json j;
      j["step"] = report.step;
      j["wall_time"] = wall_time;
      for (const TensorBoardScalar& s : scalars) {
        if (s.tag == "world_size") {
          j[s.tag] = report.world_size;
        } else {
          j[s.tag] = s.value;
        }
      }
      const std::string line = j.dump() + "\n";
      errno = 0;
      if (std::fwrite(line.data(), 1, line.size(), jsonl_) != line.size() || std::fflush(jsonl_) != 0) {
        jsonl_failed_ = true;
        std::fclose(jsonl_);
        jsonl_ = nullptr;
        Append(InternalError("run metrics: cannot write " + path + ": " +
                             (errno != 0 ? std::strerror(errno) : "short write")),
               &result);
      }
    }
  }
  return result;
}

}  // namespace glm::coordinator
