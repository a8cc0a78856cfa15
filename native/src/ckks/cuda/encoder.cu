// Special FFT, rounding to RNS and Garner composition on the GPU (see encoder.cuh).
#include <algorithm>

#include "ckks/cuda/encoder.cuh"
#include "common/errors.h"
#include "cuda/cuda_check.h"

namespace tensafe::ckks::cuda {
namespace {

constexpr uint32_t kTile = 512;  // complex points per block in the row kernels (8 KiB)
constexpr uint32_t kCols = 4;    // adjacent columns per block in the column kernels
constexpr uint32_t kThreads = 256;

struct Split {
  uint32_t log_s, log_s1, log_s2;
};
__host__ __device__ inline Split split_of(uint32_t log_n) {
  const uint32_t log_s = log_n - 1;
  return {log_s, log_s / 2, log_s - log_s / 2};
}

__device__ __forceinline__ uint32_t brev(uint32_t x, uint32_t bits) { return __brev(x) >> (32 - bits); }

// b * w, written as the CPU writes it.
__device__ __forceinline__ double2 cmul(double2 b, double2 w) {
  return make_double2(b.x * w.x - b.y * w.y, b.x * w.y + b.y * w.x);
}

// Centred value of coefficient j of a coefficient-form RNS polynomial, times inv_scale
// (CkksContext::compose_to_double).
__device__ double compose(const uint64_t* __restrict__ words, uint32_t log_n, uint32_t limbs, uint32_t j,
                          const Barrett* __restrict__ br, const ComposeView& g, double inv_scale) {
  if (limbs == 1) {
    const uint64_t q = br[0].q, half = q >> 1, x = words[j];
    return (x > half ? -static_cast<double>(q - x) : static_cast<double>(x)) * inv_scale;
  }
  uint64_t a[kMaxComposeLimbs];
  for (uint32_t i = 0; i < limbs; ++i) {
    const Barrett b = br[i];
    uint64_t t = words[(static_cast<size_t>(i) << log_n) + j];
    for (uint32_t k = 0; k < i; ++k) {
      const uint64_t ak = a[k] >= b.q ? b.reduce64(a[k]) : a[k];
      t = sub_mod(t, ak, b.q);
      t = mul_shoup(t, g.inv[i * g.stride + k], g.inv_shoup[i * g.stride + k], b.q);
    }
    a[i] = t;
  }
  double v = 0;
  if (a[limbs - 1] > (br[limbs - 1].q >> 1)) {
    for (uint32_t i = limbs; i-- > 0;)
      v += (static_cast<double>(a[i]) - static_cast<double>(br[i].q - 1)) * g.radix[i];
    v -= 1;
  } else {
    for (uint32_t i = limbs; i-- > 0;) v += static_cast<double>(a[i]) * g.radix[i];
  }
  return v * inv_scale;
}

__device__ uint64_t pow2_mod(uint32_t e, const Barrett& b) {
  uint64_t r = 1, base = 2 % b.q;
  while (e) {
    if (e & 1) r = b.mul(r, base);
    base = b.mul(base, base);
    e >>= 1;
  }
  return r;
}

// Writes round(coeff) into coefficient i of every limb (CkksContext::round_to_rns).
__device__ void round_store(uint64_t* __restrict__ out, uint32_t log_n, uint32_t i, double coeff,
                            const Barrett* __restrict__ br, uint32_t limbs) {
  const double c = rint(coeff);
  if (fabs(c) < 9.2e18) {
    const int64_t v = static_cast<int64_t>(c);
    const uint64_t a = static_cast<uint64_t>(v < 0 ? -v : v);
    for (uint32_t l = 0; l < limbs; ++l) {
      const Barrett b = br[l];
      const uint64_t r = b.reduce64(a);
      out[(static_cast<size_t>(l) << log_n) + i] = (v < 0 && r) ? b.q - r : r;
    }
  } else {
    int e2 = 0;
    const double f = frexp(fabs(c), &e2);
    const uint64_t mant = static_cast<uint64_t>(ldexp(f, 53));
    const uint32_t exp = static_cast<uint32_t>(e2 - 53);
    for (uint32_t l = 0; l < limbs; ++l) {
      const Barrett b = br[l];
      const uint64_t r = b.mul(b.reduce64(mant), pow2_mod(exp, b));
      out[(static_cast<size_t>(l) << log_n) + i] = (c < 0 && r) ? b.q - r : r;
    }
  }
}

// ---- decode: rows (bit-reversed gather + composition, stages h = 1 .. S2/2) -------------------

__global__ void decode_rows(double2* __restrict__ scratch, const uint64_t* __restrict__ words, uint64_t stride,
                            uint32_t limbs, double inv_scale, const Barrett* __restrict__ br, ComposeView g,
                            FftView fft) {
  __shared__ double2 tile[kTile];
  const Split sp = split_of(fft.log_n);
  const uint32_t S = 1u << sp.log_s, S2 = 1u << sp.log_s2;
  const uint32_t p = blockIdx.y;
  const uint64_t* w = words + p * stride;
  const uint32_t first = blockIdx.x * kTile;
  for (uint32_t t = threadIdx.x; t < kTile; t += blockDim.x) {
    const uint32_t src = brev(first + t, sp.log_s);
    tile[t] = make_double2(compose(w, fft.log_n, limbs, src, br, g, inv_scale),
                           compose(w, fft.log_n, limbs, src + S, br, g, inv_scale));
  }
  __syncthreads();
  const uint32_t half_row = S2 / 2;
  for (uint32_t lh = 0; lh < sp.log_s2; ++lh) {
    const uint32_t h = 1u << lh;
    const double2* tw = fft.fwd_tw + h - 1;
    for (uint32_t b_all = threadIdx.x; b_all < kTile / 2; b_all += blockDim.x) {
      const uint32_t row = b_all / half_row, b = b_all % half_row;
      const uint32_t jj = b & (h - 1);
      const uint32_t i0 = row * S2 + ((b >> lh) << (lh + 1)) + jj;
      const double2 t = cmul(tile[i0 + h], tw[jj]);
      const double2 u = tile[i0];
      tile[i0] = make_double2(u.x + t.x, u.y + t.y);
      tile[i0 + h] = make_double2(u.x - t.x, u.y - t.y);
    }
    __syncthreads();
  }
  double2* o = scratch + static_cast<size_t>(p) * S + first;
  for (uint32_t t = threadIdx.x; t < kTile; t += blockDim.x) o[t] = tile[t];
}

// ---- decode: columns (stages h = S2 .. S/2), real parts out ------------------------------------

__global__ void decode_cols(double* __restrict__ out, const double2* __restrict__ scratch, FftView fft) {
  extern __shared__ double2 ctile[];  // [S1][kCols]
  const Split sp = split_of(fft.log_n);
  const uint32_t S = 1u << sp.log_s, S1 = 1u << sp.log_s1, S2 = 1u << sp.log_s2;
  const uint32_t p = blockIdx.y;
  const double2* in = scratch + static_cast<size_t>(p) * S;
  const uint32_t c0 = blockIdx.x * kCols;
  for (uint32_t t = threadIdx.x; t < S1 * kCols; t += blockDim.x) {
    const uint32_t k = t / kCols, cc = t % kCols;
    ctile[t] = in[(k << sp.log_s2) + c0 + cc];
  }
  __syncthreads();
  const uint32_t butterflies = (S1 / 2) * kCols;
  for (uint32_t lg = 0; lg < sp.log_s1; ++lg) {
    const uint32_t gsz = 1u << lg;  // gap in rows
    const uint32_t h = gsz * S2;
    const double2* tw = fft.fwd_tw + h - 1;
    for (uint32_t b_all = threadIdx.x; b_all < butterflies; b_all += blockDim.x) {
      const uint32_t cc = b_all % kCols, b = b_all / kCols;
      const uint32_t pos = b & (gsz - 1);
      const uint32_t k0 = ((b >> lg) << (lg + 1)) + pos;
      const uint32_t jj = pos * S2 + c0 + cc;
      const uint32_t i0 = k0 * kCols + cc, i1 = (k0 + gsz) * kCols + cc;
      const double2 t = cmul(ctile[i1], tw[jj]);
      const double2 u = ctile[i0];
      ctile[i0] = make_double2(u.x + t.x, u.y + t.y);
      ctile[i1] = make_double2(u.x - t.x, u.y - t.y);
    }
    __syncthreads();
  }
  double* o = out + static_cast<size_t>(p) * S;
  for (uint32_t t = threadIdx.x; t < S1 * kCols; t += blockDim.x) {
    const uint32_t k = t / kCols, cc = t % kCols;
    o[(k << sp.log_s2) + c0 + cc] = ctile[t].x;
  }
}

// ---- encode: columns first (h = S/2 .. S2), then rows (h = S2/2 .. 1) + rounding --------------

__global__ void encode_cols(double2* __restrict__ scratch, const double* __restrict__ values, uint32_t count,
                            uint32_t period, FftView fft) {
  extern __shared__ double2 ctile[];
  const Split sp = split_of(fft.log_n);
  const uint32_t S1 = 1u << sp.log_s1, S2 = 1u << sp.log_s2;
  const uint32_t c0 = blockIdx.x * kCols;
  for (uint32_t t = threadIdx.x; t < S1 * kCols; t += blockDim.x) {
    const uint32_t k = t / kCols, cc = t % kCols;
    const uint32_t idx = (k << sp.log_s2) + c0 + cc;
    ctile[t] = make_double2(idx < count ? values[idx % period] : 0.0, 0.0);
  }
  __syncthreads();
  const uint32_t butterflies = (S1 / 2) * kCols;
  for (int lg = static_cast<int>(sp.log_s1) - 1; lg >= 0; --lg) {
    const uint32_t gsz = 1u << lg;
    const uint32_t h = gsz * S2;
    const double2* tw = fft.inv_tw + h - 1;
    for (uint32_t b_all = threadIdx.x; b_all < butterflies; b_all += blockDim.x) {
      const uint32_t cc = b_all % kCols, b = b_all / kCols;
      const uint32_t pos = b & (gsz - 1);
      const uint32_t k0 = ((b >> lg) << (lg + 1)) + pos;
      const uint32_t jj = pos * S2 + c0 + cc;
      const uint32_t i0 = k0 * kCols + cc, i1 = (k0 + gsz) * kCols + cc;
      const double2 a = ctile[i0], bb = ctile[i1];
      ctile[i0] = make_double2(a.x + bb.x, a.y + bb.y);
      ctile[i1] = cmul(make_double2(a.x - bb.x, a.y - bb.y), tw[jj]);
    }
    __syncthreads();
  }
  for (uint32_t t = threadIdx.x; t < S1 * kCols; t += blockDim.x) {
    const uint32_t k = t / kCols, cc = t % kCols;
    scratch[(k << sp.log_s2) + c0 + cc] = ctile[t];
  }
}

__global__ void encode_rows(uint64_t* __restrict__ out, const double2* __restrict__ scratch, double f,
                            const Barrett* __restrict__ br, uint32_t limbs, FftView fft) {
  __shared__ double2 tile[kTile];
  const Split sp = split_of(fft.log_n);
  const uint32_t S = 1u << sp.log_s, S2 = 1u << sp.log_s2;
  const uint32_t first = blockIdx.x * kTile;
  for (uint32_t t = threadIdx.x; t < kTile; t += blockDim.x) tile[t] = scratch[first + t];
  __syncthreads();
  const uint32_t half_row = S2 / 2;
  for (int lh = static_cast<int>(sp.log_s2) - 1; lh >= 0; --lh) {
    const uint32_t h = 1u << lh;
    const double2* tw = fft.inv_tw + h - 1;
    for (uint32_t b_all = threadIdx.x; b_all < kTile / 2; b_all += blockDim.x) {
      const uint32_t row = b_all / half_row, b = b_all % half_row;
      const uint32_t jj = b & (h - 1);
      const uint32_t i0 = row * S2 + ((b >> lh) << (lh + 1)) + jj;
      const double2 a = tile[i0], bb = tile[i0 + h];
      tile[i0] = make_double2(a.x + bb.x, a.y + bb.y);
      tile[i0 + h] = cmul(make_double2(a.x - bb.x, a.y - bb.y), tw[jj]);
    }
    __syncthreads();
  }
  for (uint32_t t = threadIdx.x; t < kTile; t += blockDim.x) {
    const uint32_t i = brev(first + t, sp.log_s);
    round_store(out, fft.log_n, i, tile[t].x * f, br, limbs);
    round_store(out, fft.log_n, i + S, tile[t].y * f, br, limbs);
  }
}

__global__ void round_coeffs_kernel(uint64_t* __restrict__ out, const double* __restrict__ values, uint32_t count,
                                    double scale, const Barrett* __restrict__ br, uint32_t limbs, uint32_t log_n) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (1u << log_n)) return;
  round_store(out, log_n, i, i < count ? values[i] * scale : 0.0, br, limbs);
}

