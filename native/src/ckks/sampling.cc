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

}  // namespace tensafe::ckks
