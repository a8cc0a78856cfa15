// Device extraction of the coefficients packing: y values read straight from decrypted
// coefficient-form plaintexts (Garner over their primes), one thread per value.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ckks/modarith.h"

namespace tensafe::helora::cuda {

constexpr int kMaxGarnerLimbs = 4;
constexpr int kMaxExtractPlaintexts = 64;

struct GarnerConsts {
  uint32_t limbs = 0;
  ckks::Barrett br[kMaxGarnerLimbs];
  uint64_t inv[kMaxGarnerLimbs][kMaxGarnerLimbs];  // inv[i][k] = q_k^-1 mod q_i (k < i)
  double radix[kMaxGarnerLimbs];                   // q_0 ... q_{i-1}
};

struct PlaintextPtrs {
  const uint64_t* p[kMaxExtractPlaintexts];
  double inv_scale[kMaxExtractPlaintexts];
};

// out[p * per_pt + k] = centred value of coefficient index[k] of plaintext p, times inv_scale,
// for p < count, k < per_pt. index: device array of per_pt coefficient indices.
void extract_coefficients(double* out, const PlaintextPtrs& pts, uint32_t count, uint32_t n, const uint32_t* index,
                          uint32_t per_pt, const GarnerConsts& g, cudaStream_t s);

}  // namespace tensafe::helora::cuda
