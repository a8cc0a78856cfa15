#include "helora/dp_noise.h"

#include <cmath>

namespace tensafe::helora {

DpNoise::DpNoise() : key_(ckks::os_random_key()) {}

void DpNoise::standard_normal(double* out, int n) {
  const size_t pairs = (static_cast<size_t>(n) + 1) / 2;
  words_.resize(2 * pairs);
  ckks::chacha20_words(key_, stream_.fetch_add(1), 0, words_.size(), words_.data());
  constexpr double k53 = 1.0 / 9007199254740992.0;  // 2^-53
  constexpr double kTwoPi = 6.283185307179586476925286766559;
  for (size_t p = 0; p < pairs; ++p) {
    const double u1 = static_cast<double>((words_[2 * p] >> 11) + 1) * k53;
    const double u2 = static_cast<double>(words_[2 * p + 1] >> 11) * k53;
    const double rad = std::sqrt(-2.0 * std::log(u1));
    out[2 * p] = rad * std::cos(kTwoPi * u2);
    if (2 * p + 1 < static_cast<size_t>(n)) out[2 * p + 1] = rad * std::sin(kTwoPi * u2);
  }
}

void DpNoise::apply(double* x, int n, double clip_norm, double sigma) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const double norm = std::sqrt(ss);
  if (norm > clip_norm) {
    const double f = clip_norm / norm;
    for (int i = 0; i < n; ++i) x[i] *= f;
  }
  if (sigma <= 0) return;
  std::vector<double> z(n);
  standard_normal(z.data(), n);
  for (int i = 0; i < n; ++i) x[i] += sigma * z[i];
}

}  // namespace tensafe::helora
