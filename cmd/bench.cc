// glm bench: benchmark programs that print one JSON line each.
// Benchmarks measure; they never assert timings (see docs/benchmarks.md).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cmd/commands.h"
#include "common/cli.h"
#include "common/options.h"
#include "model/torch_env.h"

namespace glm::cmd {
namespace {

struct GemmOptions {
  int64_t size = 2048;       // Default: 2048 (n of the n x n x n product)
  int repeats = 10;          // Default: 10 timed runs after one warm-up
  std::string dtype = "float32";  // Default: float32
  int threads = 0;           // Default: 0 = leave LibTorch's and OpenBLAS's own settings
  double min_gflops = 0;     // Default: 0 = no floor; otherwise exit 1 below it

  Status Validate() const {
    GLM_RETURN_IF_ERROR(RequireAtLeast("size", size, 1));
    GLM_RETURN_IF_ERROR(RequireAtLeast("repeats", repeats, 1));
    GLM_RETURN_IF_ERROR(RequireOneOf("dtype", dtype, {"float32", "float64"}));
    return Status::Ok();
  }
};

int RunGemm(const GemmOptions& options) {
  if (Status s = options.Validate(); !s.ok()) {
    std::fprintf(stderr, "glm bench gemm: %s\n", s.message().c_str());
    return kExitUsage;
  }
  model::SetComputeThreads(options.threads);
  model::GemmResult r = model::MeasureGemm(options.size, options.repeats, options.dtype == "float64");
  model::TorchEnvironment env = model::DescribeTorchEnvironment();
  nlohmann::json j = {{"bench", "gemm"},
                      {"size", r.size},
                      {"dtype", r.dtype},
                      {"best_gflops", r.best_gflops},
                      {"mean_gflops", r.mean_gflops},
                      {"blas", env.blas_name},
                      {"blas_threads", env.blas_threads},
                      {"torch_threads", env.torch_threads}};
  std::cout << j.dump() << std::endl;
  if (options.min_gflops > 0 && r.best_gflops < options.min_gflops) {
    std::fprintf(stderr,
                 "glm bench gemm: %.1f GFLOP/s is below the floor of %.1f GFLOP/s; BLAS is %s.\n"
                 "HINT: run scripts/setup, which installs libopenblas0-pthread.\n",
                 r.best_gflops, options.min_gflops, env.blas_name.c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void RegisterBenchCommand(CLI::App* app, CommandRegistry* registry) {
  CLI::App* bench = app->add_subcommand("bench", "Benchmark programs; each prints JSON lines");
  bench->require_subcommand(1);

  auto gemm = std::make_shared<GemmOptions>();
  CLI::App* sub = bench->add_subcommand(
      "gemm", "Matrix-product speed of LibTorch's BLAS: the peak that MFU is measured against");
  AddConfigOption(sub, "");
  AddOption(sub, "size", &gemm->size, "Matrix size n of the n x n x n product");
  AddOption(sub, "repeats", &gemm->repeats, "Timed repeats after one warm-up");
  AddOption(sub, "dtype", &gemm->dtype, "float32 or float64");
  AddOption(sub, "threads", &gemm->threads, "Compute threads (0 = leave the defaults)");
  AddOption(sub, "min-gflops", &gemm->min_gflops,
            "Exit 1 when the best GFLOP/s is below this (scripts/setup uses it)");
  registry->Add(sub, [gemm] { return RunGemm(*gemm); });
}

}  // namespace glm::cmd
