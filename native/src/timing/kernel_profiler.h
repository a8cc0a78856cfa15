// Per-kernel profiling for lab.profile(): while a session is active, every CUDA kernel the
// engine launches is recorded by CUPTI's activity API (name, start, end on the GPU clock) and
// summarised per kernel name on stop(). CUPTI is loaded with dlopen at start(), so the addon
// has no link dependency on it and CPU-only machines simply report "unavailable".
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tensafe::timing {

struct KernelSummary {
  std::string name;      // demangled kernel name
  uint64_t calls = 0;
  double total_us = 0;
  double mean_us = 0;
  double min_us = 0;
  double max_us = 0;
};

struct ProfileReport {
  std::vector<KernelSummary> kernels;  // sorted by total time, largest first
  double wall_us = 0;                  // host time between start and stop
  uint64_t dropped_records = 0;        // records CUPTI could not store (buffers full)
};

// Empty when profiling can work here; otherwise why not (no CUDA backend, no libcupti, ...).
std::string kernel_profiler_unavailable_reason();

// Starts recording (throws BackendUnavailableError with the reason when it cannot, and
// ArgumentRangeError when a session is already active).
void kernel_profiler_start();

// Flushes, stops recording and returns the per-kernel summary (throws if not started).
ProfileReport kernel_profiler_stop();

bool kernel_profiler_active();

}  // namespace tensafe::timing
