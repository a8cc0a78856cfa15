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

__global__ void small_kernel(uint64_t* __restrict__ out, const Barrett* __restrict__ moduli, uint32_t limbs,
                             uint32_t log_n, DeviceChaChaKey key, uint64_t stream_id, uint64_t base_block,
                             int gaussian, const uint64_t* stream_id_ptr) {
  const uint32_t n = 1u << log_n;
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  if (8 * t >= n) return;
  if (stream_id_ptr) stream_id = *stream_id_ptr;
  uint64_t w[8];
  block_words(key, stream_id, base_block + t, w);
  int x[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = gaussian ? gaussian_from_word(w[i], c_gaussian_cdt) : ternary_from_word(w[i]);
  for (uint32_t l = 0; l < limbs; ++l) {
    const uint64_t q = moduli[l].q;
    uint64_t* o = out + static_cast<size_t>(l) * n + 8 * t;
#pragma unroll
    for (int i = 0; i < 8; ++i) o[i] = x[i] < 0 ? q - static_cast<uint64_t>(-x[i]) : static_cast<uint64_t>(x[i]);
  }
}

__global__ void words_kernel(uint64_t* __restrict__ out, DeviceChaChaKey key, uint64_t stream_id, uint64_t start,
                             uint64_t count) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x;
  if (i >= count) return;
  const uint64_t word = start + i;
  uint32_t o[16];
  chacha20_block(key.k, stream_id, word / 8, o);
  const int k = static_cast<int>(word % 8);
  out[i] = static_cast<uint64_t>(o[2 * k]) | (static_cast<uint64_t>(o[2 * k + 1]) << 32);
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
  const uint32_t threads = (1u << log_n) / 8;
  const uint32_t block = 128;
  small_kernel<<<(threads + block - 1) / block, block, 0, stream>>>(out, moduli, limbs, log_n, key, stream_id,
                                                                    base / 8, dist == SmallDistribution::Gaussian,
                                                                    stream_id_ptr);
  CUDA_CHECK_LAUNCH();
}

void chacha20_words_device(uint64_t* out, const DeviceChaChaKey& key, uint64_t stream_id, uint64_t start,
                           uint64_t count, cudaStream_t stream) {
  if (count == 0) return;
  const uint32_t block = 256;
  words_kernel<<<static_cast<unsigned>((count + block - 1) / block), block, 0, stream>>>(out, key, stream_id, start,
                                                                                         count);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::ckks::cuda
