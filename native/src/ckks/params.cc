#include "ckks/params.h"

#include <algorithm>
#include <cmath>

#include "ckks/primes.h"
#include "common/errors.h"

namespace tensafe::ckks {

const std::vector<SecurityBound>& security_table_128() {
  // HomomorphicEncryption.org standard (ternary secret, classical); 65536 from OpenFHE.
  static const std::vector<SecurityBound> table = {{1024, 27},  {2048, 54},   {4096, 109}, {8192, 218},
                                                   {16384, 438}, {32768, 881}, {65536, 1747}};
  return table;
}

int max_log_qp_128(std::uint64_t n) {
  for (const auto& b : security_table_128())
    if (b.n == n) return b.max_log_qp;
  return 0;
}

std::vector<std::uint64_t> CkksParams::key_moduli() const {
  std::vector<std::uint64_t> m = moduli;
  if (special) m.push_back(special);
  return m;
}

namespace {
std::uint64_t fnv1a(std::uint64_t h, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 0x100000001b3ULL;
  }
  return h;
}
}  // namespace

CkksParams CkksParams::create(const CkksParamsSpec& spec) {
  const std::uint64_t n = spec.n;
  const std::string bits_range = "[" + std::to_string(kMinPrimeBits) + ", " + std::to_string(kMaxPrimeBits) + "]";
  if (n < kMinPolyN || n > kMaxPolyN || (n & (n - 1)) != 0)
    throw ArgumentRangeError("polyN must be a power of two in [" + std::to_string(kMinPolyN) + ", " +
                             std::to_string(kMaxPolyN) + "], got " + std::to_string(n));
  if (spec.prime_bits.empty() || spec.prime_bits.size() > static_cast<std::size_t>(kMaxPrimes))
    throw ArgumentRangeError("primeBits must list 1.." + std::to_string(kMaxPrimes) + " prime sizes, got " +
                             std::to_string(spec.prime_bits.size()));
  for (std::size_t i = 0; i < spec.prime_bits.size(); ++i)
    if (spec.prime_bits[i] < kMinPrimeBits || spec.prime_bits[i] > kMaxPrimeBits)
      throw ArgumentRangeError("primeBits[" + std::to_string(i) + "] must be in " + bits_range + ", got " +
                               std::to_string(spec.prime_bits[i]));
  if (spec.special_bits != 0 && (spec.special_bits < kMinPrimeBits || spec.special_bits > kMaxPrimeBits))
    throw ArgumentRangeError("specialPrimeBits must be in " + bits_range + ", got " + std::to_string(spec.special_bits));
  // Key switching divides the digit-times-noise products by P: a P smaller than a ciphertext
  // prime would leave noise of (q_i / P) * N * sigma in every rotation.
  if (spec.special_bits != 0 && spec.special_bits < *std::max_element(spec.prime_bits.begin(), spec.prime_bits.end()))
    throw ArgumentRangeError("specialPrimeBits (" + std::to_string(spec.special_bits) +
                             ") must be at least the largest of primeBits");
  if (spec.scale_bits < kMinScaleBits || spec.scale_bits > kMaxScaleBits)
    throw ArgumentRangeError("scaleBits must be in [" + std::to_string(kMinScaleBits) + ", " +
                             std::to_string(kMaxScaleBits) + "], got " + std::to_string(spec.scale_bits));

  CkksParams p;
  p.spec = spec;
  std::vector<std::uint64_t> taken;
  for (int bits : spec.prime_bits) {
    auto q = generate_ntt_primes(n, bits, 1, taken);
    taken.push_back(q[0]);
  }
  p.moduli = taken;
  if (spec.special_bits) p.special = generate_ntt_primes(n, spec.special_bits, 1, taken)[0];
  for (auto q : p.key_moduli()) p.log_qp += std::log2(static_cast<double>(q));
  p.max_log_qp = max_log_qp_128(n);
  p.insecure = p.log_qp > p.max_log_qp;
  if (p.insecure && !spec.allow_insecure)
    throw InsecureParametersError("parameters are below 128-bit security: log2(Q*P) = " + std::to_string(p.log_qp) +
                                  " exceeds " + std::to_string(p.max_log_qp) + " for polyN = " + std::to_string(n) +
                                  " (pass allowInsecure: true for research sweeps; results are then marked insecure)");
  std::uint64_t h = 0xcbf29ce484222325ULL;
  h = fnv1a(h, n);
  for (auto q : p.moduli) h = fnv1a(h, q);
  h = fnv1a(h, p.special);
  p.fingerprint = h;
  return p;
}

}  // namespace tensafe::ckks
