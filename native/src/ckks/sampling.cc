#include "ckks/sampling.h"

#include <cmath>

#include "ckks/modarith.h"
#include "ckks/parallel.h"

namespace tensafe::ckks {

const std::array<std::uint64_t, kGaussianTableSize>& gaussian_cdt() {
  static const std::array<std::uint64_t, kGaussianTableSize> table = [] {
    long double w[2 * kGaussianBound + 1];
    long double total = 0;
    for (int x = -kGaussianBound; x <= kGaussianBound; ++x) {
      w[x + kGaussianBound] = std::exp(-static_cast<long double>(x) * x / (2.0L * kGaussianSigma * kGaussianSigma));
      total += w[x + kGaussianBound];
    }
    std::array<std::uint64_t, kGaussianTableSize> t{};
    long double cdf = 0;
    for (int i = 0; i < kGaussianTableSize; ++i) {
      cdf += w[i] / total;  // P(X <= -19 + i)
      long double scaled = cdf * 18446744073709551616.0L;
      t[i] = scaled >= 18446744073709551615.0L ? ~std::uint64_t{0} : static_cast<std::uint64_t>(scaled);
    }
    return t;
  }();
  return table;
}

void Sampler::uniform(std::uint64_t base, const std::vector<std::uint64_t>& moduli, std::size_t n,
                      std::uint64_t* out) const {
  const std::size_t total = moduli.size() * n;
  std::vector<std::uint64_t> words(2 * total);
  chacha20_words(key_, stream_, base, words.size(), words.data());
  for (std::size_t l = 0; l < moduli.size(); ++l) {
    Barrett br(moduli[l]);
    const std::uint64_t* w = words.data() + 2 * l * n;
    std::uint64_t* o = out + l * n;
    for (std::size_t j = 0; j < n; ++j) o[j] = br.reduce128(w[2 * j + 1], w[2 * j]);
  }
}

void Sampler::ternary(std::uint64_t base, std::size_t n, std::int8_t* out) const {
  std::vector<std::uint64_t> words(n);
  chacha20_words(key_, stream_, base, n, words.data());
  for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<std::int8_t>(ternary_from_word(words[j]));
}

void Sampler::gaussian(std::uint64_t base, std::size_t n, std::int8_t* out) const {
  std::vector<std::uint64_t> words(n);
  chacha20_words(key_, stream_, base, n, words.data());
  const std::uint64_t* t = gaussian_cdt().data();
  for (std::size_t j = 0; j < n; ++j) out[j] = static_cast<std::int8_t>(gaussian_from_word(words[j], t));
}

namespace {
// Reads a stream's words in order, a chunk at a time (rejection sampling takes a
// data-dependent number of them).
class WordCursor {
 public:
  WordCursor(const ChaChaKey& key, std::uint64_t stream) : key_(key), stream_(stream) {}
  std::uint64_t next() {
    if (pos_ == buf_.size()) {
      buf_.resize(kChunk);
      chacha20_words(key_, stream_, start_, kChunk, buf_.data());
      start_ += kChunk;
      pos_ = 0;
    }
    return buf_[pos_++];
  }
  ~WordCursor() { secure_zero(buf_); }

 private:
  static void secure_zero(std::vector<std::uint64_t>& v) {
    volatile std::uint64_t* p = v.data();
    for (std::size_t i = 0; i < v.size(); ++i) p[i] = 0;
  }
  static constexpr std::size_t kChunk = 4096;
  ChaChaKey key_;
  std::uint64_t stream_;
  std::uint64_t start_ = 0;
  std::vector<std::uint64_t> buf_;
  std::size_t pos_ = 0;
};
}  // namespace

void Sampler::uniform_exact(const std::vector<std::uint64_t>& moduli, std::size_t count, std::uint64_t* out) const {
  WordCursor words(key_, stream_);
  for (std::size_t l = 0; l < moduli.size(); ++l) {
    const std::uint64_t q = moduli[l];
    const std::uint64_t rem = (0 - q) % q;  // 2^64 mod q (q odd, so never 0)
    const std::uint64_t limit = 0 - rem;    // 2^64 - rem: the largest multiple of q below 2^64
    const Barrett br(q);                    // reduce64: w mod q exactly, without a division
    std::uint64_t* o = out + l * count;
    for (std::size_t j = 0; j < count;) {
      const std::uint64_t w = words.next();
      if (w < limit) o[j++] = br.reduce64(w);
    }
  }
}

void Sampler::centered(const std::vector<std::uint64_t>& moduli, std::size_t count, int bits, std::uint64_t* out) const {
  using u128 = unsigned __int128;
  WordCursor words(key_, stream_);
  const u128 half = static_cast<u128>(1) << bits;
  const u128 M = 2 * half + 1;
  const u128 rem = (static_cast<u128>(0) - M) % M;  // 2^128 mod M
  const u128 limit = static_cast<u128>(0) - rem;
  const std::size_t L = moduli.size();
  for (std::size_t j = 0; j < count; ++j) {
    u128 c;
    do {
      const std::uint64_t lo = words.next();
      const std::uint64_t hi = words.next();
      c = (static_cast<u128>(hi) << 64) | lo;
    } while (c >= limit);
    const u128 v = c % M;  // e = v - 2^bits
    const bool negative = v < half;
    const u128 mag = negative ? half - v : v - half;
    for (std::size_t l = 0; l < L; ++l) {
      const std::uint64_t q = moduli[l];
      const std::uint64_t r = static_cast<std::uint64_t>(mag % q);
      out[l * count + j] = (negative && r) ? q - r : r;
    }
  }
}

}  // namespace tensafe::ckks
