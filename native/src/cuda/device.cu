// Device discovery for engine.info() and backend selection.
#include <cuda_runtime.h>

#include "common/device_info.h"
#include "cuda/cuda_check.h"
#include "model/cuda/cublas_loader.h"

namespace tensafe {

CudaRuntimeInfo cuda_runtime_info() {
  CudaRuntimeInfo info;
  info.built = true;
  // cuBLAS is loaded at run time where it exists (model/cuda/cublas_loader.h).
  info.cublas = model::cuda::cublas_api() != nullptr;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.unavailable_reason = std::string("no usable CUDA device: ") + cudaGetErrorString(err);
    (void)cudaGetLastError();
    return info;
  }
  if (count == 0) {
    info.unavailable_reason = "no CUDA device found";
    return info;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    d.total_memory = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    d.memory_bus_width_bits = prop.memoryBusWidth;
    d.l2_cache_bytes = prop.l2CacheSize;
    int previous = 0;
    cudaGetDevice(&previous);
    if (cudaSetDevice(i) == cudaSuccess) {
      size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) d.free_memory = free_b;
      cudaSetDevice(previous);
    }
    info.devices.push_back(d);
  }
  (void)cudaGetLastError();
  return info;
}

bool cuda_available() {
  static const bool available = [] {
    int count = 0;
    bool ok = cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
    (void)cudaGetLastError();
    return ok;
  }();
  return available;
}

}  // namespace tensafe
