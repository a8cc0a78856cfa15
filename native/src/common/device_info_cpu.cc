#include "common/device_info.h"

#include <fstream>

#include "common/errors.h"

namespace tensafe {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto v = line.substr(colon + 1);
        auto start = v.find_first_not_of(' ');
        return start == std::string::npos ? v : v.substr(start);
      }
    }
  }
  return "unknown CPU";
}

#ifndef TENSAFE_WITH_CUDA
CudaRuntimeInfo cuda_runtime_info() {
  CudaRuntimeInfo info;
  info.unavailable_reason = "the CUDA backend was not built (no CUDA compiler at build time)";
  return info;
}
bool cuda_available() { return false; }
GpuMemoryInfo gpu_memory_info(int) { return GpuMemoryInfo{}; }
void use_cuda_device(int, const char* option) {
  throw BackendUnavailableError(std::string(option) + " selects a CUDA device, but the CUDA backend was not built");
}
#endif

}  // namespace tensafe
