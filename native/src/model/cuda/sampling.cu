// Sampling on the device, following model/sampling.h step by step so that the CPU and CUDA
// backends pick the same token from the same logits and draw:
//   greedy   two-pass argmax (per-block best, then one block), lowest id on ties;
//   sampled  a stable radix sort of (key = logit descending, value = id), which orders the
//            candidates exactly as the CPU does (ties keep ascending ids), then one block walks
//            the top-k prefix: float64 weights exp(l/T - zmax), block-wide prefix sums, the
//            top-p cut (first prefix whose mass reaches top_p * total) and the inverse-CDF draw
//            (first prefix whose mass exceeds u * kept mass).
// The sort is CUB's (shipped with the CUDA toolkit, header-only), never cuBLAS.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cfloat>

#include "cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda {
namespace {

constexpr int kArgmaxThreads = 256;
constexpr int kArgmaxBlocks = 264;
constexpr int kFinishThreads = 1024;

size_t align_up(size_t v) { return (v + 255) & ~static_cast<size_t>(255); }

struct ScratchLayout {
  size_t best_val, best_idx, keys_in, keys_out, ids_in, ids_out, temp, temp_bytes, total;
};

ScratchLayout layout(int n) {
  ScratchLayout l{};
  size_t off = 0;
  l.best_val = off; off += align_up(kArgmaxBlocks * sizeof(float));
  l.best_idx = off; off += align_up(kArgmaxBlocks * sizeof(int));
  l.keys_in = off; off += align_up(static_cast<size_t>(n) * 4);
  l.keys_out = off; off += align_up(static_cast<size_t>(n) * 4);
  l.ids_in = off; off += align_up(static_cast<size_t>(n) * 4);
  l.ids_out = off; off += align_up(static_cast<size_t>(n) * 4);
  size_t temp_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, static_cast<const uint32_t*>(nullptr),
                                             static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                             static_cast<int32_t*>(nullptr), n));
  l.temp = off; off += align_up(temp_bytes);
  l.temp_bytes = temp_bytes;
  l.total = off;
  return l;
}

__device__ __forceinline__ bool better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

__global__ void argmax_partial_kernel(const float* __restrict__ logits, int n, float* best_val, int* best_idx) {
  float bv = -FLT_MAX;
  int bi = INT_MAX;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float v = logits[i];
    if (better(v, i, bv, bi)) { bv = v; bi = i; }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) { bv = ov; bi = oi; }
  }
  __shared__ float sv[kArgmaxThreads / 32];
  __shared__ int si[kArgmaxThreads / 32];
  if ((threadIdx.x & 31) == 0) { sv[threadIdx.x >> 5] = bv; si[threadIdx.x >> 5] = bi; }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kArgmaxThreads / 32; ++w)
      if (better(sv[w], si[w], bv, bi)) { bv = sv[w]; bi = si[w]; }
    best_val[blockIdx.x] = bv;
    best_idx[blockIdx.x] = bi;
  }
}

__global__ void argmax_final_kernel(const float* best_val, const int* best_idx, int count, int32_t* out) {
  float bv = -FLT_MAX;
  int bi = INT_MAX;
  for (int i = threadIdx.x; i < count; i += blockDim.x)
    if (better(best_val[i], best_idx[i], bv, bi)) { bv = best_val[i]; bi = best_idx[i]; }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(ov, oi, bv, bi)) { bv = ov; bi = oi; }
  }
  __shared__ float sv[32];
  __shared__ int si[32];
  if ((threadIdx.x & 31) == 0) { sv[threadIdx.x >> 5] = bv; si[threadIdx.x >> 5] = bi; }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w)
      if (better(sv[w], si[w], bv, bi)) { bv = sv[w]; bi = si[w]; }
    *out = bi == INT_MAX ? 0 : bi;
  }
}

// Ascending order of the key = descending logit (+0 and -0 compare equal, as on the CPU).
__global__ void sort_keys_kernel(const float* __restrict__ logits, int n, uint32_t* keys, int32_t* ids) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const uint32_t b = __float_as_uint(logits[i] + 0.0f);
    const uint32_t ordered = (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // ascending float order
    keys[i] = ~ordered;
    ids[i] = i;
  }
}

// Exclusive block scan of one double per thread (blockDim.x == kFinishThreads); returns the
// thread's offset, *total gets the sum.
__device__ double block_exclusive_scan(double v, double* total) {
  __shared__ double warp_tot[kFinishThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  double incl = v;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const double t = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += t;
  }
  __syncthreads();
  if (lane == 31) warp_tot[warp] = incl;
  __syncthreads();
  double before = 0.0, all = 0.0;
  for (int w = 0; w < kFinishThreads / 32; ++w) {
    if (w < warp) before += warp_tot[w];
    all += warp_tot[w];
  }
  *total = all;
  return before + incl - v;
}

