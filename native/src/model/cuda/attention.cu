// Decode attention for one new token over the KV cache, grouped-query heads, split over the
// sequence ("flash-decoding"): block (head h, split s) scores positions
// [s*kAttnSplit, min((s+1)*kAttnSplit, pos+1)) with one thread per position, keeps its own
// running max m and sum l, and writes an unnormalised partial output; a second kernel combines
// the splits. The grid covers the whole context so the launch shape never changes (the decode
// step is a captured CUDA graph); splits past the current length return at once.
//
// RoPE and the cache write are fused in: every block rotates its q head (and, in the split that
// holds the new position, the new k) from the projection output; the first q head of each KV
// group stores the rotated k and v at *pos. The new position's k/v are used from shared memory,
// already rounded to the cache type, so the result is the same as reading them back, and no
// block ever reads a cache slot that this launch writes.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>

#include "cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda {
namespace {

constexpr int kThreads = kAttnSplit;  // one thread per position of a split

template <DType KT>
__device__ __forceinline__ float cache_load(const uint16_t* p) {
  const uint16_t u = *p;
  if constexpr (KT == DType::BF16) return __uint_as_float(static_cast<uint32_t>(u) << 16);
  return __half2float(__ushort_as_half(u));
}

template <DType KT>
__device__ __forceinline__ uint16_t cache_round(float f) {
  if constexpr (KT == DType::BF16) return __bfloat16_as_ushort(__float2bfloat16_rn(f));
  return __half_as_ushort(__float2half_rn(f));
}

template <DType KT>
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if constexpr (KT == DType::BF16) {
      f[2 * i] = __uint_as_float(u[i] << 16);
      f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    } else {
      float2 t = __half22float2(*reinterpret_cast<const __half2*>(&u[i]));
      f[2 * i] = t.x;
      f[2 * i + 1] = t.y;
    }
  }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <DType KT>
__global__ void __launch_bounds__(kThreads) attention_split_kernel(
    const float* __restrict__ qkv, uint16_t* k_cache, uint16_t* v_cache, const float2* __restrict__ rope,
    const int* __restrict__ pos_ptr, int heads, int kv_heads, int D, int context, float* __restrict__ o_part,
    float* __restrict__ m_part, float* __restrict__ l_part) {
  extern __shared__ float smem[];
  float* qs = smem;            // [D] rotated q, pre-scaled by 1/sqrt(D)
  float* ks = qs + D;          // [D] rotated new k (rounded to the cache type)
  float* vs = ks + D;          // [D] new v (rounded)
  float* es = vs + D;          // [kThreads] exp(score - max)
  __shared__ float red[kThreads / 32];

  const int h = blockIdx.x, s = blockIdx.y, splits = gridDim.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int pos = *pos_ptr;
  const int len = pos + 1;
  const int start = s * kThreads;
  if (start >= len) return;  // split past the sequence: the combine ignores it
  const int end = min(start + kThreads, len);
  const bool has_new = pos < end;  // this split holds the new token
  const int group = heads / kv_heads;
  const int g = h / group;
  const int half = D / 2;
  const float scale = rsqrtf(static_cast<float>(D));

  const float* q = qkv + static_cast<size_t>(h) * D;
  const float* kn = qkv + static_cast<size_t>(heads) * D + static_cast<size_t>(g) * D;
  const float* vn = qkv + static_cast<size_t>(heads + kv_heads) * D + static_cast<size_t>(g) * D;
  const float2* cs = rope + static_cast<size_t>(pos) * half;
  const size_t slot = (static_cast<size_t>(g) * context + pos) * D;
  const bool writer = has_new && (h % group == 0);
  for (int i = tid; i < half; i += kThreads) {
    const float2 c = cs[i];
    const float q0 = q[i], q1 = q[i + half];
    qs[i] = (q0 * c.x - q1 * c.y) * scale;
    qs[i + half] = (q1 * c.x + q0 * c.y) * scale;
    if (has_new) {
      const float k0 = kn[i], k1 = kn[i + half];
      const uint16_t r0 = cache_round<KT>(k0 * c.x - k1 * c.y);
      const uint16_t r1 = cache_round<KT>(k1 * c.x + k0 * c.y);
      ks[i] = cache_load<KT>(&r0);
      ks[i + half] = cache_load<KT>(&r1);
      if (writer) {
        k_cache[slot + i] = r0;
        k_cache[slot + i + half] = r1;
      }
    }
  }
  if (has_new) {
    for (int i = tid; i < D; i += kThreads) {
      const uint16_t r = cache_round<KT>(vn[i]);
      vs[i] = cache_load<KT>(&r);
      if (writer) v_cache[slot + i] = r;
    }
  }
  __syncthreads();

  // Scores: thread t takes position start + t.
  const int p = start + tid;
  float score = -FLT_MAX;
  if (p < end) {
    float acc = 0.0f;
    if (p == pos) {
      for (int d = 0; d < D; ++d) acc = fmaf(qs[d], ks[d], acc);
    } else {
      const uint16_t* krow = k_cache + (static_cast<size_t>(g) * context + p) * D;
      if ((D & 7) == 0) {
        for (int d = 0; d < D; d += 8) {
          float f[8];
          unpack8<KT>(*reinterpret_cast<const uint4*>(krow + d), f);
#pragma unroll
          for (int e = 0; e < 8; ++e) acc = fmaf(qs[d + e], f[e], acc);
        }
      } else {
        for (int d = 0; d < D; ++d) acc = fmaf(qs[d], cache_load<KT>(krow + d), acc);
      }
    }
    score = acc;
  }
  float m = warp_max(score);
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = red[0];
  for (int i = 1; i < kThreads / 32; ++i) m = fmaxf(m, red[i]);
  const float e = p < end ? __expf(score - m) : 0.0f;
  es[tid] = e;
  float l = warp_sum(e);
  __syncthreads();  // everyone has read red[] for the max
  if (lane == 0) red[warp] = l;
  __syncthreads();
  l = 0.0f;
  for (int i = 0; i < kThreads / 32; ++i) l += red[i];

  // Weighted values: thread t takes dimensions t, t + kThreads, ...
  const int cached_end = has_new ? pos : end;  // positions read from the cache
  float* op = o_part + (static_cast<size_t>(h) * splits + s) * D;
  for (int d = tid; d < D; d += kThreads) {
    const uint16_t* vcol = v_cache + static_cast<size_t>(g) * context * D + d;
    float acc = 0.0f;
    int pp = start;
    for (; pp + 4 <= cached_end; pp += 4) {
      const float v0 = cache_load<KT>(vcol + static_cast<size_t>(pp) * D);
      const float v1 = cache_load<KT>(vcol + static_cast<size_t>(pp + 1) * D);
      const float v2 = cache_load<KT>(vcol + static_cast<size_t>(pp + 2) * D);
      const float v3 = cache_load<KT>(vcol + static_cast<size_t>(pp + 3) * D);
      acc = fmaf(es[pp - start], v0, acc);
      acc = fmaf(es[pp + 1 - start], v1, acc);
      acc = fmaf(es[pp + 2 - start], v2, acc);
      acc = fmaf(es[pp + 3 - start], v3, acc);
    }
    for (; pp < cached_end; ++pp) acc = fmaf(es[pp - start], cache_load<KT>(vcol + static_cast<size_t>(pp) * D), acc);
    if (has_new) acc = fmaf(es[pos - start], vs[d], acc);
    op[d] = acc;
  }
  if (tid == 0) {
    m_part[h * splits + s] = m;
    l_part[h * splits + s] = l;
  }
}