__global__ void compose_kernel(double* __restrict__ out, const uint64_t* __restrict__ words, uint32_t limbs,
                               double inv_scale, const Barrett* __restrict__ br, ComposeView g, uint32_t log_n) {
  const uint32_t j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= (1u << log_n)) return;
  out[j] = compose(words, log_n, limbs, j, br, g, inv_scale);
}

__global__ void segment_sum_kernel(double* __restrict__ sums, const double* __restrict__ slots, uint32_t per_poly,
                                   uint32_t d, uint32_t log_s) {
  __shared__ double part[kThreads];
  const uint32_t i = blockIdx.x, p = blockIdx.y;
  const double* src = slots + (static_cast<size_t>(p) << log_s) + static_cast<size_t>(i) * d;
  double acc = 0;
  for (uint32_t j = threadIdx.x; j < d; j += blockDim.x) acc += src[j];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (uint32_t w = blockDim.x / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[static_cast<size_t>(p) * per_poly + i] = part[0];
}

void check_fft(const FftView& fft) {
  if (fft.log_n < 12 || fft.log_n > 16) throw ArgumentRangeError("GPU encoder supports polyN = 2^12 .. 2^16");
}

}  // namespace

void encode_slots(uint64_t* out, const double* values, uint32_t count, uint32_t period, double scale,
                  const Barrett* br, uint32_t limbs, const FftView& fft, double2* scratch, cudaStream_t s) {
  check_fft(fft);
  if (period == 0) period = 1;
  const Split sp = split_of(fft.log_n);
  const uint32_t S = 1u << sp.log_s, S1 = 1u << sp.log_s1, S2 = 1u << sp.log_s2;
  const uint32_t col_threads = std::min<uint32_t>((S1 / 2) * kCols, kThreads);
  encode_cols<<<S2 / kCols, col_threads, sizeof(double2) * S1 * kCols, s>>>(scratch, values, count, period, fft);
  CUDA_CHECK_LAUNCH();
  encode_rows<<<S / kTile, kThreads, 0, s>>>(out, scratch, scale / static_cast<double>(S), br, limbs, fft);
  CUDA_CHECK_LAUNCH();
}

