// Per-token stage timings, in the stage order of src/pipeline/types.ts (STAGES, without
// `network`, which only the server measures). On the CPU a steady clock brackets each stage;
// the CUDA step records events instead (helora/cuda). With timers off nothing is read at all,
// so the measured work is the same and at least as fast.
#pragma once
#include <chrono>
#include <cmath>

#include "timing/nvtx.h"

namespace tensafe::helora {

enum Stage : int {
  kForward = 0,
  kDpNoise,
  kEncode,
  kEncrypt,
  kCtPtMultiply,
  kDecrypt,
  kTransfer,
  kExtractSum,
  kLoraB,
  kLmHead,
  kSampling,
  kStageCount
};

inline const char* stage_name(int s) {
  static const char* names[kStageCount] = {"forward", "dp_noise", "encode", "encrypt", "ct_pt_multiply", "decrypt",
                                           "transfer", "extract_sum", "lora_b", "lm_head", "sampling"};
  return names[s];
}

// Milliseconds per stage; NaN = the stage did not run this token.
struct StageTimes {
  double ms[kStageCount];
  StageTimes() { clear(); }
  void clear() {
    for (double& v : ms) v = std::nan("");
  }
  void add(int s, double v) { ms[s] = std::isnan(ms[s]) ? v : ms[s] + v; }
};

class StageClock {
 public:
  using clock = std::chrono::steady_clock;
  StageClock(bool enabled, StageTimes* out) : enabled_(enabled && out != nullptr), out_(out) {
    if (enabled_) t_ = clock::now();
  }
  bool enabled() const { return enabled_; }
  // Closes the stage that started at the previous mark (or construction) and restarts the clock.
  void mark(int stage) {
    timing::nvtx_mark(stage_name(stage));  // stage ends, for Nsight timelines (no-op without a tool)
    if (!enabled_) return;
    auto now = clock::now();
    out_->add(stage, std::chrono::duration<double, std::milli>(now - t_).count());
    t_ = now;
  }
  // Restarts the clock without charging the elapsed time to any stage.
  void restart() {
    if (enabled_) t_ = clock::now();
  }
  // Marks a stage as run with zero time (so "ran" is visible even when timers are off).
  StageTimes* out() { return out_; }

 private:
  bool enabled_;
  StageTimes* out_;
  clock::time_point t_;
};

}  // namespace tensafe::helora
