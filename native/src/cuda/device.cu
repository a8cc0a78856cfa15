// Device discovery for engine.info() and backend selection.
#include <cuda_runtime.h>

#include <cstdlib>

#include "common/device_info.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
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

GpuMemoryInfo gpu_memory_info(int device) {
  GpuMemoryInfo m;
  if (!cuda_available()) return m;
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count)
    throw ArgumentRangeError("device must be in [0, " + std::to_string(count - 1) + "], got " + std::to_string(device));
  int previous = 0;
  CUDA_CHECK(cudaGetDevice(&previous));
  CUDA_CHECK(cudaSetDevice(device));
  cudaError_t err = cudaMemGetInfo(&m.free_bytes, &m.total_bytes);
  cudaSetDevice(previous);
  if (err != cudaSuccess) cuda::throw_cuda_error(err, "cudaMemGetInfo", __FILE__, __LINE__);
  m.available = true;
  m.device = device;
  m.allocated_bytes = static_cast<long long>(cuda::device_bytes_allocated().load());
  return m;
}

void use_cuda_device(int device, const char* option) {
  if (!cuda_available()) {
    CudaRuntimeInfo info = cuda_runtime_info();
    throw BackendUnavailableError(std::string(option) + " selects a CUDA device, but none is usable: " +
                                  (info.unavailable_reason.empty() ? std::string("none found") : info.unavailable_reason));
  }
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throw ArgumentRangeError(std::string(option) + " must be in [0, " + std::to_string(count - 1) + "] (" + std::to_string(count) +
                             " CUDA device" + (count == 1 ? "" : "s") + " visible" +
                             (visible ? std::string(", CUDA_VISIBLE_DEVICES=") + visible : std::string()) + "), got " +
                             std::to_string(device));
  }
  CUDA_CHECK(cudaSetDevice(device));
}

}  // namespace tensafe
