#include "ckks/context.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "ckks/sampling.h"
#include "common/errors.h"
#include "ckks/parallel.h"

namespace tensafe::ckks {

namespace {
std::atomic<std::uint64_t> g_next_context_id{1};

void check_scale(double scale, const char* what) {
  if (!std::isfinite(scale) || scale <= 0) throw ArgumentRangeError(std::string(what) + " must be a finite positive number");
}
}  // namespace

namespace {
// Polynomial buffers are 64 KiB .. 4 MiB and are allocated and freed at a high rate. By
// default glibc serves those with fresh mmap'd or trimmed pages, and every first touch of a
// page faults; in the virtual machines we run on a page fault costs ~10 us, which made a
// 7-product HE-LoRA token 3x slower (measured: 28 ms -> 10.5 ms with the setting below). Keep
// freed memory in the heap for reuse instead (process-wide, set once; allocations >= 32 MiB
// are still mmap'd and returned).
void keep_freed_buffers_in_heap() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  });
}
}  // namespace

CkksContext::CkksContext(const CkksParamsSpec& spec)
    : params_(CkksParams::create(spec)),
      id_(g_next_context_id.fetch_add(1)),
      scale_(std::ldexp(1.0, spec.scale_bits)),
      encoder_(spec.n) {
  keep_freed_buffers_in_heap();
  for (auto q : params_.key_moduli()) tables_.push_back(std::make_shared<const NttTables>(spec.n, q));
  key_ = spec.seeded ? key_from_seed(spec.seed) : os_random_key();
}

void secure_wipe(void* p, std::size_t bytes) {
  volatile unsigned char* v = static_cast<volatile unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i) v[i] = 0;
}

void CkksContext::prepare_multiplier(Plaintext& pt) const {
  check_owner(pt.context_id, "plaintext");
  if (!pt.ntt) throw ArgumentRangeError("plaintext is in coefficient form (a decryption result)");
  const std::uint64_t n = this->n();
  pt.shoup.resize(pt.data.size());
  for (std::size_t k = 0; k < pt.limbs; ++k) {
    const std::uint64_t q = tables_[k]->modulus();
    for (std::uint64_t j = 0; j < n; ++j) pt.shoup[k * n + j] = shoup_precompute(pt.data[k * n + j], q);
  }
}

void CkksContext::prepare_secret_key(SecretKey& sk) const {
  const std::uint64_t n = this->n();
  sk.ntt_shoup.resize(sk.ntt.size());
  for (std::size_t k = 0; k < tables_.size(); ++k) {
    const std::uint64_t q = tables_[k]->modulus();
    for (std::uint64_t j = 0; j < n; ++j) sk.ntt_shoup[k * n + j] = shoup_precompute(sk.ntt[k * n + j], q);
  }
}

void CkksContext::check_owner(std::uint64_t owner, const char* what) const {
  if (owner != id_)
    throw ArgumentRangeError(std::string(what) + " belongs to another CKKS context (mismatched contexts)");
}

void CkksContext::check_limbs(std::size_t limbs, const char* what) const {
  if (limbs < 1 || limbs > max_limbs())
    throw ArgumentRangeError(std::string(what) + " must be in [1, " + std::to_string(max_limbs()) + "], got " +
                             std::to_string(limbs));
}

// ---- building blocks ------------------------------------------------------------------------

void CkksContext::ntt_forward(std::uint64_t* data, std::size_t limbs) const {
  const std::uint64_t n = this->n();
  pfor(limbs, [&](std::size_t b, std::size_t e) {
    for (std::size_t l = b; l < e; ++l) tables_[l]->forward(data + l * n);
  });
}

void CkksContext::ntt_inverse(std::uint64_t* data, std::size_t limbs) const {
  const std::uint64_t n = this->n();
  pfor(limbs, [&](std::size_t b, std::size_t e) {
    for (std::size_t l = b; l < e; ++l) tables_[l]->inverse(data + l * n);
  });
}

