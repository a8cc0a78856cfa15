// CkksContext: slot and coefficient encoding, decoding.
#include "ckks/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "ckks/parallel.h"
#include "ckks/sampling.h"
#include "ckks/valcheck.h"
#include "common/errors.h"

namespace tensafe::ckks {


// ---- encoding -------------------------------------------------------------------------------

Plaintext CkksContext::encode(const double* values, std::size_t count, std::size_t limbs, double scale) const {
  valcheck::encode_args(*this, count, encoder_.slots(), "polyN/2", limbs, scale);
  valcheck::slots_fit(*this, values, count, count, limbs, scale);  // the bound the GPU checks too
  const std::uint64_t n = this->n();
  std::vector<double> coeffs(n);
  encoder_.encode(values, count, scale, coeffs.data());
  Plaintext pt;
  pt.context_id = id_;
  pt.limbs = limbs;
  pt.scale = scale;
  pt.encoding = Encoding::Slots;
  pt.data.resize(limbs * n);
  round_to_rns(coeffs.data(), limbs, pt.data.data());
  ntt_forward(pt.data.data(), limbs);
  return pt;
}

Plaintext CkksContext::encode_coefficients(const double* values, std::size_t count, std::size_t limbs,
                                           double scale) const {
  const std::uint64_t n = this->n();
  valcheck::encode_args(*this, count, n, "polyN", limbs, scale);
  std::vector<double> coeffs(n, 0.0);
  for (std::size_t i = 0; i < count; ++i) coeffs[i] = values[i] * scale;
  Plaintext pt;
  pt.context_id = id_;
  pt.limbs = limbs;
  pt.scale = scale;
  pt.encoding = Encoding::Coefficients;
  pt.data.resize(limbs * n);
  round_to_rns(coeffs.data(), limbs, pt.data.data());
  ntt_forward(pt.data.data(), limbs);
  return pt;
}

void CkksContext::decode_coefficients(const Plaintext& pt, double* out) const {
  check_owner(pt.context_id, "plaintext");
  if (pt.ntt) {
    std::vector<std::uint64_t> tmp(pt.data);
    ntt_inverse(tmp.data(), pt.limbs);
    compose_to_double(tmp.data(), pt.limbs, 1.0 / pt.scale, out);
  } else {
    compose_to_double(pt.data.data(), pt.limbs, 1.0 / pt.scale, out);
  }
}

void CkksContext::decode(const Plaintext& pt, double* out) const {
  std::vector<double> coeffs(n());
  decode_coefficients(pt, coeffs.data());
  encoder_.decode(coeffs.data(), 1.0, out);
}

}  // namespace tensafe::ckks
