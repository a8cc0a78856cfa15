// Small kernels of the decode step (embedding gather, the final RMSNorm, a vector add) and the
// on-device generator of synthetic weights (model/synthetic.h: a pure function of seed, tensor
// id and element index, so the GPU fills 3 GB in milliseconds and gets the CPU's exact values).
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/cuda_check.h"
#include "model/cuda/kernels.h"
#include "model/cuda/pdl.h"
#include "model/synthetic.h"

namespace tensafe::model::cuda {
namespace {

__device__ __forceinline__ float to_f(uint16_t u, DType t) {
  return t == DType::BF16 ? __uint_as_float(static_cast<uint32_t>(u) << 16) : __half2float(__ushort_as_half(u));
}

__global__ void embed_kernel(const uint16_t* __restrict__ embed, DType wtype, const int32_t* __restrict__ tokens,
                             const int* __restrict__ pos, int d, float* __restrict__ x) {
  pdl_trigger();
  pdl_wait();
  const int32_t token = tokens[*pos];
  const uint16_t* row = embed + static_cast<size_t>(token) * d;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < d; i += gridDim.x * blockDim.x) x[i] = to_f(row[i], wtype);
}

__global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w, float eps, int d,
                               float* __restrict__ out, int* advance_pos) {
  __shared__ float red[32];
  pdl_trigger();
  pdl_wait();
  float ss = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) ss = fmaf(x[i], x[i], ss);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < static_cast<int>((blockDim.x + 31) >> 5); ++i) total += red[i];
  const float r = rsqrtf(total / static_cast<float>(d) + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x) out[i] = (x[i] * r) * w[i];
  // The step's last kernel moves the position on; every reader of *pos ran before it.
  if (advance_pos != nullptr && threadIdx.x == 0) *advance_pos += 1;
}

__global__ void add_kernel(float* __restrict__ y, const float* __restrict__ x, int n) {
  pdl_trigger();
  pdl_wait();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] += x[i];
}

__global__ void swiglu_kernel(const float* __restrict__ gu, int n, float* __restrict__ act) {
  pdl_trigger();
  pdl_wait();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float g = gu[i];
    act[i] = g / (1.0f + __expf(-g)) * gu[n + i];
  }
}

__global__ void synth_kernel(void* out, DType wtype, size_t count, uint64_t seed, uint32_t tensor_id, float center,
                             float half_width) {
  const synthetic::Scale sc{center, half_width};
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint16_t b = synthetic::value_bf16(seed, tensor_id, i, sc);
    if (wtype == DType::BF16) {
      static_cast<uint16_t*>(out)[i] = b;
    } else if (wtype == DType::F16) {
      static_cast<uint16_t*>(out)[i] = float_to_f16(bf16_to_float(b));
    } else {
      static_cast<float*>(out)[i] = bf16_to_float(b);
    }
  }
}

__global__ void to_float_kernel(const void* in, DType from, size_t count, float* out) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = from == DType::F32 ? static_cast<const float*>(in)[i] : to_f(static_cast<const uint16_t*>(in)[i], from);
  }
}

int grid_for(size_t count, int threads) {
  return static_cast<int>(std::min<size_t>((count + threads - 1) / threads, 65536));
}

}  // namespace

void embed_lookup(const uint16_t* embed, DType wtype, const int32_t* tokens, const int* pos, int d, float* x,
                  cudaStream_t stream) {
  const int threads = 256;
  launch_pdl(embed_kernel, std::max(1, std::min((d + threads - 1) / threads, 64)), threads, 0, stream, embed, wtype,
             tokens, pos, d, x);
}

void rmsnorm(const float* x, const float* w, float eps, int d, float* out, int* advance_pos, cudaStream_t stream) {
  launch_pdl(rmsnorm_kernel, 1, 1024, 0, stream, x, w, eps, d, out, advance_pos);
}

void add_inplace(float* y, const float* x, int n, cudaStream_t stream) {
  if (n <= 0) return;
  launch_pdl(add_kernel, grid_for(static_cast<size_t>(n), 256), 256, 0, stream, y, x, n);
}

void swiglu(const float* gu, int n, float* act, cudaStream_t stream) {
  if (n <= 0) return;
  launch_pdl(swiglu_kernel, grid_for(static_cast<size_t>(n), 256), 256, 0, stream, gu, n, act);
}

void synth_fill(void* out, DType wtype, size_t count, uint64_t seed, uint32_t tensor_id, float center,
                float half_width, cudaStream_t stream) {
  if (count == 0) return;
  synth_kernel<<<grid_for(count, 256), 256, 0, stream>>>(out, wtype, count, seed, tensor_id, center, half_width);
  CUDA_CHECK_LAUNCH();
}

void to_float(const void* in, DType from, size_t count, float* out, cudaStream_t stream) {
  if (count == 0) return;
  to_float_kernel<<<grid_for(count, 256), 256, 0, stream>>>(in, from, count, out);
  CUDA_CHECK_LAUNCH();
}

}  // namespace tensafe::model::cuda
