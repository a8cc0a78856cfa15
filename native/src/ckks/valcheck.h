// The metadata checks of the CKKS operations, written once for both engines: the CPU objects
// (ckks::Ciphertext, ...) and the CUDA ones (cuda::CiphertextCuda, ...) carry the same fields
// (context_id, limbs, scale, ntt), so each check is a template over the object type and both
// evaluators raise the same RangeError for the same mistake. Key objects are passed by their
// owner id (the CUDA keys keep theirs in `.host`).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "ckks/context.h"
#include "common/errors.h"

namespace tensafe::ckks::valcheck {

// Scales equal up to float rounding of their computation.
inline bool same_scale(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(a, b); }

// log2 of the product of the first `limbs` ciphertext primes.
inline double log_q(const CkksContext& ctx, std::size_t limbs) {
  double bits = 0;
  for (std::size_t k = 0; k < limbs; ++k) bits += std::log2(static_cast<double>(ctx.tables(k).modulus()));
  return bits;
}

// encode / encodeCoefficients: fills the defaults (limbs 0 = all primes, scale <= 0 = the
// context scale) and checks them and the value count.
inline void encode_args(const CkksContext& ctx, std::size_t count, std::size_t max_count, const char* max_name,
                        std::size_t& limbs, double& scale) {
  if (limbs == 0) limbs = ctx.max_limbs();
  if (limbs < 1 || limbs > ctx.max_limbs())
    throw ArgumentRangeError("limbs must be in [1, " + std::to_string(ctx.max_limbs()) + "], got " + std::to_string(limbs));
  if (scale <= 0) scale = ctx.default_scale();
  if (!std::isfinite(scale)) throw ArgumentRangeError("scale must be a finite positive number");
  if (count > max_count)
    throw ArgumentRangeError("values must hold at most " + std::string(max_name) + " = " + std::to_string(max_count) +
                             " numbers, got " + std::to_string(count));
}

// max |values[i] * scale| (NaN when any value is NaN).
inline double max_abs(const double* values, std::size_t count, double scale) {
  double m = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double a = std::fabs(values[i] * scale);
    if (!(a <= m)) m = a;  // also takes NaN
  }
  return m;
}

// Scaled coefficients of magnitude up to `maxabs` (NaN included) must fit the plaintext
// modulus of `limbs` primes with room for the sign.
inline void coefficients_fit(const CkksContext& ctx, double maxabs, std::size_t limbs, const char* reach) {
  const double bits = log_q(ctx, limbs);
  if (!std::isfinite(maxabs) || (maxabs >= 1 && std::log2(maxabs) + 1 >= bits))
    throw ArgumentRangeError("scale overflow: |value * scale| " + std::string(reach) + " 2^" +
                             std::to_string(std::log2(maxabs)) + ", which does not fit the plaintext modulus of " +
                             std::to_string(bits) + " bits");
}

// plaintextFromWords: `count` = limbs * n residues, each below its prime, a positive scale.
inline void words_args(const CkksContext& ctx, const std::uint64_t* words, std::size_t count, std::size_t limbs,
                       double scale) {
  if (limbs < 1 || limbs > ctx.max_limbs())
    throw ArgumentRangeError("options.limbs must be in [1, " + std::to_string(ctx.max_limbs()) + "], got " +
                             std::to_string(limbs));
  if (count != limbs * ctx.n())
    throw ArgumentRangeError("words must hold limbs * polyN = " + std::to_string(limbs * ctx.n()) + " residues, got " +
                             std::to_string(count));
  if (!std::isfinite(scale) || scale <= 0) throw ArgumentRangeError("options.scale must be a finite positive number");
  ctx.check_residues(words, limbs, "words");
}

// Slot encoding, checked before any work (the GPU encodes on the device): every coefficient
// of the special IFFT is a unit-modulus combination of the slots divided by the slot count,
// so |coefficient| <= scale * sum |z| / slots. Slot j holds values[j % period] for j < count.
inline void slots_fit(const CkksContext& ctx, const double* values, std::size_t count, std::size_t period,
                      std::size_t limbs, double scale) {
  double sum = 0;
  for (std::size_t j = 0; j < period; ++j) sum += std::fabs(values[j]);
  if (period) sum *= static_cast<double>((count + period - 1) / period);  // whole or partial replicas
  coefficients_fit(ctx, scale * sum / static_cast<double>(ctx.n() / 2), limbs, "may reach");
}

