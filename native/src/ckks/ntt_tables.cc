#include "ckks/ntt_tables.h"

#include <string>

#include "ckks/primes.h"
#include "common/errors.h"

namespace tensafe::ckks {

std::uint64_t minimal_primitive_root(u64 two_n, u64 q) {
  if ((q - 1) % two_n != 0) throw ArgumentRangeError("modulus " + std::to_string(q) + " is not 1 mod " + std::to_string(two_n));
  const u64 cofactor = (q - 1) / two_n;
  u64 g = 0;
  // A non-residue x gives x^((q-1)/2n) of order exactly 2n; half of all x qualify, so this
  // loop ends after a few tries.
  for (u64 x = 2; x < q && x < 1000000; ++x) {
    u64 c = pow_mod(x, cofactor, q);
    if (pow_mod(c, two_n / 2, q) == q - 1) {
      g = c;
      break;
    }
  }
  if (g == 0) throw ArgumentRangeError("no primitive " + std::to_string(two_n) + "-th root of unity mod " + std::to_string(q));
  // All primitive 2n-th roots are g^k for odd k: walk them and keep the least.
  const u64 g2 = mul_mod_slow(g, g, q);
  u64 cur = g, best = g;
  for (u64 k = 1; k < two_n; k += 2) {
    if (cur < best) best = cur;
    cur = mul_mod_slow(cur, g2, q);
  }
  return best;
}

NttTables::NttTables(u64 n, u64 q) : n_(n), log_n_(0), q_(q) {
  if (n < 2 || n > (u64{1} << 17) || (n & (n - 1)) != 0)
    throw ArgumentRangeError("n must be a power of two in [2, 2^17], got " + std::to_string(n));
  while ((u64{1} << log_n_) < n) ++log_n_;
  if (q >= (u64{1} << 61)) throw ArgumentRangeError("modulus " + std::to_string(q) + " is above 61 bits");
  if (q % (2 * n) != 1)
    throw ArgumentRangeError("modulus " + std::to_string(q) + " is not NTT-friendly: it must be 1 mod 2n = " +
                             std::to_string(2 * n));
  if (!is_prime(q)) throw ArgumentRangeError("modulus " + std::to_string(q) + " is not prime");
  barrett_ = Barrett(q);
  psi_ = minimal_primitive_root(2 * n, q);
  inv_psi_ = inv_mod_prime(psi_, q);

  root_powers_.resize(n);
  inv_root_powers_.resize(n);
  root_powers_shoup_.resize(n);
  inv_root_powers_shoup_.resize(n);
  // Powers psi^j, j in [0, n), then scatter into bit-reversed positions.
  u64 p = 1, ip = 1;
  for (u64 j = 0; j < n; ++j) {
    u64 k = bit_reverse(static_cast<std::uint32_t>(j), log_n_);
    root_powers_[k] = p;
    inv_root_powers_[k] = ip;
    p = mul_mod_slow(p, psi_, q);
    ip = mul_mod_slow(ip, inv_psi_, q);
  }
  for (u64 k = 0; k < n; ++k) {
    root_powers_shoup_[k] = shoup_precompute(root_powers_[k], q);
    inv_root_powers_shoup_[k] = shoup_precompute(inv_root_powers_[k], q);
  }
  inv_n_ = inv_mod_prime(n % q, q);
  inv_n_shoup_ = shoup_precompute(inv_n_, q);
  inv_n_w_ = mul_mod_slow(inv_n_, inv_root_powers_[1], q);
  inv_n_w_shoup_ = shoup_precompute(inv_n_w_, q);
}

void NttTables::forward_lazy(u64* a) const {
  // Stages are fused in pairs (radix 4: two Cooley-Tukey stages per pass over the data, so half
  // as many passes through memory); an odd first stage runs alone. Values stay in [0, 4q).
  const u64 q = q_, two_q = q << 1;
  const u64* w = root_powers_.data();
  const u64* ws = root_powers_shoup_.data();
  u64 m = 1;
  if (log_n_ & 1) {
    const u64 t = n_ >> 1;
    const u64 W = w[1], Ws = ws[1];
    for (u64 j = 0; j < t; ++j) {
      u64 x = reduce_4q_to_2q(a[j], two_q);
      u64 y = mul_shoup_lazy(a[j + t], W, Ws, q);
      a[j] = x + y;
      a[j + t] = x - y + two_q;
    }
    m = 2;
  }
  for (; m < n_; m <<= 2) {
    const u64 t2 = n_ / (4 * m);
    for (u64 i = 0; i < m; ++i) {
      const u64 W1 = w[m + i], W1s = ws[m + i];
      const u64 W2 = w[2 * m + 2 * i], W2s = ws[2 * m + 2 * i];
      const u64 W3 = w[2 * m + 2 * i + 1], W3s = ws[2 * m + 2 * i + 1];
      u64* X0 = a + 4 * i * t2;
      u64* X1 = X0 + t2;
      u64* X2 = X1 + t2;
      u64* X3 = X2 + t2;
      for (u64 j = 0; j < t2; ++j) {
        // stage m: (X0, X2) and (X1, X3) with W1
        u64 a0 = reduce_4q_to_2q(X0[j], two_q);
        u64 a1 = reduce_4q_to_2q(X1[j], two_q);
        u64 y2 = mul_shoup_lazy(X2[j], W1, W1s, q);
        u64 y3 = mul_shoup_lazy(X3[j], W1, W1s, q);
        u64 b0 = a0 + y2, b2 = a0 - y2 + two_q;
        u64 b1 = a1 + y3, b3 = a1 - y3 + two_q;
        // stage 2m: (b0, b1) with W2, (b2, b3) with W3
        b0 = reduce_4q_to_2q(b0, two_q);
        b2 = reduce_4q_to_2q(b2, two_q);
        u64 z1 = mul_shoup_lazy(b1, W2, W2s, q);
        u64 z3 = mul_shoup_lazy(b3, W3, W3s, q);
        X0[j] = b0 + z1;
        X1[j] = b0 - z1 + two_q;
        X2[j] = b2 + z3;
        X3[j] = b2 - z3 + two_q;
      }
    }
  }
}

void NttTables::forward(u64* a) const {
  forward_lazy(a);
  const u64 q = q_;
  for (u64 j = 0; j < n_; ++j) a[j] = reduce_4q(a[j], q);
}

void NttTables::inverse(u64* a) const {
  const u64 q = q_, two_q = q << 1;
  const u64* w = inv_root_powers_.data();
  const u64* ws = inv_root_powers_shoup_.data();
  u64 t = 1;
  for (u64 h = n_ >> 1; h > 1; h >>= 1) {
    for (u64 i = 0; i < h; ++i) {
      const u64 W = w[h + i], Ws = ws[h + i];
      u64* X = a + 2 * i * t;
      u64* Y = X + t;
      for (u64 j = 0; j < t; ++j) {
        u64 u = X[j], v = Y[j];
        X[j] = reduce_4q_to_2q(u + v, two_q);
        Y[j] = mul_shoup_lazy(u - v + two_q, W, Ws, q);
      }
    }
    t <<= 1;
  }
  // Last stage (h = 1, t = n/2) with n^-1 folded in; results fully reduced.
  u64* X = a;
  u64* Y = a + t;
  const u64 ni = inv_n_, nis = inv_n_shoup_, nw = inv_n_w_, nws = inv_n_w_shoup_;
  for (u64 j = 0; j < t; ++j) {
    u64 u = X[j], v = Y[j];
    X[j] = mul_shoup(u + v, ni, nis, q);
    Y[j] = mul_shoup(u - v + two_q, nw, nws, q);
  }
}

}  // namespace tensafe::ckks
