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
#pragma once
#include <cstdint>
#include <vector>

namespace tensafe::ckks {

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

  const std::vector<std::uint32_t>& reply_positions(std::size_t p) const { return keep.empty() ? read[p] : keep[p]; }
};

struct SanitizeResult {
  std::vector<std::vector<std::uint8_t>> replies;
  // Per plaintext, when mask_at was given: the mask's residues at mask_at[p] over the
  // ciphertext's primes, limb-major (limbs x count), before any rescale.
  std::vector<std::vector<std::uint64_t>> masks;
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
