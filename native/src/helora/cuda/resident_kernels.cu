#include "ckks/chacha20.h"
#include "helora/cuda/resident_kernels.cuh"

namespace tensafe::helora::cuda {
namespace {

constexpr int kThreads = 1024;

struct Key8 {
  uint32_t k[8];
};

__global__ void prepare_kernel(double* x, const float* hidden, int d, bool dp, double clip_norm, double sigma, Key8 key,
                               uint64_t stream_id) {
  __shared__ double partial[kThreads];
  const int t = threadIdx.x;
  double ss = 0;
  for (int i = t; i < d; i += kThreads) {
    const double v = hidden[i];
    ss += v * v;
  }
  partial[t] = ss;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (t < w) partial[t] += partial[t + w];
    __syncthreads();
  }
  const double norm = sqrt(partial[0]);
  const double f = dp && norm > clip_norm ? clip_norm / norm : 1.0;
  const int pairs = (d + 1) / 2;
  for (int p = t; p < pairs; p += kThreads) {
    double z0 = 0, z1 = 0;
    if (dp && sigma > 0) {
      // words 2p, 2p+1 of the stream: block (2p)/8, 64-bit words k and k+1 of that block
      const uint64_t w = 2ull * p;
      uint32_t o[16];
      ckks::chacha20_block(key.k, stream_id, w / 8, o);
      const int k = static_cast<int>(w % 8);
      const uint64_t w0 = static_cast<uint64_t>(o[2 * k]) | (static_cast<uint64_t>(o[2 * k + 1]) << 32);
      const uint64_t w1 = static_cast<uint64_t>(o[2 * k + 2]) | (static_cast<uint64_t>(o[2 * k + 3]) << 32);
      const double u1 = static_cast<double>((w0 >> 11) + 1) * (1.0 / 9007199254740992.0);
      const double u2 = static_cast<double>(w1 >> 11) * (1.0 / 9007199254740992.0);
      const double r = sqrt(-2.0 * log(u1));
      double sn, cs;
      sincospi(2.0 * u2, &sn, &cs);
      z0 = r * cs;
      z1 = r * sn;
    }
    const int i0 = 2 * p, i1 = 2 * p + 1;
    x[i0] = static_cast<double>(hidden[i0]) * f + sigma * z0;
    if (i1 < d) x[i1] = static_cast<double>(hidden[i1]) * f + sigma * z1;
  }
}

__global__ void lora_b_kernel(float* delta, const double* y, const float* b, int out_dim, int rank, int products, int per,
                              int per_chunk, float scaling) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= out_dim) return;
  const float* br = b + static_cast<size_t>(o) * rank;
  double s = 0;
  for (int p = 0; p < products; ++p)
    for (int k = 0; k < per; ++k) {
      const int row = (p % per_chunk) * per + k;  // chunks of a long input add into the same rows
      if (row < rank) s += static_cast<double>(br[row]) * y[p * per + k];
    }
  delta[o] = static_cast<float>(scaling * s);
}

}  // namespace

void prepare_input(double* x, const float* hidden, int d, bool dp, double clip_norm, double sigma, const uint32_t* key,
                   uint64_t stream_id, cudaStream_t s) {
  Key8 k;
  for (int i = 0; i < 8; ++i) k.k[i] = key[i];
  prepare_kernel<<<1, kThreads, 0, s>>>(x, hidden, d, dp, clip_norm, dp ? sigma : 0.0, k, stream_id);
}

void lora_b(float* delta, const double* y, const float* b, int out_dim, int rank, int products, int per, float scaling,
            cudaStream_t s) {
  const int per_chunk = (rank + per - 1) / per;
  lora_b_kernel<<<(out_dim + 255) / 256, 256, 0, s>>>(delta, y, b, out_dim, rank, products, per, per_chunk, scaling);
}

}  // namespace tensafe::helora::cuda