__global__ void __launch_bounds__(kFinishThreads) sample_finish_kernel(const float* __restrict__ logits, int n,
                                                                       const int32_t* __restrict__ order,
                                                                       double inv_t, int top_k, float top_p, double u,
                                                                       int32_t* out) {
  __shared__ int first;
  const int k = top_k > 0 ? min(top_k, n) : n;
  const double zmax = static_cast<double>(logits[order[0]]) * inv_t;
  const int per = (k + kFinishThreads - 1) / kFinishThreads;
  const int lo = min(k, threadIdx.x * per), hi = min(k, lo + per);
  auto weight = [&](int j) { return exp(static_cast<double>(logits[order[j]]) * inv_t - zmax); };

  double local = 0.0;
  for (int j = lo; j < hi; ++j) local += weight(j);
  double total = 0.0;
  const double offset = block_exclusive_scan(local, &total);

  // Top-p: the first prefix whose mass reaches top_p * total.
  int kept = k;
  double kept_mass = total;
  if (top_p < 1.0f) {
    if (threadIdx.x == 0) first = INT_MAX;
    __syncthreads();
    const double target = static_cast<double>(top_p) * total;
    double cum = offset;
    for (int j = lo; j < hi; ++j) {
      cum += weight(j);
      if (cum >= target) { atomicMin(&first, j); break; }
    }
    __syncthreads();
    if (first != INT_MAX) {
      kept = first + 1;
      // Mass of the kept prefix, summed the same way as the walk above.
      double c = 0.0, dummy = 0.0;
      const int khi = min(hi, kept);
      for (int j = lo; j < khi; ++j) c += weight(j);
      const double kept_offset = block_exclusive_scan(c, &dummy);
      (void)kept_offset;
      kept_mass = dummy;
    }
  }

  // Inverse CDF over the kept prefix: the first prefix whose mass exceeds u * kept_mass.
  __syncthreads();
  if (threadIdx.x == 0) first = INT_MAX;
  __syncthreads();
  const double target = u * kept_mass;
  double cum = offset;
  const int khi = min(hi, kept);
  for (int j = lo; j < khi; ++j) {
    cum += weight(j);
    if (cum > target) { atomicMin(&first, j); break; }
  }
  __syncthreads();
  if (threadIdx.x == 0) *out = order[first != INT_MAX ? first : kept - 1];
}

}  // namespace

size_t sampling_scratch_bytes(int n) { return layout(n).total; }

void argmax(const float* logits, int n, int32_t* out, SamplingScratch scratch, cudaStream_t stream) {
  const ScratchLayout l = layout(n);
  char* base = static_cast<char*>(scratch.data);
  float* bv = reinterpret_cast<float*>(base + l.best_val);
  int* bi = reinterpret_cast<int*>(base + l.best_idx);
  const int blocks = std::max(1, std::min(kArgmaxBlocks, (n + kArgmaxThreads * 4 - 1) / (kArgmaxThreads * 4)));
  argmax_partial_kernel<<<blocks, kArgmaxThreads, 0, stream>>>(logits, n, bv, bi);
  CUDA_CHECK_LAUNCH();
  argmax_final_kernel<<<1, 1024, 0, stream>>>(bv, bi, blocks, out);
  CUDA_CHECK_LAUNCH();
}

void sample(const float* logits, int n, float temperature, int top_k, float top_p, double u, int32_t* out,
            SamplingScratch scratch, cudaStream_t stream) {
  if (temperature <= 0.0f || top_k == 1) return argmax(logits, n, out, scratch, stream);
  const ScratchLayout l = layout(n);
  if (scratch.bytes < l.total) throw ArgumentRangeError("sampling scratch too small");
  char* base = static_cast<char*>(scratch.data);
  uint32_t* keys_in = reinterpret_cast<uint32_t*>(base + l.keys_in);
  uint32_t* keys_out = reinterpret_cast<uint32_t*>(base + l.keys_out);
  int32_t* ids_in = reinterpret_cast<int32_t*>(base + l.ids_in);
  int32_t* ids_out = reinterpret_cast<int32_t*>(base + l.ids_out);
  const int blocks = std::max(1, std::min(1024, (n + 255) / 256));
  sort_keys_kernel<<<blocks, 256, 0, stream>>>(logits, n, keys_in, ids_in);
  CUDA_CHECK_LAUNCH();
  size_t temp_bytes = l.temp_bytes;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(base + l.temp, temp_bytes, keys_in, keys_out, ids_in, ids_out, n, 0, 32,
                                             stream));
  sample_finish_kernel<<<1, kFinishThreads, 0, stream>>>(logits, n, ids_out, 1.0 / static_cast<double>(temperature),
                                                         top_k, top_p, u, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::model::cuda
