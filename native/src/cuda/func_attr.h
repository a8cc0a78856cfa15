// Raising a kernel's dynamic shared-memory limit past 48 KB (cudaFuncSetAttribute), once per
// (device, kernel): the attribute is per device, and a model may live on any visible one.
#pragma once
#include <cuda_runtime.h>

#include <mutex>
#include <set>
#include <utility>

#include "cuda/cuda_check.h"

namespace tensafe::cuda {

inline void allow_dynamic_smem(const void* kernel, int bytes) {
  static std::mutex mu;
  static std::set<std::pair<int, const void*>> done;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  std::lock_guard<std::mutex> lock(mu);
  if (!done.insert({dev, kernel}).second) return;
  const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err != cudaSuccess) {
    done.erase({dev, kernel});
    throw_cuda_error(err, "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)", __FILE__, __LINE__);
  }
}

}  // namespace tensafe::cuda
