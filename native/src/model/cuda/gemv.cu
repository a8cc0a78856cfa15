// Batch-1 matrix-vector products y = W x with f16/bf16 weights and float32 accumulation: the
// memory-bound core of the decode step (every weight byte is read once per token).
//
// Vectorised kernel (k % 8 == 0): the k inputs form C = k/8 chunks of 8 (16 bytes of weights).
// A block of T threads owns ROWS rows at a time; thread t handles chunks t, t+T, ... (MAXJ of
// them), so one row's 16-byte loads are contiguous across the block (fully coalesced) and a
// thread has ROWS*MAXJ independent loads in flight before its first FMA. The thread's slice of x
// (and the RMSNorm that precedes q/k/v and gate/up) is computed once per block and kept in
// registers; blocks are persistent (grid = what fits on the chip) and loop over row groups.
// Partial sums are reduced with warp shuffles then through shared memory (double-buffered so
// one barrier per group suffices). Epilogues (bias, residual add, SwiGLU) are fused so that no
// intermediate vector makes an extra pass over memory.
#include <cuda_fp16.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>

#include "cuda/cuda_check.h"
#include "model/cuda/device_math.cuh"
#include "model/cuda/kernels.h"
#include "model/cuda/pdl.h"

namespace tensafe::model::cuda {
namespace {

constexpr int kMaxThreads = 256;
constexpr int kMaxWarps = kMaxThreads / 32;

template <DType WT>
__device__ __forceinline__ float load1(const uint16_t* p) {
  return half_to_float<WT>(*p);
}

// Block-wide sum for the RMSNorm prologue (all threads get the result).
__device__ __forceinline__ float block_sum(float v, float* scratch /* kMaxWarps */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read from an earlier call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float s = 0.0f;
  for (int i = 0; i < nwarps; ++i) s += scratch[i];
  return s;
}

template <DType WT, int ROWS, int MAXJ, int EPI>
__global__ void __launch_bounds__(kMaxThreads) gemv_vec_kernel(const uint16_t* __restrict__ w, int n, int k,
                                                               const float* __restrict__ x,
                                                               const float* __restrict__ norm_w, float eps,
                                                               const float* __restrict__ bias, float* y,
                                                               int groups) {
  static_assert(EPI != static_cast<int>(GemvEpilogue::SwiGLU) || ROWS % 2 == 0, "SwiGLU pairs rows");
  constexpr bool kSwiGLU = EPI == static_cast<int>(GemvEpilogue::SwiGLU);
  constexpr int kOutPerGroup = kSwiGLU ? ROWS / 2 : ROWS;
  __shared__ float red[2][ROWS][kMaxWarps];
  __shared__ float scratch[kMaxWarps];
  const int C = k >> 3;
  const int T = blockDim.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nwarps = T >> 5;

  // The weights of group g: ROWS rows x MAXJ chunks of 16 bytes per thread. Out-of-range rows
  // and chunks load a clamped (valid) address instead of branching, so all loads issue back to
  // back: a chunk past C meets x == 0, a row past n is never stored.
  uint4 wv[ROWS][MAXJ];
  auto load_group = [&](int g) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      int out, row;
      if constexpr (kSwiGLU) {
        out = min(g * kOutPerGroup + (r % kOutPerGroup), n - 1);
        row = r < kOutPerGroup ? out : n + out;
      } else {
        out = min(g * ROWS + r, n - 1);
        row = out;
      }
      const uint16_t* wrow = w + static_cast<size_t>(row) * static_cast<size_t>(k);
#pragma unroll
      for (int j = 0; j < MAXJ; ++j) wv[r][j] = ld_stream(wrow + 8 * min(tid + j * T, C - 1));
    }
  };

  // Weights depend on no earlier kernel: start streaming them before waiting for it.
  pdl_trigger();
  int g = blockIdx.x;
  load_group(g);
  pdl_wait();

