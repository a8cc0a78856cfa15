// Launchers of the CUDA kernels of the Qwen2 decoder. One kernel family per .cu file:
// batch-1 decode: gemv.cu, attention.cu, elementwise.cu (embedding, RMSNorm, synthetic weights,
// small helpers), sampling.cu, decode_step.cu (the whole step as one persistent kernel), lora.cu
// (plaintext LoRA adapters: the instrumented step's and the final-hidden one);
// batched prefill: gemm.cu (tensor-core / cuBLAS products), attention_prefill.cu, batched.cu. Everything here is asynchronous on the given stream and safe to
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
// 256 (v5; was 128): sequences up to 256 positions, the decode benchmark's 8 + 128, are one
// split per head, which skips the partials and the combine (attention_block.cuh).
constexpr int kAttnSplit = 256;

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

// ---- plaintext LoRA, one token (lora.cu) ---------------------------------------------------------

constexpr int kLoraMaxRank = 4096;     // as ModelBackend::set_layer_adapters allows
constexpr int kLoraMaxDim = 1 << 20;

struct LoraArgs {
  const float* a = nullptr;  // [rank, in_dim] row-major (PEFT lora_A.weight), float32
  const float* b = nullptr;  // [out_dim, rank] row-major (PEFT lora_B.weight), float32
  int rank = 0, in_dim = 0, out_dim = 0;
  float scaling = 1.0f;
  const float* x = nullptr;  // [in_dim]
  float* y = nullptr;        // [out_dim]
  double* ax = nullptr;      // scratch [rank]: A x in float64
  bool accumulate = true;    // y += delta (false: y = delta)
};
// y[o] (+)= float(double(scaling) * sum_r B[o, r] (A x)[r]), A x and the sum in float64 with a
// fixed reduction order (deterministic). Two launches. Throws ArgumentRangeError for a rank
// outside [1, kLoraMaxRank], dims outside [1, kLoraMaxDim] or a non-finite scaling, and
// ArgumentTypeError for a null pointer (naming the argument).
void lora_apply(const LoraArgs& a, cudaStream_t stream);

// ---- batched prefill: matrix products (gemm.cu) -------------------------------------------------

class CublasHandle;  // cublas_loader.h

enum class GemmImpl : int {
  Auto = 0,    // cuBLAS when it can be loaded, else our own kernel
  Cublas = 1,  // cuBLAS (BackendUnavailableError when absent)
  Own = 2,     // our own tensor-core kernel (mma.sync m16n8k16)
};
// TENSAFE_GEMM=own|cublas|auto (unset: auto).
GemmImpl gemm_impl_from_env();
// Auto -> Cublas when loadable, else Own; Cublas without cuBLAS throws BackendUnavailableError.
GemmImpl resolve_gemm_impl(GemmImpl wanted);

struct GemmArgs {
  const uint16_t* a = nullptr;  // [m, k] row-major activations (type)
  const uint16_t* b = nullptr;  // [n, k] row-major weights (type)
  DType type = DType::F16;      // F16 or BF16
  int m = 0, n = 0, k = 0;
  float* c = nullptr;           // [m, ldc] float32
  int ldc = 0;
  bool accumulate = false;      // c += a . b^T instead of c = a . b^T
};
// impl must be resolved (Cublas or Own); Cublas needs `handle`. Deterministic in both.
void gemm(const GemmArgs& g, GemmImpl impl, CublasHandle* handle, cudaStream_t stream);

// ---- batched prefill: row-wise kernels (batched.cu) ---------------------------------------------

// x[r] = float(embed[tokens[r]]), r < m.
void embed_rows(const uint16_t* embed, DType wtype, const int32_t* tokens, int m, int d, float* x, cudaStream_t stream);
// out[r] = round16(rmsnorm(x[r]) * w), float32 x [m, d] -> 16-bit out [m, d]. With out_lo (else
// null): out_lo = round16(value - out), so out + out_lo holds the value to about 16 bits (the
// "split" GEMM inputs of bf16 models).
void rmsnorm_rows(const float* x, const float* w, float eps, int m, int d, DType out_type, uint16_t* out,
                  uint16_t* out_lo, cudaStream_t stream);

struct QkvRopeArgs {
  const float* qkv = nullptr;    // [m, (heads + 2 kv_heads) * head_dim], without bias
  const float* bias = nullptr;   // [(heads + 2 kv_heads) * head_dim] or null
  const float2* rope = nullptr;  // the decode step's (cos, sin) table [context, head_dim / 2]
  int p0 = 0, m = 0;             // rows are positions p0 .. p0 + m - 1
  int heads = 0, kv_heads = 0, head_dim = 0, context = 0;
  uint16_t* k_cache = nullptr;   // this layer's [kv_heads, context, head_dim]
  uint16_t* v_cache = nullptr;
  DType cache_type = DType::F16;
  uint16_t* q_out = nullptr;     // [m, heads, head_dim] rotated q, rounded
  uint16_t* q_lo = nullptr;      // null, or the 16-bit rest of q (as rmsnorm_rows)
};
// Bias, RoPE of q and k, k and v rounded into the cache at their positions, q rounded to q_out.
void qkv_rope_cache(const QkvRopeArgs& a, cudaStream_t stream);
// act[r, i] = round16(silu(gu[r, i]) * gu[r, n + i]), gu float32 [m, 2n]; act_lo as rmsnorm_rows.
void swiglu_rows(const float* gu, int m, int n, DType out_type, uint16_t* act, uint16_t* act_lo, cudaStream_t stream);
// *p = value, in stream order.
void set_device_int(int* p, int value, cudaStream_t stream);

// ---- batched prefill: causal attention (attention_prefill.cu) -----------------------------------

struct PrefillAttentionArgs {
  const uint16_t* q = nullptr;        // [m, heads, head_dim] (rotated)
  const uint16_t* q_lo = nullptr;     // null, or q's 16-bit rest: scores use q + q_lo
  const uint16_t* k_cache = nullptr;  // this layer's [kv_heads, context, head_dim], positions 0 .. p0+m-1 written
  const uint16_t* v_cache = nullptr;
  DType cache_type = DType::F16;
  int p0 = 0, m = 0;
  int heads = 0, kv_heads = 0, head_dim = 0, context = 0;
  uint16_t* out = nullptr;            // [m, heads * head_dim], rounded
  uint16_t* out_lo = nullptr;         // null, or the 16-bit rest of each output (as rmsnorm_rows)
};
// Query r (position p0 + r) attends to positions 0 .. p0 + r. head_dim in {16, 32, 64, 128}
// takes the tensor-core kernel unless force_simple; others the simple one.
void attention_prefill(const PrefillAttentionArgs& a, bool force_simple, cudaStream_t stream);
bool attention_prefill_has_mma(int head_dim);

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
