// GPU samplers over the ChaCha20 word stream: the same samples as the CPU Sampler
// (ckks/sampling.h documents the layout), computed by the shared chacha20_block(),
// ternary_from_word() and gaussian_from_word() so both backends produce the same words.
// One thread computes one 64-byte ChaCha20 block (8 words).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ckks/modarith.h"

namespace tensafe::ckks::cuda {

struct DeviceChaChaKey {
  uint32_t k[8];
};

enum class SmallDistribution : int { Ternary = 0, Gaussian = 1 };

// Uploads the Gaussian CDT table (once per process; idempotent, thread-safe).
void upload_gaussian_table();

// Every sampler takes the stream id by value or, when stream_id_ptr is not null, reads it from
// device memory at run time (lets a captured CUDA graph encrypt with a fresh id per replay).

// Uniform residues: out[l*n + j] = (word(base + 2k + 1) * 2^64 + word(base + 2k)) mod q_l,
// k = l*n + j, for l < limbs. `moduli` is a device array of Barrett constants. base % 8 == 0.
void sample_uniform(uint64_t* out, const Barrett* moduli, uint32_t limbs, uint32_t log_n, const DeviceChaChaKey& key,
                    uint64_t stream_id, uint64_t base, cudaStream_t stream, const uint64_t* stream_id_ptr = nullptr);

// n small samples (coefficient j from word(base + j)) written as residues over `limbs`
// moduli, limb-major, in coefficient form: out[l*n + j] = x_j mod q_l. base % 8 == 0.
void sample_small_rns(uint64_t* out, const Barrett* moduli, uint32_t limbs, uint32_t log_n,
                      const DeviceChaChaKey& key, uint64_t stream_id, uint64_t base, SmallDistribution dist,
                      cudaStream_t stream, const uint64_t* stream_id_ptr = nullptr);

// The three samples of a public-key encryption in one launch (sampling.h layout):
// u ternary from word 0, e0 Gaussian from word n, e1 Gaussian from word 2n.
void sample_encryption_noise(uint64_t* u, uint64_t* e0, uint64_t* e1, const Barrett* moduli, uint32_t limbs,
                             uint32_t log_n, const DeviceChaChaKey& key, uint64_t stream_id, cudaStream_t stream,
                             const uint64_t* stream_id_ptr = nullptr);

}  // namespace tensafe::ckks::cuda
