// CUPTI activity-based kernel profiler (see timing/kernel_profiler.h). libcupti is opened
// with dlopen so that the addon loads on machines without it.
#include <cupti.h>
#include <cuda_runtime.h>
#include <cxxabi.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

#include "common/device_info.h"
#include "common/errors.h"
#include "timing/kernel_profiler.h"

namespace tensafe::timing {
namespace {

struct CuptiApi {
  void* handle = nullptr;
  std::string error;
  decltype(&cuptiActivityRegisterCallbacks) register_callbacks = nullptr;
  decltype(&cuptiActivityEnable) enable = nullptr;
  decltype(&cuptiActivityDisable) disable = nullptr;
  decltype(&cuptiActivityFlushAll) flush_all = nullptr;
  decltype(&cuptiActivityGetNextRecord) next_record = nullptr;
  decltype(&cuptiActivityGetNumDroppedRecords) dropped = nullptr;
};

const CuptiApi& cupti() {
  static CuptiApi api = [] {
    CuptiApi a;
    const char* candidates[] = {"libcupti.so", "libcupti.so.13", "/usr/local/cuda/lib64/libcupti.so",
                                "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so"};
    for (const char* c : candidates) {
      a.handle = dlopen(c, RTLD_NOW | RTLD_LOCAL);
      if (a.handle) break;
    }
    if (!a.handle) {
      a.error = "libcupti.so could not be loaded (CUDA profiling tools interface not installed)";
      return a;
    }
    a.register_callbacks = reinterpret_cast<decltype(a.register_callbacks)>(dlsym(a.handle, "cuptiActivityRegisterCallbacks"));
    a.enable = reinterpret_cast<decltype(a.enable)>(dlsym(a.handle, "cuptiActivityEnable"));
    a.disable = reinterpret_cast<decltype(a.disable)>(dlsym(a.handle, "cuptiActivityDisable"));
    a.flush_all = reinterpret_cast<decltype(a.flush_all)>(dlsym(a.handle, "cuptiActivityFlushAll"));
    a.next_record = reinterpret_cast<decltype(a.next_record)>(dlsym(a.handle, "cuptiActivityGetNextRecord"));
    a.dropped = reinterpret_cast<decltype(a.dropped)>(dlsym(a.handle, "cuptiActivityGetNumDroppedRecords"));
    if (!a.register_callbacks || !a.enable || !a.disable || !a.flush_all || !a.next_record)
      a.error = "libcupti.so lacks the activity API";
    return a;
  }();
  return api;
}

struct Accum {
  uint64_t calls = 0;
  double total_us = 0, min_us = 1e300, max_us = 0;
};

std::mutex g_mutex;
std::map<std::string, Accum> g_kernels;
std::atomic<bool> g_active{false};
bool g_callbacks_registered = false;
std::chrono::steady_clock::time_point g_started;

constexpr size_t kBufferBytes = 8 << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = (status == 0 && d) ? d : name;
  std::free(d);
  // Keep the function name without its parameter list: shorter tables, same grouping.
  auto paren = out.find('(');
  if (paren != std::string::npos) out = out.substr(0, paren);
  return out;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid_size) {
  const CuptiApi& api = cupti();
  CUpti_Activity* record = nullptr;
  std::lock_guard<std::mutex> lock(g_mutex);
  while (api.next_record(buffer, valid_size, &record) == CUPTI_SUCCESS) {
    if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || record->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      auto* k = reinterpret_cast<CUpti_ActivityKernel10*>(record);
      double us = static_cast<double>(k->end - k->start) / 1000.0;
      Accum& a = g_kernels[demangle(k->name)];
      a.calls += 1;
      a.total_us += us;
      a.min_us = std::min(a.min_us, us);
      a.max_us = std::max(a.max_us, us);
    }
  }
  std::free(buffer);
}

}  // namespace

std::string kernel_profiler_unavailable_reason() {
  if (!cuda_available()) return "no usable CUDA device: kernel profiling needs a GPU";
  return cupti().error;
}

void kernel_profiler_start() {
  std::string reason = kernel_profiler_unavailable_reason();
  if (!reason.empty()) throw BackendUnavailableError(reason);
  if (g_active.exchange(true)) throw ArgumentRangeError("a profiling session is already active: stop it first");
  const CuptiApi& api = cupti();
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_kernels.clear();
  }
  if (!g_callbacks_registered) {
    if (api.register_callbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS) {
      g_active = false;
      throw BackendUnavailableError("CUPTI refused to register activity buffers (is another profiler attached?)");
    }
    g_callbacks_registered = true;
  }
  if (api.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
    g_active = false;
    throw BackendUnavailableError("CUPTI could not enable kernel activity records");
  }
  g_started = std::chrono::steady_clock::now();
}

ProfileReport kernel_profiler_stop() {
  if (!g_active) throw ArgumentRangeError("no profiling session is active: call start() first");
  const CuptiApi& api = cupti();
  cudaDeviceSynchronize();  // the profiled work must have finished before its records flush
  api.flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  api.disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  ProfileReport report;
  report.wall_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - g_started).count();
  if (api.dropped) {
    size_t dropped = 0;
    if (api.dropped(nullptr, 0, &dropped) == CUPTI_SUCCESS) report.dropped_records = dropped;
  }
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (auto& [name, a] : g_kernels) {
      KernelSummary s;
      s.name = name;
      s.calls = a.calls;
      s.total_us = a.total_us;
      s.mean_us = a.calls ? a.total_us / static_cast<double>(a.calls) : 0;
      s.min_us = a.calls ? a.min_us : 0;
      s.max_us = a.max_us;
      report.kernels.push_back(s);
    }
    g_kernels.clear();
  }
  std::sort(report.kernels.begin(), report.kernels.end(),
            [](const KernelSummary& x, const KernelSummary& y) { return x.total_us > y.total_us; });
  g_active = false;
  return report;
}

bool kernel_profiler_active() { return g_active; }

}  // namespace tensafe::timing
