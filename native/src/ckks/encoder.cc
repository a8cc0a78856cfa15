#include "ckks/encoder.h"

#include <cmath>

#include "ckks/ntt_tables.h"

namespace tensafe::ckks {

SlotEncoder::SlotEncoder(std::uint64_t n) : n_(n), slots_(n / 2), log_slots_(0) {
  while ((std::uint64_t{1} << log_slots_) < slots_) ++log_slots_;
  const std::uint64_t M = 2 * n;
  std::vector<std::uint64_t> rot(slots_);
  std::uint64_t g = 1;
  for (std::uint64_t j = 0; j < slots_; ++j) {
    rot[j] = g;
    g = (g * 5) % M;
  }
  auto ksi = [&](std::uint64_t k) {
    // exp(2 pi i k / M) computed directly (no accumulated error from repeated products).
    long double a = 2.0L * 3.141592653589793238462643383279502884L * static_cast<long double>(k) / static_cast<long double>(M);
    return std::complex<double>(static_cast<double>(std::cos(a)), static_cast<double>(std::sin(a)));
  };
  fwd_tw_.resize(slots_ > 1 ? slots_ - 1 : 1);
  inv_tw_.resize(fwd_tw_.size());
  for (std::uint64_t len = 2; len <= slots_; len <<= 1) {
    const std::uint64_t lenh = len >> 1, lenq = len << 2, gap = M / lenq;
    for (std::uint64_t j = 0; j < lenh; ++j) {
      fwd_tw_[lenh - 1 + j] = ksi((rot[j] % lenq) * gap);
      inv_tw_[lenh - 1 + j] = ksi((lenq - rot[j] % lenq) * gap);
    }
  }
  bitrev_.resize(slots_);
  for (std::uint64_t i = 0; i < slots_; ++i) bitrev_[i] = bit_reverse(static_cast<std::uint32_t>(i), log_slots_);
}

std::uint64_t SlotEncoder::galois_element(std::int64_t steps) const {
  const std::int64_t s = static_cast<std::int64_t>(slots_);
  std::uint64_t k = static_cast<std::uint64_t>(((steps % s) + s) % s);
  const std::uint64_t M = 2 * n_;
  std::uint64_t g = 1, b = 5;
  while (k) {
    if (k & 1) g = (g * b) % M;
    b = (b * b) % M;
    k >>= 1;
  }
  return g;
}

void SlotEncoder::fft_special(std::complex<double>* v) const {
  for (std::uint64_t i = 0; i < slots_; ++i)
    if (i < bitrev_[i]) std::swap(v[i], v[bitrev_[i]]);
  for (std::uint64_t len = 2; len <= slots_; len <<= 1) {
    const std::uint64_t lenh = len >> 1;
    const std::complex<double>* tw = fwd_tw_.data() + lenh - 1;
    for (std::uint64_t i = 0; i < slots_; i += len) {
      std::complex<double>* a = v + i;
      std::complex<double>* b = a + lenh;
      for (std::uint64_t j = 0; j < lenh; ++j) {
        // manual complex product (std::complex operator* checks NaN/Inf cases)
        const double br = b[j].real(), bi = b[j].imag(), wr = tw[j].real(), wi = tw[j].imag();
        const std::complex<double> t(br * wr - bi * wi, br * wi + bi * wr);
        const std::complex<double> u = a[j];
        a[j] = u + t;
        b[j] = u - t;
      }
    }
  }
}

void SlotEncoder::fft_special_inv(std::complex<double>* v) const {
  for (std::uint64_t len = slots_; len >= 2; len >>= 1) {
    const std::uint64_t lenh = len >> 1;
    const std::complex<double>* tw = inv_tw_.data() + lenh - 1;
    for (std::uint64_t i = 0; i < slots_; i += len) {
      std::complex<double>* a = v + i;
      std::complex<double>* b = a + lenh;
      for (std::uint64_t j = 0; j < lenh; ++j) {
        const std::complex<double> u = a[j] + b[j];
        const std::complex<double> d = a[j] - b[j];
        const double wr = tw[j].real(), wi = tw[j].imag();
        a[j] = u;
        b[j] = std::complex<double>(d.real() * wr - d.imag() * wi, d.real() * wi + d.imag() * wr);
      }
    }
  }
  for (std::uint64_t i = 0; i < slots_; ++i)
    if (i < bitrev_[i]) std::swap(v[i], v[bitrev_[i]]);
}

void SlotEncoder::encode(const double* values, std::size_t count, double scale, double* coeffs) const {
  std::vector<std::complex<double>> v(slots_);
  for (std::size_t j = 0; j < count && j < slots_; ++j) v[j] = values[j];
  fft_special_inv(v.data());
  const double f = scale / static_cast<double>(slots_);
  for (std::uint64_t i = 0; i < slots_; ++i) {
    coeffs[i] = v[i].real() * f;
    coeffs[i + slots_] = v[i].imag() * f;
  }
}

void SlotEncoder::decode(const double* coeffs, double inv_scale, double* values) const {
  std::vector<std::complex<double>> v(slots_);
  for (std::uint64_t i = 0; i < slots_; ++i) v[i] = {coeffs[i] * inv_scale, coeffs[i + slots_] * inv_scale};
  fft_special(v.data());
  for (std::uint64_t j = 0; j < slots_; ++j) values[j] = v[j].real();
}

}  // namespace tensafe::ckks
