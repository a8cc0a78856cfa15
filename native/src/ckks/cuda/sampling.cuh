// GPU samplers over the ChaCha20 word stream: the same samples as the CPU Sampler
// (ckks/sampling.h documents the layout), computed by the shared chacha20_block(),
// ternary_from_word() and gaussian_from_word() so both backends produce the same words.
// One thread computes one 64-byte ChaCha20 block (8 words).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

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

// ---- the rejection samplers of sampleWords (sampling.h: 'uniform' and 'centered') ------------
// Each job reads its own stream from word 0, in order, exactly as the CPU Sampler does (one thread
// block per job walks the stream), and writes limbs x count words, limb-major, at
// out + out_offset. Jobs live in device memory.
struct SampleJob {
  uint64_t stream_id;
  uint64_t out_offset;  // words
  uint64_t count;       // centered only (uniform: the launch's count)
};

// Per limb, 2^64 - (2^64 mod q): a word below it is accepted (uniform_exact_limits computes them).
struct RejectLimits {
  static constexpr std::size_t kMax = 32;
  uint64_t v[kMax];
};
RejectLimits uniform_exact_limits(const std::vector<uint64_t>& moduli);

// 2^bits, M = 2^(bits+1) + 1 and the acceptance limit 2^128 - (2^128 mod M), as 64-bit halves.
struct CenteredBounds {
  uint64_t half_lo, half_hi, modulus_lo, modulus_hi, limit_lo, limit_hi;
};
CenteredBounds centered_bounds(int bits);

// `count` residues per limb exactly uniform mod each of the first `limbs` moduli, per job.
void sample_uniform_exact(uint64_t* out, const SampleJob* jobs, uint32_t jobs_count, const Barrett* moduli,
                          const RejectLimits& limits, uint32_t limbs, uint32_t count, const DeviceChaChaKey& key,
                          cudaStream_t stream);
// job.count integers exactly uniform on [-2^bits, 2^bits], each written mod every limb, per job.
void sample_centered(uint64_t* out, const SampleJob* jobs, uint32_t jobs_count, const Barrett* moduli, uint32_t limbs,
                     const CenteredBounds& bounds, const DeviceChaChaKey& key, cudaStream_t stream);

}  // namespace tensafe::ckks::cuda
