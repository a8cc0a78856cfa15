// The CUDA NTT kernels (see ntt.cuh for the layout and the n1 x n2 split).
//
// Each block stages its tile in shared memory, runs its butterfly stages there with one
// barrier per stage, and writes the tile back once: two reads and two writes of the data
// per transform. Twiddles and their Shoup companions come from global memory (they are
// re-read by every block and stay in L1/L2). Butterflies are Harvey's lazy ones from
// ckks/modarith.h, the same arithmetic the CPU uses.
#include <algorithm>

#include "ckks/cuda/ntt.cuh"
#include "ckks/modarith.h"
#include "cuda/cuda_check.h"

namespace tensafe::ckks::cuda {
namespace {

// Adjacent columns per block in the column phase: 4 words = one 32-byte sector per row.
constexpr uint32_t kCols = 4;
// Words per block in the row phase (several short rows share a block when n2 is small).
constexpr uint32_t kRowTile = 512;

struct Split {
  uint32_t log_n1, log_n2;
};

__host__ __device__ inline Split split_of(uint32_t log_n) { return {log_n / 2, log_n - log_n / 2}; }

// Twiddles of the row stages of rows r0 .. r0+rows-1, staged in shared memory at the start so
// that no stage waits on a global load: row stage t (0 .. log_n2-1) of those rows uses the
// contiguous indices (1 << (log_n1 + t)) + (r0 << t) + [0, rows << t), kept at offset
// rows * (2^t - 1). (Forward stage s = log_n1 + t; inverse stage with gap 2^(log_n2 - 1 - t).)
__device__ __forceinline__ void stage_row_twiddles(uint64_t* sw, uint64_t* sws, const uint64_t* w, const uint64_t* ws,
                                                   uint32_t log_n1, uint32_t log_n2, uint32_t rows, uint32_t r0) {
  const uint32_t total = rows * ((1u << log_n2) - 1);
  for (uint32_t idx = threadIdx.x; idx < total; idx += blockDim.x) {
    const uint32_t t = 31 - __clz(idx / rows + 1);
    const uint32_t local = idx - rows * ((1u << t) - 1);
    const uint32_t g = (1u << (log_n1 + t)) + (r0 << t) + local;
    sw[idx] = w[g];
    sws[idx] = ws[g];
  }
}

// ---- forward ---------------------------------------------------------------------------------

// Stages 0 .. log_n1-1: block = kCols adjacent columns of one polynomial.
__global__ void forward_columns(uint64_t* __restrict__ data, NttTablesView t, const LimbMap map) {
  extern __shared__ uint64_t tile[];  // [n1][kCols], then n1 twiddles and n1 companions
  const Split sp = split_of(t.log_n);
  const uint32_t n = 1u << t.log_n, n1 = 1u << sp.log_n1;
  const uint32_t poly = blockIdx.y;
  const uint32_t limb = map.limb[poly % map.count];
  const uint64_t q = t.modulus[limb], two_q = q << 1;
  uint64_t* w = tile + n1 * kCols;  // root_powers[0 .. n1) (the column stages use 1 .. n1-1)
  uint64_t* ws = w + n1;
  const uint64_t* gw = t.root_powers + static_cast<size_t>(limb) * n;
  const uint64_t* gws = t.root_powers_shoup + static_cast<size_t>(limb) * n;
  uint64_t* a = data + static_cast<size_t>(poly) * n;
  const uint32_t c0 = blockIdx.x * kCols;

  for (uint32_t idx = threadIdx.x; idx < n1; idx += blockDim.x) {
    w[idx] = gw[idx];
    ws[idx] = gws[idx];
  }
  for (uint32_t idx = threadIdx.x; idx < n1 * kCols; idx += blockDim.x) {
    uint32_t k = idx / kCols, cc = idx % kCols;
    tile[idx] = a[(static_cast<size_t>(k) << sp.log_n2) + c0 + cc];
  }
  __syncthreads();
  const uint32_t butterflies = (n1 / 2) * kCols;
  for (uint32_t s = 0; s < sp.log_n1; ++s) {
    const uint32_t gap_log = sp.log_n1 - s - 1, gap = 1u << gap_log, m = 1u << s;
    for (uint32_t b_all = threadIdx.x; b_all < butterflies; b_all += blockDim.x) {
      uint32_t cc = b_all % kCols, b = b_all / kCols;
      uint32_t i = b >> gap_log, pos = b & (gap - 1);
      uint32_t k0 = (i << (gap_log + 1)) + pos;
      uint32_t i0 = k0 * kCols + cc, i1 = (k0 + gap) * kCols + cc;
      uint64_t W = w[m + i], Ws = ws[m + i];
      uint64_t x = reduce_4q_to_2q(tile[i0], two_q);
      uint64_t y = mul_shoup_lazy(tile[i1], W, Ws, q);
      tile[i0] = x + y;
      tile[i1] = x - y + two_q;
    }
    __syncthreads();
  }
  for (uint32_t idx = threadIdx.x; idx < n1 * kCols; idx += blockDim.x) {
    uint32_t k = idx / kCols, cc = idx % kCols;
    a[(static_cast<size_t>(k) << sp.log_n2) + c0 + cc] = tile[idx];
  }
}

// Stages log_n1 .. log_n-1 and the final reduction: block = kRowTile / n2 rows.
__global__ void forward_rows(uint64_t* __restrict__ data, NttTablesView t, const LimbMap map) {
  __shared__ uint64_t tile[kRowTile];  // [rows][n2]
  __shared__ uint64_t sw[kRowTile], sws[kRowTile];
  const Split sp = split_of(t.log_n);
  const uint32_t n = 1u << t.log_n, n2 = 1u << sp.log_n2;
  const uint32_t rows = kRowTile >> sp.log_n2;
  const uint32_t poly = blockIdx.y;
  const uint32_t limb = map.limb[poly % map.count];
  const uint64_t q = t.modulus[limb], two_q = q << 1;
  const uint32_t r0 = blockIdx.x * rows;
  uint64_t* a = data + static_cast<size_t>(poly) * n + static_cast<size_t>(r0) * n2;

  stage_row_twiddles(sw, sws, t.root_powers + static_cast<size_t>(limb) * n,
                     t.root_powers_shoup + static_cast<size_t>(limb) * n, sp.log_n1, sp.log_n2, rows, r0);
  for (uint32_t idx = threadIdx.x; idx < kRowTile; idx += blockDim.x) tile[idx] = a[idx];
  __syncthreads();
  const uint32_t half = n2 / 2;
  for (uint32_t s = sp.log_n1; s < t.log_n; ++s) {
    const uint32_t gap_log = t.log_n - s - 1, gap = 1u << gap_log;
    for (uint32_t b_all = threadIdx.x; b_all < kRowTile / 2; b_all += blockDim.x) {
      uint32_t row = b_all / half, b = b_all % half;
      uint32_t i_local = b >> gap_log, pos = b & (gap - 1);
      uint32_t j0 = row * n2 + (i_local << (gap_log + 1)) + pos;
      // global group index: (r * n2 + j) / (2 gap) = r * 2^(s - log_n1) + i_local; staged at
      // rows * (2^ts - 1) + (row << ts) + i_local, ts = s - log_n1
      const uint32_t ts = s - sp.log_n1;
      const uint32_t root = rows * ((1u << ts) - 1) + (row << ts) + i_local;
      uint64_t W = sw[root], Ws = sws[root];
      uint64_t x = reduce_4q_to_2q(tile[j0], two_q);
      uint64_t y = mul_shoup_lazy(tile[j0 + gap], W, Ws, q);
      tile[j0] = x + y;
      tile[j0 + gap] = x - y + two_q;
    }
    __syncthreads();
  }
  for (uint32_t idx = threadIdx.x; idx < kRowTile; idx += blockDim.x) a[idx] = reduce_4q(tile[idx], q);
}

// ---- inverse ---------------------------------------------------------------------------------

// Gentleman-Sande stages with gaps 1 .. n2/2 (h = n/2 .. n1): contiguous rows.
__global__ void inverse_rows(uint64_t* __restrict__ data, NttTablesView t, const LimbMap map) {
  __shared__ uint64_t tile[kRowTile];
  __shared__ uint64_t sw[kRowTile], sws[kRowTile];
  const Split sp = split_of(t.log_n);
  const uint32_t n = 1u << t.log_n, n2 = 1u << sp.log_n2;
  const uint32_t rows = kRowTile >> sp.log_n2;
  const uint32_t poly = blockIdx.y;
  const uint32_t limb = map.limb[poly % map.count];
  const uint64_t q = t.modulus[limb], two_q = q << 1;
  const uint32_t r0 = blockIdx.x * rows;
  uint64_t* a = data + static_cast<size_t>(poly) * n + static_cast<size_t>(r0) * n2;

  stage_row_twiddles(sw, sws, t.inv_root_powers + static_cast<size_t>(limb) * n,
                     t.inv_root_powers_shoup + static_cast<size_t>(limb) * n, sp.log_n1, sp.log_n2, rows, r0);
  for (uint32_t idx = threadIdx.x; idx < kRowTile; idx += blockDim.x) tile[idx] = a[idx];
  __syncthreads();
  const uint32_t half = n2 / 2;
  for (uint32_t gap_log = 0; gap_log < sp.log_n2; ++gap_log) {
    const uint32_t gap = 1u << gap_log;
    for (uint32_t b_all = threadIdx.x; b_all < kRowTile / 2; b_all += blockDim.x) {
      uint32_t row = b_all / half, b = b_all % half;
      uint32_t i_local = b >> gap_log, pos = b & (gap - 1);
      uint32_t j0 = row * n2 + (i_local << (gap_log + 1)) + pos;
      // group index i = (r * n2 + j) / (2 gap) = r * (n2 / (2 gap)) + i_local, i.e. row stage
      // ts = log_n2 - gap_log - 1 of stage_row_twiddles (h = 2^(log_n1 + ts))
      const uint32_t ts = sp.log_n2 - gap_log - 1;
      const uint32_t root = rows * ((1u << ts) - 1) + (row << ts) + i_local;
      uint64_t W = sw[root], Ws = sws[root];
      uint64_t u = tile[j0], v = tile[j0 + gap];
      tile[j0] = reduce_4q_to_2q(u + v, two_q);
      tile[j0 + gap] = mul_shoup_lazy(u - v + two_q, W, Ws, q);
    }
    __syncthreads();
  }
  for (uint32_t idx = threadIdx.x; idx < kRowTile; idx += blockDim.x) a[idx] = tile[idx];
}

// Stages with gaps n2 .. n/2 (h = n1/2 .. 1): columns; the last stage folds in n^-1.
__global__ void inverse_columns(uint64_t* __restrict__ data, NttTablesView t, const LimbMap map) {
  extern __shared__ uint64_t tile[];  // [n1][kCols], then n1 twiddles and n1 companions
  const Split sp = split_of(t.log_n);
  const uint32_t n = 1u << t.log_n, n1 = 1u << sp.log_n1;
  const uint32_t poly = blockIdx.y;
  const uint32_t limb = map.limb[poly % map.count];
  const uint64_t q = t.modulus[limb], two_q = q << 1;
  uint64_t* w = tile + n1 * kCols;  // inv_root_powers[0 .. n1)
  uint64_t* ws = w + n1;
  const uint64_t* gw = t.inv_root_powers + static_cast<size_t>(limb) * n;
  const uint64_t* gws = t.inv_root_powers_shoup + static_cast<size_t>(limb) * n;
  uint64_t* a = data + static_cast<size_t>(poly) * n;
  const uint32_t c0 = blockIdx.x * kCols;

  for (uint32_t idx = threadIdx.x; idx < n1; idx += blockDim.x) {
    w[idx] = gw[idx];
    ws[idx] = gws[idx];
  }
  for (uint32_t idx = threadIdx.x; idx < n1 * kCols; idx += blockDim.x) {
    uint32_t k = idx / kCols, cc = idx % kCols;
    tile[idx] = a[(static_cast<size_t>(k) << sp.log_n2) + c0 + cc];
  }
  __syncthreads();
  const uint32_t butterflies = (n1 / 2) * kCols;
  // gap in row units: 1 .. n1/2; h = n1 / (2 gap_k)
  for (uint32_t gap_log = 0; gap_log + 1 < sp.log_n1; ++gap_log) {
    const uint32_t gap = 1u << gap_log, h = n1 >> (gap_log + 1);
    for (uint32_t b_all = threadIdx.x; b_all < butterflies; b_all += blockDim.x) {
      uint32_t cc = b_all % kCols, b = b_all / kCols;
      uint32_t i = b >> gap_log, pos = b & (gap - 1);
      uint32_t k0 = (i << (gap_log + 1)) + pos;
      uint32_t i0 = k0 * kCols + cc, i1 = (k0 + gap) * kCols + cc;
      uint64_t W = w[h + i], Ws = ws[h + i];
      uint64_t u = tile[i0], v = tile[i1];
      tile[i0] = reduce_4q_to_2q(u + v, two_q);
      tile[i1] = mul_shoup_lazy(u - v + two_q, W, Ws, q);
    }
    __syncthreads();
  }
  // Last stage (h = 1, gap n1/2) with n^-1 folded in, fully reduced, straight to global.
  const uint64_t ni = t.inv_n[limb], nis = t.inv_n_shoup[limb];
  const uint64_t nw = t.inv_n_w[limb], nws = t.inv_n_w_shoup[limb];
  const uint32_t half = n1 / 2;
  for (uint32_t b_all = threadIdx.x; b_all < butterflies; b_all += blockDim.x) {
    uint32_t cc = b_all % kCols, k0 = b_all / kCols;
    uint64_t u = tile[k0 * kCols + cc], v = tile[(k0 + half) * kCols + cc];
    a[(static_cast<size_t>(k0) << sp.log_n2) + c0 + cc] = mul_shoup(u + v, ni, nis, q);
    a[(static_cast<size_t>(k0 + half) << sp.log_n2) + c0 + cc] = mul_shoup(u - v + two_q, nw, nws, q);
  }
}

struct Launch {
  dim3 cols_grid, rows_grid;
  uint32_t cols_threads, rows_threads;
  size_t cols_smem, rows_smem;
};

Launch launch_of(uint32_t log_n, uint32_t polys) {
  const Split sp = split_of(log_n);
  const uint32_t n1 = 1u << sp.log_n1, n2 = 1u << sp.log_n2;
  Launch l;
  l.cols_grid = dim3(n2 / kCols, polys);
  l.cols_threads = std::min<uint32_t>((n1 / 2) * kCols, 256);
  l.cols_smem = sizeof(uint64_t) * (n1 * kCols + 2 * n1);
  l.rows_grid = dim3(n1 / (kRowTile / n2), polys);
  l.rows_threads = kRowTile / 2;
  l.rows_smem = 0;  // static
  return l;
}

void check_args(const NttTablesView& t, const LimbMap& map, uint32_t poly_count) {
  if (t.log_n < 12 || t.log_n > 16) throw ArgumentRangeError("CUDA NTT supports n = 2^12 .. 2^16");
  if (map.count == 0 || map.count > LimbMap::kMax) throw ArgumentRangeError("CUDA NTT: bad limb map");
  for (uint32_t i = 0; i < map.count; ++i)
    if (map.limb[i] >= t.limbs) throw ArgumentRangeError("CUDA NTT: limb map exceeds the tables");
  if (poly_count == 0 || static_cast<uint64_t>(poly_count) * map.count > 65535u)
    throw ArgumentRangeError("CUDA NTT: too many polynomials in one launch");
}

}  // namespace

void ntt_forward(uint64_t* data, const NttTablesView& tables, const LimbMap& map, uint32_t poly_count,
                 cudaStream_t stream) {
  check_args(tables, map, poly_count);
  Launch l = launch_of(tables.log_n, map.count * poly_count);
  forward_columns<<<l.cols_grid, l.cols_threads, l.cols_smem, stream>>>(data, tables, map);
  CUDA_CHECK_LAUNCH();
  forward_rows<<<l.rows_grid, l.rows_threads, l.rows_smem, stream>>>(data, tables, map);
  CUDA_CHECK_LAUNCH();
}

void ntt_inverse(uint64_t* data, const NttTablesView& tables, const LimbMap& map, uint32_t poly_count,
                 cudaStream_t stream) {
  check_args(tables, map, poly_count);
  Launch l = launch_of(tables.log_n, map.count * poly_count);
  inverse_rows<<<l.rows_grid, l.rows_threads, l.rows_smem, stream>>>(data, tables, map);
  CUDA_CHECK_LAUNCH();
  inverse_columns<<<l.cols_grid, l.cols_threads, l.cols_smem, stream>>>(data, tables, map);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::ckks::cuda
