// CkksContext: add, sub, ct x pt, rescale, modulus switch, rotation (hybrid key switching).
#include "ckks/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ckks/parallel.h"
#include "ckks/sampling.h"
#include "ckks/valcheck.h"
#include "common/errors.h"

namespace tensafe::ckks {

// ---- evaluator ------------------------------------------------------------------------------


Ciphertext CkksContext::add(const Ciphertext& a, const Ciphertext& b) const {
  valcheck::same_level(*this, a, b);
  const std::uint64_t n = this->n();
  Ciphertext r = a;
  r.c1_seed.reset();  // c1 changes
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t k = 0; k < a.limbs; ++k) {
      const std::uint64_t q = tables_[k]->modulus();
      std::uint64_t* x = r.c(i, n) + k * n;
      const std::uint64_t* y = b.c(i, n) + k * n;
      for (std::uint64_t j = 0; j < n; ++j) x[j] = add_mod(x[j], y[j], q);
    }
  return r;
}

Ciphertext CkksContext::sub(const Ciphertext& a, const Ciphertext& b) const {
  valcheck::same_level(*this, a, b);
  const std::uint64_t n = this->n();
  Ciphertext r = a;
  r.c1_seed.reset();  // c1 changes
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t k = 0; k < a.limbs; ++k) {
      const std::uint64_t q = tables_[k]->modulus();
      std::uint64_t* x = r.c(i, n) + k * n;
      const std::uint64_t* y = b.c(i, n) + k * n;
      for (std::uint64_t j = 0; j < n; ++j) x[j] = sub_mod(x[j], y[j], q);
    }
  return r;
}

Ciphertext CkksContext::add_plain(const Ciphertext& a, const Plaintext& b) const {
  valcheck::add_plain(*this, a, b);
  const std::uint64_t n = this->n();
  Ciphertext r = a;
  for (std::size_t k = 0; k < a.limbs; ++k) {
    const std::uint64_t q = tables_[k]->modulus();
    std::uint64_t* x = r.c(0, n) + k * n;
    const std::uint64_t* y = b.data.data() + k * n;
    for (std::uint64_t j = 0; j < n; ++j) x[j] = add_mod(x[j], y[j], q);
  }
  return r;
}

Ciphertext CkksContext::multiply_plain(const Ciphertext& a, const Plaintext& b) const {
  const double scale = valcheck::multiply_plain(*this, a, b);
  const std::uint64_t n = this->n();
  Ciphertext r;
  r.context_id = id_;
  r.limbs = a.limbs;
  r.scale = scale;
  r.data.resize(a.data.size());
  pfor(2 * a.limbs, [&](std::size_t b0, std::size_t e0) {
    for (std::size_t t = b0; t < e0; ++t) {
      const std::size_t i = t / a.limbs, k = t % a.limbs;
      const Barrett& br = tables_[k]->barrett();
      const std::uint64_t* x = a.c(i, n) + k * n;
      const std::uint64_t* y = b.data.data() + k * n;
      std::uint64_t* z = r.c(i, n) + k * n;
      if (b.shoup.size() == b.data.size()) {
        const std::uint64_t* ys = b.shoup.data() + k * n;
        const std::uint64_t q = br.q;
        for (std::uint64_t j = 0; j < n; ++j) z[j] = mul_shoup(x[j], y[j], ys[j], q);
      } else {
        for (std::uint64_t j = 0; j < n; ++j) z[j] = br.mul(x[j], y[j]);
      }
    }
  });
  return r;
}

