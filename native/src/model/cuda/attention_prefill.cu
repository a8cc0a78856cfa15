// Causal attention of a prefill chunk: m queries at positions p0 .. p0+m-1 against the KV cache
// positions 0 .. p0+m-1 (the chunk's own keys and values were written by qkv_rope_cache),
// grouped-query heads. Queries, keys, values and the output are 16-bit; scores, softmax and
// accumulation are float32.
//
// Split inputs (batched_prefill.h): q arrives as hi + lo and the scores take both products;
// the output can be written as hi + lo too.
//
// Tensor-core kernel (head_dim a multiple of 16, at most 128), the FlashAttention-2 scheme: a
// block of 4 warps owns 64 queries of one head (16 per warp, its q fragments in registers) and
// walks the key tiles of 64 positions up to the block's last query, double-buffered through
// shared memory by cp.async (positions past the chunk are zero-filled, never read). Per tile:
// S = Q K^T (mma m16n8k16), the causal mask, the online softmax in the exp2 domain (row max and
// sum across each quad of lanes), then O += P V with P's accumulators reused as A fragments and
// V read transposed by ldmatrix. Tile 0 always holds position 0, which every query sees, so the
// running max is finite from the first tile on and fully masked rows of later tiles add zero.
// Other head dims take a simple kernel: one block per (query, head), keys in chunks of 128.
#include <cfloat>
#include <cmath>

#include "cuda/cuda_check.h"
#include "cuda/func_attr.h"
#include "model/cuda/device_math.cuh"
#include "model/cuda/kernels.h"
#include "model/cuda/mma.cuh"

