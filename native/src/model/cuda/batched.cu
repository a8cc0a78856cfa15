// Row-wise kernels of the batched prefill (m tokens at once): embedding gather, RMSNorm into the
// GEMMs' 16-bit inputs (optionally split into hi + lo 16-bit parts: see batched_prefill.h), q/k/v bias + RoPE + KV-cache write, SwiGLU, and the device position.
// The arithmetic of each row is the decode step's (same formulas, float32), so a prefilled cache
// holds what token-by-token steps write up to the rounding of the GEMM inputs.
#include <algorithm>

#include "cuda/cuda_check.h"
#include "model/cuda/device_math.cuh"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda {
namespace {

constexpr int kRowThreads = 256;

template <DType WT>
__global__ void embed_rows_kernel(const uint16_t* __restrict__ embed, const int32_t* __restrict__ tokens, int d,
                                  float* __restrict__ x) {
  const int r = blockIdx.x;
  const uint16_t* row = embed + static_cast<size_t>(tokens[r]) * d;
  float* out = x + static_cast<size_t>(r) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) out[i] = half_to_float<WT>(row[i]);
}

// v as 16 bits; with lo, also the 16-bit rest v - hi (hi + lo carries about 16 significant bits).
template <DType WT>
__device__ __forceinline__ void store_split(float v, uint16_t* hi, uint16_t* lo, size_t i) {
  const uint16_t h = float_to_half<WT>(v);
  hi[i] = h;
  if (lo != nullptr) lo[i] = float_to_half<WT>(v - half_to_float<WT>(h));
}

// One block per row: out = round16(x * rsqrt(mean(x^2) + eps) * w) (and its rest, when split).
template <DType WT>
__global__ void rmsnorm_rows_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps, int d,
                                    uint16_t* __restrict__ out, uint16_t* __restrict__ out_lo) {
  __shared__ float red[kRowThreads / 32];
  const int r = blockIdx.x;
  const float* xr = x + static_cast<size_t>(r) * d;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kRowThreads / 32; ++i) total += red[i];
  const float inv = rsqrtf(total / static_cast<float>(d) + eps);
  const size_t base = static_cast<size_t>(r) * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) store_split<WT>((xr[i] * inv) * w[i], out, out_lo, base + i);
}

// One block per row (token at position p0 + r): adds the bias, rotates q and k, writes k and v
// rounded to the cache at that position, and q rounded to 16 bits into q_out [m][heads][D]
// (and its rest into q_lo, when split).
template <DType WT>
__global__ void qkv_rope_cache_kernel(const float* __restrict__ qkv, const float* __restrict__ bias,
                                      const float2* __restrict__ rope, int p0, int heads, int kv_heads, int D,
                                      int context, uint16_t* __restrict__ k_cache, uint16_t* __restrict__ v_cache,
                                      uint16_t* __restrict__ q_out, uint16_t* __restrict__ q_lo) {
  const int r = blockIdx.x;
  const int pos = p0 + r;
  const int half = D / 2;
  const int width = (heads + 2 * kv_heads) * D;
  const float* row = qkv + static_cast<size_t>(r) * width;
  const float2* cs = rope + static_cast<size_t>(pos) * half;
  auto val = [&](int i) { return row[i] + (bias != nullptr ? bias[i] : 0.0f); };
  // Rotated pairs (i, i + half) of q heads then k heads.
  for (int idx = threadIdx.x; idx < (heads + kv_heads) * half; idx += blockDim.x) {
    const int hh = idx / half, i = idx % half;
    const int base = hh * D;
    const float2 c = cs[i];
    const float a = val(base + i), b = val(base + i + half);
    const float r0 = a * c.x - b * c.y, r1 = b * c.x + a * c.y;
    if (hh < heads) {
      const size_t at = (static_cast<size_t>(r) * heads + hh) * D;
      store_split<WT>(r0, q_out, q_lo, at + i);
      store_split<WT>(r1, q_out, q_lo, at + i + half);
    } else {
      const int g = hh - heads;
      uint16_t* k = k_cache + (static_cast<size_t>(g) * context + pos) * D;
      k[i] = float_to_half<WT>(r0);
      k[i + half] = float_to_half<WT>(r1);
    }
  }
  for (int idx = threadIdx.x; idx < kv_heads * D; idx += blockDim.x) {
    const int g = idx / D, i = idx % D;
    v_cache[(static_cast<size_t>(g) * context + pos) * D + i] = float_to_half<WT>(val((heads + kv_heads) * D + idx));
  }
}

