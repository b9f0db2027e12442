// glm version: what was built and what it runs on.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "cmd/commands.h"
#include "common/build_info.h"
#include "common/cli.h"
#include "model/torch_env.h"

namespace glm::cmd {
namespace {

struct VersionOptions {
  bool json = false;  // Default: false (human-readable lines)
};

int RunVersion(const VersionOptions& options) {
  model::TorchEnvironment env = model::DescribeTorchEnvironment();
  if (options.json) {
    nlohmann::json j = {
        {"version", BuildVersion()},
        {"git_commit", BuildGitCommit()},
        {"libtorch", env.libtorch_version},
        {"blas", env.blas_name},
        {"blas_library", env.blas_library},
        {"blas_config", env.blas_config},
        {"blas_threads", env.blas_threads},
        {"torch_threads", env.torch_threads},
        {"cuda_available", env.cuda_available},
        {"cuda_devices", env.cuda_devices},
        {"torch_nccl_backend", env.torch_nccl_backend},
        {"nccl_runtime", env.nccl_runtime},
    };
    std::cout << j.dump() << "\n";
    return kExitOk;
  }
  std::printf("glm %s (git %s)\n", BuildVersion(), BuildGitCommit());
  std::printf("LibTorch %s, %d intra-op threads\n", env.libtorch_version.c_str(), env.torch_threads);
  std::printf("BLAS: %s", env.blas_name.c_str());
  if (!env.blas_config.empty()) std::printf(" [%s]", env.blas_config.c_str());
  if (env.blas_threads > 0) std::printf(", %d threads", env.blas_threads);
  if (!env.blas_library.empty()) std::printf(" (%s)", env.blas_library.c_str());
  std::printf("\n");
  if (env.blas_name != "OpenBLAS" && env.blas_name != "MKL") {
    std::printf("  WARNING: LibTorch is not using an optimised BLAS; matrix products will be\n"
                "  ~40x slower. HINT: run scripts/setup (installs libopenblas0-pthread).\n");
  }
  if (env.cuda_available) {
    std::printf("CUDA: available, %d device(s)\n", env.cuda_devices);
  } else {
    std::printf("CUDA: not available (this LibTorch is CPU-only or no GPU is visible)\n");
  }
  std::printf("NCCL: LibTorch backend %s; runtime library %s\n",
              env.torch_nccl_backend ? "built" : "not built",
              env.nccl_runtime.empty() ? "not found" : env.nccl_runtime.c_str());
  return kExitOk;
}

}  // namespace

void RegisterVersionCommand(CLI::App* app, CommandRegistry* registry) {
  auto options = std::make_shared<VersionOptions>();
  CLI::App* sub = app->add_subcommand(
      "version", "Print glm's version and git commit, the LibTorch version, the BLAS in use and "
                 "whether CUDA/NCCL are available");
  AddFlag(sub, "json", &options->json, "Print one JSON object instead of lines");
  registry->Add(sub, [options] { return RunVersion(*options); });
}

}  // namespace glm::cmd
