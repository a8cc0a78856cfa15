// CkksContext: secret, public and Galois (rotation) keys.
#include "ckks/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ckks/parallel.h"
#include "ckks/sampling.h"
#include "common/errors.h"

namespace tensafe::ckks {

// ---- keys -----------------------------------------------------------------------------------

SecretKey CkksContext::generate_secret_key() {
  const std::uint64_t n = this->n();
  Sampler smp(key_, next_stream());
  std::vector<std::int8_t> s(n);
  smp.ternary(0, n, s.data());
  SecretKey sk;
  sk.context_id = id_;
  const std::size_t K = tables_.size();
  sk.ntt.resize(K * n);
  small_to_rns(s.data(), 0, K, sk.ntt.data());
  pfor(K, [&](std::size_t b, std::size_t e) {
    for (std::size_t k = b; k < e; ++k) tables_[k]->forward(sk.ntt.data() + k * n);
  });
  secure_wipe(s.data(), s.size());
  prepare_secret_key(sk);
  return sk;
}

PublicKey CkksContext::generate_public_key(const SecretKey& sk) {
  check_owner(sk.context_id, "secretKey");
  const std::uint64_t n = this->n();
  const std::size_t L = max_limbs();
  Sampler smp(key_, next_stream());
  PublicKey pk;
  pk.context_id = id_;
  pk.data.resize(2 * L * n);
  std::uint64_t* b = pk.data.data();
  std::uint64_t* a = b + L * n;
  smp.uniform(0, params_.moduli, n, a);
  std::vector<std::int8_t> e(n);
  smp.gaussian(2 * L * n, n, e.data());
  small_to_rns(e.data(), 0, L, b);
  ntt_forward(b, L);
  pfor(L, [&](std::size_t lb, std::size_t le) {
    for (std::size_t l = lb; l < le; ++l) {
      const Barrett& br = tables_[l]->barrett();
      const std::uint64_t q = br.q;
      const std::uint64_t* s = sk.ntt.data() + l * n;
      for (std::uint64_t j = 0; j < n; ++j) b[l * n + j] = sub_mod(b[l * n + j], br.mul(a[l * n + j], s[j]), q);
    }
  });
  return pk;
}

const std::vector<std::uint32_t>& CkksContext::automorphism(std::uint64_t galois) const {
  std::lock_guard<std::mutex> lock(perm_mutex_);
  auto it = perms_.find(galois);
  if (it != perms_.end()) return it->second;
  const std::uint64_t n = this->n(), M = 2 * n;
  const int logn = tables_[0]->log_n();
  std::vector<std::uint32_t> perm(n);
  // NTT slot bitrev(i) holds a(psi^(2i+1)); tau_g(a) there is a(psi^(g(2i+1))).
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t e = (galois * (2 * i + 1)) % M;
    std::uint64_t ip = (e - 1) / 2;
    perm[bit_reverse(static_cast<std::uint32_t>(i), logn)] = bit_reverse(static_cast<std::uint32_t>(ip), logn);
  }
  return perms_.emplace(galois, std::move(perm)).first->second;
}

GaloisKeys CkksContext::generate_galois_keys(const SecretKey& sk, const std::vector<std::int64_t>& steps) {
  check_owner(sk.context_id, "secretKey");
  if (!params_.special)
    throw ArgumentRangeError("rotation keys need a special prime: create the context with specialPrimeBits");
  const std::uint64_t n = this->n();
  const std::size_t L = max_limbs(), K = L + 1;
  const std::int64_t slots = static_cast<std::int64_t>(encoder_.slots());
  GaloisKeys gk;
  gk.context_id = id_;
  gk.steps = steps;
  for (std::int64_t step : steps) {
    const std::int64_t norm = ((step % slots) + slots) % slots;
    if (gk.keys.count(norm)) continue;
    KeySwitchKey key;
    key.galois = encoder_.galois_element(norm);
    key.data.resize(L * 2 * K * n);
    Sampler smp(key_, next_stream());
    const auto& perm = automorphism(key.galois);
    const std::vector<std::uint64_t> kmod = params_.key_moduli();
    for (std::size_t i = 0; i < L; ++i) {
      std::uint64_t* b = key.data.data() + (i * 2) * K * n;
      std::uint64_t* a = b + K * n;
      const std::uint64_t base = i * (2 * K * n + n);
      smp.uniform(base, kmod, n, a);
      std::vector<std::int8_t> e(n);
      smp.gaussian(base + 2 * K * n, n, e.data());
      small_to_rns(e.data(), 0, K, b);
      pfor(K, [&](std::size_t kb, std::size_t ke) {
        for (std::size_t k = kb; k < ke; ++k) {
          tables_[k]->forward(b + k * n);
          const Barrett& br = tables_[k]->barrett();
          const std::uint64_t q = br.q;
          const std::uint64_t* s = sk.ntt.data() + k * n;
          std::uint64_t* bk = b + k * n;
          const std::uint64_t* ak = a + k * n;
          for (std::uint64_t j = 0; j < n; ++j) bk[j] = sub_mod(bk[j], br.mul(ak[j], s[j]), q);
          if (k == i) {
            // + P * tau_g(s) in limb i only (the gadget of digit i).
            const std::uint64_t pmod = params_.special % q;
            for (std::uint64_t j = 0; j < n; ++j) bk[j] = add_mod(bk[j], br.mul(pmod, s[perm[j]]), q);
          }
        }
      });
    }
    gk.keys.emplace(norm, std::move(key));
  }
  return gk;
}

}  // namespace tensafe::ckks
