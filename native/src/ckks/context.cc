#include "ckks/context.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "ckks/sampling.h"
#include "ckks/valcheck.h"
#include "common/errors.h"
#include "ckks/parallel.h"

namespace tensafe::ckks {

namespace {
std::atomic<std::uint64_t> g_next_context_id{1};

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
  valcheck::operand_plaintext(*this, pt, "encode a plaintext to compute with");
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
  valcheck::coefficients_fit(*this, valcheck::max_abs(coeffs, n, 1.0), limbs, "reaches");
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

}  // namespace tensafe::ckks
