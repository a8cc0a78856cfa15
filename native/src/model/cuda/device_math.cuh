// Small device helpers shared by the decoder's kernels: 16-bit storage types (f16 / bf16 as
// uint16_t bit patterns) to and from float, 16-byte streaming loads, warp reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "model/dtype.h"

namespace tensafe::model::cuda {

// Streaming 16-byte load of read-only data (weights): kept out of L1, L2 asked for 256-byte lines.
__device__ __forceinline__ uint4 ld_stream(const uint16_t* p) {
  uint4 r;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
      : "l"(p));
  return r;
}

// 8 packed 16-bit values -> 8 floats (exact).
template <DType T>
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (T == DType::BF16) {
      f[2 * i] = __uint_as_float(u[i] << 16);
      f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    } else {
      const float2 t = __half22float2(*reinterpret_cast<const __half2*>(&u[i]));
      f[2 * i] = t.x;
      f[2 * i + 1] = t.y;
    }
  }
}

template <DType T>
__device__ __forceinline__ float half_to_float(uint16_t u) {
  if constexpr (T == DType::BF16) return __uint_as_float(static_cast<uint32_t>(u) << 16);
  return __half2float(__ushort_as_half(u));
}

// Round to nearest even into the 16-bit type (as the CPU's float_to_f16 / float_to_bf16).
template <DType T>
__device__ __forceinline__ uint16_t float_to_half(float f) {
  if constexpr (T == DType::BF16) return __bfloat16_as_ushort(__float2bfloat16_rn(f));
  return __half_as_ushort(__float2half_rn(f));
}

// Two floats -> one 32-bit word of two 16-bit values (lo first).
template <DType T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return static_cast<uint32_t>(float_to_half<T>(lo)) | (static_cast<uint32_t>(float_to_half<T>(hi)) << 16);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

// ---- a thread's slice of a gemv input --------------------------------------------------------
// The k inputs form C = k/8 chunks of 8; a thread owning chunks lt, lt + L, ... (at most
// `jmax` <= J of them) keeps them in xv[J][8] (zeros past C or jmax).

// Loads the slice from float32 x (through L2: x may have been written by another block of the
// same kernel) and returns the slice's sum of squares (for a fused RMSNorm).
template <int J>
__device__ __forceinline__ float load_x_slice(float (&xv)[J][8], const float* x, int lt, int L, int C, int jmax) {
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int c = lt + j * L;
    if (j < jmax && c < C) {
      const float4 a = __ldcg(reinterpret_cast<const float4*>(x) + 2 * c);
      const float4 b = __ldcg(reinterpret_cast<const float4*>(x) + 2 * c + 1);
      xv[j][0] = a.x; xv[j][1] = a.y; xv[j][2] = a.z; xv[j][3] = a.w;
      xv[j][4] = b.x; xv[j][5] = b.y; xv[j][6] = b.z; xv[j][7] = b.w;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) xv[j][e] = 0.0f;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) ss = fmaf(xv[j][e], xv[j][e], ss);
  }
  return ss;
}

// xv = (xv * r) * norm_w over the slice (RMSNorm with inverse root mean square r).
template <int J>
__device__ __forceinline__ void scale_x_slice(float (&xv)[J][8], const float* __restrict__ norm_w, float r, int lt, int L,
                                              int C, int jmax) {
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int c = lt + j * L;
    if (j < jmax && c < C) {
      const float4 a = __ldg(reinterpret_cast<const float4*>(norm_w) + 2 * c);
      const float4 b = __ldg(reinterpret_cast<const float4*>(norm_w) + 2 * c + 1);
      const float gw[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
      for (int e = 0; e < 8; ++e) xv[j][e] = (xv[j][e] * r) * gw[e];
    }
  }
}

}  // namespace tensafe::model::cuda
