// Matrix products of the batched prefill: C[m, n] (float32) = A[m, k] . B[n, k]^T, A the
// activations of m tokens and B a weight matrix, both f16 or bf16 with float32 accumulation;
// `accumulate` adds into C (the residual stream) instead of storing.
//
// Two implementations, the same function:
//  * cuBLAS (cublasGemmEx, CUBLAS_COMPUTE_32F), loaded at run time (cublas_loader.h);
//  * our own tensor-core kernel, used when cuBLAS is absent or TENSAFE_GEMM=own: 128x128 tiles,
//    32-deep k slices, 8 warps of 64x32 each, mma.sync m16n8k16 fed by ldmatrix from shared
//    memory rows padded by 16 bytes (conflict-free), a 3-stage cp.async pipeline whose
//    out-of-range chunks are zero-filled. Rows of k % 8 != 0 or unaligned pointers take a
//    simple one-thread-per-output kernel.
// Both are deterministic (no split-k atomics): the same inputs give the same bits every run.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "cuda/cuda_check.h"
#include "cuda/func_attr.h"
#include "model/cuda/cublas_loader.h"
#include "model/cuda/device_math.cuh"
#include "model/cuda/kernels.h"
#include "model/cuda/mma.cuh"

namespace tensafe::model::cuda {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 32, kStages = 3;
constexpr int kLds = kBK + 8;  // shared row stride in 16-bit elements (80 bytes: ldmatrix rows hit distinct banks)
constexpr int kGemmThreads = 256;
constexpr size_t kGemmSmem = static_cast<size_t>(kStages) * (kBM + kBN) * kLds * sizeof(uint16_t);

template <DType T>
__global__ void __launch_bounds__(kGemmThreads) gemm_mma_kernel(const uint16_t* __restrict__ A,
                                                                const uint16_t* __restrict__ B, float* __restrict__ C,
                                                                int m, int n, int k, int ldc, int accumulate) {
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t* sA = smem;                               // [stages][kBM][kLds]
  uint16_t* sB = smem + kStages * kBM * kLds;        // [stages][kBN][kLds]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 2, wn = warp & 3;           // warp tile: rows wm*64.., cols wn*32..
  const int row0 = blockIdx.y * kBM, col0 = blockIdx.x * kBN;
  const int ktiles = (k + kBK - 1) / kBK;

  // Tile kt into stage `slot`: 128 rows x 4 chunks of 16 bytes for A and for B, 2 each per thread.
  auto load_tile = [&](int slot, int kt) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int idx = tid + i * kGemmThreads;
      const int r = idx >> 2, c = idx & 3;
      const int gk = kt * kBK + c * 8;
      const int ar = row0 + r, br = col0 + r;
      const bool av = ar < m && gk < k, bv = br < n && gk < k;
      cp_async16(sA + (slot * kBM + r) * kLds + c * 8, A + (av ? static_cast<size_t>(ar) * k + gk : 0), av);
      cp_async16(sB + (slot * kBN + r) * kLds + c * 8, B + (bv ? static_cast<size_t>(br) * k + gk : 0), bv);
    }
  };

  float acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ktiles) load_tile(s, s);
    cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile kt landed for everyone; stage (kt-1) % kStages is free again
    if (kt + kStages - 1 < ktiles) load_tile((kt + kStages - 1) % kStages, kt + kStages - 1);
    cp_async_commit();
    const int slot = kt % kStages;
    const uint16_t* a_s = sA + slot * kBM * kLds;
    const uint16_t* b_s = sB + slot * kBN * kLds;
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
        ldmatrix_x4(af[mi], a_s + (wm * 64 + mi * 16 + (lane & 15)) * kLds + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) {
        uint32_t r[4];
        ldmatrix_x4(r, b_s + (wn * 32 + nj * 16 + (lane >> 4) * 8 + (lane & 7)) * kLds + kk * 16 + ((lane >> 3) & 1) * 8);
        bf[2 * nj][0] = r[0];
        bf[2 * nj][1] = r[1];
        bf[2 * nj + 1][0] = r[2];
        bf[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) mma_16816<T>(acc[mi][ni], af[mi], bf[ni]);
    }
  }
  cp_async_wait<0>();

  // Accumulator layout (m16n8): e0,e1 at (lane/4, 2*(lane%4) + 0/1), e2,e3 eight rows below.
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int r = row0 + wm * 64 + mi * 16 + (lane >> 2) + half * 8;
      if (r >= m) continue;
      float* crow = C + static_cast<size_t>(r) * ldc;
