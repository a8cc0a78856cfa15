// CkksContext: the fused operations of the private (client-key) protocols (private_ops.h):
// partial replies and their decryption, the sanitised products, the trace of rotations.
#include <chrono>
#include <cstring>

#include "ckks/context.h"
#include "ckks/modarith.h"
#include "ckks/parallel.h"
#include "ckks/valcheck.h"
#include "common/errors.h"

namespace tensafe::ckks {


// ---- partial replies ------------------------------------------------------------------------------

std::vector<std::uint8_t> CkksContext::serialize_reply(const Ciphertext& ct, const std::uint32_t* positions,
                                                       std::size_t count) const {
  check_owner(ct.context_id, "ciphertext");
  valcheck::positions(*this, positions, count, "positions");
  const std::uint64_t n = this->n();
  std::vector<std::uint64_t> c0(ct.c(0, n), ct.c(0, n) + ct.limbs * n);
  ntt_inverse(c0.data(), ct.limbs);
  const std::vector<std::uint32_t> pos(positions, positions + count);
  return serialize_reply_parts(ct.limbs, ct.scale, pos, gather_words(c0.data(), ct.limbs, n, pos).data(), ct.c(1, n));
}

DecryptedReply CkksContext::finish_reply(const ReplyParts& r, const std::uint64_t* c1s_at) const {
  const std::size_t count = r.positions.size();
  DecryptedReply out;
  out.positions = r.positions;
  out.limbs = r.limbs;
  out.scale = r.scale;
  out.words.resize(r.limbs * count);
  for (std::size_t l = 0; l < r.limbs; ++l) {
    const std::uint64_t q = tables_[l]->modulus();
    for (std::size_t k = 0; k < count; ++k)
      out.words[l * count + k] = add_mod(r.c0[l * count + k], c1s_at[l * count + k], q);
  }
  out.values.resize(count);
  // decodeCoefficients' composition, so the values equal a full decryption's at these positions
  compose_words(out.words.data(), r.limbs, count, count, 1.0 / r.scale, out.values.data());
  return out;
}

DecryptedReply CkksContext::decrypt_reply(const std::uint8_t* p, std::size_t len, const SecretKey& sk) const {
  const ReplyParts r = parse_reply(p, len);
  check_owner(sk.context_id, "secretKey");
  const std::uint64_t n = this->n();
  // c1 * s in the NTT domain, then back to coefficients: only these positions are wanted, but
  // a product of polynomials is local only in the NTT domain.
  std::vector<std::uint64_t> c1s(r.limbs * n);
  const bool shoup = sk.ntt_shoup.size() == sk.ntt.size();
  pfor(r.limbs, [&](std::size_t kb, std::size_t ke) {
    for (std::size_t k = kb; k < ke; ++k) {
      const Barrett& br = tables_[k]->barrett();
      const std::uint64_t* c1 = r.c1.data() + k * n;
      const std::uint64_t* s = sk.ntt.data() + k * n;
      std::uint64_t* m = c1s.data() + k * n;
      if (shoup) {
        const std::uint64_t* ss = sk.ntt_shoup.data() + k * n;
        for (std::uint64_t j = 0; j < n; ++j) m[j] = mul_shoup(c1[j], s[j], ss[j], br.q);
      } else {
        for (std::uint64_t j = 0; j < n; ++j) m[j] = br.mul(c1[j], s[j]);
      }
      tables_[k]->inverse(m);
    }
  });
  return finish_reply(r, gather_words(c1s.data(), r.limbs, n, r.positions).data());
}

std::vector<DecryptedReply> CkksContext::decrypt_replies(const std::vector<ByteSpan>& replies, const SecretKey& sk,
                                                         PhaseTimings* timings) const {
  check_owner(sk.context_id, "secretKey");
  PhaseClock clock(timings);
  std::vector<DecryptedReply> out(replies.size());
  // Replies in parallel (each one's limb loop then runs serially inside).
  pfor(replies.size(), [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) out[i] = decrypt_reply(replies[i].data, replies[i].size, sk);
  });
  clock.mark("decrypt");
  return out;
}

std::size_t CkksContext::check_share_replies(const std::vector<std::size_t>& limbs,
                                            const std::vector<const std::vector<std::uint32_t>*>& positions,
                                            const std::vector<std::vector<std::uint32_t>>& expect,
                                            std::size_t want_limbs) const {
  if (limbs.empty()) throw ArgumentRangeError("replies must hold at least one reply");
  if (expect.size() != limbs.size())
    throw ArgumentRangeError("expect must hold one position list per reply (" + std::to_string(limbs.size()) + "), got " +
                             std::to_string(expect.size()));
  std::size_t rows = 0;
  if (want_limbs == 0) want_limbs = limbs[0];
  for (std::size_t i = 0; i < limbs.size(); ++i) {
    if (limbs[i] != want_limbs)
      throw ArgumentRangeError("reply " + std::to_string(i) + " has " + std::to_string(limbs[i]) + " primes, expected " +
                               std::to_string(want_limbs));
    const auto& got = *positions[i];
    if (got != expect[i]) {
      std::string first;
      for (std::size_t k = 0; k < got.size() && k < 4; ++k) first += (k ? ", " : "") + std::to_string(got[k]);
      throw ArgumentRangeError("reply " + std::to_string(i) + " carries coefficients [" + first + "...] instead of the " +
                               std::to_string(expect[i].size()) + " the client reads");
    }
    rows += got.size();
  }
  if (rows > n()) throw ArgumentRangeError("the replies carry " + std::to_string(rows) + " coefficients, more than polyN");
  return rows;
}

