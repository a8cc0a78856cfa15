// Plaintext LoRA on the device, one token (kernels.h: lora_apply): y (+)= scaling * B (A x).
// Two launches: A x, one block per rank row, then B (A x), one warp per output. Both accumulate
// in float64 (FMA in a fixed order, a fixed reduction tree: the result does not depend on the
// launch, run to run); A x stays float64 between them, and each output is rounded to float32
// once, as the host paths do (float(double(scaling) * sum)).
#include <cmath>
#include <string>

#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda {
namespace {

constexpr int kDownThreads = 256;
constexpr int kUpThreads = 256;  // 8 outputs a block

__device__ __forceinline__ double warp_sum(double s) {
  for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
  return s;
}

// ax[r] = sum_j a[r, j] x[j]: block r, each thread a strided partial, then warps, then warp 0.
__global__ void __launch_bounds__(kDownThreads) lora_down_kernel(const float* __restrict__ a, const float* __restrict__ x,
                                                                 int in_dim, double* __restrict__ ax) {
  const float* row = a + static_cast<size_t>(blockIdx.x) * in_dim;
  double s = 0.0;
  for (int j = threadIdx.x; j < in_dim; j += kDownThreads)
    s = fma(static_cast<double>(row[j]), static_cast<double>(x[j]), s);
  s = warp_sum(s);
  __shared__ double part[kDownThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) part[warp] = s;
  __syncthreads();
  if (warp == 0) {
    s = warp_sum(lane < kDownThreads / 32 ? part[lane] : 0.0);
    if (lane == 0) ax[blockIdx.x] = s;
  }
}

// y[o] (+)= float(scaling * sum_r b[o, r] ax[r]): one warp per output, lanes over the rank.
__global__ void __launch_bounds__(kUpThreads) lora_up_kernel(const float* __restrict__ b, const double* __restrict__ ax,
                                                             int rank, int out_dim, double scaling, bool accumulate,
                                                             float* __restrict__ y) {
  const int o = static_cast<int>((static_cast<size_t>(blockIdx.x) * kUpThreads + threadIdx.x) / 32);
  const int lane = threadIdx.x % 32;
  if (o >= out_dim) return;  // the whole warp (o is uniform across it)
  const float* row = b + static_cast<size_t>(o) * rank;
  double s = 0.0;
  for (int r = lane; r < rank; r += 32) s = fma(static_cast<double>(row[r]), ax[r], s);
  s = warp_sum(s);
  if (lane == 0) {
    const float v = static_cast<float>(scaling * s);
    y[o] = accumulate ? y[o] + v : v;
  }
}

void check_range(bool ok, const char* what, int lo, int hi, int got) {
  if (!ok)
    throw ArgumentRangeError(std::string("lora_apply: ") + what + " must be in [" + std::to_string(lo) + ", " +
                             std::to_string(hi) + "], got " + std::to_string(got));
}

}  // namespace

void lora_apply(const LoraArgs& p, cudaStream_t stream) {
  check_range(p.rank >= 1 && p.rank <= kLoraMaxRank, "rank", 1, kLoraMaxRank, p.rank);
  check_range(p.in_dim >= 1 && p.in_dim <= kLoraMaxDim, "in_dim", 1, kLoraMaxDim, p.in_dim);
  check_range(p.out_dim >= 1 && p.out_dim <= kLoraMaxDim, "out_dim", 1, kLoraMaxDim, p.out_dim);
  if (!std::isfinite(p.scaling)) throw ArgumentRangeError("lora_apply: scaling must be finite");
  const char* null_arg = !p.a ? "a" : !p.b ? "b" : !p.x ? "x" : !p.y ? "y" : !p.ax ? "ax" : nullptr;
  if (null_arg) throw ArgumentTypeError(std::string("lora_apply: ") + null_arg + " must not be null");
  lora_down_kernel<<<p.rank, kDownThreads, 0, stream>>>(p.a, p.x, p.in_dim, p.ax);
  CUDA_CHECK_LAUNCH();
  const int warps_per_block = kUpThreads / 32;
  lora_up_kernel<<<(p.out_dim + warps_per_block - 1) / warps_per_block, kUpThreads, 0, stream>>>(
      p.b, p.ax, p.rank, p.out_dim, static_cast<double>(p.scaling), p.accumulate, p.y);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::model::cuda