  // This thread's slice of x, normalised when asked.
  float xv[MAXJ][8];
  const float ss = load_x_slice<MAXJ>(xv, x, tid, T, C, MAXJ);
  if (norm_w != nullptr) {
    const float r = rsqrtf(block_sum(ss, scratch) / static_cast<float>(k) + eps);
    scale_x_slice<MAXJ>(xv, norm_w, r, tid, T, C, MAXJ);
  }

  int parity = 0;
  for (; g < groups; g += gridDim.x, parity ^= 1) {
    float acc[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      acc[r] = 0.0f;
#pragma unroll
      for (int j = 0; j < MAXJ; ++j) {
        float f[8];
        unpack8<WT>(wv[r][j], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[r] = fmaf(f[e], xv[j][e], acc[r]);
      }
    }
    // Next group's loads go out before this group's reduction (software pipelining).
    if (g + static_cast<int>(gridDim.x) < groups) load_group(g + gridDim.x);
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[r] = warp_sum(acc[r]);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < ROWS; ++r) red[parity][r][warp] = acc[r];
    }
    __syncthreads();
    if (tid < kOutPerGroup) {
      const int out = g * kOutPerGroup + tid;
      if (out < n) {
        float s = 0.0f;
        for (int i = 0; i < nwarps; ++i) s += red[parity][tid][i];
        if constexpr (kSwiGLU) {
          float u = 0.0f;
          for (int i = 0; i < nwarps; ++i) u += red[parity][tid + kOutPerGroup][i];
          y[out] = silu(s) * u;
        } else if constexpr (EPI == static_cast<int>(GemvEpilogue::Accumulate)) {
          y[out] += s;
        } else {
          y[out] = s + (bias != nullptr ? bias[out] : 0.0f);
        }
      }
    }
  }
}

// Any shape: one warp per output, scalar loads. Used only where k % 8 != 0 or k is huge.
template <DType WT, int EPI>
__global__ void gemv_generic_kernel(const uint16_t* __restrict__ w, int n, int k, const float* __restrict__ x,
                                    const float* __restrict__ norm_w, float eps, const float* __restrict__ bias,
                                    float* y) {
  __shared__ float scratch[kMaxWarps];
  pdl_trigger();
  pdl_wait();
  float r = 1.0f;
  if (norm_w != nullptr) {
    float ss = 0.0f;
    for (int i = threadIdx.x; i < k; i += blockDim.x) ss = fmaf(x[i], x[i], ss);
    r = rsqrtf(block_sum(ss, scratch) / static_cast<float>(k) + eps);
  }
  const int lane = threadIdx.x & 31;
  const int warps_total = gridDim.x * (blockDim.x >> 5);
  for (int out = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); out < n; out += warps_total) {
    const bool swiglu = EPI == static_cast<int>(GemvEpilogue::SwiGLU);
    float s = 0.0f, u = 0.0f;
    const uint16_t* wg = w + static_cast<size_t>(out) * k;
    const uint16_t* wu = w + static_cast<size_t>(n + out) * k;
    for (int i = lane; i < k; i += 32) {
      const float xi = norm_w != nullptr ? (x[i] * r) * norm_w[i] : x[i];
      s = fmaf(load1<WT>(wg + i), xi, s);
      if (swiglu) u = fmaf(load1<WT>(wu + i), xi, u);
    }
    s = warp_sum(s);
    if (swiglu) u = warp_sum(u);
    if (lane == 0) {
      if (swiglu) y[out] = silu(s) * u;
      else if (EPI == static_cast<int>(GemvEpilogue::Accumulate)) y[out] += s;
      else y[out] = s + (bias != nullptr ? bias[out] : 0.0f);
    }
  }
}

int sm_count() {
  static int count = [] {
    int dev = 0, c = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, dev));
    return c;
  }();
  return count;
}

// Resident blocks per SM of a kernel at a block size (cached: the occupancy query is a host call).
int blocks_per_sm(const void* fn, int threads) {
  static std::mutex mu;
  static std::unordered_map<const void*, std::unordered_map<int, int>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& per = cache[fn];
  auto it = per.find(threads);
  if (it != per.end()) return it->second;
  int nb = 0;
  CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, fn, threads, 0));
  nb = std::max(nb, 1);
  per[threads] = nb;
  return nb;
}

