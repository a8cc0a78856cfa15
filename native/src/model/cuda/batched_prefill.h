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
// Split inputs (default; TENSAFE_PREFILL_SPLIT=0 off, =bf16 for bf16 weights only): every
// GEMM input v (and q of the attention scores) is stored as hi = round16(v) and lo = round16(v -
// hi), and each product runs twice (hi, then lo accumulated), so the inputs keep about 16
// significant bits instead of f16's 11 or bf16's 8. What is left is the decode step's own
// error (the 16-bit weights and KV cache) plus P rounded to 16 bits in attention. Emulated in
// float64 on the fixtures (scripts/fixtures/emulate_prefill_numerics.py): prompt logits from
// transformers, max over the prompts, token-by-token / plain 16-bit inputs / split:
//   qwen2-small-tied-f32 (f16 on the GPU)    1.71e-2 / 1.91e-2 (95 % of the 2e-2 tolerance) / 1.54e-2
//   qwen2-tiny-bf16-sharded (bf16)           8.9e-3  / 1.61e-2 / 9.5e-3
//   qwen2-tiny-f32, qwen2-odd-f32 (f16)      2.2e-3, 2.6e-3 / 4.2e-3, 4.2e-3 / 2.2e-3, 3.1e-3
// It costs twice the GEMM work; the harness times both (kernels-bench prefill rows).
//
// One BatchedPrefill per model (ModelCuda), shared by its contexts one prefill at a time: its
// scratch (min(max context, chunk) rows; TENSAFE_PREFILL_CHUNK, default 1024) and cuBLAS's
// workspace are allocated when the model loads, counted in the model's memory, so a context
// costs its arena alone and a first prefill allocates nothing.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "cuda/device_buffer.h"
#include "model/cuda/decoder_view.h"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda {

class BatchedPrefill {
 public:
  // impl: GemmImpl::Auto reads TENSAFE_GEMM (gemm_impl_from_env()); split: TENSAFE_PREFILL_SPLIT.
  BatchedPrefill(const Qwen2Config& c, DType wtype, int max_context, GemmImpl impl = GemmImpl::Auto, int chunk = 0);
  ~BatchedPrefill();

  // Appends n >= 1 tokens at positions p0 .. p0+n-1 of the context in `v` (validated by the
  // caller), queued on `stream`. The caller serialises calls (one scratch) and must not start
  // another before `stream` has finished this one.
  void run(const DecoderView& v, int p0, int n, cudaStream_t stream);

  GemmImpl gemm_impl() const { return impl_; }
  int chunk() const { return chunk_; }
  bool split() const { return split_; }
  uint64_t memory_bytes() const;
  // Forces the simple attention kernel (tests compare it with the tensor-core one).
  void set_simple_attention(bool on) { simple_attention_ = on; }
  // Whether the GEMM inputs of this weight type are split into hi + lo (see above).
  static bool split_inputs(DType wtype);

 private:
  GemmImpl impl_;
  int chunk_;
  bool split_;
  bool simple_attention_ = false;
  std::unique_ptr<CublasHandle> cublas_;
  ::tensafe::cuda::DeviceBuffer<unsigned char> cublas_workspace_;
  ::tensafe::cuda::DeviceBuffer<float> x_, qkv_, gu_;
  ::tensafe::cuda::DeviceBuffer<uint16_t> xn_, q_, attn_, act_;
  ::tensafe::cuda::DeviceBuffer<uint16_t> xn_lo_, q_lo_, attn_lo_, act_lo_;  // split inputs only
};

// TENSAFE_PREFILL=steps disables batched prefill (token-by-token steps, the decode kernels).
bool batched_prefill_enabled_by_env();

}  // namespace tensafe::model::cuda
