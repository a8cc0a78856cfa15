// The CKKS canonical embedding for N/2 complex slots (real inputs), by the "special FFT".
//
// Slot j (j < N/2) of a real polynomial m(X) in R[X]/(X^N + 1) is m(zeta^(5^j mod 2N)) with
// zeta = exp(i*pi/N); the conjugate slots at zeta^(-5^j) make m real. Encoding inverts this:
// the special inverse FFT maps the slot vector z to w in C^(N/2), and the coefficients are
// m_i = Re(w_i), m_(i + N/2) = Im(w_i) (i < N/2). Decoding runs the special FFT on
// w_i = m_i + i*m_(i + N/2). Both are O(N log N) with twiddles precomputed per stage.
#pragma once
#include <complex>
#include <cstdint>
#include <vector>

namespace tensafe::ckks {

class SlotEncoder {
 public:
  explicit SlotEncoder(std::uint64_t n);

  std::uint64_t n() const { return n_; }
  std::uint64_t slots() const { return slots_; }

  // coeffs (n doubles) = scale * m where m's slots are values[0..count) then zeros.
  void encode(const double* values, std::size_t count, double scale, double* coeffs) const;
  // values (n/2 doubles) = real parts of the slots of the polynomial with these coefficients
  // (each multiplied by inv_scale first).
  void decode(const double* coeffs, double inv_scale, double* values) const;

  // Galois element of a left rotation by `steps` slots: 5^steps mod 2N (steps mod N/2).
  std::uint64_t galois_element(std::int64_t steps) const;

 private:
  void fft_special(std::complex<double>* v) const;
  void fft_special_inv(std::complex<double>* v) const;
  std::uint64_t n_, slots_;
  int log_slots_;
  std::vector<std::uint32_t> bitrev_;
  // Twiddles per stage, stage s (len = 2^(s+1)) at offset len/2 - 1.
  std::vector<std::complex<double>> fwd_tw_, inv_tw_;
};

}  // namespace tensafe::ckks
