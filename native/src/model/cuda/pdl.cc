// pdl_enabled(): programmatic dependent launch needs compute capability 9.0 (Hopper) or newer.
#include "model/cuda/pdl.h"

#include <cstdlib>
#include <string>

namespace tensafe::model::cuda {

bool pdl_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("TENSAFE_CUDA_PDL");
    if (env != nullptr && std::string(env) == "0") return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return major >= 9;
  }();
  return enabled;
}

}  // namespace tensafe::model::cuda
