// BatchedPrefill: a prompt through the decoder m tokens at a time with tensor cores (gemm.cu,
// attention_prefill.cu, batched.cu), instead of one decode step per token.
//
// Per chunk of m <= chunk tokens at positions p0 .. p0+m-1 (their ids already in view.tokens):
//   X = embed rows; per layer: XN = round16(rmsnorm(X)); QKV = XN Wqkv^T; bias + RoPE, K/V into
//   the cache, Q rounded; ATTN = causal attention over the cache; X += ATTN Wo^T;
//   XN = round16(rmsnorm(X)); GU = XN Wgu^T; ACT = round16(silu(G) U); X += ACT Wdown^T.
// After the last chunk: hidden = final norm of the last row, *pos = p0 + n. Activations are
// float32 except the GEMM inputs (16-bit, the weight type): this is where batched prefill
// differs from the decode step, which multiplies float32 activations (tested within the
// model's tolerances; the cache it writes continues like a token-by-token one).
//
// Split inputs (bf16 weights by default; TENSAFE_PREFILL_SPLIT=0 off, =1 for f16 too): a GEMM
// input v is stored as hi = round16(v) and lo = round16(v - hi), and each product runs twice
// (hi, then lo accumulated), so the inputs keep about 16 significant bits instead of bf16's 8.
// Emulated on the bf16 fixture (datasets/fixtures/qwen2-tiny-bf16-sharded): prompt logits
// 1.6e-2 from transformers with plain bf16 inputs, 8.9e-3 split, the same as token-by-token
// steps (whose error is the bf16 KV cache's). Costs twice the GEMM work of a bf16 model.
//
// Scratch is allocated on first use for min(n, chunk) rows and grows to at most `chunk` rows
// (TENSAFE_PREFILL_CHUNK, default 1024); all work is queued on the given stream.
#pragma once
#include <cuda_runtime.h>

#include <memory>

#include "cuda/device_buffer.h"
#include "model/cuda/decoder_view.h"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda {

class BatchedPrefill {
 public:
  // impl: GemmImpl::Auto resolves to cuBLAS when it can be loaded (see gemm_impl_from_env()).
  explicit BatchedPrefill(GemmImpl impl = GemmImpl::Auto, int chunk = 0);
  ~BatchedPrefill();

  // Appends n >= 1 tokens at positions p0 .. p0+n-1 (validated by the caller).
  void run(const DecoderView& v, int p0, int n, cudaStream_t stream);

  GemmImpl gemm_impl() const { return impl_; }
  // Whether the GEMM inputs of this weight type are split into hi + lo (see above).
  static bool split_inputs(DType wtype);
  int chunk() const { return chunk_; }
  // Forces the simple attention kernel (tests compare it with the tensor-core one).
  void set_simple_attention(bool on) { simple_attention_ = on; }

 private:
  void ensure_capacity(const Qwen2Config& c, int rows, bool split);

  GemmImpl impl_;
  int chunk_;
  bool simple_attention_ = false;
  std::unique_ptr<CublasHandle> cublas_;
  int capacity_ = 0;
  ::tensafe::cuda::DeviceBuffer<float> x_, qkv_, gu_;
  ::tensafe::cuda::DeviceBuffer<uint16_t> xn_, q_, attn_, act_;
  ::tensafe::cuda::DeviceBuffer<uint16_t> xn_lo_, attn_lo_, act_lo_;  // split inputs only
};

// TENSAFE_PREFILL=steps disables batched prefill (token-by-token steps, the decode kernels).
bool batched_prefill_enabled_by_env();

}  // namespace tensafe::model::cuda
