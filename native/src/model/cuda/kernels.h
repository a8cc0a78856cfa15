// Launchers of the CUDA kernels of the Qwen2 decoder (batch-1 decode). One kernel family per
// .cu file: gemv.cu, attention.cu, elementwise.cu (embedding, RMSNorm, synthetic weights,
// small helpers), sampling.cu. Everything here is asynchronous on the given stream and safe to
// call during CUDA graph capture (no allocation, no synchronisation, no host reads of device
// memory); launch errors throw CudaError through CUDA_CHECK_LAUNCH.
//
// Precision: weights and the KV cache are f16 or bf16 (uint16_t bit patterns, `wtype` says
// which); activations, the residual stream, norms, biases and all accumulation are float32.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "model/dtype.h"

namespace tensafe::model::cuda {

// ---- matrix-vector products (gemv.cu) ---------------------------------------------------------

enum class GemvEpilogue : int {
  Store = 0,       // y[i] = (W x)[i] + bias[i]            (bias may be null)
  Accumulate = 1,  // y[i] += (W x)[i]                      (residual add, in place)
  SwiGLU = 2,      // W holds 2n rows: gate rows [0, n) then up rows [n, 2n);
                   // y[i] = silu((W x)[i]) * (W x)[n + i]
};

struct GemvArgs {
  const uint16_t* w = nullptr;  // [rows, k] row-major, rows = n (2n for SwiGLU)
  DType wtype = DType::F16;     // F16 or BF16
  int n = 0;                    // outputs
  int k = 0;                    // inputs
  const float* x = nullptr;     // [k]
  // Optional RMSNorm of x before the product: x * rsqrt(mean(x^2) + eps) * norm_w.
  const float* norm_w = nullptr;
  float eps = 1e-6f;
  const float* bias = nullptr;  // [n], Store only
  float* y = nullptr;           // [n]
  GemvEpilogue epilogue = GemvEpilogue::Store;
};

// y = epilogue(W . prologue(x)). Rows of k % 8 == 0 (16-byte aligned) take the vectorised
// kernel; other shapes a simple one-warp-per-row kernel.
void gemv(const GemvArgs& a, cudaStream_t stream);

// ---- attention (attention.cu) -------------------------------------------------------------------

// Positions per split of the decode attention (one thread per position in the score phase).
constexpr int kAttnSplit = 128;

struct AttentionArgs {
  const float* qkv = nullptr;   // [q_dim + 2 kv_dim]: q heads, k heads, v heads (bias added, no RoPE yet)
  uint16_t* k_cache = nullptr;  // this layer's [kv_heads, context, head_dim]
  uint16_t* v_cache = nullptr;
  DType cache_type = DType::F16;
  const float2* rope = nullptr; // [context, head_dim / 2] (cos, sin) of angle pos * theta^(-2i/head_dim)
  const int* pos = nullptr;     // device: position of the new token (its K/V are written there)
  int heads = 0, kv_heads = 0, head_dim = 0, context = 0;
  // Scratch: [heads, splits, head_dim], [heads, splits] x 2, splits = ceil(context / kAttnSplit).
  float* o_part = nullptr;
  float* m_part = nullptr;
  float* l_part = nullptr;
  int* counters = nullptr;      // [heads], zero before the first launch (each launch leaves them zero)
  float* out = nullptr;         // [heads * head_dim]
};

// RoPE on q and the new k, K/V cache write at *pos, causal softmax(q k^T / sqrt(hd)) v over
// positions 0..*pos with grouped-query heads, split over the sequence; the last split of each
// head to finish combines them (one kernel).
void attention_decode(const AttentionArgs& a, cudaStream_t stream);
inline int attention_splits(int context) { return (context + kAttnSplit - 1) / kAttnSplit; }

// ---- small kernels (elementwise.cu) -----------------------------------------------------------

// x[i] = float(embed[tokens[*pos] * d + i]).
void embed_lookup(const uint16_t* embed, DType wtype, const int32_t* tokens, const int* pos, int d, float* x,
                  cudaStream_t stream);
// out = x * rsqrt(mean(x^2) + eps) * w (one block). When advance_pos is non-null, ++*advance_pos.
void rmsnorm(const float* x, const float* w, float eps, int d, float* out, int* advance_pos, cudaStream_t stream);
// y[i] += x[i].
void add_inplace(float* y, const float* x, int n, cudaStream_t stream);
// act[i] = silu(gu[i]) * gu[n + i] (the unfused SwiGLU of the instrumented path).
void swiglu(const float* gu, int n, float* act, cudaStream_t stream);
// Synthetic weights (model/synthetic.h), generated on the device, stored as `wtype`
// (F16/BF16: uint16_t bits; F32: float).
void synth_fill(void* out, DType wtype, size_t count, uint64_t seed, uint32_t tensor_id, float center,
                float half_width, cudaStream_t stream);
// Conversion of a device buffer of `count` elements of `from` into float32.
void to_float(const void* in, DType from, size_t count, float* out, cudaStream_t stream);

// ---- sampling (sampling.cu) -----------------------------------------------------------------------

// Scratch for sampling over n logits (sizes from sampling_scratch_bytes).
struct SamplingScratch {
  void* data = nullptr;
  size_t bytes = 0;
};
size_t sampling_scratch_bytes(int n);

// Greedy: *out = argmax(logits) (lowest id on ties).
void argmax(const float* logits, int n, int32_t* out, SamplingScratch scratch, cudaStream_t stream);
// model/sampling.h's algorithm with draw u (temperature > 0): sorts (logit desc, id asc) with a
// stable radix sort, then walks the top-k / top-p prefix in one block, float64 accumulation.
void sample(const float* logits, int n, float temperature, int top_k, float top_p, double u, int32_t* out,
            SamplingScratch scratch, cudaStream_t stream);

}  // namespace tensafe::model::cuda
