// CPU-only builds: the profiler reports why it is unavailable.
#include "timing/kernel_profiler.h"

#ifndef TENSAFE_WITH_CUDA
#include "common/errors.h"

namespace tensafe::timing {

std::string kernel_profiler_unavailable_reason() {
  return "kernel profiling needs the CUDA backend, which this build does not have";
}
void kernel_profiler_start() { throw BackendUnavailableError(kernel_profiler_unavailable_reason()); }
ProfileReport kernel_profiler_stop() { throw BackendUnavailableError(kernel_profiler_unavailable_reason()); }
bool kernel_profiler_active() { return false; }

}  // namespace tensafe::timing
#endif
