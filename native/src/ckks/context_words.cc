// CkksContext: plaintexts from and to raw coefficient residues, and caller-visible samples of
// the context's ChaCha20 stream (the building blocks of masks and noise flooding in the
// client-key protocol).
#include <cmath>
#include <cstring>

#include "ckks/context.h"
#include "ckks/sampling.h"
#include "ckks/valcheck.h"
#include "common/errors.h"

namespace tensafe::ckks {

void CkksContext::check_residues(const std::uint64_t* words, std::size_t limbs, const char* what) const {
  const std::uint64_t n = this->n();
  for (std::size_t i = 0; i < limbs; ++i) {
    const std::uint64_t q = tables_[i]->modulus();
    const std::uint64_t* w = words + i * n;
    for (std::uint64_t j = 0; j < n; ++j)
      if (w[j] >= q)
        throw ArgumentRangeError(std::string(what) + "[" + std::to_string(i * n + j) + "] = " + std::to_string(w[j]) +
                                 " is not below its prime q_" + std::to_string(i) + " = " + std::to_string(q));
  }
}

Plaintext CkksContext::plaintext_from_words(const std::uint64_t* words, std::size_t count, std::size_t limbs,
                                            double scale, Encoding encoding) const {
  valcheck::words_args(*this, words, count, limbs, scale);
  Plaintext pt;
  pt.context_id = id_;
  pt.limbs = limbs;
  pt.scale = scale;
  pt.encoding = encoding;
  pt.data.assign(words, words + count);
  ntt_forward(pt.data.data(), limbs);
  return pt;
}

std::vector<std::uint64_t> CkksContext::plaintext_words(const Plaintext& pt) const {
  check_owner(pt.context_id, "plaintext");
  std::vector<std::uint64_t> out(pt.data);
  if (pt.ntt) ntt_inverse(out.data(), pt.limbs);
  return out;
}

std::vector<std::uint64_t> CkksContext::ciphertext_words(const Ciphertext& ct) const {
  check_owner(ct.context_id, "ciphertext");
  return ct.data;
}

std::vector<std::uint64_t> CkksContext::sample_words(std::size_t limbs, std::size_t count, SampleDistribution dist,
                                                     int bits) {
  check_limbs(limbs, "options.limbs");
  if (count < 1 || count > (std::size_t{1} << 22))
    throw ArgumentRangeError("options.count must be in [1, 4194304], got " + std::to_string(count));
  if (limbs * count > (std::size_t{1} << 24))
    throw ArgumentRangeError("options: limbs * count = " + std::to_string(limbs * count) +
                             " residues is above the limit of 16777216 per call");
  std::vector<std::uint64_t> moduli(params_.moduli.begin(), params_.moduli.begin() + limbs);
  std::vector<std::uint64_t> out(limbs * count);
  if (dist == SampleDistribution::Uniform) {
    Sampler(key_, next_stream()).uniform_exact(moduli, count, out.data());
    return out;
  }
  // A centred integer must be representable mod Q (the product of the limbs' primes), with
  // room for its sign: 2^(bits+1) < Q.
  double log_q = 0;
  for (auto q : moduli) log_q += std::log2(static_cast<double>(q));
  if (bits < 0 || bits > 126 || bits + 1 >= log_q)
    throw ArgumentRangeError("options.bits must be in [0, 126] with 2^(bits+1) below the product of the first " +
                             std::to_string(limbs) + " primes (2^" + std::to_string(log_q) + "), got " +
                             std::to_string(bits));
  Sampler(key_, next_stream()).centered(moduli, count, bits, out.data());
  return out;
}

}  // namespace tensafe::ckks
