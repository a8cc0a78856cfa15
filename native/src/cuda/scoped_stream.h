// A non-blocking CUDA stream owned by a scope (synchronised and destroyed on exit), and the
// check that a device is usable, for the host-side drivers of single kernels (the model's
// kernel tests and kernel benchmarks).
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "common/device_info.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"

namespace tensafe::cuda {

struct ScopedStream {
  cudaStream_t s = nullptr;
  ScopedStream() { CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~ScopedStream() {
    cudaStreamSynchronize(s);
    cudaStreamDestroy(s);
  }
  ScopedStream(const ScopedStream&) = delete;
  ScopedStream& operator=(const ScopedStream&) = delete;
  void sync() { CUDA_CHECK(cudaStreamSynchronize(s)); }
};

// BackendUnavailableError("no usable CUDA device for <what>") when none is.
inline void require_device(const std::string& what) {
  if (!cuda_available()) throw BackendUnavailableError("no usable CUDA device for " + what);
}

}  // namespace tensafe::cuda
