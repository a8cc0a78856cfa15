// CPU kernels of the Qwen2 forward: float32 arithmetic over f32/bf16/f16 weights. Matrix
// products are what a batch-1 decode spends its time on (every weight byte is read once per
// token), so they are written for memory bandwidth: rows split across both cores, AVX2 + FMA
// dot products with four accumulators, bf16/f16 rows widened in registers (no converted copy
// of the matrix is ever made). The scalar code under #else keeps the file portable.
#pragma once
#include <cstddef>
#include <cstdint>

#include "model/dtype.h"

namespace tensafe::model::cpu {

// A row-major [rows, cols] weight matrix in host memory.
struct MatRef {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int rows = 0;
  int cols = 0;
};

// Dot product of two float vectors (AVX2 + FMA, four accumulators).
float dot(const float* a, const float* b, int n);

// Dot product of row `r` of W with x (cols floats).
float dot_row(const MatRef& w, int r, const float* x);

// Y[t * w.rows + r] = W_r . X[t * w.cols ..] (+ bias[r]) for t < n, r < rows; both cores.
void matmul(const MatRef& w, const float* x, int n, float* y, const float* bias = nullptr);

// Several products of the same input x (q/k/v, gate/up) in one parallel dispatch.
struct MatJob {
  MatRef w;
  float* y;
  const float* bias;  // may be null
};
void matmul_multi(const MatJob* jobs, int count, const float* x, int n);

// The same product on the calling thread with a plain scalar loop (no SIMD, no threads): the
// baseline the benchmark compares against (the original's single-threaded numpy LM head).
void matmul_naive(const MatRef& w, const float* x, int n, float* y);

// y = x * rsqrt(mean(x^2) + eps) * weight, for one vector of d floats (weight as stored).
void rms_norm(const float* x, const void* weight, DType wdtype, int d, double eps, float* y);

// Row `row` of an embedding matrix converted to float.
void embedding_row(const MatRef& w, int row, float* out);

}  // namespace tensafe::model::cpu