void CkksContext::small_to_rns(const std::int8_t* v, std::size_t k_begin, std::size_t k_end, std::uint64_t* out) const {
  const std::uint64_t n = this->n();
  for (std::size_t k = k_begin; k < k_end; ++k) {
    const std::uint64_t q = tables_[k]->modulus();
    std::uint64_t* o = out + (k - k_begin) * n;
    for (std::uint64_t j = 0; j < n; ++j) o[j] = v[j] < 0 ? q - static_cast<std::uint64_t>(-v[j]) : static_cast<std::uint64_t>(v[j]);
  }
}

void CkksContext::round_to_rns(const double* coeffs, std::size_t limbs, std::uint64_t* out) const {
  const std::uint64_t n = this->n();
  double maxabs = 0;
  for (std::uint64_t j = 0; j < n; ++j) {
    double a = std::fabs(coeffs[j]);
    if (!(a <= maxabs)) maxabs = a;  // also catches NaN
  }
  double log_q = 0;
  for (std::size_t l = 0; l < limbs; ++l) log_q += std::log2(static_cast<double>(tables_[l]->modulus()));
  if (!std::isfinite(maxabs) || (maxabs >= 1 && std::log2(maxabs) + 1 >= log_q))
    throw ArgumentRangeError("scale overflow: |value * scale| reaches 2^" + std::to_string(std::log2(maxabs)) +
                             ", which does not fit the plaintext modulus of " + std::to_string(log_q) + " bits");
  std::vector<Barrett> br;
  for (std::size_t l = 0; l < limbs; ++l) br.push_back(tables_[l]->barrett());
  pfor(n, [&](std::size_t b, std::size_t e) {
    for (std::size_t j = b; j < e; ++j) {
      const double c = std::nearbyint(coeffs[j]);
      if (std::fabs(c) < 9.2e18) {
        const std::int64_t v = static_cast<std::int64_t>(c);
        const std::uint64_t a = static_cast<std::uint64_t>(v < 0 ? -v : v);
        for (std::size_t l = 0; l < limbs; ++l) {
          std::uint64_t r = br[l].reduce64(a);
          out[l * n + j] = (v < 0 && r) ? br[l].q - r : r;
        }
      } else {
        // |c| = mant * 2^exp with a 53-bit integer mantissa.
        int e2 = 0;
        const double f = std::frexp(std::fabs(c), &e2);
        const std::uint64_t mant = static_cast<std::uint64_t>(std::ldexp(f, 53));
        const int exp = e2 - 53;
        for (std::size_t l = 0; l < limbs; ++l) {
          const std::uint64_t q = br[l].q;
          std::uint64_t r = br[l].mul(br[l].reduce64(mant), pow_mod(2, static_cast<std::uint64_t>(exp), q));
          out[l * n + j] = (c < 0 && r) ? q - r : r;
        }
      }
    }
  }, 1024);
}

