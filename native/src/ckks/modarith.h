// 64-bit modular arithmetic for the NTT and CKKS, shared by the CPU and CUDA backends.
//
// Every modulus q is an odd prime below 2^61, so sums of a few residues and the lazy ranges
// [0, 2q) and [0, 4q) never overflow a 64-bit word. The helpers are header-only and `inline`;
// under nvcc they are `__host__ __device__` (TENSAFE_HD) so the CUDA kernels use the very same
// arithmetic and produce the same words as the CPU.
//
//  * Shoup multiplication by a fixed operand w (a twiddle): precompute w' = floor(w * 2^64 / q);
//    then x * w mod q = x*w - mulhi(x, w')*q, which lies in [0, 2q) for any 64-bit x
//    (Harvey, "Faster arithmetic for number-theoretic transforms", 2014).
//  * Barrett reduction of a 128-bit product by the 128-bit constant floor(2^128 / q); the
//    estimate of the quotient is short by at most 2, so the remainder before the final
//    correction lies in [0, 3q) (we correct twice and return a fully reduced value).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define TENSAFE_HD __host__ __device__
#else
#define TENSAFE_HD
#endif

namespace tensafe::ckks {

using u64 = std::uint64_t;
using u128 = unsigned __int128;

// High 64 bits of the 128-bit product a*b.
TENSAFE_HD inline u64 mulhi64(u64 a, u64 b) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(a, b);
#else
  return static_cast<u64>((static_cast<u128>(a) * b) >> 64);
#endif
}

// a + b mod q for a, b in [0, q).
TENSAFE_HD inline u64 add_mod(u64 a, u64 b, u64 q) {
  u64 s = a + b;
  return s >= q ? s - q : s;
}

// a - b mod q for a, b in [0, q).
TENSAFE_HD inline u64 sub_mod(u64 a, u64 b, u64 q) { return a >= b ? a - b : a + q - b; }

// -a mod q for a in [0, q).
TENSAFE_HD inline u64 neg_mod(u64 a, u64 q) { return a == 0 ? 0 : q - a; }

// x in [0, 2q) -> [0, q).
TENSAFE_HD inline u64 reduce_2q(u64 x, u64 q) { return x >= q ? x - q : x; }

// x in [0, 4q) -> [0, 2q) (the lazy range of Harvey butterflies), with two_q = 2q.
TENSAFE_HD inline u64 reduce_4q_to_2q(u64 x, u64 two_q) { return x >= two_q ? x - two_q : x; }

// x in [0, 4q) -> [0, q).
TENSAFE_HD inline u64 reduce_4q(u64 x, u64 q) {
  u64 two_q = q << 1;
  if (x >= two_q) x -= two_q;
  return x >= q ? x - q : x;
}

// Shoup companion of w in [0, q): floor(w * 2^64 / q). Host side (128-bit division).
inline u64 shoup_precompute(u64 w, u64 q) { return static_cast<u64>((static_cast<u128>(w) << 64) / q); }

// x * w mod q in [0, 2q) for any 64-bit x (lazy), with w' = shoup_precompute(w, q).
TENSAFE_HD inline u64 mul_shoup_lazy(u64 x, u64 w, u64 w_shoup, u64 q) {
  u64 hi = mulhi64(x, w_shoup);
  return x * w - hi * q;  // wraps modulo 2^64; the true value lies in [0, 2q)
}

// x * w mod q in [0, q) for any 64-bit x.
TENSAFE_HD inline u64 mul_shoup(u64 x, u64 w, u64 w_shoup, u64 q) {
  return reduce_2q(mul_shoup_lazy(x, w, w_shoup, q), q);
}

// Barrett constants of a modulus q < 2^61: ratio = floor(2^128 / q) as (hi, lo) words.
struct Barrett {
  u64 q = 0;
  u64 ratio_hi = 0;
  u64 ratio_lo = 0;
  u64 ratio64 = 0;  // floor((2^64 - 1) / q), for the one-word reduction

  Barrett() = default;
  // Host-side construction (128-bit division).
  explicit Barrett(u64 modulus) : q(modulus) {
    // floor(2^128 / q) = floor((2^128 - 1) / q) because q is odd (2^128 is not a multiple of q).
    u128 all = ~static_cast<u128>(0);
    u128 r = all / modulus;
    ratio_hi = static_cast<u64>(r >> 64);
    ratio_lo = static_cast<u64>(r);
    ratio64 = ~u64{0} / modulus;
  }

  // x mod q for any 128-bit x given as (hi, lo); result in [0, q).
  TENSAFE_HD inline u64 reduce128(u64 hi, u64 lo) const {
    // Quotient estimate: floor(x * ratio / 2^128), computed from the four 64x64 partial
    // products without the lowest (lo*ratio_lo) low word, which only affects a carry we can
    // lose: the estimate is short by at most 2.
    u64 c0 = mulhi64(lo, ratio_lo);
    u64 p1_lo = lo * ratio_hi, p1_hi = mulhi64(lo, ratio_hi);
    u64 p2_lo = hi * ratio_lo, p2_hi = mulhi64(hi, ratio_lo);
    u64 mid = p1_lo + c0;
    u64 carry = mid < c0 ? 1 : 0;
    u64 mid2 = mid + p2_lo;
    carry += mid2 < p2_lo ? 1 : 0;
    u64 quot = hi * ratio_hi + p1_hi + p2_hi + carry;
    u64 r = lo - quot * q;  // true remainder + (0..2) q, fits in 64 bits since q < 2^61
    if (r >= q) r -= q;
    if (r >= q) r -= q;
    return r;
  }

  // x mod q for a 64-bit x: quotient estimate mulhi(x, floor((2^64-1)/q)) is short by at
  // most 2, so two corrections give the exact remainder (same result as reduce128(0, x)).
  TENSAFE_HD inline u64 reduce64(u64 x) const {
    u64 r = x - mulhi64(x, ratio64) * q;
    if (r >= q) r -= q;
    if (r >= q) r -= q;
    return r;
  }

  // a * b mod q for 64-bit a, b (the product need not be < q^2).
  TENSAFE_HD inline u64 mul(u64 a, u64 b) const {
#if defined(__CUDA_ARCH__)
    return reduce128(__umul64hi(a, b), a * b);
#else
    u128 p = static_cast<u128>(a) * b;
    return reduce128(static_cast<u64>(p >> 64), static_cast<u64>(p));
#endif
  }
};

// a * b mod q with a plain 128-bit remainder: host only, for table setup and tests.
inline u64 mul_mod_slow(u64 a, u64 b, u64 q) { return static_cast<u64>((static_cast<u128>(a) * b) % q); }

// base^e mod q (host, slow path for setup).
inline u64 pow_mod(u64 base, u64 e, u64 q) {
  u64 result = 1 % q;
  base %= q;
  while (e) {
    if (e & 1) result = mul_mod_slow(result, base, q);
    base = mul_mod_slow(base, base, q);
    e >>= 1;
  }
  return result;
}

// Inverse of a in [1, q) for a prime q (Fermat). Host only.
inline u64 inv_mod_prime(u64 a, u64 q) { return pow_mod(a, q - 2, q); }

}  // namespace tensafe::ckks
