// ChaCha20 samplers on the GPU (see sampling.cuh). Each thread expands one ChaCha20 block and
// turns its 8 words into 4 uniform residues or 8 small samples; the block index comes from the
// word index, so any thread can compute its words independently of the others.
#include <cub/block/block_scan.cuh>

#include <mutex>

#include "ckks/chacha20.h"
#include "ckks/cuda/sampling.cuh"
#include "ckks/sampling.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"

namespace tensafe::ckks::cuda {
namespace {

__constant__ uint64_t c_gaussian_cdt[kGaussianTableSize];

__device__ __forceinline__ void block_words(const DeviceChaChaKey& key, uint64_t stream_id, uint64_t block,
                                            uint64_t* w) {
  uint32_t o[16];
  chacha20_block(key.k, stream_id, block, o);
#pragma unroll
  for (int i = 0; i < 8; ++i) w[i] = static_cast<uint64_t>(o[2 * i]) | (static_cast<uint64_t>(o[2 * i + 1]) << 32);
}

__global__ void uniform_kernel(uint64_t* __restrict__ out, const Barrett* __restrict__ moduli, uint64_t total,
                               uint32_t log_n, DeviceChaChaKey key, uint64_t stream_id, uint64_t base_block,
                               const uint64_t* stream_id_ptr) {
  const uint64_t t = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x;
  if (4 * t >= total) return;
  if (stream_id_ptr) stream_id = *stream_id_ptr;
  uint64_t w[8];
  block_words(key, stream_id, base_block + t, w);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint64_t k = 4 * t + i;
    const Barrett br = moduli[k >> log_n];
    out[k] = br.reduce128(w[2 * i + 1], w[2 * i]);
  }
}

// Up to three small-sample polynomials of one stream in one launch (blockIdx.y picks which).
struct SmallBatch {
  uint64_t* out[3];
  uint64_t base_block[3];
  int gaussian[3];
};

__global__ void small_kernel(SmallBatch batch, const Barrett* __restrict__ moduli, uint32_t limbs, uint32_t log_n,
                             DeviceChaChaKey key, uint64_t stream_id, const uint64_t* stream_id_ptr) {
  const uint32_t n = 1u << log_n;
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  if (8 * t >= n) return;
  if (stream_id_ptr) stream_id = *stream_id_ptr;
  const uint32_t which = blockIdx.y;
  uint64_t w[8];
  block_words(key, stream_id, batch.base_block[which] + t, w);
  const bool gaussian = batch.gaussian[which] != 0;
  int x[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = gaussian ? gaussian_from_word(w[i], c_gaussian_cdt) : ternary_from_word(w[i]);
  uint64_t* out = batch.out[which];
  for (uint32_t l = 0; l < limbs; ++l) {
    const uint64_t q = moduli[l].q;
    uint64_t* o = out + static_cast<size_t>(l) * n + 8 * t;
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = x[i] < 0 ? q - static_cast<uint64_t>(-x[i]) : static_cast<uint64_t>(x[i]);
  }
}

// The rejection samplers read one stream's words in order from word 0 (sampling.h): a single
// thread block walks the stream, kRejectThreads ChaCha20 blocks (8 words each) per step; a block
// scan of the accepted counts gives each accepted word its rank, so the outputs come out in the
// stream's order, exactly the CPU Sampler's, whatever the data-dependent number of rejections.
constexpr int kRejectThreads = 256;

__global__ void uniform_exact_kernel(uint64_t* __restrict__ out, const SampleJob* __restrict__ jobs,
                                     const Barrett* __restrict__ moduli, RejectLimits limits, uint32_t limbs,
                                     uint32_t count, DeviceChaChaKey key) {
  using Scan = cub::BlockScan<uint32_t, kRejectThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  __shared__ uint64_t s_end;  // the word after the one that completed the limb
  const SampleJob job = jobs[blockIdx.x];
  uint64_t* o = out + job.out_offset;
  uint64_t start = 0;  // first word not consumed yet (the same in every thread)
  uint32_t limb = 0, filled = 0;
  while (limb < limbs) {
    const uint64_t limit = limits.v[limb];
    const uint64_t block = start / 8 + threadIdx.x;
    uint64_t w[8];
    block_words(key, job.stream_id, block, w);
    uint32_t flags = 0, cnt = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const bool ok = block * 8 + i >= start && w[i] < limit;
      flags |= static_cast<uint32_t>(ok) << i;
      cnt += ok;
    }
    uint32_t before = 0, total = 0;
    Scan(scan_tmp).ExclusiveSum(cnt, before, total);
    const uint32_t need = count - filled;
    const Barrett br = moduli[limb];
    uint32_t r = before;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (!((flags >> i) & 1u)) continue;
      if (r < need) {
        o[static_cast<uint64_t>(limb) * count + filled + r] = br.reduce64(w[i]);  // == w mod q exactly
        if (r == need - 1) s_end = block * 8 + i + 1;
      }
      ++r;
    }
    __syncthreads();
    if (total >= need) {
      start = s_end;
      ++limb;
      filled = 0;
    } else {
      filled += total;
      start = (start / 8 + kRejectThreads) * 8;
    }
    __syncthreads();  // s_end and the scan storage are reused
  }
}

