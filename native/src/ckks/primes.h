// Primality and NTT-friendly prime generation (host side).
#pragma once
#include <cstdint>
#include <vector>

namespace tensafe::ckks {

// Deterministic Miller-Rabin for every 64-bit n: the bases 2, 3, 5, ..., 37 (the first twelve
// primes) have no common strong liar below 3.3e24 (Sorenson & Webster 2015), far above 2^64.
bool is_prime(std::uint64_t n);

// `count` distinct primes q with q = 1 (mod 2n) and 2^(bits-1) < q < 2^bits, in a fixed order:
// the largest first, walking down from 2^bits by steps of 2n. Primes in `exclude` are skipped
// (so a second call can add a special prime that differs from the first set).
// Throws ArgumentRangeError when bits is outside [2 + log2(2n), 61], n is not a power of two
// >= 2, or the interval holds fewer than `count` such primes.
std::vector<std::uint64_t> generate_ntt_primes(std::uint64_t n, int bits, int count,
                                               const std::vector<std::uint64_t>& exclude = {});

}  // namespace tensafe::ckks
