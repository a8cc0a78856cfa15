// CUDA negacyclic NTT over all RNS limbs of a batch of polynomials, in two launches per
// direction. The math is exactly that of ckks/ntt_tables.h (SEAL convention: forward
// Cooley-Tukey with bit-reversed output and root_powers[m + i]; inverse Gentleman-Sande with
// inv_root_powers[h + i] and n^-1 folded into the last stage); outputs are fully reduced, so
// they equal the CPU transform word for word.
//
// Layout: `data` holds poly_count * limb_count polynomials of n words, polynomial y at
// data + y*n; its table limb is map.limb[y % limb_count] (LimbMap::range(b, c) = b .. b+c-1,
// or any list, e.g. the ciphertext primes followed by the special prime).
//
// Split: n = n1 * n2 (n1 = 2^floor(log n / 2)). The first log n1 forward stages connect words
// that differ only in their high index bits: a "column" kernel loads a few adjacent columns
// (stride n2) into shared memory and runs those stages there; the last log n2 stages work inside
// contiguous rows of n2 words: a "row" kernel does them and the final reduction. The inverse
// runs the same two kernels in the other order (rows first). Values between the kernels stay
// in the lazy range ([0, 4q) forward, [0, 2q) inverse).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace tensafe::ckks::cuda {

// Device pointers of the tables of every limb (limb l at offset l*n for the n-word tables,
// at l for the per-limb constants). Plain struct, passed to kernels by value.
struct NttTablesView {
  const uint64_t* root_powers = nullptr;
  const uint64_t* root_powers_shoup = nullptr;
  const uint64_t* inv_root_powers = nullptr;
  const uint64_t* inv_root_powers_shoup = nullptr;
  const uint64_t* modulus = nullptr;        // q per limb
  const uint64_t* inv_n = nullptr;          // n^-1 mod q per limb
  const uint64_t* inv_n_shoup = nullptr;
  const uint64_t* inv_n_w = nullptr;        // n^-1 * inv_root_powers[1] per limb
  const uint64_t* inv_n_w_shoup = nullptr;
  uint32_t log_n = 0;
  uint32_t limbs = 0;  // limbs in the tables
};

// Which table limb each polynomial of a launch uses (by value in the kernel arguments).
struct LimbMap {
  static constexpr uint32_t kMax = 64;
  uint32_t count = 0;
  uint8_t limb[kMax] = {};
  static LimbMap range(uint32_t base, uint32_t count) {
    LimbMap m;
    m.count = count;
    for (uint32_t i = 0; i < count && i < kMax; ++i) m.limb[i] = static_cast<uint8_t>(base + i);
    return m;
  }
};

// In-place forward NTT of poly_count * limb_count polynomials; inputs in [0, q) (or any
// value < 4q), outputs in [0, q). Enqueued on `stream`; no synchronisation.
void ntt_forward(uint64_t* data, const NttTablesView& tables, const LimbMap& map, uint32_t poly_count,
                 cudaStream_t stream);

// In-place inverse NTT (n^-1 included); inputs in [0, 2q), outputs in [0, q).
void ntt_inverse(uint64_t* data, const NttTablesView& tables, const LimbMap& map, uint32_t poly_count,
                 cudaStream_t stream);

}  // namespace tensafe::ckks::cuda
