// CKKS slot encoding and decoding on the GPU: the special FFT of ckks/encoder.h (same
// twiddles, computed on the host the way the CPU computes them, same butterfly formulas), the
// rounding of scaled coefficients into RNS residues (as CkksContext::round_to_rns) and the
// Garner composition back to centred doubles (as CkksContext::compose_to_double). Decoded
// values match the CPU within float rounding (FMA contraction may differ), not bit for bit.
//
// The N/2-point FFT uses the NTT's two-kernel split: S = N/2 = S1 * S2, a "rows" kernel for
// the stages inside contiguous rows of S2 points and a "columns" kernel for the others.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ckks/modarith.h"

namespace tensafe::ckks::cuda {

struct FftView {
  const double2* fwd_tw = nullptr;  // S - 1 twiddles, stage half-length h at offset h - 1
  const double2* inv_tw = nullptr;
  uint32_t log_n = 0;
};

// Garner tables over the ciphertext primes (stride = L): inv[i*L + k] = q_k^-1 mod q_i (k < i),
// with Shoup companions; radix[i] = q_0 ... q_{i-1} as a double.
struct ComposeView {
  const uint64_t* inv = nullptr;
  const uint64_t* inv_shoup = nullptr;
  const double* radix = nullptr;
  uint32_t stride = 0;
};

constexpr uint32_t kMaxComposeLimbs = 32;

// Slot j < count holds values[j % period] (period = count: plain; period = d: h replicated),
// slots >= count are zero. Output: coefficient-form RNS words over `limbs` primes of
// round(scale * special-IFFT(slots)) (caller then runs the forward NTT). scratch: N/2 double2.
void encode_slots(uint64_t* out, const double* values, uint32_t count, uint32_t period, double scale,
                  const Barrett* br, uint32_t limbs, const FftView& fft, double2* scratch, cudaStream_t s);

// values (device, count <= N doubles) -> RNS words of round(values * scale) (coefficient form).
void encode_coefficients(uint64_t* out, const double* values, uint32_t count, double scale, const Barrett* br,
                         uint32_t limbs, uint32_t log_n, cudaStream_t s);

// `polys` coefficient-form plaintexts (each limbs*n words, at words + p*stride) -> real slot
// values out[p*N/2 + j]. scratch: polys * N/2 double2.
void decode_slots(double* out, const uint64_t* words, uint64_t stride, uint32_t polys, uint32_t limbs,
                  double inv_scale, const Barrett* br, const ComposeView& garner, const FftView& fft,
                  double2* scratch, cudaStream_t s);

// Coefficient-form plaintext -> n centred doubles times inv_scale.
void decode_coefficients(double* out, const uint64_t* words, uint32_t limbs, double inv_scale, const Barrett* br,
                         const ComposeView& garner, uint32_t log_n, cudaStream_t s);

// Segment sums of decoded slots: sums[p*r + i] = sum_{j < d} slots[p*N/2 + i*d + j] for
// i < per_poly (the HE-LoRA extraction, one block per sum).
void segment_sums(double* sums, const double* slots, uint32_t polys, uint32_t per_poly, uint32_t d, uint32_t log_n,
                  cudaStream_t s);

}  // namespace tensafe::ckks::cuda