// Divides an l-limb NTT-domain polynomial by its last prime with rounding: out gets l-1 limbs.
void CkksContext::rescale_poly(const std::uint64_t* poly, std::size_t l, std::uint64_t* out) const {
  const std::uint64_t n = this->n();
  const NttTables& tl = *tables_[l - 1];
  const std::uint64_t ql = tl.modulus(), half = ql >> 1;
  std::vector<std::uint64_t> last(poly + (l - 1) * n, poly + l * n);
  tl.inverse(last.data());
  for (std::uint64_t j = 0; j < n; ++j) last[j] = add_mod(last[j], half, ql);
  pfor(l - 1, [&](std::size_t kb, std::size_t ke) {
    std::vector<std::uint64_t> tmp(n);
    for (std::size_t k = kb; k < ke; ++k) {
      const NttTables& t = *tables_[k];
      const Barrett& br = t.barrett();
      const std::uint64_t q = br.q;
      const std::uint64_t half_k = br.reduce64(half);
      for (std::uint64_t j = 0; j < n; ++j) tmp[j] = sub_mod(br.reduce64(last[j]), half_k, q);
      t.forward(tmp.data());
      const std::uint64_t inv = inv_mod_prime(ql % q, q), inv_s = shoup_precompute(inv, q);
      const std::uint64_t* x = poly + k * n;
      std::uint64_t* o = out + k * n;
      for (std::uint64_t j = 0; j < n; ++j) o[j] = mul_shoup(sub_mod(x[j], tmp[j], q), inv, inv_s, q);
    }
  });
}

Ciphertext CkksContext::rescale(const Ciphertext& a) const {
  valcheck::drop_prime(*this, a, "rescaled");
  const std::uint64_t n = this->n();
  Ciphertext r;
  r.context_id = id_;
  r.limbs = a.limbs - 1;
  r.scale = a.scale / static_cast<double>(tables_[a.limbs - 1]->modulus());
  r.data.resize(2 * r.limbs * n);
  // c0 and c1 in parallel (rescale_poly's own loop then runs serially inside the pool).
  pfor(2, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) rescale_poly(a.c(i, n), a.limbs, r.c(i, n));
  });
  return r;
}

Ciphertext CkksContext::mod_switch(const Ciphertext& a) const {
  valcheck::drop_prime(*this, a, "switched down");
  const std::uint64_t n = this->n();
  Ciphertext r;
  r.context_id = id_;
  r.limbs = a.limbs - 1;
  r.scale = a.scale;
  r.c1_seed = a.c1_seed;  // the first limbs of a seed's expansion are the expansion at fewer limbs
  r.data.resize(2 * r.limbs * n);
  for (std::size_t i = 0; i < 2; ++i) std::memcpy(r.c(i, n), a.c(i, n), r.limbs * n * sizeof(std::uint64_t));
  return r;
}