#pragma unroll
      for (int ni = 0; ni < 4; ++ni) {
        const int c = col0 + wn * 32 + ni * 8 + (lane & 3) * 2;
        const float v0 = acc[mi][ni][2 * half], v1 = acc[mi][ni][2 * half + 1];
        if (c < n) crow[c] = accumulate ? crow[c] + v0 : v0;
        if (c + 1 < n) crow[c + 1] = accumulate ? crow[c + 1] + v1 : v1;
      }
    }
  }
}

// Any shape: one thread per output, float32 accumulation in k order.
template <DType T>
__global__ void gemm_simple_kernel(const uint16_t* __restrict__ A, const uint16_t* __restrict__ B, float* __restrict__ C,
                                   int m, int n, int k, int ldc, int accumulate) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const int r = blockIdx.y;
  if (c >= n || r >= m) return;
  const uint16_t* a = A + static_cast<size_t>(r) * k;
  const uint16_t* b = B + static_cast<size_t>(c) * k;
  float s = 0.0f;
  for (int i = 0; i < k; ++i) s = fmaf(half_to_float<T>(a[i]), half_to_float<T>(b[i]), s);
  float* out = C + static_cast<size_t>(r) * ldc + c;
  *out = accumulate ? *out + s : s;
}

template <DType T>
void launch_own(const GemmArgs& g, cudaStream_t stream) {
  const bool aligned = reinterpret_cast<uintptr_t>(g.a) % 16 == 0 && reinterpret_cast<uintptr_t>(g.b) % 16 == 0;
  if (g.k % 8 != 0 || !aligned) {
    const dim3 grid((g.n + 127) / 128, g.m);
    gemm_simple_kernel<T><<<grid, 128, 0, stream>>>(g.a, g.b, g.c, g.m, g.n, g.k, g.ldc, g.accumulate ? 1 : 0);
    CUDA_CHECK_LAUNCH();
    return;
  }
  ::tensafe::cuda::allow_dynamic_smem(reinterpret_cast<const void*>(gemm_mma_kernel<T>), static_cast<int>(kGemmSmem));
  const dim3 grid((g.n + kBN - 1) / kBN, (g.m + kBM - 1) / kBM);
  gemm_mma_kernel<T><<<grid, kGemmThreads, kGemmSmem, stream>>>(g.a, g.b, g.c, g.m, g.n, g.k, g.ldc,
                                                                g.accumulate ? 1 : 0);
  CUDA_CHECK_LAUNCH();
}

void gemm_cublas(const GemmArgs& g, CublasHandle& handle, cudaStream_t stream) {
  const CublasApi* api = cublas_api();
  cublasHandle_t h = handle.get(stream);
  // Column-major view: C^T (n x m, ldc) = B (n x k: row-major [n][k] read transposed) . A^T (k x m).
  const int type = g.type == DType::BF16 ? kCudaR16BF : kCudaR16F;
  const float alpha = 1.0f, beta = g.accumulate ? 1.0f : 0.0f;
  cublas_check(api->gemm_ex(h, kCublasOpT, kCublasOpN, g.n, g.m, g.k, &alpha, g.b, type, g.k, g.a, type, g.k, &beta, g.c,
                            kCudaR32F, g.ldc, kCublasCompute32F, kCublasGemmDefault),
               "cublasGemmEx");
}

}  // namespace

GemmImpl gemm_impl_from_env() {
  const char* e = std::getenv("TENSAFE_GEMM");
  const std::string v = e != nullptr ? e : "";
  if (v == "own") return GemmImpl::Own;
  if (v == "cublas") return GemmImpl::Cublas;
  return GemmImpl::Auto;
}

GemmImpl resolve_gemm_impl(GemmImpl wanted) {
  if (wanted == GemmImpl::Own) return GemmImpl::Own;
  if (cublas_api() != nullptr) return GemmImpl::Cublas;
  if (wanted == GemmImpl::Cublas)
    throw BackendUnavailableError("TENSAFE_GEMM=cublas but cuBLAS cannot be loaded: " + cublas_unavailable_reason());
  return GemmImpl::Own;
}

void gemm(const GemmArgs& g, GemmImpl impl, CublasHandle* handle, cudaStream_t stream) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) throw ArgumentRangeError("gemm: k must be positive");
  if (g.ldc < g.n) throw ArgumentRangeError("gemm: ldc must be at least n");
  if (impl == GemmImpl::Cublas) {
    if (handle == nullptr) throw ArgumentTypeError("gemm: the cuBLAS path needs a handle");
    gemm_cublas(g, *handle, stream);
    return;
  }
  if (g.type == DType::BF16) launch_own<DType::BF16>(g, stream);
  else launch_own<DType::F16>(g, stream);
}

}  // namespace tensafe::model::cuda
