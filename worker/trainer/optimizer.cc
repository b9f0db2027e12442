#include "worker/trainer/optimizer.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <unordered_map>

#include "common/options.h"

namespace glm::trainer {

Status AdamWOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireInRange("adam-beta1", beta1, 0.0, 0.999999));
  GLM_RETURN_IF_ERROR(RequireInRange("adam-beta2", beta2, 0.0, 0.999999999));
  GLM_RETURN_IF_ERROR(RequireInRange("adam-eps", eps, 1e-30, 1.0));
  GLM_RETURN_IF_ERROR(RequireInRange("weight-decay", weight_decay, 0.0, 10.0));
  return Status::Ok();
}

bool NameExemptFromDecay(const std::string& name) {
  const size_t dot = name.rfind('.');
  const std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
  if (leaf == "bias") return true;
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("layernorm") != std::string::npos ||
         lower.find("layer_norm") != std::string::npos;
}

std::vector<NamedParameter> CollectParameters(torch::nn::Module& module) {
  // Parameters owned directly by a LayerNorm module (rule b).
  std::unordered_map<const void*, bool> in_layer_norm;
  for (const auto& item : module.named_modules()) {
    if (item.value()->as<torch::nn::LayerNorm>() == nullptr) continue;
    for (const auto& p : item.value()->parameters(/*recurse=*/false)) {
      in_layer_norm[p.unsafeGetTensorImpl()] = true;
    }
  }
  std::vector<NamedParameter> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    if (!item.value().requires_grad()) continue;
    NamedParameter p;
    p.name = item.key();
    p.tensor = item.value();
    p.decay =
        !NameExemptFromDecay(p.name) && in_layer_norm.count(p.tensor.unsafeGetTensorImpl()) == 0;
    out.push_back(std::move(p));
  }
  return out;
}

AdamW::AdamW(std::vector<NamedParameter> params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  torch::NoGradGuard no_grad;
  for (const auto& p : params_) {
    exp_avg_.push_back(torch::zeros_like(p.tensor, torch::MemoryFormat::Contiguous));
    exp_avg_sq_.push_back(torch::zeros_like(p.tensor, torch::MemoryFormat::Contiguous));
  }
}

void AdamW::Step(double lr) {
  torch::NoGradGuard no_grad;
  const int64_t t = step_count_ + 1;
  const double b1 = options_.beta1;
  const double b2 = options_.beta2;
  const double bias_correction1 = 1.0 - std::pow(b1, static_cast<double>(t));
  const double bias_correction2 = 1.0 - std::pow(b2, static_cast<double>(t));
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i].tensor;
    torch::Tensor g = p.grad();
    if (!g.defined()) g = torch::zeros_like(p);
    exp_avg_[i].mul_(b1).add_(g, 1.0 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
    torch::Tensor denom = (exp_avg_sq_[i].sqrt() / bias_correction2_sqrt).add_(options_.eps);
    if (params_[i].decay && options_.weight_decay != 0) {
      p.mul_(1.0 - lr * options_.weight_decay);
    }
    p.addcdiv_(exp_avg_[i], denom, -step_size);
  }
  step_count_ = t;
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::StateTensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("exp_avg." + params_[i].name, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + params_[i].name, exp_avg_sq_[i]);
  }
  return out;
}

Status AdamW::LoadState(const std::vector<std::pair<std::string, torch::Tensor>>& state,
                        int64_t step_count) {
  std::unordered_map<std::string, const torch::Tensor*> by_name;
  for (const auto& [name, tensor] : state) by_name[name] = &tensor;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    for (auto [prefix, dst] : {std::pair<const char*, torch::Tensor*>{"exp_avg.", &exp_avg_[i]},
                               {"exp_avg_sq.", &exp_avg_sq_[i]}}) {
      const std::string key = prefix + params_[i].name;
      auto it = by_name.find(key);
      if (it == by_name.end()) {
        return DataLossError("optimizer state has no tensor '" + key + "'");
      }
      if (it->second->sizes() != dst->sizes()) {
        return DataLossError("optimizer state tensor '" + key + "' has the wrong shape");
      }
      dst->copy_(*it->second);
    }
  }
  step_count_ = step_count;
  return Status::Ok();
}

double ClipGradNorm(const std::vector<NamedParameter>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.tensor.grad().defined())
      norms.push_back(
          torch::linalg_vector_norm(p.tensor.grad(), 2, c10::nullopt, false, torch::kFloat64));
  }
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm().item<double>();
  const double coef = max_norm / (total + 1e-6);
  if (coef < 1.0) {
    for (const auto& p : params) {
      if (p.tensor.grad().defined()) p.tensor.grad().mul_(coef);
    }
  }
  return total;
}

}  // namespace glm::trainer