void CkksContext::key_switch(const std::uint64_t* d, std::size_t l, const KeySwitchKey& key, std::uint64_t* out0,
                             std::uint64_t* out1) const {
  const std::uint64_t n = this->n();
  const std::size_t L = max_limbs(), K = L + 1;
  // Digits: limb i of d in coefficient form.
  std::vector<std::uint64_t> digits(d, d + l * n);
  ntt_inverse(digits.data(), l);
  // Targets: the l ciphertext primes, then the special prime (key index L).
  std::vector<std::size_t> targets;
  for (std::size_t t = 0; t < l; ++t) targets.push_back(t);
  targets.push_back(L);
  const std::size_t T = targets.size();
  std::vector<std::uint64_t> acc0(T * n), acc1(T * n);
  pfor(T, [&](std::size_t tb, std::size_t te) {
    std::vector<std::uint64_t> v(n);
    for (std::size_t ti = tb; ti < te; ++ti) {
      const std::size_t k = targets[ti];
      const NttTables& tk = *tables_[k];
      const Barrett& br = tk.barrett();
      const std::uint64_t q = br.q;
      std::uint64_t* a0 = acc0.data() + ti * n;
      std::uint64_t* a1 = acc1.data() + ti * n;
      for (std::size_t i = 0; i < l; ++i) {
        const std::uint64_t* vv;
        if (k == i) {
          vv = d + i * n;  // already in the NTT domain of prime i
        } else {
          const std::uint64_t* dig = digits.data() + i * n;
          const std::uint64_t qi = tables_[i]->modulus();
          if (qi <= q) std::memcpy(v.data(), dig, n * sizeof(std::uint64_t));
          else for (std::uint64_t j = 0; j < n; ++j) v[j] = br.reduce64(dig[j]);
          tk.forward(v.data());
          vv = v.data();
        }
        const std::uint64_t* kb = key.data.data() + (i * 2) * K * n + k * n;
        const std::uint64_t* ka = key.data.data() + (i * 2 + 1) * K * n + k * n;
        for (std::uint64_t j = 0; j < n; ++j) {
          a0[j] = add_mod(a0[j], br.mul(vv[j], kb[j]), q);
          a1[j] = add_mod(a1[j], br.mul(vv[j], ka[j]), q);
        }
      }
    }
  });
  // Mod down by P: (acc - [acc mod P]) / P, rounded.
  const NttTables& tp = *tables_[L];
  const std::uint64_t P = tp.modulus(), half = P >> 1;
  for (int which = 0; which < 2; ++which) {
    std::vector<std::uint64_t>& acc = which ? acc1 : acc0;
    std::uint64_t* out = which ? out1 : out0;
    std::vector<std::uint64_t> last(acc.begin() + l * n, acc.begin() + (l + 1) * n);
    tp.inverse(last.data());
    for (std::uint64_t j = 0; j < n; ++j) last[j] = add_mod(last[j], half, P);
    pfor(l, [&](std::size_t kb, std::size_t ke) {
      std::vector<std::uint64_t> tmp(n);
      for (std::size_t k = kb; k < ke; ++k) {
        const NttTables& t = *tables_[k];
        const Barrett& br = t.barrett();
        const std::uint64_t q = br.q;
        const std::uint64_t half_k = br.reduce64(half);
        for (std::uint64_t j = 0; j < n; ++j) tmp[j] = sub_mod(br.reduce64(last[j]), half_k, q);
        t.forward(tmp.data());
        const std::uint64_t inv = inv_mod_prime(P % q, q), inv_s = shoup_precompute(inv, q);
        const std::uint64_t* x = acc.data() + k * n;
        std::uint64_t* o = out + k * n;
        for (std::uint64_t j = 0; j < n; ++j) o[j] = mul_shoup(sub_mod(x[j], tmp[j], q), inv, inv_s, q);
      }
    });
  }
}

Ciphertext CkksContext::rotate(const Ciphertext& a, std::int64_t steps, const GaloisKeys& gk) const {
  check_owner(a.context_id, "ciphertext");
  check_owner(gk.context_id, "galoisKeys");
  const std::int64_t norm = valcheck::rotation_step(*this, steps);
  if (norm == 0) return a;  // the identity (a copy; c1 unchanged, so a compact seed stays valid)
  auto it = gk.keys.find(norm);
  if (it == gk.keys.end()) valcheck::missing_rotation_key(steps);
  const KeySwitchKey& key = it->second;
  const auto& perm = automorphism(key.galois);
  const std::uint64_t n = this->n();
  const std::size_t l = a.limbs;
  std::vector<std::uint64_t> t0(l * n), t1(l * n);
  for (std::size_t k = 0; k < l; ++k) {
    const std::uint64_t* x0 = a.c(0, n) + k * n;
    const std::uint64_t* x1 = a.c(1, n) + k * n;
    for (std::uint64_t j = 0; j < n; ++j) {
      t0[k * n + j] = x0[perm[j]];
      t1[k * n + j] = x1[perm[j]];
    }
  }
  Ciphertext r;
  r.context_id = id_;
  r.limbs = l;
  r.scale = a.scale;
  r.data.resize(2 * l * n);
  key_switch(t1.data(), l, key, r.c(0, n), r.c(1, n));
  for (std::size_t k = 0; k < l; ++k) {
    const std::uint64_t q = tables_[k]->modulus();
    std::uint64_t* c0 = r.c(0, n) + k * n;
    for (std::uint64_t j = 0; j < n; ++j) c0[j] = add_mod(c0[j], t0[k * n + j], q);
  }
  return r;
}

}  // namespace tensafe::ckks
