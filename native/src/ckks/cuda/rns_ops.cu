// Element-wise RNS kernels: one thread per word, limb from the word index.
#include <algorithm>

#include "ckks/cuda/rns_ops.cuh"
#include "cuda/cuda_check.h"

namespace tensafe::ckks::cuda {
namespace {

constexpr uint32_t kBlock = 256;

inline unsigned blocks_for(uint64_t count) { return static_cast<unsigned>((count + kBlock - 1) / kBlock); }

__global__ void add_kernel(uint64_t* __restrict__ out, const uint64_t* __restrict__ a, const uint64_t* __restrict__ b,
                           const Barrett* __restrict__ br, uint32_t limbs, uint64_t count, uint32_t log_n,
                           bool subtract) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= count) return;
  const uint64_t q = br[(i >> log_n) % limbs].q;
  out[i] = subtract ? sub_mod(a[i], b[i], q) : add_mod(a[i], b[i], q);
}

__global__ void add_plain_kernel(uint64_t* __restrict__ out, const uint64_t* __restrict__ a,
                                 const uint64_t* __restrict__ p, const Barrett* __restrict__ br, uint32_t limbs,
                                 uint32_t log_n) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  const uint64_t half = static_cast<uint64_t>(limbs) << log_n;
  if (i >= 2 * half) return;
  if (i < half)
    out[i] = add_mod(a[i], p[i], br[i >> log_n].q);
  else
    out[i] = a[i];
}

__global__ void mul_plain_kernel(uint64_t* __restrict__ out, const uint64_t* __restrict__ a,
                                 const uint64_t* __restrict__ p, const Barrett* __restrict__ br, uint32_t limbs,
                                 uint64_t count, uint32_t log_n) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= count) return;
  const uint64_t per_poly = static_cast<uint64_t>(limbs) << log_n;
  const uint64_t w = i % per_poly;  // word inside the polynomial = limb*n + j
  out[i] = br[w >> log_n].mul(a[i], p[w]);
}

struct CtPointers {
  static constexpr uint32_t kMax = 64;
  const uint64_t* p[kMax];
};

__global__ void mul_plain_batch_kernel(uint64_t* __restrict__ out, uint64_t out_stride, const uint64_t* __restrict__ a,
                                       CtPointers pts, const Barrett* __restrict__ br, uint32_t limbs, uint32_t log_n) {
  const uint64_t per_poly = static_cast<uint64_t>(limbs) << log_n;
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= 2 * per_poly) return;
  const uint32_t k = blockIdx.y;
  const uint64_t w = i % per_poly;
  out[k * out_stride + i] = br[w >> log_n].mul(a[i], pts.p[k][w]);
}

__global__ void decrypt_kernel(uint64_t* __restrict__ out, uint64_t out_stride, CtPointers cts,
                               const uint64_t* __restrict__ sk, const Barrett* __restrict__ br, uint32_t limbs,
                               uint32_t log_n) {
  const uint64_t words = static_cast<uint64_t>(limbs) << log_n;
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= words) return;
  const uint32_t c = blockIdx.y;
  const uint64_t* ct = cts.p[c];
  const Barrett b = br[i >> log_n];
  out[c * out_stride + i] = add_mod(ct[i], b.mul(ct[words + i], sk[i]), b.q);
}

__global__ void encrypt_pk_kernel(uint64_t* __restrict__ c0, uint64_t* __restrict__ c1, const uint64_t* __restrict__ e0,
                                  const uint64_t* __restrict__ e1, const uint64_t* __restrict__ u,
                                  const uint64_t* __restrict__ pk, uint64_t pk_words, const uint64_t* __restrict__ m,
                                  const uint64_t* __restrict__ m1, const Barrett* __restrict__ br, uint64_t words,
                                  uint32_t log_n) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= words) return;
  const Barrett b = br[i >> log_n];
  const uint64_t uu = u[i];
  c0[i] = add_mod(add_mod(e0[i], b.mul(pk[i], uu), b.q), m[i], b.q);
  const uint64_t r1 = add_mod(e1[i], b.mul(pk[pk_words + i], uu), b.q);
  c1[i] = m1 ? add_mod(r1, m1[i], b.q) : r1;
}

__global__ void gather_kernel(uint64_t* __restrict__ out, const uint64_t* __restrict__ in,
                              const uint32_t* __restrict__ positions, uint32_t count, uint64_t total, uint32_t log_n) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= total) return;
  const uint64_t l = i / count, k = i % count;
  out[i] = in[(l << log_n) + positions[k]];
}

// The inverse of gather: out[l*n + positions[k]] = a[l*count + k] (+ b[...] mod q_l when b is
// given; 0 when a is null); positions null: coefficient row0 + k.
__global__ void scatter_kernel(uint64_t* __restrict__ out, const uint64_t* __restrict__ a, const uint64_t* __restrict__ b,
                               const uint32_t* __restrict__ positions, uint32_t row0, uint32_t count, uint64_t total,
                               const Barrett* __restrict__ br, uint32_t log_n) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= total) return;
  const uint64_t l = i / count, k = i % count;
  uint64_t v = a ? a[i] : 0;
  if (b) v = add_mod(v, b[i], br[l].q);
  out[(l << log_n) + (positions ? positions[k] : row0 + k)] = v;
}

__global__ void encrypt_sk_kernel(uint64_t* __restrict__ c0, const uint64_t* __restrict__ c1,
                                  const uint64_t* __restrict__ sk, const uint64_t* __restrict__ m,
                                  const Barrett* __restrict__ br, uint64_t words, uint32_t log_n) {
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= words) return;
  const Barrett b = br[i >> log_n];
  c0[i] = add_mod(sub_mod(c0[i], b.mul(c1[i], sk[i]), b.q), m[i], b.q);
}

}  // namespace