void CkksContext::compose_to_double(const std::uint64_t* data, std::size_t limbs, double inv_scale, double* out) const {
  const std::uint64_t n = this->n();
  if (limbs == 1) {
    const std::uint64_t q = tables_[0]->modulus(), half = q >> 1;
    for (std::uint64_t j = 0; j < n; ++j) {
      std::uint64_t x = data[j];
      out[j] = (x > half ? -static_cast<double>(q - x) : static_cast<double>(x)) * inv_scale;
    }
    return;
  }
  if (limbs == 2) {
    // The common case (a ct x pt product over [q_0, q_1]) without the general loops: ~4x faster.
    const std::uint64_t q0 = tables_[0]->modulus(), q1 = tables_[1]->modulus(), half1 = q1 >> 1;
    const Barrett& b1 = tables_[1]->barrett();
    const std::uint64_t inv = inv_mod_prime(q0 % q1, q1), inv_s = shoup_precompute(inv, q1);
    const double dq0 = static_cast<double>(q0);
    const std::uint64_t* x0 = data;
    const std::uint64_t* x1 = data + n;
    pfor(n, [&](std::size_t b, std::size_t e) {
      for (std::size_t j = b; j < e; ++j) {
        const std::uint64_t a0 = x0[j];
        const std::uint64_t a0r = a0 >= q1 ? b1.reduce64(a0) : a0;
        const std::uint64_t a1 = mul_shoup(sub_mod(x1[j], a0r, q1), inv, inv_s, q1);
        double v;
        if (a1 > half1)  // x - Q, digit differences formed exactly in integers (see below)
          v = static_cast<double>(static_cast<std::int64_t>(a1 - (q1 - 1))) * dq0 +
              static_cast<double>(static_cast<std::int64_t>(a0 - (q0 - 1))) - 1.0;
        else
          v = static_cast<double>(a1) * dq0 + static_cast<double>(a0);
        out[j] = v * inv_scale;
      }
    }, 4096);
    return;
  }
  // Garner: x = a_0 + a_1 q_0 + a_2 q_0 q_1 + ..., digits a_i in [0, q_i).
  std::vector<std::uint64_t> q(limbs);
  for (std::size_t i = 0; i < limbs; ++i) q[i] = tables_[i]->modulus();
  std::vector<std::uint64_t> inv(limbs * limbs), inv_s(limbs * limbs);  // q_j^-1 mod q_i
  for (std::size_t i = 0; i < limbs; ++i)
    for (std::size_t j = 0; j < i; ++j) {
      inv[i * limbs + j] = inv_mod_prime(q[j] % q[i], q[i]);
      inv_s[i * limbs + j] = shoup_precompute(inv[i * limbs + j], q[i]);
    }
  std::vector<Barrett> br;
  for (std::size_t i = 0; i < limbs; ++i) br.push_back(tables_[i]->barrett());
  std::vector<double> radix(limbs);  // q_0 ... q_{i-1}
  radix[0] = 1;
  for (std::size_t i = 1; i < limbs; ++i) radix[i] = radix[i - 1] * static_cast<double>(q[i - 1]);
  pfor(n, [&](std::size_t b, std::size_t e) {
    std::vector<std::uint64_t> a(limbs);
    for (std::size_t j = b; j < e; ++j) {
      for (std::size_t i = 0; i < limbs; ++i) {
        std::uint64_t t = data[i * n + j];
        for (std::size_t k = 0; k < i; ++k) {
          std::uint64_t ak = a[k] >= q[i] ? br[i].reduce64(a[k]) : a[k];
          t = sub_mod(t, ak, q[i]);
          t = mul_shoup(t, inv[i * limbs + k], inv_s[i * limbs + k], q[i]);
        }
        a[i] = t;
      }
      double v = 0;
      if (a[limbs - 1] > (q[limbs - 1] >> 1)) {
        // x - Q = sum (a_i - (q_i - 1)) P_i - 1: small for x just below Q.
        // The digit differences are formed in integers (exact) before conversion: doing it in
        // doubles would lose the low bits of two nearly equal 60-bit values.
        for (std::size_t i = limbs; i-- > 0;)
          v += static_cast<double>(static_cast<std::int64_t>(a[i] - (q[i] - 1))) * radix[i];
        v -= 1;
      } else {
        for (std::size_t i = limbs; i-- > 0;) v += static_cast<double>(a[i]) * radix[i];
      }
      out[j] = v * inv_scale;
    }
  }, 1024);
}

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

// ---- encoding -------------------------------------------------------------------------------

Plaintext CkksContext::encode(const double* values, std::size_t count, std::size_t limbs, double scale) const {
  if (limbs == 0) limbs = max_limbs();
  check_limbs(limbs, "limbs");
  if (scale <= 0) scale = scale_;
  check_scale(scale, "scale");
  if (count > encoder_.slots())
    throw ArgumentRangeError("values must hold at most polyN/2 = " + std::to_string(encoder_.slots()) + " numbers, got " +
                             std::to_string(count));
  const std::uint64_t n = this->n();
  std::vector<double> coeffs(n);
  encoder_.encode(values, count, scale, coeffs.data());
  Plaintext pt;
  pt.context_id = id_;
  pt.limbs = limbs;
  pt.scale = scale;
  pt.encoding = Encoding::Slots;
  pt.data.resize(limbs * n);
  round_to_rns(coeffs.data(), limbs, pt.data.data());
  ntt_forward(pt.data.data(), limbs);
  return pt;
}