namespace tensafe::model::cuda {
namespace {

constexpr int kBR = 64, kBC = 64, kFaThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

template <int D>
constexpr int fa_lds() { return D + 8; }  // padded row: ldmatrix rows land in distinct banks
template <int D>
constexpr size_t fa_smem() { return static_cast<size_t>(6) * kBR * fa_lds<D>() * sizeof(uint16_t); }

template <DType T, int D>
__global__ void __launch_bounds__(kFaThreads) attention_prefill_mma_kernel(
    const uint16_t* __restrict__ q, const uint16_t* __restrict__ q_lo, const uint16_t* __restrict__ k_cache,
    const uint16_t* __restrict__ v_cache, uint16_t* __restrict__ out, uint16_t* __restrict__ out_lo, int p0, int m,
    int heads, int kv_heads, int context, float scale_log2) {
  constexpr int LDS = fa_lds<D>();
  constexpr int KD = D / 16;  // k-steps of q.k
  constexpr int ND = D / 8;   // n-tiles of the output
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t* sQ = smem;                   // [kBR][LDS]
  uint16_t* sK = sQ + kBR * LDS;         // [2][kBC][LDS]
  uint16_t* sV = sK + 2 * kBC * LDS;     // [2][kBC][LDS]
  uint16_t* sQlo = sV + 2 * kBC * LDS;   // [kBR][LDS] q's rest (split inputs only)
  const bool split = q_lo != nullptr;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int h = blockIdx.y, g = h / (heads / kv_heads);
  const int i0 = blockIdx.x * kBR;
  const int last_row = min(i0 + kBR, m) - 1;
  const int kmax = p0 + last_row;  // the last key position this block needs
  const int ntiles = kmax / kBC + 1;
  const uint16_t* kbase = k_cache + static_cast<size_t>(g) * context * D;
  const uint16_t* vbase = v_cache + static_cast<size_t>(g) * context * D;
  constexpr int CH = D / 8;  // 16-byte chunks per row

  for (int idx = tid; idx < kBR * CH; idx += kFaThreads) {
    const int r = idx / CH, c = idx % CH;
    const bool valid = i0 + r < m;
    const size_t off = valid ? (static_cast<size_t>(i0 + r) * heads + h) * D + c * 8 : 0;
    cp_async16(sQ + r * LDS + c * 8, q + off, valid);
    if (split) cp_async16(sQlo + r * LDS + c * 8, q_lo + off, valid);
  }
  auto load_kv = [&](int j, int buf) {
    for (int idx = tid; idx < kBC * CH; idx += kFaThreads) {
      const int r = idx / CH, c = idx % CH;
      const int p = j * kBC + r;
      const bool valid = p <= kmax;
      const size_t off = valid ? static_cast<size_t>(p) * D + c * 8 : 0;
      cp_async16(sK + (buf * kBC + r) * LDS + c * 8, kbase + off, valid);
      cp_async16(sV + (buf * kBC + r) * LDS + c * 8, vbase + off, valid);
    }
  };
  load_kv(0, 0);
  cp_async_commit();

  uint32_t qf[KD][4], qlo[KD][4];
  float o[ND][4];
#pragma unroll
  for (int i = 0; i < ND; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float row_m[2] = {-INFINITY, -INFINITY}, row_l[2] = {0.0f, 0.0f};
  const int qpos0 = p0 + i0 + warp * 16 + (lane >> 2);  // query position of accumulator rows e0/e1; +8 for e2/e3

  for (int j = 0; j < ntiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < ntiles) load_kv(j + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        const int at = (warp * 16 + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8;
        ldmatrix_x4(qf[kk], sQ + at);
        if (split) ldmatrix_x4(qlo[kk], sQlo + at);
      }
    }
    const uint16_t* ks = sK + buf * kBC * LDS;
    const uint16_t* vs = sV + buf * kBC * LDS;

    float s[kBC / 8][4];
#pragma unroll
    for (int i = 0; i < kBC / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
      for (int nj = 0; nj < kBC / 16; ++nj) {
        uint32_t r[4];
        ldmatrix_x4(r, ks + (nj * 16 + (lane >> 4) * 8 + (lane & 7)) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_16816<T>(s[2 * nj], qf[kk], b0);
        mma_16816<T>(s[2 * nj + 1], qf[kk], b1);
        if (split) {
          mma_16816<T>(s[2 * nj], qlo[kk], b0);
          mma_16816<T>(s[2 * nj + 1], qlo[kk], b1);
        }
      }
    }
    // Scale into the exp2 domain, mask the future, and take this tile's row maxima.
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int ni = 0; ni < kBC / 8; ++ni) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int kp = j * kBC + ni * 8 + (lane & 3) * 2 + (e & 1);
        const int qp = qpos0 + (e >> 1) * 8;
        const float v = kp <= qp ? s[ni][e] * scale_log2 : -INFINITY;
        s[ni][e] = v;
        tmax[e >> 1] = fmaxf(tmax[e >> 1], v);
      }
    }
    float alpha[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      tmax[hr] = fmaxf(tmax[hr], __shfl_xor_sync(0xffffffffu, tmax[hr], 1));
      tmax[hr] = fmaxf(tmax[hr], __shfl_xor_sync(0xffffffffu, tmax[hr], 2));
      const float mnew = fmaxf(row_m[hr], tmax[hr]);  // finite: tile 0 holds position 0
      alpha[hr] = exp2f(row_m[hr] - mnew);
      row_m[hr] = mnew;
      row_l[hr] *= alpha[hr];
    }
#pragma unroll
    for (int i = 0; i < ND; ++i) {
      o[i][0] *= alpha[0];
      o[i][1] *= alpha[0];
      o[i][2] *= alpha[1];
      o[i][3] *= alpha[1];
    }
    // P = exp2(S - m), rounded to 16 bits as the A operand of P V (rows sums kept in float).
    uint32_t pa[kBC / 16][4];
#pragma unroll
    for (int ni = 0; ni < kBC / 8; ++ni) {
      const float e0 = exp2f(s[ni][0] - row_m[0]), e1 = exp2f(s[ni][1] - row_m[0]);
      const float e2 = exp2f(s[ni][2] - row_m[1]), e3 = exp2f(s[ni][3] - row_m[1]);
      row_l[0] += e0 + e1;
      row_l[1] += e2 + e3;
      const int kk = ni >> 1, hi = ni & 1;
      pa[kk][hi * 2 + 0] = pack2<T>(e0, e1);
      pa[kk][hi * 2 + 1] = pack2<T>(e2, e3);
    }
#pragma unroll
    for (int kk = 0; kk < kBC / 16; ++kk) {
#pragma unroll
      for (int dn = 0; dn < ND / 2; ++dn) {
        uint32_t r[4];
        ldmatrix_x4_trans(r, vs + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LDS + dn * 16 + (lane >> 4) * 8);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mma_16816<T>(o[2 * dn], pa[kk], b0);
        mma_16816<T>(o[2 * dn + 1], pa[kk], b1);
      }
    }
    __syncthreads();  // everyone is done with `buf` before the next iteration refills it
  }
  cp_async_wait<0>();

#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    row_l[hr] += __shfl_xor_sync(0xffffffffu, row_l[hr], 1);
    row_l[hr] += __shfl_xor_sync(0xffffffffu, row_l[hr], 2);
  }
  const size_t stride = static_cast<size_t>(heads) * D;
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int r = i0 + warp * 16 + (lane >> 2) + hr * 8;
    if (r >= m) continue;
    const float inv = 1.0f / row_l[hr];
    const size_t at = static_cast<size_t>(r) * stride + static_cast<size_t>(h) * D;
