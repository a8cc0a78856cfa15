// DP noise on the HE input: clip to L2 norm C, then add N(0, sigma^2) to every coordinate.
//
// Randomness: a ChaCha20 stream (ckks/chacha20.h) keyed from the operating system's entropy at
// construction (os_random_key), one stream id per call from a counter, so no two calls reuse
// words. Gaussians by Box-Muller on pairs of 53-bit uniforms taken from 64-bit words:
//   u1 = (w0 >> 11 + 1) 2^-53 in (0, 1], u2 = (w1 >> 11) 2^-53 in [0, 1),
//   z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2).
// The tail is cut at about 8.6 sigma (probability 2^-53 per pair). This is a continuous
// Gaussian in double precision, the mechanism the accountant (src/pipeline/dp) assumes; the
// floating-point caveats of Mironov (CCS 2012) apply as for every such implementation.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "ckks/chacha20.h"

namespace tensafe::helora {

class DpNoise {
 public:
  DpNoise();  // OS-seeded key
  // Clips x (n values) to L2 norm clip_norm in place, then adds N(0, sigma^2) to each value.
  void apply(double* x, int n, double clip_norm, double sigma);
  // n samples of N(0, 1) (for tests of the sampler).
  void standard_normal(double* out, int n);

 private:
  ckks::ChaChaKey key_;
  std::atomic<uint64_t> stream_{1};
  std::vector<uint64_t> words_;
};

}  // namespace tensafe::helora
