#include "model/cpu_kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define TENSAFE_MODEL_AVX2 1
#endif

#include "common/thread_pool.h"

namespace tensafe::model::cpu {
namespace {

#if defined(TENSAFE_MODEL_AVX2)
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p, DType t) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (t == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // bf16
}
#endif

float dot_f32(const float* a, const float* b, int n) {
  int i = 0;
  float s = 0.0f;
#if defined(TENSAFE_MODEL_AVX2)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(load8(a + i), load8(b + i), s0);
    s1 = _mm256_fmadd_ps(load8(a + i + 8), load8(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(load8(a + i + 16), load8(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(load8(a + i + 24), load8(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load8(a + i), load8(b + i), s0);
  s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#endif
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot_half(const uint16_t* w, DType t, const float* x, int n) {
  int i = 0;
  float s = 0.0f;
#if defined(TENSAFE_MODEL_AVX2)
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(load8(w + i, t), load8(x + i), s0);
    s1 = _mm256_fmadd_ps(load8(w + i + 8, t), load8(x + i + 8), s1);
    s2 = _mm256_fmadd_ps(load8(w + i + 16, t), load8(x + i + 16), s2);
    s3 = _mm256_fmadd_ps(load8(w + i + 24, t), load8(x + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(load8(w + i, t), load8(x + i), s0);
  s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
#endif
  for (; i < n; ++i) s += load_as_float(w, t, static_cast<size_t>(i)) * x[i];
  return s;
}

void widen_row(const MatRef& w, int r, float* out) {
  const size_t base = static_cast<size_t>(r) * static_cast<size_t>(w.cols);
  if (w.dtype == DType::F32) {
    const float* src = static_cast<const float*>(w.data) + base;
    for (int i = 0; i < w.cols; ++i) out[i] = src[i];
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(w.data) + base;
  int i = 0;
#if defined(TENSAFE_MODEL_AVX2)
  for (; i + 8 <= w.cols; i += 8) _mm256_storeu_ps(out + i, load8(src + i, w.dtype));
#endif
  for (; i < w.cols; ++i) out[i] = load_as_float(src, w.dtype, static_cast<size_t>(i));
}

// Rows per task: enough work per chunk that the pool's overhead stays small.
size_t min_rows(int cols, int n) {
  const size_t work = static_cast<size_t>(cols) * static_cast<size_t>(n > 0 ? n : 1);
  size_t rows = (1u << 15) / (work ? work : 1);
  return rows < 1 ? 1 : rows;
}

}  // namespace

float dot(const float* a, const float* b, int n) { return dot_f32(a, b, n); }

float dot_row(const MatRef& w, int r, const float* x) {
  const size_t base = static_cast<size_t>(r) * static_cast<size_t>(w.cols);
  if (w.dtype == DType::F32) return dot_f32(static_cast<const float*>(w.data) + base, x, w.cols);
  return dot_half(static_cast<const uint16_t*>(w.data) + base, w.dtype, x, w.cols);
}

namespace {

// Rows [begin, end) of one product, for n tokens.
void rows_of(const MatJob& job, const float* x, int n, size_t begin, size_t end) {
  const MatRef& w = job.w;
  const size_t rows = static_cast<size_t>(w.rows);
  if (n == 1) {
    for (size_t r = begin; r < end; ++r) {
      const float v = dot_row(w, static_cast<int>(r), x);
      job.y[r] = job.bias ? v + job.bias[r] : v;
    }
    return;
  }
  // Several tokens: widen each weight row once (it stays in L1) and reuse it for all.
  thread_local std::vector<float> row;
  if (w.dtype != DType::F32) row.resize(static_cast<size_t>(w.cols));
  for (size_t r = begin; r < end; ++r) {
    const float* wr;
    if (w.dtype == DType::F32) {
      wr = static_cast<const float*>(w.data) + r * static_cast<size_t>(w.cols);
    } else {
      widen_row(w, static_cast<int>(r), row.data());
      wr = row.data();
    }
    const float b = job.bias ? job.bias[r] : 0.0f;
    for (int t = 0; t < n; ++t)
      job.y[static_cast<size_t>(t) * rows + r] = dot_f32(wr, x + static_cast<size_t>(t) * w.cols, w.cols) + b;
  }
}

}  // namespace

void matmul_multi(const MatJob* jobs, int count, const float* x, int n) {
  // The products share one input and one dispatch: their rows form one range, handed out in
  // blocks from a shared counter (a core that is descheduled on a shared machine does not leave
  // the other waiting), and small products (k/v) cost no barrier of their own.
  for (int j = 1; j < count; ++j)
    if (jobs[j].w.cols != jobs[0].w.cols) throw std::logic_error("matmul_multi: the products must share the input width");
  std::vector<size_t> offset(static_cast<size_t>(count) + 1, 0);
  for (int j = 0; j < count; ++j) offset[static_cast<size_t>(j) + 1] = offset[static_cast<size_t>(j)] + static_cast<size_t>(jobs[j].w.rows);
  const size_t total = offset.back();
  const size_t block = std::max<size_t>(min_rows(jobs[0].w.cols, n), total / (16 * cpu_threads()) + 1);
  auto work = [&](size_t g0, size_t g1) {
    size_t j = 0;
    while (g0 < g1) {
      while (offset[j + 1] <= g0) ++j;
      const size_t stop = std::min(g1, offset[j + 1]);
      rows_of(jobs[j], x, n, g0 - offset[j], stop - offset[j]);
      g0 = stop;
    }
  };
  if (total <= block) {
    work(0, total);
    return;
  }
  std::atomic<size_t> next{0};
  parallel_for(
      cpu_threads(),
      [&](size_t, size_t) {
        for (;;) {
          const size_t g0 = next.fetch_add(block, std::memory_order_relaxed);
          if (g0 >= total) break;
          work(g0, std::min(total, g0 + block));
        }
      },
      1);
}

void matmul(const MatRef& w, const float* x, int n, float* y, const float* bias) {
  MatJob job{w, y, bias};
  matmul_multi(&job, 1, x, n);
}

void matmul_naive(const MatRef& w, const float* x, int n, float* y) {
  for (int t = 0; t < n; ++t)
    for (int r = 0; r < w.rows; ++r) {
      float s = 0.0f;
      const size_t base = static_cast<size_t>(r) * static_cast<size_t>(w.cols);
      for (int i = 0; i < w.cols; ++i) s += load_as_float(w.data, w.dtype, base + i) * x[static_cast<size_t>(t) * w.cols + i];
      y[static_cast<size_t>(t) * w.rows + r] = s;
    }
}

void rms_norm(const float* x, const void* weight, DType wdtype, int d, double eps, float* y) {
  double ss = 0.0;
  for (int i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
  for (int i = 0; i < d; ++i) y[i] = load_as_float(weight, wdtype, static_cast<size_t>(i)) * (x[i] * inv);
}

void embedding_row(const MatRef& w, int row, float* out) { widen_row(w, row, out); }

}  // namespace tensafe::model::cpu
