// Decode attention for one new token over the KV cache, grouped-query heads, split over the
// sequence ("flash-decoding"): block (head h, split s) scores positions
// [s*kAttnSplit, min((s+1)*kAttnSplit, pos+1)) with one thread per position, keeps its own
// running max m and sum l, and writes an unnormalised partial output; the last split of a head
// to finish (an atomic counter per head) combines them. The grid covers the whole context so the launch shape never changes (the decode
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
#include "model/cuda/device_math.cuh"
#include "model/cuda/kernels.h"
#include "model/cuda/pdl.h"

namespace tensafe::model::cuda {
namespace {

constexpr int kThreads = kAttnSplit;  // one thread per position of a split
constexpr int kMaxChunks = 32;       // head_dim up to 256 takes the vectorised paths

template <DType KT>
__device__ __forceinline__ float cache_load(const uint16_t* p) {
  return half_to_float<KT>(*p);
}

template <DType KT>
__device__ __forceinline__ uint16_t cache_round(float f) {
  return float_to_half<KT>(f);
}

template <DType KT>
__global__ void __launch_bounds__(kThreads) attention_split_kernel(
    const float* __restrict__ qkv, uint16_t* k_cache, uint16_t* v_cache, const float2* __restrict__ rope,
    const int* __restrict__ pos_ptr, int heads, int kv_heads, int D, int context, float* __restrict__ o_part,
    float* __restrict__ m_part, float* __restrict__ l_part, int* __restrict__ counters, float* __restrict__ out) {
  extern __shared__ float smem[];
  float* qs = smem;            // [D] rotated q, pre-scaled by 1/sqrt(D)
  float* ks = qs + D;          // [D] rotated new k (rounded to the cache type)
  float* vs = ks + D;          // [D] new v (rounded)
  float* es = vs + D;          // [kThreads] exp(score - max)
  float* vred = es + kThreads; // [8 * kThreads] partial sums of the value phase
  __shared__ float red[kThreads / 32];

  const int h = blockIdx.x, s = blockIdx.y, splits = gridDim.y;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  pdl_trigger();
  pdl_wait();  // every block, before the position, q/k/v or the cache are touched
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
      if ((D & 7) == 0 && D <= 8 * kMaxChunks) {
        // All of the row's 16-byte loads issue before the first FMA (one memory round trip).
        uint4 kv[kMaxChunks];
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c)
          if (c < (D >> 3)) kv[c] = *reinterpret_cast<const uint4*>(krow + 8 * c);
#pragma unroll
        for (int c = 0; c < kMaxChunks; ++c) {
          if (c < (D >> 3)) {
            float f[8];
            unpack8<KT>(kv[c], f);
#pragma unroll
            for (int e = 0; e < 8; ++e) acc = fmaf(qs[8 * c + e], f[e], acc);
          }
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

  // Weighted values. Vectorised: thread t owns 8 dimensions (chunk t % DC of DC = D/8) for the
  // positions t / DC, t / DC + PL, ... (PL = kThreads / DC position lanes), so each thread has
  // several independent 16-byte loads in flight; the PL partial sums meet in shared memory.
  const int cached_end = has_new ? pos : end;  // positions read from the cache
  float* op = o_part + (static_cast<size_t>(h) * splits + s) * D;
  const uint16_t* vbase = v_cache + static_cast<size_t>(g) * context * D;
  const int DC = D >> 3;
  if ((D & 7) == 0 && DC <= kThreads) {
    const int dc = tid % DC, pl = tid / DC, PL = kThreads / DC;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (pl < PL) {
#pragma unroll 8
      for (int pp = start + pl; pp < cached_end; pp += PL) {
        float f[8];
        unpack8<KT>(*reinterpret_cast<const uint4*>(vbase + static_cast<size_t>(pp) * D + 8 * dc), f);
        const float wgt = es[pp - start];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[e] = fmaf(wgt, f[e], acc[e]);
      }
      if (has_new && pl == 0) {
        const float wgt = es[pos - start];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[e] = fmaf(wgt, vs[8 * dc + e], acc[e]);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) vred[pl * D + 8 * dc + e] = acc[e];
    }
    __syncthreads();
    for (int d = tid; d < D; d += kThreads) {
      float sum = 0.0f;
      for (int i = 0; i < PL; ++i) sum += vred[i * D + d];
      op[d] = sum;
    }
  } else {
    for (int d = tid; d < D; d += kThreads) {
      const uint16_t* vcol = vbase + d;
      float acc = 0.0f;
      for (int pp = start; pp < cached_end; ++pp) acc = fmaf(es[pp - start], cache_load<KT>(vcol + static_cast<size_t>(pp) * D), acc);
      if (has_new) acc = fmaf(es[pos - start], vs[d], acc);
      op[d] = acc;
    }
  }
  if (tid == 0) {
    m_part[h * splits + s] = m;
    l_part[h * splits + s] = l;
  }

  // The last split of this head to finish combines all of them (no separate kernel), over
  // the live splits: out[h, d] = sum_s exp(m_s - M) o_s[d] / sum_s exp(m_s - M) l_s.
  const int live = (len + kThreads - 1) / kThreads;
  __shared__ bool is_last;
  __threadfence();  // this block's partials are visible device-wide before it is counted
  __syncthreads();
  if (tid == 0) is_last = atomicAdd(&counters[h], 1) == live - 1;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  const float* mh = m_part + h * splits;
  const float* lh = l_part + h * splits;
  float M = -FLT_MAX;
  for (int i = 0; i < live; ++i) M = fmaxf(M, __ldcg(mh + i));
  float L = 0.0f;
  for (int i = 0; i < live; ++i) L += __expf(__ldcg(mh + i) - M) * __ldcg(lh + i);
  const float inv = 1.0f / L;
  for (int d = tid; d < D; d += kThreads) {
    float acc = 0.0f;
    for (int i = 0; i < live; ++i)
      acc += __expf(__ldcg(mh + i) - M) * __ldcg(o_part + (static_cast<size_t>(h) * splits + i) * D + d);
    out[static_cast<size_t>(h) * D + d] = acc * inv;
  }
  if (tid == 0) counters[h] = 0;  // ready for the next launch (graph replays reuse it)
}

}  // namespace

void attention_decode(const AttentionArgs& a, cudaStream_t stream) {
  const int splits = attention_splits(a.context);
  const dim3 grid(a.heads, splits);
  const size_t smem = (3 * static_cast<size_t>(a.head_dim) + 9 * kThreads) * sizeof(float);
  if (a.cache_type == DType::BF16) {
    launch_pdl(attention_split_kernel<DType::BF16>, grid, kThreads, smem, stream, a.qkv, a.k_cache, a.v_cache, a.rope,
               a.pos, a.heads, a.kv_heads, a.head_dim, a.context, a.o_part, a.m_part, a.l_part, a.counters, a.out);
  } else {
    launch_pdl(attention_split_kernel<DType::F16>, grid, kThreads, smem, stream, a.qkv, a.k_cache, a.v_cache, a.rope,
               a.pos, a.heads, a.kv_heads, a.head_dim, a.context, a.o_part, a.m_part, a.l_part, a.counters, a.out);
  }
}

}  // namespace tensafe::model::cuda