template <DType WT, int ROWS, int MAXJ, int EPI>
void launch_vec(const GemvArgs& a, int threads, cudaStream_t stream) {
  constexpr int out_per_group = EPI == static_cast<int>(GemvEpilogue::SwiGLU) ? ROWS / 2 : ROWS;
  const int groups = (a.n + out_per_group - 1) / out_per_group;
  auto fn = gemv_vec_kernel<WT, ROWS, MAXJ, EPI>;
  const int grid = std::min(groups, blocks_per_sm(reinterpret_cast<const void*>(fn), threads) * sm_count());
  launch_pdl(fn, grid, threads, 0, stream, a.w, a.n, a.k, a.x, a.norm_w, a.eps, a.bias, a.y, groups);
}

// Rows per group: enough independent 16-byte loads per thread (ROWS * MAXJ ~ 8-12) to cover
// the memory latency, without spilling registers.
template <DType WT, int EPI>
void dispatch_vec(const GemvArgs& a, int maxj, int threads, cudaStream_t stream) {
  switch (maxj) {
    case 1: return launch_vec<WT, 8, 1, EPI>(a, threads, stream);
    case 2: return launch_vec<WT, 4, 2, EPI>(a, threads, stream);
    case 3: return launch_vec<WT, 4, 3, EPI>(a, threads, stream);
    case 4: return launch_vec<WT, 2, 4, EPI>(a, threads, stream);
    case 5: return launch_vec<WT, 2, 5, EPI>(a, threads, stream);
    case 6: return launch_vec<WT, 2, 6, EPI>(a, threads, stream);
    case 7: return launch_vec<WT, 2, 7, EPI>(a, threads, stream);
    default: return launch_vec<WT, 2, 8, EPI>(a, threads, stream);
  }
}

template <DType WT, int EPI>
void launch_generic(const GemvArgs& a, cudaStream_t stream) {
  const int threads = 256;
  const int grid = std::max(1, std::min((a.n + 7) / 8, 4 * sm_count()));
  launch_pdl(gemv_generic_kernel<WT, EPI>, grid, threads, 0, stream, a.w, a.n, a.k, a.x, a.norm_w, a.eps, a.bias, a.y);
}

template <DType WT>
void gemv_typed(const GemvArgs& a, cudaStream_t stream) {
  const int C = a.k / 8;
  const int maxj = (C + kMaxThreads - 1) / kMaxThreads;
  const bool aligned = (reinterpret_cast<uintptr_t>(a.w) % 16 == 0) && (reinterpret_cast<uintptr_t>(a.x) % 16 == 0) &&
                       (a.norm_w == nullptr || reinterpret_cast<uintptr_t>(a.norm_w) % 16 == 0);
  if (a.k % 8 != 0 || maxj > 8 || !aligned) {
    switch (a.epilogue) {
      case GemvEpilogue::Store: return launch_generic<WT, 0>(a, stream);
      case GemvEpilogue::Accumulate: return launch_generic<WT, 1>(a, stream);
      case GemvEpilogue::SwiGLU: return launch_generic<WT, 2>(a, stream);
    }
    return;
  }
  const int threads = std::min(kMaxThreads, ((C + maxj - 1) / maxj + 31) / 32 * 32);
  switch (a.epilogue) {
    case GemvEpilogue::Store: return dispatch_vec<WT, 0>(a, maxj, threads, stream);
    case GemvEpilogue::Accumulate: return dispatch_vec<WT, 1>(a, maxj, threads, stream);
    case GemvEpilogue::SwiGLU: return dispatch_vec<WT, 2>(a, maxj, threads, stream);
  }
}

}  // namespace

void gemv(const GemvArgs& a, cudaStream_t stream) {
  if (a.n <= 0 || a.k <= 0) return;
  if (a.wtype == DType::BF16) gemv_typed<DType::BF16>(a, stream);
  else gemv_typed<DType::F16>(a, stream);
}

}  // namespace tensafe::model::cuda