void rns_add(uint64_t* out, const uint64_t* a, const uint64_t* b, const Barrett* br, uint32_t limbs, uint32_t polys,
             uint32_t log_n, bool subtract, cudaStream_t s) {
  const uint64_t count = (static_cast<uint64_t>(limbs) * polys) << log_n;
  add_kernel<<<blocks_for(count), kBlock, 0, s>>>(out, a, b, br, limbs, count, log_n, subtract);
  CUDA_CHECK_LAUNCH();
}

void rns_add_plain(uint64_t* out, const uint64_t* a, const uint64_t* p, const Barrett* br, uint32_t limbs,
                   uint32_t log_n, cudaStream_t s) {
  const uint64_t count = (2ull * limbs) << log_n;
  add_plain_kernel<<<blocks_for(count), kBlock, 0, s>>>(out, a, p, br, limbs, log_n);
  CUDA_CHECK_LAUNCH();
}

void rns_multiply_plain(uint64_t* out, const uint64_t* a, const uint64_t* p, const Barrett* br, uint32_t limbs,
                        uint32_t polys, uint32_t log_n, cudaStream_t s) {
  const uint64_t count = (static_cast<uint64_t>(limbs) * polys) << log_n;
  mul_plain_kernel<<<blocks_for(count), kBlock, 0, s>>>(out, a, p, br, limbs, count, log_n);
  CUDA_CHECK_LAUNCH();
}

void rns_multiply_plain_batch(uint64_t* out, uint64_t out_stride, const uint64_t* a, const uint64_t* const* pts,
                              const Barrett* br, uint32_t limbs, uint32_t count, uint32_t log_n, cudaStream_t s) {
  const uint64_t words = (2ull * limbs) << log_n;
  for (uint32_t first = 0; first < count; first += CtPointers::kMax) {
    const uint32_t here = std::min<uint32_t>(CtPointers::kMax, count - first);
    CtPointers p{};
    for (uint32_t c = 0; c < here; ++c) p.p[c] = pts[first + c];
    mul_plain_batch_kernel<<<dim3(blocks_for(words), here), kBlock, 0, s>>>(out + first * out_stride, out_stride, a, p, br,
                                                                            limbs, log_n);
    CUDA_CHECK_LAUNCH();
  }
}

void rns_decrypt_dyadic(uint64_t* out, uint64_t out_stride, const uint64_t* const* cts, const uint64_t* sk,
                        const Barrett* br, uint32_t limbs, uint32_t count, uint32_t log_n, cudaStream_t s) {
  const uint64_t words = static_cast<uint64_t>(limbs) << log_n;
  for (uint32_t first = 0; first < count; first += CtPointers::kMax) {
    const uint32_t here = std::min<uint32_t>(CtPointers::kMax, count - first);
    CtPointers p{};
    for (uint32_t c = 0; c < here; ++c) p.p[c] = cts[first + c];
    decrypt_kernel<<<dim3(blocks_for(words), here), kBlock, 0, s>>>(out + first * out_stride, out_stride, p, sk, br,
                                                                    limbs, log_n);
    CUDA_CHECK_LAUNCH();
  }
}

void rns_encrypt_pk(uint64_t* c0, uint64_t* c1, const uint64_t* e0, const uint64_t* e1, const uint64_t* u,
                    const uint64_t* pk, uint32_t pk_limbs, const uint64_t* m, const Barrett* br, uint32_t limbs,
                    uint32_t log_n, cudaStream_t s, const uint64_t* m1) {
  const uint64_t words = static_cast<uint64_t>(limbs) << log_n;
  encrypt_pk_kernel<<<blocks_for(words), kBlock, 0, s>>>(c0, c1, e0, e1, u, pk, static_cast<uint64_t>(pk_limbs) << log_n, m,
                                                         m1, br, words, log_n);
  CUDA_CHECK_LAUNCH();
}

void rns_gather(uint64_t* out, const uint64_t* in, const uint32_t* positions, uint32_t count, uint32_t limbs,
                uint32_t log_n, cudaStream_t s) {
  const uint64_t total = static_cast<uint64_t>(limbs) * count;
  if (total == 0) return;  // an empty launch is an error
  gather_kernel<<<blocks_for(total), kBlock, 0, s>>>(out, in, positions, count, total, log_n);
  CUDA_CHECK_LAUNCH();
}

void rns_scatter(uint64_t* out, const uint64_t* a, const uint64_t* b, const uint32_t* positions, uint32_t row0,
                 uint32_t count, uint32_t limbs, const Barrett* br, uint32_t log_n, cudaStream_t s) {
  const uint64_t total = static_cast<uint64_t>(limbs) * count;
  if (total == 0) return;
  scatter_kernel<<<blocks_for(total), kBlock, 0, s>>>(out, a, b, positions, row0, count, total, br, log_n);
  CUDA_CHECK_LAUNCH();
}

void rns_encrypt_sk(uint64_t* c0, const uint64_t* c1, const uint64_t* sk, const uint64_t* m, const Barrett* br,
                    uint32_t limbs, uint32_t log_n, cudaStream_t s) {
  const uint64_t words = static_cast<uint64_t>(limbs) << log_n;
  encrypt_sk_kernel<<<blocks_for(words), kBlock, 0, s>>>(c0, c1, sk, m, br, words, log_n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::ckks::cuda
