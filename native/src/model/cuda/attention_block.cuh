// The body of the decode attention for one (head h, split s) work item, shared by the
// standalone kernel (attention.cu, THREADS = kAttnSplit) and the decode megakernel
// (decode_step.cu, THREADS = its block size): split s covers positions [s*THREADS,
// min((s+1)*THREADS, pos+1)), one thread per position in the score phase; the last split of
// head h to finish (counters[h]) combines the `live` = ceil((pos+1) / THREADS) splits into out;
// with one live split the block writes out directly.
// Activations and the cache are read through L2 (__ldcg): in the megakernel they were written
// earlier in the same launch by other blocks, so no L1 copy may serve them.
// smem: (3 * D + 9 * THREADS) floats. Returns at once for a split past the sequence.
#pragma once
#include <cfloat>
#include <cstdint>

#include "model/cuda/device_math.cuh"
#include "model/dtype.h"

namespace tensafe::model::cuda {

// MAXC: 16-byte chunks of a key row held in registers at once (a row of head_dim / 8 chunks is
// scored in passes of MAXC); the megakernel, capped at 128 registers, holds fewer.
template <DType KT, int THREADS, int MAXC = 32>
__device__ __forceinline__ void attention_split_block(const float* qkv, uint16_t* k_cache, uint16_t* v_cache,
                                                      const float2* __restrict__ rope, int pos, int heads, int kv_heads,
                                                      int D, int context, int h, int s, int splits, float* o_part,
                                                      float* m_part, float* l_part, int* counters, float* out,
                                                      float* smem) {
  constexpr int kMaxChunks = 32;  // head_dim up to 256 takes the vectorised paths
  static_assert(kMaxChunks % MAXC == 0, "passes of MAXC chunks cover a row");
  auto cache_round = [](float f) { return float_to_half<KT>(f); };
  auto cache_load = [](const uint16_t* p) { return half_to_float<KT>(*p); };
  float* qs = smem;            // [D] rotated q, pre-scaled by 1/sqrt(D)
  float* ks = qs + D;          // [D] rotated new k (rounded to the cache type)
  float* vs = ks + D;          // [D] new v (rounded)
  float* es = vs + D;          // [THREADS] exp(score - max)
  float* vred = es + THREADS;  // [8 * THREADS] partial sums of the value phase
  __shared__ float red[THREADS / 32];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int len = pos + 1;
  const int start = s * THREADS;
  if (start >= len) return;  // split past the sequence: the combine ignores it
  const int end = min(start + THREADS, len);
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
  for (int i = tid; i < half; i += THREADS) {
    const float2 c = cs[i];
    const float q0 = __ldcg(q + i), q1 = __ldcg(q + i + half);
    qs[i] = (q0 * c.x - q1 * c.y) * scale;
    qs[i + half] = (q1 * c.x + q0 * c.y) * scale;
    if (has_new) {
      const float k0 = __ldcg(kn + i), k1 = __ldcg(kn + i + half);
      const uint16_t r0 = cache_round(k0 * c.x - k1 * c.y);
      const uint16_t r1 = cache_round(k1 * c.x + k0 * c.y);
      ks[i] = cache_load(&r0);
      ks[i + half] = cache_load(&r1);
      if (writer) {
        k_cache[slot + i] = r0;
        k_cache[slot + i + half] = r1;
      }
    }
  }
  if (has_new) {
    for (int i = tid; i < D; i += THREADS) {
      const uint16_t r = cache_round(__ldcg(vn + i));
      vs[i] = cache_load(&r);
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
        // A pass's 16-byte loads all issue before its first FMA (one memory round trip a pass).
#pragma unroll
        for (int c0 = 0; c0 < kMaxChunks; c0 += MAXC) {
          if (c0 < (D >> 3)) {
            uint4 kv[MAXC];
#pragma unroll
            for (int c = 0; c < MAXC; ++c)
              if (c0 + c < (D >> 3)) kv[c] = __ldcg(reinterpret_cast<const uint4*>(krow + 8 * (c0 + c)));
#pragma unroll
            for (int c = 0; c < MAXC; ++c) {
              if (c0 + c < (D >> 3)) {
                float f[8];
                unpack8<KT>(kv[c], f);
#pragma unroll
                for (int e = 0; e < 8; ++e) acc = fmaf(qs[8 * (c0 + c) + e], f[e], acc);
              }
            }
          }
        }
      } else {
        for (int d = 0; d < D; ++d) acc = fmaf(qs[d], half_to_float<KT>(__ldcg(krow + d)), acc);
      }
    }
    score = acc;
  }
  float m = warp_max(score);
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = red[0];
  for (int i = 1; i < THREADS / 32; ++i) m = fmaxf(m, red[i]);
  const float e = p < end ? __expf(score - m) : 0.0f;
  es[tid] = e;
  float l = warp_sum(e);
  __syncthreads();  // everyone has read red[] for the max
  if (lane == 0) red[warp] = l;
  __syncthreads();
  l = 0.0f;
  for (int i = 0; i < THREADS / 32; ++i) l += red[i];

