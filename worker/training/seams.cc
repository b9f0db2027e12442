#include "worker/training/seams.h"

#include <thread>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>

#include "model/batch.h"
#include "model/loss.h"
#include "model/safetensors.h"

namespace glm::training {

Status StoreBatchSource::Load(trainer::MicroBatch* batch) {
  const auto& refs = batch->samples;
  if (refs.empty()) return InvalidArgumentError("micro batch of step " + std::to_string(batch->step) + " has no samples");
  std::vector<Sample> samples;
  samples.reserve(refs.size());
  // One ranged read per run of consecutive indices of one (objective, epoch).
  size_t i = 0;
  while (i < refs.size()) {
    size_t j = i + 1;
    while (j < refs.size() && refs[j].objective == refs[i].objective && refs[j].epoch == refs[i].epoch &&
           refs[j].index == refs[j - 1].index + 1) {
      ++j;
    }
    auto read = [&] {
      return store_->GetSampleRange(refs[i].objective, refs[i].epoch, refs[i].index, refs[i].index + (j - i));
    };
    StatusOr<std::vector<Sample>> got = read();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms_);
    while (!got.ok() && got.status().code() == StatusCode::kNotFound && wait_ms_ > 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the pipeline is still producing them
      got = read();
    }
    if (!got.ok() && got.status().code() == StatusCode::kNotFound && wait_ms_ > 0) {
      return DeadlineExceededError("waited " + std::to_string(wait_ms_ / 1000) + " s for samples " +
                                   std::string(ObjectiveName(refs[i].objective)) + "/" +
                                   std::to_string(refs[i].epoch) + "/[" + std::to_string(refs[i].index) + ", " +
                                   std::to_string(refs[i].index + (j - i)) +
                                   ") that the pipeline has not produced; is it running? (glm status): " +
                                   got.status().message());
    }
    GLM_ASSIGN_OR_RETURN(std::vector<Sample> run, std::move(got));
    if (run.size() != j - i) {
      return DataLossError("store returned " + std::to_string(run.size()) + " samples for a range of " +
                           std::to_string(j - i));
    }
    for (size_t k = 0; k < run.size(); ++k) {
      const trainer::SampleRef& want = refs[i + k];
      if (run[k].objective != want.objective || run[k].epoch != want.epoch || run[k].index != want.index) {
        return DataLossError("store returned sample " + std::string(ObjectiveName(run[k].objective)) + "/" +
                             std::to_string(run[k].epoch) + "/" + std::to_string(run[k].index) + " for " +
                             std::string(ObjectiveName(want.objective)) + "/" + std::to_string(want.epoch) + "/" +
                             std::to_string(want.index));
      }
      samples.push_back(std::move(run[k]));
    }
    i = j;
  }
  GLM_ASSIGN_OR_RETURN(model::Batch b, model::CollateSamples(samples));
  batch->tensors = {{"tokens", b.tokens},       {"position_ids", b.position_ids},
                    {"block_position_ids", b.block_position_ids},
                    {"sep", b.sep},             {"targets", b.targets},
                    {"loss_mask", b.loss_mask}, {"objective", b.objective}};
  batch->loss_weight = b.loss_mask.sum().item<double>();
  batch->num_tokens = b.tokens.numel();
  return Status::Ok();
}

trainer::LossFunction MakeGlmLoss(model::GlmModel model) {
  return [model](torch::nn::Module&, const trainer::MicroBatch& mb) mutable {
    model::Batch b;
    b.tokens = mb.tensors.at("tokens");
    b.position_ids = mb.tensors.at("position_ids");
    b.block_position_ids = mb.tensors.at("block_position_ids");
    b.sep = mb.tensors.at("sep");
    b.targets = mb.tensors.at("targets");
    b.loss_mask = mb.tensors.at("loss_mask");
    b.objective = mb.tensors.at("objective");
    model::LossOutput out = model::ComputeLoss(model, b);
    trainer::LossOutput r;
    // ComputeLoss gives the token mean; the trainer wants the sum.
    r.loss_sum = out.loss * out.tokens;
    for (int o = 0; o < kNumObjectives; ++o) {
      r.objective_loss_sum[o] = out.objective_loss_sum[o];
      r.objective_weight[o] = out.objective_tokens[o];
    }
    return r;
  };
}

trainer::ModelWriter GlmModelWriter(const model::GlmConfig& config) {
  std::map<std::string, std::string> metadata = config.ToMetadata();
  metadata["format"] = "pt";
  return [metadata](const std::string& path, const trainer::NamedTensors& tensors) {
    return model::WriteSafetensors(path, tensors, metadata);
  };
}

trainer::ModelReader GlmModelReader() {
  return [](const std::string& path) -> StatusOr<trainer::NamedTensors> {
    GLM_ASSIGN_OR_RETURN(auto file, model::SafetensorsFile::Open(path));
    trainer::NamedTensors out;
    for (const auto& e : file->entries()) {
      GLM_ASSIGN_OR_RETURN(torch::Tensor t, file->Read(e.name));
      out.emplace_back(e.name, std::move(t));
    }
    return out;
  };
}

StatusOr<std::unique_ptr<JsonlMetricsSink>> JsonlMetricsSink::Open(const std::string& path, Progress progress) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) return UnavailableError("cannot open " + path + " for appending; check the run directory");
  return std::unique_ptr<JsonlMetricsSink>(new JsonlMetricsSink(f, std::move(progress)));
}

JsonlMetricsSink::~JsonlMetricsSink() {
  if (file_ != nullptr) std::fclose(file_);
}

std::string JsonlMetricsSink::Line(const trainer::StepMetrics& m, int64_t unix_ms) {
  nlohmann::json j = nlohmann::json::parse(trainer::StepMetricsToJson(m));
  // docs/observability.md: non-finite values are null.
  for (auto& [key, value] : j.items()) {
    if (value.is_number_float() && !std::isfinite(value.get<double>())) value = nullptr;
  }
  j["tokens_per_second"] = std::isfinite(m.tokens_per_s) ? nlohmann::json(m.tokens_per_s) : nlohmann::json();
  j["time_ms"] = unix_ms;
  return j.dump();
}

void JsonlMetricsSink::OnStep(const trainer::StepMetrics& m) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string line = Line(m, now);
  std::fprintf(file_, "%s\n", line.c_str());
  std::fflush(file_);
  if (progress_) progress_(m);
}

}  // namespace glm::training
