#include "helora/cuda/extract.cuh"

namespace tensafe::helora::cuda {

__global__ void extract_kernel(double* out, PlaintextPtrs pts, uint32_t count, uint32_t n, const uint32_t* index,
                               uint32_t per_pt, GarnerConsts g) {
  const uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= count * per_pt) return;
  const uint32_t p = t / per_pt, k = t % per_pt;
  const uint64_t* words = pts.p[p];
  const uint32_t j = index[k];
  uint64_t a[kMaxGarnerLimbs];
  for (uint32_t i = 0; i < g.limbs; ++i) {
    const uint64_t qi = g.br[i].q;
    uint64_t v = words[static_cast<size_t>(i) * n + j];
    for (uint32_t m = 0; m < i; ++m) {
      v = ckks::sub_mod(v, g.br[i].reduce64(a[m]), qi);
      v = g.br[i].mul(v, g.inv[i][m]);
    }
    a[i] = v;
  }
  const uint32_t last = g.limbs - 1;
  const bool negative = a[last] > (g.br[last].q >> 1);
  double v = 0;
  for (int i = static_cast<int>(g.limbs) - 1; i >= 0; --i) {
    const double digit = negative ? static_cast<double>(a[i]) - static_cast<double>(g.br[i].q - 1) : static_cast<double>(a[i]);
    v += digit * g.radix[i];
  }
  if (negative) v -= 1;
  out[t] = v * pts.inv_scale[p];
}

void extract_coefficients(double* out, const PlaintextPtrs& pts, uint32_t count, uint32_t n, const uint32_t* index,
                          uint32_t per_pt, const GarnerConsts& g, cudaStream_t s) {
  const uint32_t total = count * per_pt;
  if (total == 0) return;
  const uint32_t block = 128;
  extract_kernel<<<(total + block - 1) / block, block, 0, s>>>(out, pts, count, n, index, per_pt, g);
}

}  // namespace tensafe::helora::cuda