// out[h, d] = sum_s exp(m_s - M) o_s[d] / sum_s exp(m_s - M) l_s over the live splits.
__global__ void attention_combine_kernel(const int* __restrict__ pos_ptr, int D, int splits,
                                         const float* __restrict__ o_part, const float* __restrict__ m_part,
                                         const float* __restrict__ l_part, float* __restrict__ out) {
  const int h = blockIdx.x;
  const int live = min(splits, (*pos_ptr + 1 + kAttnSplit - 1) / kAttnSplit);
  const float* mh = m_part + h * splits;
  const float* lh = l_part + h * splits;
  float M = -FLT_MAX;
  for (int s = 0; s < live; ++s) M = fmaxf(M, mh[s]);
  float L = 0.0f;
  for (int s = 0; s < live; ++s) L += __expf(mh[s] - M) * lh[s];
  const float inv = 1.0f / L;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < live; ++s) acc += __expf(mh[s] - M) * o_part[(static_cast<size_t>(h) * splits + s) * D + d];
    out[static_cast<size_t>(h) * D + d] = acc * inv;
  }
}

}  // namespace

void attention_decode(const AttentionArgs& a, cudaStream_t stream) {
  const int splits = attention_splits(a.context);
  const dim3 grid(a.heads, splits);
  const size_t smem = (3 * static_cast<size_t>(a.head_dim) + kThreads) * sizeof(float);
  if (a.cache_type == DType::BF16) {
    attention_split_kernel<DType::BF16><<<grid, kThreads, smem, stream>>>(
        a.qkv, a.k_cache, a.v_cache, a.rope, a.pos, a.heads, a.kv_heads, a.head_dim, a.context, a.o_part, a.m_part,
        a.l_part);
  } else {
    attention_split_kernel<DType::F16><<<grid, kThreads, smem, stream>>>(
        a.qkv, a.k_cache, a.v_cache, a.rope, a.pos, a.heads, a.kv_heads, a.head_dim, a.context, a.o_part, a.m_part,
        a.l_part);
  }
  CUDA_CHECK_LAUNCH();
  const int threads = a.head_dim >= 128 ? 128 : ((a.head_dim + 31) / 32) * 32;
  attention_combine_kernel<<<a.heads, threads, 0, stream>>>(a.pos, a.head_dim, splits, a.o_part, a.m_part, a.l_part,
                                                            a.out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::model::cuda
