// NVTX ranges that mark pipeline stages for Nsight tools. With no tool attached an NVTX call
// is a cheap no-op (NVTX v3 is header-only and looks for an injected tool once); CPU-only
// builds compile the ranges away.
#pragma once

#ifdef TENSAFE_WITH_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace tensafe::timing {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) {
#ifdef TENSAFE_WITH_CUDA
    nvtxRangePushA(name);
#else
    (void)name;
#endif
  }
  ~NvtxRange() {
#ifdef TENSAFE_WITH_CUDA
    nvtxRangePop();
#endif
  }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace tensafe::timing
