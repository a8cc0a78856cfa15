// Negacyclic number-theoretic transform tables and the CPU transforms.
//
// THE MATH (the CUDA backend uploads these tables and must match it word for word):
//   q      an odd prime, q = 1 (mod 2n), q < 2^61; n a power of two.
//   psi    the MINIMAL primitive 2n-th root of unity mod q: the smallest integer in [2, q) with
//          psi^n = -1 (mod q). (Every primitive 2n-th root is g^k, k odd, for any one g; we
//          take the least of them, so the tables depend only on (n, q).)
//   bitrev(k) reverses the log2(n) low bits of k.
//   root_powers[k]     = psi^bitrev(k) mod q,            k in [0, n)   (root_powers[0] = 1)
//   inv_root_powers[k] = psi^(-bitrev(k)) mod q,         k in [0, n)
//   *_shoup[k]         = floor(value * 2^64 / q)         (Shoup companions)
//   inv_n              = n^(-1) mod q
//   inv_n_w            = n^(-1) * inv_root_powers[1] mod q (n^-1 folded into the last inverse stage)
//
// Forward transform (in place, input in natural order, each word in [0, q)): for a(X) in
// Z_q[X]/(X^n + 1) it computes A[bitrev(i)] = a(psi^(2i+1)), i.e. evaluations at the odd powers
// of psi, output in BIT-REVERSED order (SEAL's convention). Cooley-Tukey stages m = 1, 2, 4, ...,
// n/2 with t = n/(2m); butterfly group i in [0, m) uses W = root_powers[m + i] on the pairs
// (j, j + t), j in [2it, 2it + t):  X' = X + W*Y,  Y' = X - W*Y.
// Inverse transform (Gentleman-Sande, stages h = n/2, ..., 1 with t = n/(2h)), group i uses
// W = inv_root_powers[h + i]:  X' = X + Y,  Y' = (X - Y) * W; the last stage (h = 1) multiplies
// by inv_n and inv_n_w instead, so inverse(forward(a)) = a with no separate scaling pass.
// Inside, Harvey's lazy butterflies keep values in [0, 4q) (forward) / [0, 2q) (inverse); both
// transforms return every word fully reduced in [0, q).
#pragma once
#include <cstdint>
#include <vector>

#include "ckks/modarith.h"

namespace tensafe::ckks {

class NttTables {
 public:
  // Throws ArgumentRangeError when n is not a power of two in [2, 2^17], or q is not a prime
  // = 1 (mod 2n) below 2^61. (The public range n in [2^12, 2^16] is enforced by the bindings.)
  NttTables(std::uint64_t n, std::uint64_t q);

  std::uint64_t n() const { return n_; }
  int log_n() const { return log_n_; }
  std::uint64_t modulus() const { return q_; }
  const Barrett& barrett() const { return barrett_; }
  std::uint64_t psi() const { return psi_; }
  std::uint64_t inv_psi() const { return inv_psi_; }

  const std::vector<std::uint64_t>& root_powers() const { return root_powers_; }
  const std::vector<std::uint64_t>& root_powers_shoup() const { return root_powers_shoup_; }
  const std::vector<std::uint64_t>& inv_root_powers() const { return inv_root_powers_; }
  const std::vector<std::uint64_t>& inv_root_powers_shoup() const { return inv_root_powers_shoup_; }
  std::uint64_t inv_n() const { return inv_n_; }
  std::uint64_t inv_n_shoup() const { return inv_n_shoup_; }
  std::uint64_t inv_n_w() const { return inv_n_w_; }
  std::uint64_t inv_n_w_shoup() const { return inv_n_w_shoup_; }

  // In-place transforms of n words, each in [0, q) on input; output fully reduced.
  void forward(std::uint64_t* a) const;
  void inverse(std::uint64_t* a) const;
  // Forward transform whose output is left in [0, 4q) (skips the final reduction pass) for
  // callers that reduce while consuming the result.
  void forward_lazy(std::uint64_t* a) const;

 private:
  std::uint64_t n_;
  int log_n_;
  std::uint64_t q_;
  Barrett barrett_;
  std::uint64_t psi_ = 0, inv_psi_ = 0;
  std::vector<std::uint64_t> root_powers_, root_powers_shoup_;
  std::vector<std::uint64_t> inv_root_powers_, inv_root_powers_shoup_;
  std::uint64_t inv_n_ = 0, inv_n_shoup_ = 0, inv_n_w_ = 0, inv_n_w_shoup_ = 0;
};

// Reverses the low `bits` bits of x.
inline std::uint32_t bit_reverse(std::uint32_t x, int bits) {
  std::uint32_t r = 0;
  for (int i = 0; i < bits; ++i) {
    r = (r << 1) | (x & 1);
    x >>= 1;
  }
  return r;
}

// Minimal primitive 2n-th root of unity mod the prime q (q = 1 mod 2n). Throws
// ArgumentRangeError when none exists.
std::uint64_t minimal_primitive_root(std::uint64_t two_n, std::uint64_t q);

}  // namespace tensafe::ckks
