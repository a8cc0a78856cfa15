// CUDA error handling: every runtime call goes through CUDA_CHECK, which throws a
// tensafe::CudaError (or OutOfMemoryError) naming the call, file and line. Kernel launches
// are followed by CUDA_CHECK_LAUNCH(). The addon turns these into JS errors.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "common/errors.h"

namespace tensafe::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  std::string msg = std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                    "): " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  if (err == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
  throw CudaError(msg);
}

}  // namespace tensafe::cuda

#define CUDA_CHECK(call)                                                                  \
  do {                                                                                    \
    cudaError_t tensafe_err_ = (call);                                                    \
    if (tensafe_err_ != cudaSuccess) {                                                    \
      ::tensafe::cuda::throw_cuda_error(tensafe_err_, #call, __FILE__, __LINE__);         \
    }                                                                                     \
  } while (0)

// After a <<<...>>> launch: reports launch-configuration errors at once (asynchronous faults
// surface at the next synchronising call, which is also checked).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
