// What the fused operations of the private (client-key) protocols take and give, for both
// engines (CkksContext and cuda::CkksContextCuda have the same methods):
//
//   serialize_reply(ct, positions)      a PARTIAL REPLY: c0 in coefficient form at `positions`
//                                       only, c1 whole (NTT domain); about half the bytes of
//                                       serialize(ct). Layout: serialize.cc ("Reply").
//   decrypt_reply(bytes, sk)            the decryption at those positions only: c1*s in the NTT
//                                       domain, inverse NTT, pick the positions, add c0.
//   sanitize_products(ct, pts, pk, o)   for each plaintext p, exactly the composition
//                                         c = ct * p; c += M_p; c = rerandomize(c, pk);
//                                         c = rescale(c) (o.rescales times); serialise
//                                       where M_p (coefficient form, scale ct.scale * p.scale) is
//                                       uniform mod each prime (sampleWords 'uniform') at every
//                                       coefficient except o.read[p], and there a centred integer
//                                       uniform on [-2^bits, 2^bits] (sampleWords 'centered',
//                                       o.flood_bits > 0) or 0; o.mask_all masks every coefficient.
//                                       Stream ids are taken in the composition's order (per
//                                       product: mask, flood when flooding, rerandomisation), so a
//                                       seeded run gives the composed ops' words exactly.
//   trace_rotations(ct, steps, gk)      c = prod_j (1 + sigma_{steps_j})(c), steps in order.
//   decrypt_replies(replies, sk)        decrypt_reply of each, in one call (one upload and one
//                                       synchronisation on the GPU).
//   reencrypt_replies(replies, sk, expect)
//                                       the two-round client's round 2 in one call: decrypt the
//                                       replies, check that reply p carries exactly the positions
//                                       expect[p], put the k-th decrypted word (over all replies,
//                                       in order) at coefficient k of U (every limb; 0 elsewhere),
//                                       and return serialize(encrypt_symmetric(U, sk, compact)):
//                                       the words of plaintext_from_words + encrypt_symmetric
//                                       (one stream id, taken after the decryptions).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tensafe::ckks {

// Per-phase wall times of one fused call (host steady clock, microseconds, phases in the order
// they ran; a phase that runs several times is summed). Asked for per call (`timings: true`):
// when off, nothing is measured. On the GPU a phase that ends in the one synchronisation holds
// the device's work too ("device"); the others are host time only.
struct PhaseTimings {
  std::vector<std::pair<std::string, double>> phases;
  void add(const char* name, double us) {
    for (auto& p : phases)
      if (p.first == name) {
        p.second += us;
        return;
      }
    phases.emplace_back(name, us);
  }
};

// Marks phase ends on a PhaseTimings (null: does nothing, reads no clock).
class PhaseClock {
 public:
  explicit PhaseClock(PhaseTimings* out) : out_(out) {
    if (out_) last_ = std::chrono::steady_clock::now();
  }
  // Ends the current phase under `name` (the time since the previous mark).
  void mark(const char* name) {
    if (!out_) return;
    const auto now = std::chrono::steady_clock::now();
    out_->add(name, std::chrono::duration<double, std::micro>(now - last_).count());
    last_ = now;
  }
  PhaseTimings* sink() const { return out_; }

 private:
  PhaseTimings* out_;
  std::chrono::steady_clock::time_point last_{};
};

struct SanitizeOptions {
  // One position list per plaintext, or empty (the option is absent). Each list strictly
  // increasing, below polyN.
  std::vector<std::vector<std::uint32_t>> read;     // left unmasked (flooded when flood_bits > 0)
  std::vector<std::vector<std::uint32_t>> keep;     // where a partial reply keeps c0 (default: read)
  std::vector<std::vector<std::uint32_t>> mask_at;  // where the masks are returned (the server's share)
  int flood_bits = 0;     // 0: nothing added at the read positions
  bool mask_all = false;  // every coefficient masked (no read set)
  std::size_t rescales = 0;
  bool partial = true;  // serialize_reply at keep (or read); false: serialize (the whole ciphertext)
  bool timings = false;  // fill SanitizeResult::timings

  const std::vector<std::uint32_t>& reply_positions(std::size_t p) const { return keep.empty() ? read[p] : keep[p]; }
};

struct SanitizeResult {
  std::vector<std::vector<std::uint8_t>> replies;
  // Per plaintext, when mask_at was given: the mask's residues at mask_at[p] over the
  // ciphertext's primes, limb-major (limbs x count), before any rescale.
  std::vector<std::vector<std::uint64_t>> masks;
  PhaseTimings timings;  // when SanitizeOptions::timings
};

// The stream ids one product of sanitize_products consumes (flood: only when flooding).
struct SanitizeStreams {
  std::uint64_t mask = 0, flood = 0, rerandomize = 0;
};

// A partial reply read back (format checked): c0 at the positions (limbs x count, coefficient
// form) and c1 whole (limbs x n, NTT domain).
struct ReplyParts {
  std::size_t limbs = 0;
  double scale = 1;
  std::vector<std::uint32_t> positions;
  std::vector<std::uint64_t> c0;
  std::vector<std::uint64_t> c1;
};

// The decryption of a partial reply at its positions.
struct DecryptedReply {
  std::vector<std::uint32_t> positions;
  std::size_t limbs = 0;
  double scale = 1;
  std::vector<std::uint64_t> words;  // limbs x count, limb-major: coefficient residues
  std::vector<double> values;        // centred CRT composition / scale, per position
};

// Serialised bytes handed to a fused call (the caller keeps them alive for the call).
struct ByteSpan {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

// words[l*stride + positions[k]] -> out[l*count + k] for every limb (limb-major both ways).
inline std::vector<std::uint64_t> gather_words(const std::uint64_t* words, std::size_t limbs, std::size_t stride,
                                               const std::vector<std::uint32_t>& positions) {
  const std::size_t count = positions.size();
  std::vector<std::uint64_t> out(limbs * count);
  for (std::size_t l = 0; l < limbs; ++l)
    for (std::size_t k = 0; k < count; ++k) out[l * count + k] = words[l * stride + positions[k]];
  return out;
}

}  // namespace tensafe::ckks
