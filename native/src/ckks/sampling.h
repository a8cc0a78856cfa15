// Samplers over the ChaCha20 word stream, and THE RANDOMNESS LAYOUT that the CPU and CUDA
// backends share (in seeded mode both must produce the same words).
//
// Key: 256 bits, from the OS (os_random_key) or, in the insecure seeded test mode, the seed.
// Stream ids: every context keeps a counter starting at 1; each sampling call below takes the
// next id (one id per call, in call order), and the stream id is the ChaCha20 nonce.
// word(w) is 64-bit word w of that stream (chacha20.h).
//
// Samples (each is a pure function of key, stream id and word index):
//   uniform mod q, limb l, coefficient j of a polynomial whose first word is `base`:
//       k = l*n + j;  value = (word(base + 2k + 1) * 2^64 + word(base + 2k)) mod q
//       (two words, so the bias is below q / 2^128); the value is used directly as an
//       NTT-domain coefficient.
//   ternary, coefficient j:   t = mulhi64(word(base + j), 3) - 1   in {-1, 0, 1}
//   Gaussian, coefficient j:  x = -19 + #{ i in [0, 38) : word(base + j) >= T[i] }, where T is
//       gaussian_cdt(): T[i] = floor(2^64 * P(X <= -19 + i)) for X the discrete Gaussian of
//       sigma 3.2 on [-19, 19] (clipped at 6 sigma), computed in long double and rounded down.
//       The loop scans the whole table (no early exit).
//
// Per-call layout (n = ring dimension, K = limbs of the sampled uniform polynomial):
//   secret key        s: ternary, words [0, n)
//   public key        a: uniform over the L ciphertext primes, words [0, 2Ln);
//                     e: Gaussian, words [2Ln, 2Ln + n)
//   encrypt (public)  u: ternary [0, n); e0: Gaussian [n, 2n); e1: Gaussian [2n, 3n)
//   encrypt (secret)  a: uniform over the ciphertext's l primes [0, 2ln); e: Gaussian [2ln, 2ln + n)
//   Galois key, one call per rotation step (steps in the order given, after removing duplicates),
//                     over K = L + 1 primes (ciphertext primes, then the special prime):
//                     component i in [0, L): a_i uniform at base i*(2Kn + n), e_i Gaussian at
//                     base i*(2Kn + n) + 2Kn.
//   encrypt (secret, compact): seed = words [0, 4) (32 bytes, little-endian) of the call's
//                     stream; a = uniform over the l primes, words [0, 2ln) of the stream with
//                     KEY = seed and stream id 0 (so a is a function of the public seed only);
//                     e: Gaussian [2ln, 2ln + n) of the call's stream (as the non-compact form).
//   rerandomize       u, e0, e1 as a public-key encryption (its own stream).
//
// sampleWords (Sampler::uniform_exact, Sampler::centered): one stream per call, words read in
// order from word 0 (rejection sampling consumes a data-dependent number of them):
//   'uniform'  limb by limb (limb 0's `count` values first): a word w is accepted iff
//              w < 2^64 - (2^64 mod q), and then gives w mod q: exactly uniform on [0, q)
//              (no modulo bias); rejection probability (2^64 mod q) / 2^64 < 2^-3 at 61 bits.
//   'centered' position by position: a 128-bit candidate c = word(2t+1) * 2^64 + word(2t)
//              (t = 0, 1, ... in order) is accepted iff c < 2^128 - (2^128 mod M), with
//              M = 2^(bits+1) + 1; then e = (c mod M) - 2^bits, exactly uniform on the integers
//              [-2^bits, 2^bits]; e mod q_i is written into every limb i (one integer per
//              position, in RNS): flooding noise.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "ckks/chacha20.h"

namespace tensafe::ckks {

constexpr double kGaussianSigma = 3.2;
constexpr int kGaussianBound = 19;  // |x| <= 19 (6 sigma = 19.2)
constexpr int kGaussianTableSize = 2 * kGaussianBound;  // 38 thresholds

// The 38 CDT thresholds (computed once on the host; the CUDA backend uploads this table).
const std::array<std::uint64_t, kGaussianTableSize>& gaussian_cdt();

TENSAFE_HD inline int ternary_from_word(std::uint64_t w) { return static_cast<int>(mulhi64(w, 3)) - 1; }

TENSAFE_HD inline int gaussian_from_word(std::uint64_t w, const std::uint64_t* table) {
  int c = 0;
  for (int i = 0; i < kGaussianTableSize; ++i) c += (w >= table[i]) ? 1 : 0;
  return c - kGaussianBound;
}

class Sampler {
 public:
  Sampler(const ChaChaKey& key, std::uint64_t stream) : key_(key), stream_(stream) {}

  // Uniform residues for `limbs` moduli, written limb-major into out (limbs*n words).
  void uniform(std::uint64_t base, const std::vector<std::uint64_t>& moduli, std::size_t n, std::uint64_t* out) const;
  // n ternary values in {-1, 0, 1}.
  void ternary(std::uint64_t base, std::size_t n, std::int8_t* out) const;
  // n Gaussian values in [-19, 19].
  void gaussian(std::uint64_t base, std::size_t n, std::int8_t* out) const;
  // `count` exactly uniform residues per modulus (rejection sampling, layout above), limb-major.
  void uniform_exact(const std::vector<std::uint64_t>& moduli, std::size_t count, std::uint64_t* out) const;
  // `count` integers exactly uniform on [-2^bits, 2^bits] (bits <= 126), each written mod every
  // modulus, limb-major (layout above).
  void centered(const std::vector<std::uint64_t>& moduli, std::size_t count, int bits, std::uint64_t* out) const;

 private:
  ChaChaKey key_;
  std::uint64_t stream_;
};

}  // namespace tensafe::ckks