std::vector<std::uint64_t> CkksContext::shares_polynomial(const std::vector<DecryptedReply>& replies,
                                                          const std::vector<std::vector<std::uint32_t>>& expect,
                                                          std::size_t want_limbs) const {
  std::vector<std::size_t> limbs;
  std::vector<const std::vector<std::uint32_t>*> positions;
  for (const auto& d : replies) {
    limbs.push_back(d.limbs);
    positions.push_back(&d.positions);
  }
  check_share_replies(limbs, positions, expect, want_limbs);
  const std::uint64_t n = this->n();
  const std::size_t L = replies[0].limbs;
  std::vector<std::uint64_t> u(L * n, 0);
  std::size_t row = 0;
  for (const auto& d : replies) {
    const std::size_t count = d.positions.size();
    for (std::size_t k = 0; k < count; ++k, ++row)
      for (std::size_t l = 0; l < L; ++l) u[l * n + row] = d.words[l * count + k];
  }
  return u;
}

std::vector<std::uint8_t> CkksContext::reencrypt_replies(const std::vector<ByteSpan>& replies, const SecretKey& sk,
                                                         const std::vector<std::vector<std::uint32_t>>& expect,
                                                         std::size_t limbs_wanted, PhaseTimings* timings) {
  PhaseClock clock(timings);
  const auto decrypted = decrypt_replies(replies, sk);
  clock.mark("decrypt");
  auto u = shares_polynomial(decrypted, expect, limbs_wanted);
  const std::size_t limbs = decrypted[0].limbs;
  clock.mark("shares");
  const Plaintext pt = plaintext_from_words(u.data(), u.size(), limbs, 1.0, Encoding::Coefficients);
  const Ciphertext ct = encrypt_symmetric(pt, sk, true);
  clock.mark("encrypt");
  auto bytes = serialize(ct);
  clock.mark("serialize");
  return bytes;
}

// ---- sanitised products ---------------------------------------------------------------------------

std::vector<SanitizeStreams> CkksContext::reserve_sanitize_streams(std::size_t products, bool flood) {
  std::vector<SanitizeStreams> ids(products);
  for (auto& s : ids) {  // the order in which the composed ops take them
    s.mask = next_stream();
    if (flood) s.flood = next_stream();
    s.rerandomize = next_stream();
  }
  return ids;
}

std::vector<std::uint64_t> CkksContext::sanitize_mask(const SanitizeStreams& ids, std::size_t limbs,
                                                      const SanitizeOptions& o, std::size_t product) const {
  const std::uint64_t n = this->n();
  std::vector<std::uint64_t> mask(limbs * n);
  sample_words_at(ids.mask, limbs, n, SampleDistribution::Uniform, 0, mask.data());
  if (o.read.empty()) return mask;  // mask_all
  const auto& read = o.read[product];
  const std::size_t count = read.size();
  if (o.flood_bits > 0 && count > 0) {
    std::vector<std::uint64_t> flood(limbs * count);
    sample_words_at(ids.flood, limbs, count, SampleDistribution::Centered, o.flood_bits, flood.data());
    for (std::size_t l = 0; l < limbs; ++l)
      for (std::size_t k = 0; k < count; ++k) mask[l * n + read[k]] = flood[l * count + k];
  } else {
    for (std::size_t l = 0; l < limbs; ++l)
      for (std::size_t k = 0; k < count; ++k) mask[l * n + read[k]] = 0;
  }
  return mask;
}

