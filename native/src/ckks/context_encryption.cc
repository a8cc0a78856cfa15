// CkksContext: public-key and symmetric encryption, decryption (single and batched).
#include "ckks/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ckks/parallel.h"
#include "ckks/sampling.h"
#include "ckks/valcheck.h"
#include "common/errors.h"

namespace tensafe::ckks {

// ---- encryption -----------------------------------------------------------------------------

void CkksContext::encrypt_zero_plus(std::uint64_t* c0_out, std::uint64_t* c1_out, std::size_t l, const PublicKey& pk,
                                    const std::uint64_t* add0, const std::uint64_t* add1) {
  const std::uint64_t n = this->n();
  const std::size_t L = max_limbs();
  Sampler smp(key_, next_stream());
  std::vector<std::int8_t> u(n), e0(n), e1(n);
  smp.ternary(0, n, u.data());
  smp.gaussian(n, n, e0.data());
  smp.gaussian(2 * n, n, e1.data());
  const std::uint64_t* b = pk.data.data();
  const std::uint64_t* a = b + L * n;
  // Limb by limb: u, e0, e1 of one limb are transformed in place of the outputs' own words
  // (e0 in c0, e1 in c1) and a scratch for u, so each limb's work stays in cache.
  pfor(l, [&](std::size_t lb, std::size_t le) {
    std::vector<std::uint64_t> uk(n);
    for (std::size_t k = lb; k < le; ++k) {
      const NttTables& t = *tables_[k];
      const Barrett& br = t.barrett();
      const std::uint64_t q = br.q;
      std::uint64_t* c0 = c0_out + k * n;
      std::uint64_t* c1 = c1_out + k * n;
      small_to_rns(u.data(), k, k + 1, uk.data());
      small_to_rns(e0.data(), k, k + 1, c0);
      small_to_rns(e1.data(), k, k + 1, c1);
      t.forward(uk.data());
      t.forward(c0);
      t.forward(c1);
      const std::uint64_t* bk = b + k * n;
      const std::uint64_t* ak = a + k * n;
      const std::uint64_t* m0 = add0 ? add0 + k * n : nullptr;
      const std::uint64_t* m1 = add1 ? add1 + k * n : nullptr;
      for (std::uint64_t j = 0; j < n; ++j) {
        c0[j] = add_mod(c0[j], br.mul(bk[j], uk[j]), q);
        c1[j] = add_mod(c1[j], br.mul(ak[j], uk[j]), q);
        if (m0) c0[j] = add_mod(c0[j], m0[j], q);
        if (m1) c1[j] = add_mod(c1[j], m1[j], q);
      }
    }
    secure_wipe(uk.data(), uk.size() * sizeof(std::uint64_t));
  });
  // The encryption randomness u, e0, e1 would reveal the message: wipe the small copies.
  secure_wipe(u.data(), n);
  secure_wipe(e0.data(), n);
  secure_wipe(e1.data(), n);
}

Ciphertext CkksContext::encrypt(const Plaintext& pt, const PublicKey& pk) {
  valcheck::operand_plaintext(*this, pt, "encode a new one to encrypt");
  check_owner(pk.context_id, "publicKey");
  const std::uint64_t n = this->n();
  const std::size_t l = pt.limbs;
  Ciphertext ct;
  ct.context_id = id_;
  ct.limbs = l;
  ct.scale = pt.scale;
  ct.data.resize(2 * l * n);
  encrypt_zero_plus(ct.c(0, n), ct.c(1, n), l, pk, pt.data.data(), nullptr);
  return ct;
}

Ciphertext CkksContext::rerandomize(const Ciphertext& in, const PublicKey& pk) {
  check_owner(in.context_id, "ciphertext");
  check_owner(pk.context_id, "publicKey");
  const std::uint64_t n = this->n();
  Ciphertext ct;
  ct.context_id = id_;
  ct.limbs = in.limbs;
  ct.scale = in.scale;  // c1 changes: the seed of a compact encryption is not carried
  ct.data.resize(in.data.size());
  encrypt_zero_plus(ct.c(0, n), ct.c(1, n), in.limbs, pk, in.c(0, n), in.c(1, n));
  return ct;
}

ChaChaKey CkksContext::derive_seed(std::uint64_t stream) const {
  std::uint64_t w[4];
  chacha20_words(key_, stream, 0, 4, w);
  ChaChaKey seed = key_from_seed(w);
  secure_wipe(w, sizeof w);
  return seed;
}

void CkksContext::expand_seed(const ChaChaKey& seed, std::size_t limbs, std::uint64_t* out) const {
  std::vector<std::uint64_t> moduli(params_.moduli.begin(), params_.moduli.begin() + limbs);
  Sampler(seed, 0).uniform(0, moduli, n(), out);
}

Ciphertext CkksContext::encrypt_symmetric(const Plaintext& pt, const SecretKey& sk, bool compact) {
  valcheck::operand_plaintext(*this, pt, "encode a new one to encrypt");
  check_owner(sk.context_id, "secretKey");
  const std::uint64_t n = this->n();
  const std::size_t l = pt.limbs;
  const std::uint64_t sid = next_stream();
  Sampler smp(key_, sid);
  Ciphertext ct;
  ct.context_id = id_;
  ct.limbs = l;
  ct.scale = pt.scale;
  ct.data.resize(2 * l * n);
  if (compact) {
    ct.c1_seed = derive_seed(sid);
    expand_seed(*ct.c1_seed, l, ct.c(1, n));
  } else {
    std::vector<std::uint64_t> moduli(params_.moduli.begin(), params_.moduli.begin() + l);
    smp.uniform(0, moduli, n, ct.c(1, n));
  }
  std::vector<std::int8_t> e(n);
  smp.gaussian(2 * l * n, n, e.data());
  small_to_rns(e.data(), 0, l, ct.c(0, n));
  secure_wipe(e.data(), e.size());
  pfor(l, [&](std::size_t lb, std::size_t le) {
    for (std::size_t k = lb; k < le; ++k) {
      const NttTables& t = *tables_[k];
      const Barrett& br = t.barrett();
      const std::uint64_t q = br.q;
      std::uint64_t* c0 = ct.c(0, n) + k * n;
      const std::uint64_t* c1 = ct.c(1, n) + k * n;
      t.forward(c0);
      const std::uint64_t* s = sk.ntt.data() + k * n;
      const std::uint64_t* mk = pt.data.data() + k * n;
      for (std::uint64_t j = 0; j < n; ++j) c0[j] = add_mod(sub_mod(c0[j], br.mul(c1[j], s[j]), q), mk[j], q);
    }
  });
  return ct;
}

Plaintext CkksContext::decrypt(const Ciphertext& ct, const SecretKey& sk) const {
  check_owner(ct.context_id, "ciphertext");
  check_owner(sk.context_id, "secretKey");
  return decrypt_impl(ct, sk, true);
}

Plaintext CkksContext::decrypt_impl(const Ciphertext& ct, const SecretKey& sk, bool parallel) const {
  const std::uint64_t n = this->n();
  const std::size_t l = ct.limbs;
  Plaintext pt;
  pt.context_id = id_;
  pt.limbs = l;
  pt.scale = ct.scale;
  pt.encoding = Encoding::Slots;
  // Left in the NTT domain (as SEAL does): decode runs the inverse NTT, so a caller that only
  // re-encrypts or serialises never pays for it.
  pt.ntt = true;
  pt.data.resize(l * n);
  auto body = [&](std::size_t lb, std::size_t le) {
    for (std::size_t k = lb; k < le; ++k) {
      const NttTables& t = *tables_[k];
      const Barrett& br = t.barrett();
      const std::uint64_t q = br.q;
      const std::uint64_t* c0 = ct.c(0, n) + k * n;
      const std::uint64_t* c1 = ct.c(1, n) + k * n;
      const std::uint64_t* s = sk.ntt.data() + k * n;
      std::uint64_t* m = pt.data.data() + k * n;
      if (sk.ntt_shoup.size() == sk.ntt.size()) {
        const std::uint64_t* ss = sk.ntt_shoup.data() + k * n;
        for (std::uint64_t j = 0; j < n; ++j) m[j] = add_mod(c0[j], mul_shoup(c1[j], s[j], ss[j], q), q);
      } else {
        for (std::uint64_t j = 0; j < n; ++j) m[j] = add_mod(c0[j], br.mul(c1[j], s[j]), q);
      }
    }
  };
  if (parallel) pfor(l, body);
  else body(0, l);
  return pt;
}

std::vector<Plaintext> CkksContext::decrypt_batch(const std::vector<const Ciphertext*>& cts, const SecretKey& sk) const {
  check_owner(sk.context_id, "secretKey");
  for (std::size_t i = 0; i < cts.size(); ++i)
    check_owner(cts[i]->context_id, ("ciphertexts[" + std::to_string(i) + "]").c_str());
  std::vector<Plaintext> out(cts.size());
  if (cts.size() == 1) {
    out[0] = decrypt(*cts[0], sk);
    return out;
  }
  // Ciphertexts in parallel, each one's limbs serially (no nested parallel_for).
  pfor(cts.size(), [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) out[i] = decrypt_impl(*cts[i], sk, false);
  });
  return out;
}

}  // namespace tensafe::ckks
