// The engine object behind the JS class NttPlanCuda: the CUDA twin of ckks::NttPlan. It holds
// device copies of the CPU plan's tables and a device work buffer; forward()/inverse() copy
// the host words in, run the two-kernel transform over all limbs and copy them back.
// Plain C++ header (no CUDA types) so the addon can include it; everything on the device is
// owned by RAII buffers inside Impl and freed by the destructor (JS dispose()).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "ckks/ntt_plan.h"

namespace tensafe::ckks::cuda {

class NttPlanCuda {
 public:
  // Throws BackendUnavailableError when no usable GPU is present.
  explicit NttPlanCuda(std::shared_ptr<const NttPlan> cpu_plan);
  ~NttPlanCuda();
  NttPlanCuda(const NttPlanCuda&) = delete;
  NttPlanCuda& operator=(const NttPlanCuda&) = delete;

  const NttPlan& cpu_plan() const { return *cpu_; }

  // In place on limbs*n host words (already validated by the caller); returns after the copy
  // back, so the host words hold the result.
  void forward(std::uint64_t* host_words);
  void inverse(std::uint64_t* host_words);

  // Device-resident timing: `iterations` samples, each one replay of a CUDA graph of
  // kGraphRepeats back-to-back transforms timed with CUDA events, divided by kGraphRepeats.
  NttTiming benchmark(bool forward, int iterations);
  static constexpr int kGraphRepeats = 20;

  // Device-to-device copy bandwidth of the current GPU in bytes/s, counting bytes read plus
  // bytes written (a 256 MiB cudaMemcpy timed with CUDA events, median of several).
  static double measure_copy_bandwidth();

 private:
  struct Impl;
  std::shared_ptr<const NttPlan> cpu_;
  std::unique_ptr<Impl> impl_;
  std::mutex mutex_;  // one transform at a time on the shared work buffer
};

}  // namespace tensafe::ckks::cuda
