// Decode attention for one new token over the KV cache, grouped-query heads, split over the
// sequence ("flash-decoding"): block (head h, split s) scores positions
// [s*kAttnSplit, min((s+1)*kAttnSplit, pos+1)) with one thread per position, keeps its own
// running max m and sum l, and writes an unnormalised partial output; the last split of a head
// to finish (an atomic counter per head) combines them. The grid covers the whole context so the launch shape never changes (the decode
// step is a captured CUDA graph); splits past the current length return at once.
//
// The body (attention_block.cuh) is shared with the decode megakernel (decode_step.cu).
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
#include "model/cuda/attention_block.cuh"
#include "model/cuda/kernels.h"
#include "model/cuda/pdl.h"

namespace tensafe::model::cuda {
namespace {

constexpr int kThreads = kAttnSplit;  // one thread per position of a split

template <DType KT>
__global__ void __launch_bounds__(kThreads) attention_split_kernel(
    const float* __restrict__ qkv, uint16_t* k_cache, uint16_t* v_cache, const float2* __restrict__ rope,
    const int* __restrict__ pos_ptr, int heads, int kv_heads, int D, int context, float* __restrict__ o_part,
    float* __restrict__ m_part, float* __restrict__ l_part, int* __restrict__ counters, float* __restrict__ out) {
  extern __shared__ float smem[];
  pdl_trigger();
  pdl_wait();  // every block, before the position, q/k/v or the cache are touched
  attention_split_block<KT, kThreads>(qkv, k_cache, v_cache, rope, *pos_ptr, heads, kv_heads, D, context, blockIdx.x,
                                      blockIdx.y, gridDim.y, o_part, m_part, l_part, counters, out, smem);
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
