#include "model/adamw.h"

#include <cmath>

#include "common/check.h"
#include "common/options.h"

namespace glm::model {

Status FusedAdamWOptions::Validate() const {
  GLM_RETURN_IF_ERROR(RequireInRange("lr", lr, 0, 1e3));
  GLM_RETURN_IF_ERROR(RequireInRange("beta1", beta1, 0, 0.999999));
  GLM_RETURN_IF_ERROR(RequireInRange("beta2", beta2, 0, 0.999999999));
  GLM_RETURN_IF_ERROR(RequireInRange("eps", eps, 0, 1));
  GLM_RETURN_IF_ERROR(RequireInRange("weight-decay", weight_decay, 0, 10));
  return Status::Ok();
}

FusedAdamW::FusedAdamW(std::vector<torch::Tensor> params, const FusedAdamWOptions& options, std::vector<bool> decay)
    : params_(std::move(params)), decay_(std::move(decay)), options_(options) {
  if (decay_.empty()) decay_.assign(params_.size(), true);
  GLM_CHECK_EQ(decay_.size(), params_.size());
  for (const torch::Tensor& p : params_) {
    GLM_CHECK(p.is_contiguous()) << "FusedAdamW needs contiguous parameters";
    exp_avg_.push_back(torch::zeros_like(p));
    exp_avg_sq_.push_back(torch::zeros_like(p));
    steps_.push_back(0);
  }
}

FusedAdamW FusedAdamW::ForModel(GlmModel& model, const FusedAdamWOptions& options) {
  std::vector<torch::Tensor> params;
  std::vector<bool> decay;
  for (const auto& p : model->named_parameters()) {
    params.push_back(p.value());
    const std::string& name = p.key();
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    decay.push_back(!is_bias && name.find("layernorm") == std::string::npos);
  }
  return FusedAdamW(std::move(params), options, std::move(decay));
}

void FusedAdamW::ZeroGrad() {
  for (torch::Tensor& p : params_) p.mutable_grad().reset();
}

void FusedAdamW::Step(double lr) {
  if (lr < 0) lr = options_.lr;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    torch::Tensor& p = params_[i];
    const torch::Tensor& grad = p.grad();
    if (!grad.defined()) continue;
    torch::Tensor g = grad.contiguous();
    const int64_t t = ++steps_[i];
    const double b1 = options_.beta1, b2 = options_.beta2;
    const double decay = decay_[i] ? 1.0 - lr * options_.weight_decay : 1.0;
    const double step_size = lr / (1.0 - std::pow(b1, static_cast<double>(t)));
    const double sqrt_bc2 = std::sqrt(1.0 - std::pow(b2, static_cast<double>(t)));
    const double eps = options_.eps;
    const int64_t n = p.numel();
    AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "glm_fused_adamw", [&] {
      auto* pd = p.data_ptr<scalar_t>();
      const auto* gd = g.data_ptr<scalar_t>();
      auto* md = exp_avg_[i].data_ptr<scalar_t>();
      auto* vd = exp_avg_sq_[i].data_ptr<scalar_t>();
      const auto c_decay = static_cast<scalar_t>(decay), c_b1 = static_cast<scalar_t>(b1),
                 c_1b1 = static_cast<scalar_t>(1 - b1), c_b2 = static_cast<scalar_t>(b2),
                 c_1b2 = static_cast<scalar_t>(1 - b2), c_step = static_cast<scalar_t>(step_size),
                 c_bc2 = static_cast<scalar_t>(sqrt_bc2), c_eps = static_cast<scalar_t>(eps);
      at::parallel_for(0, n, 32768, [&](int64_t begin, int64_t end) {
        for (int64_t j = begin; j < end; ++j) {
          const scalar_t gj = gd[j];
          const scalar_t m = c_b1 * md[j] + c_1b1 * gj;
          const scalar_t v = c_b2 * vd[j] + c_1b2 * gj * gj;
          md[j] = m;
          vd[j] = v;
          pd[j] = pd[j] * c_decay - c_step * m / (std::sqrt(v) / c_bc2 + c_eps);
        }
      });
    });
  }
}

}  // namespace glm::model
