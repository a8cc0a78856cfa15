// Device timings of the decoder's kernels for the GPU harness (scripts/device/kernels-bench.mjs,
// through native/addon/model_cuda_bench.cc). CUDA events around each timed region, warm-up
// first, medians of repeats; inputs are random (never zeros) and, for memory-bound kernels,
// rotated over enough copies that each launch reads from DRAM, not from L2. No CUDA types
// appear here, so the addon can include it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace tensafe::model::cuda::kernel_bench {

struct Timing {
  double median_us = 0, min_us = 0, max_us = 0;
  int runs = 0;
  double bytes = 0;   // bytes the timed region must move (each input once, each output once)
  double flops = 0;   // floating-point operations of the region (matrix products)
};

// Device-to-device copy of `bytes` (read + written counted): the bandwidth ceiling.
Timing copy(size_t bytes, int reps);

// One gemv launch (gemv.cu) of n outputs x k inputs (SwiGLU: 2n weight rows), weights rotated
// over `copies` buffers.
Timing gemv(int n, int k, int epilogue, DType type, bool norm, int reps);

// Decode attention (attention.cu) of one new token at position pos.
Timing attention(int heads, int kv_heads, int head_dim, int context, int pos, DType type, int reps);

// C[m, n] = A[m, k] B[n, k]^T (gemm.cu) with impl 1 (cuBLAS) or 2 (ours).
Timing gemm(int m, int n, int k, DType type, int impl, int reps);

// Causal prefill attention (attention_prefill.cu) of m queries from position 0.
Timing prefill_attention(int heads, int kv_heads, int head_dim, int m, DType type, bool simple, int reps);

// Decode steps of a synthetic preset, graph-replayed, one event pair around each step;
// variant "graph" (the layer kernels) or "mega" (with `lookahead_kb`; < 0 keeps the default).
struct DecodeTiming {
  Timing step;                 // the forward of one token (no LM head)
  Timing lm_head;              // the LM head gemv
  Timing argmax;               // greedy sampling on the device
  Timing token;                // step + LM head + argmax as one graph-free sequence, per token
  std::vector<double> stage_us;  // megakernel only: per stage (A q/k/v, B attention, C o, D gate/up, E down,
                                 // summed over layers) + final norm, block 0's view, median over steps
  std::string detail;          // grid, stage configs, lookahead
  double weight_bytes = 0;     // per token
};
DecodeTiming decode(const std::string& preset, DType type, const std::string& variant, int lookahead_kb, int start_pos,
                    int steps);

// Batched prefill of n tokens from position 0 (the whole forward, final norm included), GEMMs
// through impl 1 (cuBLAS) or 2 (ours), split GEMM inputs (batched_prefill.h) on or off;
// detail says which attention kernel ran.
struct PrefillTiming {
  Timing prefill;
  std::string detail;
};
PrefillTiming prefill(const std::string& preset, DType type, int n, int impl, bool split, int reps);

}  // namespace tensafe::model::cuda::kernel_bench