Plaintext CkksContext::encode_coefficients(const double* values, std::size_t count, std::size_t limbs,
                                           double scale) const {
  if (limbs == 0) limbs = max_limbs();
  check_limbs(limbs, "limbs");
  if (scale <= 0) scale = scale_;
  check_scale(scale, "scale");
  const std::uint64_t n = this->n();
  if (count > n)
    throw ArgumentRangeError("values must hold at most polyN = " + std::to_string(n) + " numbers, got " + std::to_string(count));
  std::vector<double> coeffs(n, 0.0);
  for (std::size_t i = 0; i < count; ++i) coeffs[i] = values[i] * scale;
  Plaintext pt;
  pt.context_id = id_;
  pt.limbs = limbs;
  pt.scale = scale;
  pt.encoding = Encoding::Coefficients;
  pt.data.resize(limbs * n);
  round_to_rns(coeffs.data(), limbs, pt.data.data());
  ntt_forward(pt.data.data(), limbs);
  return pt;
}

void CkksContext::decode_coefficients(const Plaintext& pt, double* out) const {
  check_owner(pt.context_id, "plaintext");
  if (pt.ntt) {
    std::vector<std::uint64_t> tmp(pt.data);
    ntt_inverse(tmp.data(), pt.limbs);
    compose_to_double(tmp.data(), pt.limbs, 1.0 / pt.scale, out);
  } else {
    compose_to_double(pt.data.data(), pt.limbs, 1.0 / pt.scale, out);
  }
}

void CkksContext::decode(const Plaintext& pt, double* out) const {
  std::vector<double> coeffs(n());
  decode_coefficients(pt, coeffs.data());
  encoder_.decode(coeffs.data(), 1.0, out);
}

// ---- encryption -----------------------------------------------------------------------------

Ciphertext CkksContext::encrypt(const Plaintext& pt, const PublicKey& pk) {
  check_owner(pt.context_id, "plaintext");
  check_owner(pk.context_id, "publicKey");
  if (!pt.ntt) throw ArgumentRangeError("plaintext is in coefficient form (a decryption result); encode a new one to encrypt");
  const std::uint64_t n = this->n();
  const std::size_t L = max_limbs(), l = pt.limbs;
  Sampler smp(key_, next_stream());
  std::vector<std::int8_t> u(n), e0(n), e1(n);
  smp.ternary(0, n, u.data());
  smp.gaussian(n, n, e0.data());
  smp.gaussian(2 * n, n, e1.data());
  Ciphertext ct;
  ct.context_id = id_;
  ct.limbs = l;
  ct.scale = pt.scale;
  ct.data.resize(2 * l * n);
  std::vector<std::uint64_t> uu(l * n);
  small_to_rns(u.data(), 0, l, uu.data());
  small_to_rns(e0.data(), 0, l, ct.c(0, n));
  small_to_rns(e1.data(), 0, l, ct.c(1, n));
  // The encryption randomness u, e0, e1 would reveal the message: wipe the small copies.
  secure_wipe(u.data(), n);
  secure_wipe(e0.data(), n);
  secure_wipe(e1.data(), n);
  const std::uint64_t* b = pk.data.data();
  const std::uint64_t* a = b + L * n;
  pfor(l, [&](std::size_t lb, std::size_t le) {
    for (std::size_t k = lb; k < le; ++k) {
      const NttTables& t = *tables_[k];
      const Barrett& br = t.barrett();
      const std::uint64_t q = br.q;
      std::uint64_t* uk = uu.data() + k * n;
      std::uint64_t* c0 = ct.c(0, n) + k * n;
      std::uint64_t* c1 = ct.c(1, n) + k * n;
      t.forward(uk);
      t.forward(c0);
      t.forward(c1);
      const std::uint64_t* bk = b + k * n;
      const std::uint64_t* ak = a + k * n;
      const std::uint64_t* mk = pt.data.data() + k * n;
      for (std::uint64_t j = 0; j < n; ++j) {
        c0[j] = add_mod(add_mod(c0[j], br.mul(bk[j], uk[j]), q), mk[j], q);
        c1[j] = add_mod(c1[j], br.mul(ak[j], uk[j]), q);
      }
    }
  });
  secure_wipe(uu.data(), uu.size() * sizeof(std::uint64_t));
  return ct;
}

