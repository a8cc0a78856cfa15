// Kernels of the device-resident HE-LoRA step that the CKKS launchers do not cover.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace tensafe::helora::cuda {

// x (d doubles) = hidden (d floats), optionally clipped to L2 norm clip_norm and noised with
// N(0, sigma^2) drawn from ChaCha20 (key, stream_id) by Box-Muller (helora/dp_noise.h layout:
// pair p uses words 2p and 2p+1). One block; d up to 65536.
void prepare_input(double* x, const float* hidden, int d, bool dp, double clip_norm, double sigma, const uint32_t* key,
                   uint64_t stream_id, cudaStream_t s);

// delta[o] = scaling * sum_{p < products, k < per} B[o][p*per + k] * y[p*per + k] (rows < rank).
void lora_b(float* delta, const double* y, const float* b, int out_dim, int rank, int products, int per, float scaling,
            cudaStream_t s);

}  // namespace tensafe::helora::cuda
