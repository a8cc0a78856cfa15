// ChaCha20 samplers on the GPU (see sampling.cuh). Each thread expands one ChaCha20 block and
// turns its 8 words into 4 uniform residues or 8 small samples; the block index comes from the
// word index, so any thread can compute its words independently of the others.
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