#pragma unroll
    for (int i = 0; i < ND; ++i) {
      const int d = i * 8 + (lane & 3) * 2;
      const float v0 = o[i][2 * hr] * inv, v1 = o[i][2 * hr + 1] * inv;
      const uint32_t hi = pack2<T>(v0, v1);
      *reinterpret_cast<uint32_t*>(out + at + d) = hi;
      if (out_lo != nullptr)
        *reinterpret_cast<uint32_t*>(out_lo + at + d) =
            pack2<T>(v0 - half_to_float<T>(static_cast<uint16_t>(hi & 0xffffu)), v1 - half_to_float<T>(static_cast<uint16_t>(hi >> 16)));
    }
  }
}

// Any head dim: block (query r, head h), 128 threads; keys in chunks of 128 (one per thread),
// an online softmax across chunks, output dims strided over the threads.
constexpr int kSimpleThreads = 128;

template <DType T>
__global__ void __launch_bounds__(kSimpleThreads) attention_prefill_simple_kernel(
    const uint16_t* __restrict__ q, const uint16_t* __restrict__ q_lo, const uint16_t* __restrict__ k_cache,
    const uint16_t* __restrict__ v_cache, uint16_t* __restrict__ out, uint16_t* __restrict__ out_lo, int p0, int heads,
    int kv_heads, int D, int context, float scale) {
  extern __shared__ float sm[];
  float* qs = sm;                   // [D]
  float* es = qs + D;               // [kSimpleThreads]
  float* acc = es + kSimpleThreads; // [D]
  __shared__ float red[kSimpleThreads / 32];
  __shared__ float run_m, run_l;
  const int r = blockIdx.x, h = blockIdx.y, g = h / (heads / kv_heads);
  const int qp = p0 + r;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const size_t qat = (static_cast<size_t>(r) * heads + h) * D;
  for (int i = tid; i < D; i += kSimpleThreads) {
    qs[i] = (half_to_float<T>(q[qat + i]) + (q_lo != nullptr ? half_to_float<T>(q_lo[qat + i]) : 0.0f)) * scale;
    acc[i] = 0.0f;
  }
  if (tid == 0) {
    run_m = -INFINITY;
    run_l = 0.0f;
  }
  __syncthreads();
  const uint16_t* kb = k_cache + static_cast<size_t>(g) * context * D;
  const uint16_t* vb = v_cache + static_cast<size_t>(g) * context * D;
  for (int start = 0; start <= qp; start += kSimpleThreads) {
    const int p = start + tid;
    float sc = -INFINITY;
    if (p <= qp) {
      float a = 0.0f;
      for (int i = 0; i < D; ++i) a = fmaf(qs[i], half_to_float<T>(kb[static_cast<size_t>(p) * D + i]), a);
      sc = a;
    }
    float mx = warp_max(sc);
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = red[0];
    for (int i = 1; i < kSimpleThreads / 32; ++i) mx = fmaxf(mx, red[i]);
    const float mnew = fmaxf(run_m, mx);
    const float alpha = expf(run_m - mnew);
    const float e = p <= qp ? expf(sc - mnew) : 0.0f;
    es[tid] = e;
    float sum = warp_sum(e);
    __syncthreads();  // red[] read by all
    if (lane == 0) red[warp] = sum;
    __syncthreads();
    sum = 0.0f;
    for (int i = 0; i < kSimpleThreads / 32; ++i) sum += red[i];
    const int cnt = min(kSimpleThreads, qp - start + 1);
    for (int i = tid; i < D; i += kSimpleThreads) {
      float a = acc[i] * alpha;
      for (int j = 0; j < cnt; ++j) a = fmaf(es[j], half_to_float<T>(vb[static_cast<size_t>(start + j) * D + i]), a);
      acc[i] = a;
    }
    __syncthreads();  // es[] and run_m read by all before they change
    if (tid == 0) {
      run_l = run_l * alpha + sum;
      run_m = mnew;
    }
    __syncthreads();
  }
  const size_t at = (static_cast<size_t>(r) * heads + h) * D;
  const float inv = 1.0f / run_l;
  for (int i = tid; i < D; i += kSimpleThreads) {
    const float v = acc[i] * inv;
    const uint16_t hi = float_to_half<T>(v);
    out[at + i] = hi;
    if (out_lo != nullptr) out_lo[at + i] = float_to_half<T>(v - half_to_float<T>(hi));
  }
}