// Both operands of add / sub: this context, one level, one scale.
template <typename Ct>
void same_level(const CkksContext& ctx, const Ct& a, const Ct& b) {
  ctx.check_owner(a.context_id, "a");
  ctx.check_owner(b.context_id, "b");
  if (a.limbs != b.limbs)
    throw ArgumentRangeError("ciphertexts are at different levels (" + std::to_string(a.limbs) + " vs " +
                             std::to_string(b.limbs) + " primes): modSwitch the higher one first");
  if (!same_scale(a.scale, b.scale))
    throw ArgumentRangeError("ciphertexts have different scales (" + std::to_string(a.scale) + " vs " +
                             std::to_string(b.scale) + ")");
}

// A plaintext that is multiplied, added or encrypted: this context, NTT form.
template <typename Pt>
void operand_plaintext(const CkksContext& ctx, const Pt& pt, const char* use) {
  ctx.check_owner(pt.context_id, "plaintext");
  if (!pt.ntt) throw ArgumentRangeError(std::string("plaintext is in coefficient form (a decryption result); ") + use);
}

// The plaintext of addPlain / multiplyPlain covers the ciphertext's primes.
template <typename Ct, typename Pt>
void plain_operand(const CkksContext& ctx, const Ct& ct, const Pt& pt) {
  ctx.check_owner(ct.context_id, "ciphertext");
  operand_plaintext(ctx, pt, "encode a plaintext to compute with");
  if (pt.limbs < ct.limbs)
    throw ArgumentRangeError("plaintext has fewer primes (" + std::to_string(pt.limbs) + ") than the ciphertext (" +
                             std::to_string(ct.limbs) + ")");
}

template <typename Ct, typename Pt>
void add_plain(const CkksContext& ctx, const Ct& ct, const Pt& pt) {
  plain_operand(ctx, ct, pt);
  if (!same_scale(ct.scale, pt.scale))
    throw ArgumentRangeError("plaintext and ciphertext scales differ (" + std::to_string(pt.scale) + " vs " +
                             std::to_string(ct.scale) + ")");
}

// multiplyPlain: returns the product's scale, refused when it leaves no room in the modulus.
template <typename Ct, typename Pt>
double multiply_plain(const CkksContext& ctx, const Ct& ct, const Pt& pt) {
  plain_operand(ctx, ct, pt);
  const double scale = ct.scale * pt.scale;
  const double bits = log_q(ctx, ct.limbs);
  if (!std::isfinite(scale) || std::log2(scale) + 1 >= bits)
    throw ArgumentRangeError("scale overflow in multiplyPlain: the product scale 2^" + std::to_string(std::log2(scale)) +
                             " does not fit the ciphertext modulus of " + std::to_string(bits) + " bits (rescale first)");
  return scale;
}

// rescale / modSwitch: a prime must remain. `verb` says what would be done.
template <typename Ct>
void drop_prime(const CkksContext& ctx, const Ct& ct, const char* verb) {
  ctx.check_owner(ct.context_id, "ciphertext");
  if (ct.limbs < 2) throw ArgumentRangeError(std::string("ciphertext has one prime left: it cannot be ") + verb);
}

// The rotation step normalised to [0, slots) (rotate by 0 is the identity).
inline std::int64_t rotation_step(const CkksContext& ctx, std::int64_t steps) {
  const std::int64_t slots = static_cast<std::int64_t>(ctx.n() / 2);
  return ((steps % slots) + slots) % slots;
}

[[noreturn]] inline void missing_rotation_key(std::int64_t steps) {
  throw ArgumentRangeError("no rotation key for steps = " + std::to_string(steps) + " (generate Galois keys for it)");
}

}  // namespace tensafe::ckks::valcheck
