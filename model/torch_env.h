// What LibTorch this process runs on: version, BLAS, threads, CUDA, NCCL.
//
// `glm version` prints it and scripts/setup checks that the BLAS is OpenBLAS:
// Debian's libtorch calls whatever libblas.so.3 the alternatives system
// points at, and the reference BLAS is ~40x slower than OpenBLAS.
//
// This header has no LibTorch include, so callers outside model/ stay light.
// Thread-safety: the functions may be called from any thread.
#ifndef GLM_MODEL_TORCH_ENV_H_
#define GLM_MODEL_TORCH_ENV_H_

#include <cstdint>
#include <string>

namespace glm::model {

struct TorchEnvironment {
  std::string libtorch_version;  // "1.13.0"
  std::string blas_library;      // resolved path of the loaded BLAS, or "" if none found
  std::string blas_name;         // "OpenBLAS", "reference BLAS", "MKL", "unknown"
  std::string blas_config;       // openblas_get_config(), when OpenBLAS
  int blas_threads = 0;          // OpenBLAS's thread count (OPENBLAS_NUM_THREADS), 0 if unknown
  int torch_threads = 0;         // at::get_num_threads()
  bool cuda_available = false;   // torch::cuda::is_available()
  int cuda_devices = 0;
  bool torch_nccl_backend = false;  // LibTorch built with ProcessGroupNCCL (CUDA builds)
  std::string nccl_runtime;         // "2.27.3" if libnccl.so.2 can be loaded, else ""
};

TorchEnvironment DescribeTorchEnvironment();

// OpenBLAS 0.3.21 (Debian 12) does not know recent Xeons (e.g. model 207) and
// falls back to its generic "Prescott" kernels, ~5x slower than the AVX-512
// ones on the same CPU. OpenBLAS picks its kernel when it is loaded, before
// main(), so the only fix is to set OPENBLAS_CORETYPE and exec again: this
// does that (once) when OpenBLAS chose Prescott on a CPU with AVX2/AVX-512
// and the user did not set OPENBLAS_CORETYPE. Returns only if no re-exec
// happened. Call first thing in main(), before any threads start.
void ReexecWithFasterBlasKernelIfNeeded(char** argv);

// Sets OpenBLAS's and LibTorch's intra-op thread counts (OpenBLAS does not
// follow at::set_num_threads). n <= 0 leaves them alone.
void SetComputeThreads(int n);

struct GemmResult {
  int64_t size = 0;       // n of the n x n x n product
  std::string dtype;      // "float32" / "float64"
  double best_gflops = 0; // best over the repeats
  double mean_gflops = 0;
};

// Times torch::mm on n x n matrices: `repeats` timed runs after one warm-up.
GemmResult MeasureGemm(int64_t n, int repeats, bool float64);

}  // namespace glm::model

#endif  // GLM_MODEL_TORCH_ENV_H_