// act[r, i] = round16(silu(gu[r, i]) * gu[r, n + i]).
template <DType WT>
__global__ void swiglu_rows_kernel(const float* __restrict__ gu, int m, int n, uint16_t* __restrict__ act,
                                   uint16_t* __restrict__ act_lo) {
  const size_t total = static_cast<size_t>(m) * n;
  for (size_t idx = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t r = idx / n, i = idx % n;
    const float* row = gu + r * 2 * n;
    store_split<WT>(silu(row[i]) * row[n + i], act, act_lo, idx);
  }
}

__global__ void set_int_kernel(int* p, int v) { *p = v; }

}  // namespace

void embed_rows(const uint16_t* embed, DType wtype, const int32_t* tokens, int m, int d, float* x, cudaStream_t stream) {
  if (m <= 0) return;
  if (wtype == DType::BF16) embed_rows_kernel<DType::BF16><<<m, kRowThreads, 0, stream>>>(embed, tokens, d, x);
  else embed_rows_kernel<DType::F16><<<m, kRowThreads, 0, stream>>>(embed, tokens, d, x);
  CUDA_CHECK_LAUNCH();
}

void rmsnorm_rows(const float* x, const float* w, float eps, int m, int d, DType out_type, uint16_t* out,
                  uint16_t* out_lo, cudaStream_t stream) {
  if (m <= 0) return;
  if (out_type == DType::BF16) rmsnorm_rows_kernel<DType::BF16><<<m, kRowThreads, 0, stream>>>(x, w, eps, d, out, out_lo);
  else rmsnorm_rows_kernel<DType::F16><<<m, kRowThreads, 0, stream>>>(x, w, eps, d, out, out_lo);
  CUDA_CHECK_LAUNCH();
}

void qkv_rope_cache(const QkvRopeArgs& a, cudaStream_t stream) {
  if (a.m <= 0) return;
  if (a.cache_type == DType::BF16)
    qkv_rope_cache_kernel<DType::BF16><<<a.m, kRowThreads, 0, stream>>>(a.qkv, a.bias, a.rope, a.p0, a.heads, a.kv_heads,
                                                                       a.head_dim, a.context, a.k_cache, a.v_cache, a.q_out, a.q_lo);
  else
    qkv_rope_cache_kernel<DType::F16><<<a.m, kRowThreads, 0, stream>>>(a.qkv, a.bias, a.rope, a.p0, a.heads, a.kv_heads,
                                                                      a.head_dim, a.context, a.k_cache, a.v_cache, a.q_out, a.q_lo);
  CUDA_CHECK_LAUNCH();
}

void swiglu_rows(const float* gu, int m, int n, DType out_type, uint16_t* act, uint16_t* act_lo, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return;
  const size_t total = static_cast<size_t>(m) * n;
  const int grid = static_cast<int>(std::min<size_t>((total + 255) / 256, 65536));
  if (out_type == DType::BF16) swiglu_rows_kernel<DType::BF16><<<grid, 256, 0, stream>>>(gu, m, n, act, act_lo);
  else swiglu_rows_kernel<DType::F16><<<grid, 256, 0, stream>>>(gu, m, n, act, act_lo);
  CUDA_CHECK_LAUNCH();
}

void set_device_int(int* p, int value, cudaStream_t stream) {
  set_int_kernel<<<1, 1, 0, stream>>>(p, value);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::model::cuda