__global__ void centered_kernel(uint64_t* __restrict__ out, const SampleJob* __restrict__ jobs,
                                const Barrett* __restrict__ moduli, uint32_t limbs, CenteredBounds b, DeviceChaChaKey key) {
  using u128 = unsigned __int128;
  using Scan = cub::BlockScan<uint32_t, kRejectThreads>;
  __shared__ typename Scan::TempStorage scan_tmp;
  const SampleJob job = jobs[blockIdx.x];
  const uint32_t count = job.count;
  uint64_t* o = out + job.out_offset;
  const u128 half = (static_cast<u128>(b.half_hi) << 64) | b.half_lo;
  const u128 M = (static_cast<u128>(b.modulus_hi) << 64) | b.modulus_lo;
  const u128 limit = (static_cast<u128>(b.limit_hi) << 64) | b.limit_lo;
  uint32_t filled = 0;
  // Candidates are word pairs (2t, 2t + 1): four per ChaCha20 block, never split across blocks.
  for (uint64_t step = 0; filled < count; ++step) {
    const uint64_t block = step * kRejectThreads + threadIdx.x;
    uint64_t w[8];
    block_words(key, job.stream_id, block, w);
    uint32_t flags = 0, cnt = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const u128 c = (static_cast<u128>(w[2 * j + 1]) << 64) | w[2 * j];
      const bool ok = c < limit;
      flags |= static_cast<uint32_t>(ok) << j;
      cnt += ok;
    }
    uint32_t before = 0, total = 0;
    Scan(scan_tmp).ExclusiveSum(cnt, before, total);
    uint32_t r = before;
    for (int j = 0; j < 4; ++j) {
      if (!((flags >> j) & 1u)) continue;
      if (filled + r < count) {
        const u128 c = (static_cast<u128>(w[2 * j + 1]) << 64) | w[2 * j];
        const u128 v = c % M;  // e = v - 2^bits
        const bool negative = v < half;
        const u128 mag = negative ? half - v : v - half;
        for (uint32_t l = 0; l < limbs; ++l) {
          const Barrett br = moduli[l];
          const uint64_t rr = br.reduce128(static_cast<uint64_t>(mag >> 64), static_cast<uint64_t>(mag));
          o[static_cast<uint64_t>(l) * count + filled + r] = (negative && rr) ? br.q - rr : rr;
        }
      }
      ++r;
    }
    filled += total;
    __syncthreads();  // the scan storage is reused
  }
}

void check_base(uint64_t base) {
  if (base % 8 != 0) throw ArgumentRangeError("GPU sampler: word base must be a multiple of 8");
}

}  // namespace

void upload_gaussian_table() {
  static std::once_flag once;
  std::call_once(once, [] {
    CUDA_CHECK(cudaMemcpyToSymbol(c_gaussian_cdt, gaussian_cdt().data(), sizeof(uint64_t) * kGaussianTableSize));
  });
}

RejectLimits uniform_exact_limits(const std::vector<uint64_t>& moduli) {
  if (moduli.size() > RejectLimits::kMax) throw ArgumentRangeError("GPU sampler: too many primes");
  RejectLimits r{};
  for (std::size_t l = 0; l < moduli.size(); ++l) {
    const uint64_t q = moduli[l];
    r.v[l] = 0 - ((0 - q) % q);  // 2^64 - (2^64 mod q), as Sampler::uniform_exact
  }
  return r;
}