  // Weighted values. Vectorised: thread t owns 8 dimensions (chunk t % DC of DC = D/8) for the
  // positions t / DC, t / DC + PL, ... (PL = THREADS / DC position lanes), so each thread has
  // several independent 16-byte loads in flight; the PL partial sums meet in shared memory.
  const int cached_end = has_new ? pos : end;  // positions read from the cache
  // One live split (the sequence fits in THREADS positions): this block is the whole head, so
  // it normalises and writes out itself: no partials, fence, counter or combine pass (three
  // dependent memory round trips fewer). out = o * (1 / l) is what the combine computes for one
  // split (exp(0) = 1), so both paths give the same bits.
  const int live = (len + THREADS - 1) / THREADS;
  const bool alone = live == 1;
  const float inv_alone = alone ? 1.0f / l : 0.0f;
  float* op = alone ? out + static_cast<size_t>(h) * D : o_part + (static_cast<size_t>(h) * splits + s) * D;
  const uint16_t* vbase = v_cache + static_cast<size_t>(g) * context * D;
  const int DC = D >> 3;
  if ((D & 7) == 0 && DC <= THREADS) {
    const int dc = tid % DC, pl = tid / DC, PL = THREADS / DC;
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    if (pl < PL) {
#pragma unroll 8
      for (int pp = start + pl; pp < cached_end; pp += PL) {
        float f[8];
        unpack8<KT>(__ldcg(reinterpret_cast<const uint4*>(vbase + static_cast<size_t>(pp) * D + 8 * dc)), f);
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
    for (int d = tid; d < D; d += THREADS) {
      float sum = 0.0f;
      for (int i = 0; i < PL; ++i) sum += vred[i * D + d];
      op[d] = alone ? sum * inv_alone : sum;
    }
  } else {
    for (int d = tid; d < D; d += THREADS) {
      const uint16_t* vcol = vbase + d;
      float acc = 0.0f;
      for (int pp = start; pp < cached_end; ++pp) acc = fmaf(es[pp - start], half_to_float<KT>(__ldcg(vcol + static_cast<size_t>(pp) * D)), acc);
      if (has_new) acc = fmaf(es[pos - start], vs[d], acc);
      op[d] = alone ? acc * inv_alone : acc;
    }
  }
  if (alone) return;
  if (tid == 0) {
    m_part[h * splits + s] = m;
    l_part[h * splits + s] = l;
  }

  // The last split of this head to finish combines all of them (no separate kernel), over
  // the live splits: out[h, d] = sum_s exp(m_s - M) o_s[d] / sum_s exp(m_s - M) l_s.
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
  for (int d = tid; d < D; d += THREADS) {
    float acc = 0.0f;
    for (int i = 0; i < live; ++i)
      acc += __expf(__ldcg(mh + i) - M) * __ldcg(o_part + (static_cast<size_t>(h) * splits + i) * D + d);
    out[static_cast<size_t>(h) * D + d] = acc * inv;
  }
  if (tid == 0) counters[h] = 0;  // ready for the next launch (graph replays reuse it)
}


}  // namespace tensafe::model::cuda
