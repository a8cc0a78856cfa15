// Rotation by key switching (hybrid, one digit per ciphertext prime, special prime P), as
// the CPU's rotate/key_switch: Galois automorphism in the NTT domain, digit decomposition of
// c1 into every target prime, inner products with the key, then mod-down by P (rescale.cu).
#include "ckks/cuda/rns_ops.cuh"
#include "cuda/cuda_check.h"

namespace tensafe::ckks::cuda {
namespace {

constexpr uint32_t kBlock = 256;

__device__ __forceinline__ uint32_t brev(uint32_t x, uint32_t bits) { return __brev(x) >> (32 - bits); }

// NTT slot bitrev(i) holds a(psi^(2i+1)); tau_g(a) there is a(psi^(g(2i+1))).
__global__ void galois_kernel(uint64_t* __restrict__ out, const uint64_t* __restrict__ in, uint64_t galois,
                              uint64_t polys_limbs, uint32_t log_n) {
  const uint32_t n = 1u << log_n;
  const uint32_t j = blockIdx.x * kBlock + threadIdx.x;
  if (j >= n) return;
  const uint64_t two_n = 2ull * n;
  const uint32_t i = brev(j, log_n);
  const uint64_t e = (galois * (2ull * i + 1)) % two_n;
  const uint32_t src = brev(static_cast<uint32_t>((e - 1) / 2), log_n);
  const size_t off = static_cast<size_t>(blockIdx.y) * n;
  out[off + j] = in[off + src];
}

__global__ void decompose_kernel(uint64_t* __restrict__ v, const uint64_t* __restrict__ digits,
                                 const Barrett* __restrict__ br, LimbIndex targets, uint32_t log_n) {
  const uint32_t n = 1u << log_n;
  const uint32_t j = blockIdx.x * kBlock + threadIdx.x;
  if (j >= n) return;
  const uint32_t i = blockIdx.y;  // digit
  const uint64_t d = digits[static_cast<size_t>(i) * n + j];
  uint64_t* o = v + static_cast<size_t>(i) * targets.count * n + j;
  for (uint32_t t = 0; t < targets.count; ++t) {
    const Barrett b = br[targets.limb[t]];
    o[static_cast<size_t>(t) * n] = d >= b.q ? b.reduce64(d) : d;
  }
}

__global__ void inner_kernel(uint64_t* __restrict__ acc0, uint64_t* __restrict__ acc1, const uint64_t* __restrict__ v,
                             const uint64_t* __restrict__ key, uint32_t K, const Barrett* __restrict__ br, uint32_t l,
                             LimbIndex targets, uint32_t log_n) {
  const uint32_t n = 1u << log_n;
  const uint32_t j = blockIdx.x * kBlock + threadIdx.x;
  if (j >= n) return;
  const uint32_t t = blockIdx.y;
  const uint32_t k = targets.limb[t];
  const Barrett b = br[k];
  uint64_t s0 = 0, s1 = 0;
  for (uint32_t i = 0; i < l; ++i) {
    const uint64_t x = v[(static_cast<size_t>(i) * targets.count + t) * n + j];
    const uint64_t* kb = key + ((static_cast<size_t>(i) * 2) * K + k) * n;
    const uint64_t* ka = key + ((static_cast<size_t>(i) * 2 + 1) * K + k) * n;
    s0 = add_mod(s0, b.mul(x, kb[j]), b.q);
    s1 = add_mod(s1, b.mul(x, ka[j]), b.q);
  }
  acc0[static_cast<size_t>(t) * n + j] = s0;
  acc1[static_cast<size_t>(t) * n + j] = s1;
}

}  // namespace

void apply_galois(uint64_t* out, const uint64_t* in, uint64_t galois, uint32_t limbs, uint32_t polys, uint32_t log_n,
                  cudaStream_t s) {
  const uint32_t n = 1u << log_n;
  galois_kernel<<<dim3((n + kBlock - 1) / kBlock, limbs * polys), kBlock, 0, s>>>(out, in, galois,
                                                                                  uint64_t(limbs) * polys, log_n);
  CUDA_CHECK_LAUNCH();
}

void keyswitch_decompose(uint64_t* v, const uint64_t* digits, const Barrett* br, uint32_t l, const LimbIndex& targets,
                         uint32_t log_n, cudaStream_t s) {
  const uint32_t n = 1u << log_n;
  decompose_kernel<<<dim3((n + kBlock - 1) / kBlock, l), kBlock, 0, s>>>(v, digits, br, targets, log_n);
  CUDA_CHECK_LAUNCH();
}

void keyswitch_inner(uint64_t* acc0, uint64_t* acc1, const uint64_t* v, const uint64_t* key, uint32_t K,
                     const Barrett* br, uint32_t l, const LimbIndex& targets, uint32_t log_n, cudaStream_t s) {
  const uint32_t n = 1u << log_n;
  inner_kernel<<<dim3((n + kBlock - 1) / kBlock, targets.count), kBlock, 0, s>>>(acc0, acc1, v, key, K, br, l, targets,
                                                                                 log_n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::ckks::cuda
