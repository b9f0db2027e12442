#include "model/torch_env.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace glm::model {
namespace {

int CollectLibrary(struct dl_phdr_info* info, size_t /*size*/, void* data) {
  auto* names = static_cast<std::vector<std::string>*>(data);
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') names->emplace_back(info->dlpi_name);
  return 0;
}

std::string ResolvedPath(const std::string& path) {
  char buffer[PATH_MAX];
  if (realpath(path.c_str(), buffer) != nullptr) return buffer;
  return path;
}

}  // namespace

TorchEnvironment DescribeTorchEnvironment() {
  TorchEnvironment env;
  env.libtorch_version = TORCH_VERSION;
  env.torch_threads = at::get_num_threads();

  std::vector<std::string> libraries;
  dl_iterate_phdr(CollectLibrary, &libraries);
  for (const std::string& lib : libraries) {
    std::string resolved = ResolvedPath(lib);
    if (resolved.find("blas") != std::string::npos || resolved.find("mkl") != std::string::npos) {
      env.blas_library = resolved;
      break;
    }
  }
  using ConfigFn = char* (*)();
  using ThreadsFn = int (*)();
  if (auto config = reinterpret_cast<ConfigFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    env.blas_name = "OpenBLAS";
    env.blas_config = config();
    if (auto threads = reinterpret_cast<ThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) {
      env.blas_threads = threads();
    }
  } else if (dlsym(RTLD_DEFAULT, "mkl_get_max_threads") != nullptr) {
    env.blas_name = "MKL";
  } else if (env.blas_library.find("/blas/") != std::string::npos) {
    env.blas_name = "reference BLAS";
  } else {
    env.blas_name = "unknown";
  }

  env.cuda_available = torch::cuda::is_available();
  env.cuda_devices = env.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
#ifdef GLM_WITH_NCCL
  env.torch_nccl_backend = true;
#endif
  if (void* nccl = dlopen("libnccl.so.2", RTLD_LAZY | RTLD_LOCAL)) {
    using VersionFn = int (*)(int*);
    if (auto get_version = reinterpret_cast<VersionFn>(dlsym(nccl, "ncclGetVersion"))) {
      int v = 0;
      if (get_version(&v) == 0) {
        // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
        env.nccl_runtime = std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) +
                           "." + std::to_string(v % 100);
      }
    }
    dlclose(nccl);
  }
  return env;
}

void ReexecWithFasterBlasKernelIfNeeded(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // the user's choice stands
  using CoreFn = char* (*)();
  auto corename = reinterpret_cast<CoreFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (corename == nullptr) return;
  std::string core = corename();
  for (char& c : core) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (core != "prescott") return;
  __builtin_cpu_init();
  const char* better = nullptr;
  if (__builtin_cpu_supports("avx512f")) {
    better = "SkylakeX";
  } else if (__builtin_cpu_supports("avx2")) {
    better = "Haswell";
  }
  if (better == nullptr) return;
  setenv("OPENBLAS_CORETYPE", better, /*overwrite=*/1);
  execv("/proc/self/exe", argv);
  // execv failed: carry on with the slow kernel rather than not at all.
}

void SetComputeThreads(int n) {
  if (n <= 0) return;
  at::set_num_threads(n);
  using SetFn = void (*)(int);
  if (auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
}

GemmResult MeasureGemm(int64_t n, int repeats, bool float64) {
  torch::NoGradGuard no_grad;
  auto dtype = float64 ? torch::kFloat64 : torch::kFloat32;
  torch::manual_seed(0);
  torch::Tensor a = torch::randn({n, n}, dtype);  // (n, n)
  torch::Tensor b = torch::randn({n, n}, dtype);  // (n, n)
  torch::Tensor c = torch::mm(a, b);              // warm-up: thread pools, caches
  GemmResult result;
  result.size = n;
  result.dtype = float64 ? "float64" : "float32";
  double flops = 2.0 * static_cast<double>(n) * n * n;
  double total = 0;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double gflops = flops / seconds / 1e9;
    result.best_gflops = std::max(result.best_gflops, gflops);
    total += gflops;
  }
  result.mean_gflops = repeats > 0 ? total / repeats : 0;
  return result;
}

}  // namespace glm::model