void encode_coefficients(uint64_t* out, const double* values, uint32_t count, double scale, const Barrett* br,
                         uint32_t limbs, uint32_t log_n, cudaStream_t s) {
  const uint32_t n = 1u << log_n;
  round_coeffs_kernel<<<(n + kThreads - 1) / kThreads, kThreads, 0, s>>>(out, values, count, scale, br, limbs, log_n);
  CUDA_CHECK_LAUNCH();
}

void decode_slots(double* out, const uint64_t* words, uint64_t stride, uint32_t polys, uint32_t limbs,
                  double inv_scale, const Barrett* br, const ComposeView& garner, const FftView& fft,
                  double2* scratch, cudaStream_t s) {
  check_fft(fft);
  if (limbs > kMaxComposeLimbs) throw ArgumentRangeError("GPU decode supports at most 32 primes");
  const Split sp = split_of(fft.log_n);
  const uint32_t S = 1u << sp.log_s, S1 = 1u << sp.log_s1, S2 = 1u << sp.log_s2;
  decode_rows<<<dim3(S / kTile, polys), kThreads, 0, s>>>(scratch, words, stride, limbs, inv_scale, br, garner, fft);
  CUDA_CHECK_LAUNCH();
  const uint32_t col_threads = std::min<uint32_t>((S1 / 2) * kCols, kThreads);
  decode_cols<<<dim3(S2 / kCols, polys), col_threads, sizeof(double2) * S1 * kCols, s>>>(out, scratch, fft);
  CUDA_CHECK_LAUNCH();
}

void decode_coefficients(double* out, const uint64_t* words, uint32_t limbs, double inv_scale, const Barrett* br,
                         const ComposeView& garner, uint32_t log_n, cudaStream_t s) {
  if (limbs > kMaxComposeLimbs) throw ArgumentRangeError("GPU decode supports at most 32 primes");
  const uint32_t n = 1u << log_n;
  compose_kernel<<<(n + kThreads - 1) / kThreads, kThreads, 0, s>>>(out, words, limbs, inv_scale, br, garner, log_n);
  CUDA_CHECK_LAUNCH();
}

void segment_sums(double* sums, const double* slots, uint32_t polys, uint32_t per_poly, uint32_t d, uint32_t log_n,
                  cudaStream_t s) {
  if (per_poly == 0 || polys == 0) return;
  segment_sum_kernel<<<dim3(per_poly, polys), kThreads, 0, s>>>(sums, slots, per_poly, d, log_n - 1);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::ckks::cuda
