// Rescale and mod-down (divide by the last prime with rounding), exactly as the CPU's
// rescale_poly / key_switch mod-down: the dropped limb, brought to coefficient form and
// offset by half its prime, is reduced into every remaining prime, re-centred, transformed
// back (by the caller, ntt.cu), subtracted and multiplied by the dropped prime's inverse.
#include "ckks/cuda/rns_ops.cuh"
#include "cuda/cuda_check.h"

namespace tensafe::ckks::cuda {
namespace {

constexpr uint32_t kBlock = 256;

__global__ void expand_kernel(uint64_t* __restrict__ tmp, const uint64_t* __restrict__ last,
                              const Barrett* __restrict__ br, uint32_t drop, uint32_t out_limbs, uint32_t log_n) {
  const uint32_t n = 1u << log_n;
  const uint32_t j = blockIdx.x * kBlock + threadIdx.x;
  if (j >= n) return;
  const uint32_t p = blockIdx.y;
  const uint64_t ql = br[drop].q, half = ql >> 1;
  const uint64_t x = add_mod(last[static_cast<size_t>(p) * n + j], half, ql);
  uint64_t* o = tmp + static_cast<size_t>(p) * out_limbs * n + j;
  for (uint32_t k = 0; k < out_limbs; ++k) {
    const Barrett b = br[k];
    o[static_cast<size_t>(k) * n] = sub_mod(b.reduce64(x), b.reduce64(half), b.q);
  }
}

__global__ void finish_kernel(uint64_t* __restrict__ out, const uint64_t* __restrict__ x, uint64_t in_stride,
                              const uint64_t* __restrict__ tmp, LimbWords inv, const uint64_t* __restrict__ add0,
                              const Barrett* __restrict__ br, uint32_t out_limbs, uint32_t log_n) {
  const uint64_t words = static_cast<uint64_t>(out_limbs) << log_n;
  const uint64_t i = blockIdx.x * static_cast<uint64_t>(kBlock) + threadIdx.x;
  if (i >= words) return;
  const uint32_t p = blockIdx.y;
  const uint32_t k = static_cast<uint32_t>(i >> log_n);
  const uint64_t q = br[k].q;
  uint64_t r = mul_shoup(sub_mod(x[p * in_stride + i], tmp[p * words + i], q), inv.v[k], inv.s[k], q);
  if (add0 != nullptr && p == 0) r = add_mod(r, add0[i], q);
  out[p * words + i] = r;
}

}  // namespace

void rescale_expand(uint64_t* tmp, const uint64_t* last, const Barrett* br, uint32_t drop, uint32_t out_limbs,
                    uint32_t polys, uint32_t log_n, cudaStream_t s) {
  const uint32_t n = 1u << log_n;
  expand_kernel<<<dim3((n + kBlock - 1) / kBlock, polys), kBlock, 0, s>>>(tmp, last, br, drop, out_limbs, log_n);
  CUDA_CHECK_LAUNCH();
}

void rescale_finish(uint64_t* out, const uint64_t* x, uint64_t in_stride, const uint64_t* tmp, const LimbWords& inv,
                    const uint64_t* add0, const Barrett* br, uint32_t out_limbs, uint32_t polys, uint32_t log_n,
                    cudaStream_t s) {
  const uint64_t words = static_cast<uint64_t>(out_limbs) << log_n;
  finish_kernel<<<dim3(static_cast<unsigned>((words + kBlock - 1) / kBlock), polys), kBlock, 0, s>>>(
      out, x, in_stride, tmp, inv, add0, br, out_limbs, log_n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::ckks::cuda
