// CKKS parameters: ring dimension, prime chain, special prime, scale, and the 128-bit security
// check (HomomorphicEncryption.org standard, ternary secret, classical; N = 65536 from
// OpenFHE's table). A set above the bound is refused unless allow_insecure is set, and the
// context then reports itself insecure in every result.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tensafe::ckks {

// Largest log2(Q*P) with 128-bit classical security for ring dimension n (0 if n unknown).
int max_log_qp_128(std::uint64_t n);

// The whole table, (n, max log2(Q*P)) by increasing n: the one owner of these numbers (the
// TypeScript side reads it through the addon).
struct SecurityBound {
  std::uint64_t n;
  int max_log_qp;
};
const std::vector<SecurityBound>& security_table_128();

// Bounds of a parameter set (checked by CkksParams::create; reported to TypeScript).
constexpr std::uint64_t kMinPolyN = 4096;
constexpr std::uint64_t kMaxPolyN = 65536;
constexpr int kMinPrimeBits = 20;
constexpr int kMaxPrimeBits = 60;
constexpr int kMaxPrimes = 30;
constexpr int kMinScaleBits = 1;
constexpr int kMaxScaleBits = 60;

struct CkksParamsSpec {
  std::uint64_t n = 16384;
  std::vector<int> prime_bits{60, 40};
  int special_bits = 0;  // 0: no special prime (no rotation keys)
  int scale_bits = 40;
  bool allow_insecure = false;
  bool seeded = false;
  std::uint64_t seed[4] = {0, 0, 0, 0};
};

struct CkksParams {
  CkksParamsSpec spec;
  std::vector<std::uint64_t> moduli;  // q_0..q_{L-1}
  std::uint64_t special = 0;          // P, or 0
  double log_qp = 0;
  int max_log_qp = 0;
  bool insecure = false;
  std::uint64_t fingerprint = 0;

  // Validates the spec (ArgumentRangeError naming the field), draws the primes and runs the
  // security check (InsecureParametersError unless allow_insecure).
  static CkksParams create(const CkksParamsSpec& spec);

  std::size_t limbs() const { return moduli.size(); }
  // Ciphertext primes followed by the special prime (when any).
  std::vector<std::uint64_t> key_moduli() const;
};

}  // namespace tensafe::ckks
