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

// A chain of consecutive ranges on one thread: next(name) closes the open range (if any) and
// opens `name`; close() ends the chain. For code that only knows stage boundaries.
class NvtxChain {
 public:
  NvtxChain() = default;
  ~NvtxChain() { close(); }
  NvtxChain(const NvtxChain&) = delete;
  NvtxChain& operator=(const NvtxChain&) = delete;
  void next(const char* name) {
    close();
#ifdef TENSAFE_WITH_CUDA
    nvtxRangePushA(name);
    open_ = true;
#else
    (void)name;
#endif
  }
  void close() {
#ifdef TENSAFE_WITH_CUDA
    if (open_) nvtxRangePop();
#endif
    open_ = false;
  }

 private:
  bool open_ = false;
};

// An instant marker (a stage that just ended, for example).
inline void nvtx_mark(const char* name) {
#ifdef TENSAFE_WITH_CUDA
  nvtxMarkA(name);
#else
  (void)name;
#endif
}

}  // namespace tensafe::timing