CenteredBounds centered_bounds(int bits) {
  using u128 = unsigned __int128;
  if (bits < 1 || bits > 126) throw ArgumentRangeError("GPU sampler: centered bits must be in 1..126");
  const u128 half = static_cast<u128>(1) << bits;
  const u128 M = 2 * half + 1;
  const u128 limit = static_cast<u128>(0) - ((static_cast<u128>(0) - M) % M);  // as Sampler::centered
  return {static_cast<uint64_t>(half), static_cast<uint64_t>(half >> 64), static_cast<uint64_t>(M),
          static_cast<uint64_t>(M >> 64), static_cast<uint64_t>(limit), static_cast<uint64_t>(limit >> 64)};
}

void sample_uniform_exact(uint64_t* out, const SampleJob* jobs, uint32_t jobs_count, const Barrett* moduli,
                          const RejectLimits& limits, uint32_t limbs, uint32_t count, const DeviceChaChaKey& key,
                          cudaStream_t stream) {
  if (jobs_count == 0 || limbs == 0 || count == 0) return;
  uniform_exact_kernel<<<jobs_count, kRejectThreads, 0, stream>>>(out, jobs, moduli, limits, limbs, count, key);
  CUDA_CHECK_LAUNCH();
}

void sample_centered(uint64_t* out, const SampleJob* jobs, uint32_t jobs_count, const Barrett* moduli, uint32_t limbs,
                     const CenteredBounds& bounds, const DeviceChaChaKey& key, cudaStream_t stream) {
  if (jobs_count == 0 || limbs == 0) return;
  centered_kernel<<<jobs_count, kRejectThreads, 0, stream>>>(out, jobs, moduli, limbs, bounds, key);
  CUDA_CHECK_LAUNCH();
}

void sample_uniform(uint64_t* out, const Barrett* moduli, uint32_t limbs, uint32_t log_n, const DeviceChaChaKey& key,
                    uint64_t stream_id, uint64_t base, cudaStream_t stream, const uint64_t* stream_id_ptr) {
  check_base(base);
  const uint64_t total = static_cast<uint64_t>(limbs) << log_n;
  const uint64_t threads = total / 4;
  const uint32_t block = 256;
  uniform_kernel<<<static_cast<unsigned>((threads + block - 1) / block), block, 0, stream>>>(
      out, moduli, total, log_n, key, stream_id, base / 8, stream_id_ptr);
  CUDA_CHECK_LAUNCH();
}

void sample_small_rns(uint64_t* out, const Barrett* moduli, uint32_t limbs, uint32_t log_n,
                      const DeviceChaChaKey& key, uint64_t stream_id, uint64_t base, SmallDistribution dist,
                      cudaStream_t stream, const uint64_t* stream_id_ptr) {
  check_base(base);
  upload_gaussian_table();
  SmallBatch b{};
  b.out[0] = out;
  b.base_block[0] = base / 8;
  b.gaussian[0] = dist == SmallDistribution::Gaussian;
  const uint32_t threads = (1u << log_n) / 8;
  const uint32_t block = 128;
  small_kernel<<<dim3((threads + block - 1) / block, 1), block, 0, stream>>>(b, moduli, limbs, log_n, key, stream_id,
                                                                            stream_id_ptr);
  CUDA_CHECK_LAUNCH();
}

void sample_encryption_noise(uint64_t* u, uint64_t* e0, uint64_t* e1, const Barrett* moduli, uint32_t limbs,
                             uint32_t log_n, const DeviceChaChaKey& key, uint64_t stream_id, cudaStream_t stream,
                             const uint64_t* stream_id_ptr) {
  upload_gaussian_table();
  const uint64_t n = 1ull << log_n;
  SmallBatch b{};
  b.out[0] = u;
  b.base_block[0] = 0;
  b.gaussian[0] = 0;
  b.out[1] = e0;
  b.base_block[1] = n / 8;
  b.gaussian[1] = 1;
  b.out[2] = e1;
  b.base_block[2] = 2 * n / 8;
  b.gaussian[2] = 1;
  const uint32_t threads = static_cast<uint32_t>(n / 8);
  const uint32_t block = 128;
  small_kernel<<<dim3((threads + block - 1) / block, 3), block, 0, stream>>>(b, moduli, limbs, log_n, key, stream_id,
                                                                            stream_id_ptr);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::ckks::cuda
