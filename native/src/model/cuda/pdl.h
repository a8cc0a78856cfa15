// Programmatic dependent launch (Hopper, sm_90): a kernel of the decode step may start while
// the previous one is finishing, so its launch, its block scheduling and its weight loads
// (weights never depend on an earlier kernel) overlap the previous kernel's tail.
//
// Rules every kernel launched through launch_pdl() follows:
//  * pdl_trigger() early: lets the next kernel be scheduled as this one's blocks finish;
//  * pdl_wait() in EVERY block before it reads or writes anything an earlier kernel of the
//    stream produced or reads (activations, the position, the KV cache, outputs). Before the
//    wait only immutable data (weights) may be touched: not even the previous kernel's
//    predecessors are guaranteed complete until then. The wait returns when the previous grid
//    has completed and its writes are visible; since that grid waited for its own predecessor,
//    everything earlier is complete too.
// On devices before sm_90, or with TENSAFE_CUDA_PDL=0, launches are ordinary and the two calls
// are no-ops (the wait of a kernel launched without the attribute returns at once).
#pragma once
#include <cuda_runtime.h>

#include "cuda/cuda_check.h"

namespace tensafe::model::cuda {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// True when the current device supports it and TENSAFE_CUDA_PDL is not "0" (read once).
bool pdl_enabled();

template <typename... Params, typename... Args>
void launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  const bool on = pdl_enabled();
  cfg.attrs = on ? attr : nullptr;
  cfg.numAttrs = on ? 1 : 0;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...));
}

}  // namespace tensafe::model::cuda
