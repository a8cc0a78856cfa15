// Token sampling: greedy, temperature, top-k, top-p, reproducible from a seed.
//
// The algorithm is fixed so that the CPU and the CUDA backends pick the same token for the same
// logits and the same uniform draw:
//   1. temperature <= 0 or top_k == 1: argmax (lowest id on ties); no random draw is used.
//   2. z_i = logits_i / temperature; candidates ordered by z descending (lower id first on ties).
//   3. top_k > 0: keep the first top_k candidates.
//   4. p_i = softmax over the kept candidates (float64 accumulation).
//   5. top_p < 1: keep the shortest prefix whose cumulative p reaches top_p (at least one),
//      the transformers convention; renormalise.
//   6. the token is the first candidate whose cumulative p exceeds u * total, with u the
//      draw below.
// Draws: u = uniform01(seed, step) for the step-th sampled token of a run, a counter-based
// hash (synthetic.h's mix64), so a run is reproducible from its seed whatever the backend.
#pragma once
#include <cstdint>

#include "model/synthetic.h"

namespace tensafe::model {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off; (0, 1]
  // Throws ArgumentRangeError naming the field (temperature in [0, 100], top_k >= 0, top_p in (0, 1]).
  void validate() const;
  bool greedy() const { return temperature <= 0.0f || top_k == 1; }
};

// Uniform double in [0, 1) (53 bits) for draw `step` of the run seeded with `seed`.
TENSAFE_HD inline double sampling_uniform01(uint64_t seed, uint64_t step) {
  uint64_t h = synthetic::mix64(synthetic::mix64(seed ^ 0x5a3b1e55eedULL) + step);
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
}

// Index of the largest value (lowest index on ties).
int32_t argmax(const float* logits, int n);

// The reference sampler (host): implements the steps above over n logits with draw u.
int32_t sample_token(const float* logits, int n, const SamplingOptions& opts, double u);

}  // namespace tensafe::model