std::vector<std::uint8_t> CkksContext::sanitize_one(const Ciphertext& ct, const Plaintext& pt, const PublicKey& pk,
                                                    const SanitizeOptions& o, std::size_t p, const SanitizeStreams& ids,
                                                    std::vector<std::uint64_t>* mask_out, PhaseTimings* timings) const {
  const std::uint64_t n = this->n();
  const std::size_t l = ct.limbs;
  PhaseClock clock(timings);
  std::vector<std::uint64_t> mask = sanitize_mask(ids, l, o, p);
  if (mask_out) *mask_out = gather_words(mask.data(), l, n, o.mask_at[p]);
  clock.mark("mask_sample");
  std::vector<std::uint64_t> prod(2 * l * n);
  multiply_plain_into(ct, pt, prod.data());
  clock.mark("product");
  Ciphertext c;
  c.context_id = id_;
  c.limbs = l;
  c.scale = ct.scale * pt.scale;
  c.data.resize(2 * l * n);
  if (!o.partial) {
    // The whole ciphertext: the composition as it is, in the NTT domain.
    ntt_forward(mask.data(), l);
    for (std::size_t k = 0; k < l; ++k) {
      const std::uint64_t q = tables_[k]->modulus();
      for (std::uint64_t j = 0; j < n; ++j) prod[k * n + j] = add_mod(prod[k * n + j], mask[k * n + j], q);
    }
    encrypt_zero_plus(c.c(0, n), c.c(1, n), l, pk, prod.data(), prod.data() + l * n, ids.rerandomize);
    clock.mark("mask_rerandomize");
    for (std::size_t d = 0; d < o.rescales; ++d) c = rescale(c);
    clock.mark("rescale");
    auto bytes = serialize(c);
    clock.mark("serialize");
    return bytes;
  }
  // A partial reply needs c0 in coefficient form only: it is kept there from the
  // rerandomisation on (the mask and e0 are added there, and it is rescaled there), which
  // gives the same words as the composition without its 2l + 1 transforms of c0.
  encrypt_zero_plus(c.c(0, n), c.c(1, n), l, pk, prod.data(), prod.data() + l * n, ids.rerandomize, true);
  for (std::size_t k = 0; k < l; ++k) {
    const std::uint64_t q = tables_[k]->modulus();
    std::uint64_t* c0 = c.c(0, n) + k * n;
    for (std::uint64_t j = 0; j < n; ++j) c0[j] = add_mod(c0[j], mask[k * n + j], q);
  }
  clock.mark("mask_rerandomize");
  for (std::size_t d = 0; d < o.rescales; ++d) {
    const std::size_t cur = c.limbs;
    Ciphertext r;
    r.context_id = id_;
    r.limbs = cur - 1;
    r.scale = c.scale / static_cast<double>(tables_[cur - 1]->modulus());  // as rescale()
    r.data.resize(2 * r.limbs * n);
    rescale_poly(c.c(0, n), cur, r.c(0, n), false);
    rescale_poly(c.c(1, n), cur, r.c(1, n), true);
    c = std::move(r);
  }
  clock.mark("rescale");
  const auto& pos = o.reply_positions(p);
  auto bytes = serialize_reply_parts(c.limbs, c.scale, pos, gather_words(c.c(0, n), c.limbs, n, pos).data(), c.c(1, n));
  clock.mark("serialize");
  return bytes;
}

SanitizeResult CkksContext::sanitize_products(const Ciphertext& ct, const std::vector<const Plaintext*>& pts,
                                              const PublicKey& pk, const SanitizeOptions& o) {
  valcheck::sanitize(*this, ct, pts, o);
  check_owner(pk.context_id, "publicKey");
  const std::size_t P = pts.size();
  const auto start = std::chrono::steady_clock::now();
  const auto ids = reserve_sanitize_streams(P, !o.read.empty() && o.flood_bits > 0);
  SanitizeResult out;
  out.replies.resize(P);
  if (!o.mask_at.empty()) out.masks.resize(P);
  // Each product's phases on its own (they run in parallel), summed afterwards: thread time.
  std::vector<PhaseTimings> per(o.timings ? P : 0);
  auto one = [&](std::size_t p) {
    out.replies[p] = sanitize_one(ct, *pts[p], pk, o, p, ids[p], o.mask_at.empty() ? nullptr : &out.masks[p],
                                  o.timings ? &per[p] : nullptr);
  };
  // Products in parallel (their streams are reserved); a single one keeps the limb-parallel ops.
  if (P == 1)
    one(0);
  else
    pfor(P, [&](std::size_t b, std::size_t e) {
      for (std::size_t p = b; p < e; ++p) one(p);
    });
  if (o.timings) {
    for (const auto& t : per)
      for (const auto& [name, us] : t.phases) out.timings.add(name.c_str(), us);
    out.timings.add("wall", std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return out;
}

// ---- the trace --------------------------------------------------------------------------------------

void CkksContext::check_trace(const std::vector<std::int64_t>& steps, const GaloisKeys& gk) const {
  check_owner(gk.context_id, "galoisKeys");
  valcheck::trace_steps(*this, steps, gk.keys);
}

Ciphertext CkksContext::trace_rotations(const Ciphertext& ct, const std::vector<std::int64_t>& steps,
                                        const GaloisKeys& gk) const {
  check_owner(ct.context_id, "ciphertext");
  check_trace(steps, gk);
  Ciphertext c = ct;
  for (auto s : steps) c = add(c, rotate(c, s, gk));
  return c;
}

}  // namespace tensafe::ckks
