// Host-side entry points that run one decoder kernel on host data, for the GPU tests
// (test/gpu/model-kernels.test.ts, through native/addon/model_cuda_kernels.cc). No CUDA types
// appear here, so the addon can include it. Inputs are float32 and are rounded to the kernel's
// storage type (f16/bf16) here; the rounded values are returned so the tests' float64
// references use exactly what the kernel saw. Every output buffer is poisoned with NaN before
// the kernel runs, so an element the kernel fails to write shows up.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace tensafe::model::cuda::kernel_tests {

struct GemvCase {
  std::vector<float> w;  // [rows, k], rows = n or 2n (SwiGLU); rounded in place to wtype
  DType wtype = DType::F16;
  int n = 0, k = 0;
  std::vector<float> x;       // [k]
  std::vector<float> norm_w;  // empty: no RMSNorm
  float eps = 1e-6f;
  std::vector<float> bias;    // empty: none
  std::vector<float> y;       // initial y (Accumulate) ; output
  int epilogue = 0;           // GemvEpilogue
};
void run_gemv(GemvCase& c);

struct AttentionCase {
  std::vector<float> qkv;                 // [q_dim + 2 kv_dim]
  std::vector<float> k_cache, v_cache;    // [kv_heads, context, head_dim]; rounded in place, updated
  DType cache_type = DType::F16;
  double rope_theta = 1e6;
  int pos = 0, heads = 0, kv_heads = 0, head_dim = 0, context = 0;
  std::vector<float> rope;                // out: the (cos, sin) table used, [context, head_dim/2, 2]
  std::vector<float> out;                 // out: [heads * head_dim]
};
void run_attention(AttentionCase& c);

// out = rmsnorm(x) * w.
std::vector<float> run_rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps);
// Row `tokens[pos]` of the embedding (rounded in place to wtype) as float.
std::vector<float> run_embed(std::vector<float>& embed, DType wtype, int d, const std::vector<int32_t>& tokens, int pos);
int32_t run_argmax(const std::vector<float>& logits);
int32_t run_sample(const std::vector<float>& logits, float temperature, int top_k, float top_p, double u);
// Plaintext LoRA (lora_apply): y (+)= scaling * B (A x), all float32 in and out. The shapes
// are passed to the kernel unchecked (its own validation is under test); the vectors must match
// them. Without accumulate, y is poisoned with NaN first; the A x scratch always is.
struct LoraCase {
  std::vector<float> a, b, x;  // [rank, in_dim], [out_dim, rank], [in_dim]
  std::vector<float> y;        // initial y (accumulate), [out_dim]; output
  int rank = 0, in_dim = 0, out_dim = 0;
  float scaling = 1.0f;
  bool accumulate = true;
};
void run_lora(LoraCase& c);
// ---- batched prefill kernels ----

struct GemmCase {
  std::vector<float> a, b;  // [m, k], [n, k]; rounded in place to type
  DType type = DType::F16;
  int m = 0, n = 0, k = 0;
  std::vector<float> c;     // initial c [m, n] when accumulating; output
  bool accumulate = false;
  int impl = 0;             // GemmImpl: 0 auto, 1 cuBLAS, 2 own; out: the one that ran
};
void run_gemm(GemmCase& c);
// Whether cuBLAS can be loaded here, and why not.
bool cublas_loadable(std::string* reason);

struct PrefillAttentionCase {
  std::vector<float> q;                  // [m, heads, head_dim]; rounded in place
  std::vector<float> k_cache, v_cache;   // [kv_heads, context, head_dim]; rounded in place
  DType type = DType::F16;
  int p0 = 0, m = 0, heads = 0, kv_heads = 0, head_dim = 0, context = 0;
  bool simple = false;                   // force the simple kernel
  bool split = false;                    // q given and out written as hi + lo (q: in, the value used)
  // Cache positions >= poison_from are set to a 16-bit NaN on the device (and NaN in k/v_cache):
  // the slots the kernel must never read. (The binding refuses NaN inputs, so it is done here.)
  int poison_from = -1;
  std::vector<float> out;                // out: [m, heads * head_dim]
};
void run_prefill_attention(PrefillAttentionCase& c);

struct QkvRopeCase {
  std::vector<float> qkv;                // [m, (heads + 2 kv) * hd]
  std::vector<float> bias;               // empty or [(heads + 2 kv) * hd]
  DType type = DType::F16;
  double rope_theta = 1e6;
  int p0 = 0, m = 0, heads = 0, kv_heads = 0, head_dim = 0, context = 0;
  std::vector<float> k_cache, v_cache;   // in: the caches before (rounded in place); out: after
  bool split = false;                    // q written as hi + lo (returned summed)
  std::vector<float> q;                  // out: [m, heads, hd]
  std::vector<float> rope;               // out: the (cos, sin) table, [context, hd/2, 2]
};
void run_qkv_rope(QkvRopeCase& c);

// Row kernels: rmsnorm_rows (16-bit out as float), swiglu_rows (gu [m, 2n] -> [m, n]); split:
// the output is hi + lo (the split GEMM inputs of batched_prefill.h).
std::vector<float> run_rmsnorm_rows(const std::vector<float>& x, const std::vector<float>& w, int m, float eps, DType type,
                                    bool split);
std::vector<float> run_swiglu_rows(const std::vector<float>& gu, int m, int n, DType type, bool split);

// The synthetic generator on the device: count values of tensor `tensor_id`, as float.
std::vector<float> run_synth(DType wtype, size_t count, uint64_t seed, uint32_t tensor_id, float center, float half_width);

}  // namespace tensafe::model::cuda::kernel_tests
