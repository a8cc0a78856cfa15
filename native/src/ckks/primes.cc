#include "ckks/primes.h"

#include <algorithm>
#include <string>

#include "ckks/modarith.h"
#include "common/errors.h"

namespace tensafe::ckks {

namespace {
// One strong-probable-prime round: does `a` witness that the odd n > 2 is composite?
bool is_witness(u64 a, u64 n, u64 d, int s) {
  a %= n;
  if (a == 0) return false;
  u64 x = pow_mod(a, d, n);
  if (x == 1 || x == n - 1) return false;
  for (int r = 1; r < s; ++r) {
    x = mul_mod_slow(x, x, n);
    if (x == n - 1) return false;
  }
  return true;
}
}  // namespace

bool is_prime(u64 n) {
  static const u64 kBases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  if (n < 2) return false;
  for (u64 p : kBases) {
    if (n == p) return true;
    if (n % p == 0) return false;
  }
  u64 d = n - 1;
  int s = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++s;
  }
  for (u64 a : kBases)
    if (is_witness(a, n, d, s)) return false;
  return true;
}

std::vector<u64> generate_ntt_primes(u64 n, int bits, int count, const std::vector<u64>& exclude) {
  if (n < 2 || (n & (n - 1)) != 0) throw ArgumentRangeError("n must be a power of two >= 2, got " + std::to_string(n));
  int log2n1 = 1;  // log2(2n)
  while ((u64{1} << log2n1) < 2 * n) ++log2n1;
  if (bits < log2n1 + 2 || bits > 61)
    throw ArgumentRangeError("bits must be in [" + std::to_string(log2n1 + 2) + ", 61] for n = " + std::to_string(n) +
                             ", got " + std::to_string(bits));
  if (count < 0) throw ArgumentRangeError("count must be >= 0, got " + std::to_string(count));
  std::vector<u64> out;
  const u64 step = 2 * n;
  const u64 lower = u64{1} << (bits - 1);
  // 2^bits is a multiple of 2n, so 2^bits - 2n + 1 is the largest candidate = 1 mod 2n.
  for (u64 c = (u64{1} << bits) - step + 1; c > lower && static_cast<int>(out.size()) < count; c -= step) {
    if (std::find(exclude.begin(), exclude.end(), c) != exclude.end()) continue;
    if (is_prime(c)) out.push_back(c);
    if (c < step) break;
  }
  if (static_cast<int>(out.size()) < count)
    throw ArgumentRangeError("only " + std::to_string(out.size()) + " primes of " + std::to_string(bits) +
                             " bits are = 1 mod " + std::to_string(step) + ", asked for " + std::to_string(count));
  return out;
}

}  // namespace tensafe::ckks