template <DType T, int D>
void launch_mma(const PrefillAttentionArgs& a, cudaStream_t stream) {
  ::tensafe::cuda::allow_dynamic_smem(reinterpret_cast<const void*>(attention_prefill_mma_kernel<T, D>),
                                      static_cast<int>(fa_smem<D>()));
  const dim3 grid((a.m + kBR - 1) / kBR, a.heads);
  const float scale_log2 = kLog2e / std::sqrt(static_cast<float>(D));
  attention_prefill_mma_kernel<T, D><<<grid, kFaThreads, fa_smem<D>(), stream>>>(
      a.q, a.q_lo, a.k_cache, a.v_cache, a.out, a.out_lo, a.p0, a.m, a.heads, a.kv_heads, a.context, scale_log2);
  CUDA_CHECK_LAUNCH();
}

template <DType T>
void launch_typed(const PrefillAttentionArgs& a, bool force_simple, cudaStream_t stream) {
  if (!force_simple) {
    switch (a.head_dim) {
      case 16: return launch_mma<T, 16>(a, stream);
      case 32: return launch_mma<T, 32>(a, stream);
      case 64: return launch_mma<T, 64>(a, stream);
      case 128: return launch_mma<T, 128>(a, stream);
      default: break;
    }
  }
  const dim3 grid(a.m, a.heads);
  const size_t smem = (2 * static_cast<size_t>(a.head_dim) + kSimpleThreads) * sizeof(float);
  attention_prefill_simple_kernel<T><<<grid, kSimpleThreads, smem, stream>>>(
      a.q, a.q_lo, a.k_cache, a.v_cache, a.out, a.out_lo, a.p0, a.heads, a.kv_heads, a.head_dim, a.context,
      1.0f / std::sqrt(static_cast<float>(a.head_dim)));
  CUDA_CHECK_LAUNCH();
}

}  // namespace

bool attention_prefill_has_mma(int head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

void attention_prefill(const PrefillAttentionArgs& a, bool force_simple, cudaStream_t stream) {
  if (a.m <= 0) return;
  if (a.cache_type == DType::BF16) launch_typed<DType::BF16>(a, force_simple, stream);
  else launch_typed<DType::F16>(a, force_simple, stream);
}

}  // namespace tensafe::model::cuda
