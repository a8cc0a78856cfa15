// What the engine was built with and which CUDA devices it sees. Implemented by
// cuda/device.cu when the CUDA backend is built, by common/device_info_cpu.cc otherwise.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace tensafe {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::size_t total_memory = 0;  // bytes
  std::size_t free_memory = 0;   // bytes, at the time of the query
  int multiprocessors = 0;
  int memory_bus_width_bits = 0;
  int l2_cache_bytes = 0;
};

struct CudaRuntimeInfo {
  bool built = false;            // the CUDA backend was compiled in
  int runtime_version = 0;       // e.g. 13000
  int driver_version = 0;        // 0 when no driver is installed
  std::string unavailable_reason;  // why no device is usable (empty when one is)
  std::vector<CudaDeviceInfo> devices;
  bool cublas = false;           // cuBLAS can be loaded (the prefill GEMMs use it; else our own kernel)
};

// Never throws: a machine without a driver or GPU reports an empty device list and a reason.
CudaRuntimeInfo cuda_runtime_info();

// True when the CUDA backend is built and at least one device is usable.
bool cuda_available();

// Memory of one CUDA device: cudaMemGetInfo (used = total - free: every process and the CUDA
// context included) beside our own DeviceBuffer counter (bytes this process holds through the
// engine, all devices). available = false without a usable device (fields 0).
struct GpuMemoryInfo {
  bool available = false;
  int device = -1;
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  long long allocated_bytes = 0;
};
// Throws ArgumentRangeError for a device index that is not visible.
GpuMemoryInfo gpu_memory_info(int device);

// Makes `device` the calling thread's current CUDA device (cudaSetDevice), for engine objects
// made on that thread (a CKKS CUDA context). ArgumentRangeError naming `option` for an index
// that is not visible; BackendUnavailableError without a usable device.
void use_cuda_device(int device, const char* option);

// The CPU's model name (from /proc/cpuinfo), for benchmark records.
std::string cpu_model_name();

}  // namespace tensafe
