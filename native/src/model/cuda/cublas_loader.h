// cuBLAS loaded at run time (dlopen), never linked: the development and CI machines have no
// cuBLAS, the GPU machines do. Only the few entry points the prefill GEMMs need are declared
// here (prototypes and enum values as in cuBLAS 12/13's cublas_api.h); no cuBLAS header is used.
//
// Search order for the library: $TENSAFE_CUBLAS (a path to libcublas.so*, or "off" to refuse
// cuBLAS), then libcublas.so.13 / .12 by soname (the loader's path), then the CUDA toolkit's
// lib64 folders and the pip wheels' folders of the image's Python. Loaded once per process.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

namespace tensafe::model::cuda {

// Opaque handle type and the enum values used (cublas_api.h / library_types.h).
using cublasHandle_t = struct cublasContext*;
using cublasStatus_t = int;
constexpr int kCublasOpN = 0;          // CUBLAS_OP_N
constexpr int kCublasOpT = 1;          // CUBLAS_OP_T
constexpr int kCudaR32F = 0;           // CUDA_R_32F
constexpr int kCudaR16F = 2;           // CUDA_R_16F
constexpr int kCudaR16BF = 14;         // CUDA_R_16BF
constexpr int kCublasCompute32F = 68;  // CUBLAS_COMPUTE_32F (float accumulation, no down-conversion)
constexpr int kCublasGemmDefault = -1; // CUBLAS_GEMM_DEFAULT

struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;                     // cublasCreate_v2
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;                     // cublasDestroy_v2
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;    // cublasSetStream_v2
  cublasStatus_t (*get_version)(cublasHandle_t, int*) = nullptr;           // cublasGetVersion_v2
  const char* (*status_string)(cublasStatus_t) = nullptr;                  // cublasGetStatusString (optional)
  cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t) = nullptr; // cublasSetWorkspace_v2 (optional)
  // cublasGemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc,
  //              computeType, algo); enums passed as int (their C ABI).
  cublasStatus_t (*gemm_ex)(cublasHandle_t, int, int, int, int, int, const void*, const void*, int, int, const void*,
                            int, int, const void*, void*, int, int, int, int) = nullptr;
  std::string path;  // the file that was loaded
};

// The process-wide cuBLAS, or null when it cannot be loaded (then cublas_unavailable_reason()).
const CublasApi* cublas_api();
std::string cublas_unavailable_reason();

// One cuBLAS handle bound to a stream; created lazily, destroyed with the owner. Throws
// CudaError when cuBLAS is not loadable or a call fails (naming the call and the status).
class CublasHandle {
 public:
  CublasHandle() = default;
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  // The handle, bound to `stream` (created on first use).
  cublasHandle_t get(cudaStream_t stream);
  // Device memory cuBLAS works in instead of allocating its own (re-applied after each stream
  // change, which resets it): the caller owns it and counts it.
  void set_workspace(void* p, size_t bytes) { workspace_ = p; workspace_bytes_ = bytes; bound_ = false; }

 private:
  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool bound_ = false;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

// Throws CudaError("cuBLAS <what> failed: <status>") unless status is CUBLAS_STATUS_SUCCESS.
void cublas_check(cublasStatus_t status, const char* what);

}  // namespace tensafe::model::cuda