Ciphertext CkksContext::encrypt_symmetric(const Plaintext& pt, const SecretKey& sk) {
  check_owner(pt.context_id, "plaintext");
  check_owner(sk.context_id, "secretKey");
  if (!pt.ntt) throw ArgumentRangeError("plaintext is in coefficient form (a decryption result); encode a new one to encrypt");
  const std::uint64_t n = this->n();
  const std::size_t l = pt.limbs;
  Sampler smp(key_, next_stream());
  Ciphertext ct;
  ct.context_id = id_;
  ct.limbs = l;
  ct.scale = pt.scale;
  ct.data.resize(2 * l * n);
  std::vector<std::uint64_t> moduli(params_.moduli.begin(), params_.moduli.begin() + l);
  smp.uniform(0, moduli, n, ct.c(1, n));
  std::vector<std::int8_t> e(n);
  smp.gaussian(2 * l * n, n, e.data());
  small_to_rns(e.data(), 0, l, ct.c(0, n));
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

// ---- evaluator ------------------------------------------------------------------------------

namespace {
void require_same_shape(const Ciphertext& a, const Ciphertext& b) {
  if (a.limbs != b.limbs)
    throw ArgumentRangeError("ciphertexts are at different levels (" + std::to_string(a.limbs) + " vs " +
                             std::to_string(b.limbs) + " primes): modSwitch the higher one first");
  if (std::fabs(a.scale - b.scale) > 1e-9 * std::max(a.scale, b.scale))
    throw ArgumentRangeError("ciphertexts have different scales (" + std::to_string(a.scale) + " vs " +
                             std::to_string(b.scale) + ")");
}
}  // namespace

Ciphertext CkksContext::add(const Ciphertext& a, const Ciphertext& b) const {
  check_owner(a.context_id, "a");
  check_owner(b.context_id, "b");
  require_same_shape(a, b);
  const std::uint64_t n = this->n();
  Ciphertext r = a;
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
  check_owner(a.context_id, "a");
  check_owner(b.context_id, "b");
  require_same_shape(a, b);
  const std::uint64_t n = this->n();
  Ciphertext r = a;
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
  check_owner(a.context_id, "ciphertext");
  check_owner(b.context_id, "plaintext");
  if (!b.ntt) throw ArgumentRangeError("plaintext is in coefficient form (a decryption result)");
  if (b.limbs < a.limbs) throw ArgumentRangeError("plaintext has fewer primes than the ciphertext");
  if (std::fabs(a.scale - b.scale) > 1e-9 * std::max(a.scale, b.scale))
    throw ArgumentRangeError("plaintext and ciphertext scales differ");
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
  check_owner(a.context_id, "ciphertext");
  check_owner(b.context_id, "plaintext");
  if (!b.ntt) throw ArgumentRangeError("plaintext is in coefficient form (a decryption result)");
  if (b.limbs < a.limbs)
    throw ArgumentRangeError("plaintext has fewer primes (" + std::to_string(b.limbs) + ") than the ciphertext (" +
                             std::to_string(a.limbs) + ")");
  const double scale = a.scale * b.scale;
  double log_q = 0;
  for (std::size_t k = 0; k < a.limbs; ++k) log_q += std::log2(static_cast<double>(tables_[k]->modulus()));
  // A scale at or above the ciphertext modulus leaves no room for the value: refuse it.
  if (!std::isfinite(scale) || std::log2(scale) + 1 >= log_q)
    throw ArgumentRangeError("scale overflow in multiplyPlain: the product scale 2^" + std::to_string(std::log2(scale)) +
                             " does not fit the ciphertext modulus of " + std::to_string(log_q) + " bits (rescale first)");
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
  check_owner(a.context_id, "ciphertext");
  if (a.limbs < 2) throw ArgumentRangeError("ciphertext has one prime left: it cannot be rescaled");
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
  check_owner(a.context_id, "ciphertext");
  if (a.limbs < 2) throw ArgumentRangeError("ciphertext has one prime left: it cannot be switched down");
  const std::uint64_t n = this->n();
  Ciphertext r;
  r.context_id = id_;
  r.limbs = a.limbs - 1;
  r.scale = a.scale;
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
  const std::int64_t slots = static_cast<std::int64_t>(encoder_.slots());
  const std::int64_t norm = ((steps % slots) + slots) % slots;
  if (norm == 0) return a;
  auto it = gk.keys.find(norm);
  if (it == gk.keys.end())
    throw ArgumentRangeError("no rotation key for steps = " + std::to_string(steps) + " (generate Galois keys for it)");
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
