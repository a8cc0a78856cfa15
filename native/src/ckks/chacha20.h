// ChaCha20 (D. J. Bernstein's original layout: 64-bit block counter, 64-bit nonce) as a
// random-access stream of 64-bit words, plus OS entropy.
//
// State words: 0..3 "expand 32-byte k", 4..11 the 256-bit key (little-endian), 12..13 the block
// counter (low, high), 14..15 the nonce = STREAM ID (low, high). Block b yields 16 32-bit words
// o[0..15] (20 rounds + feed-forward); 64-bit word w of a stream is, with b = w / 8, k = w % 8:
//   word(w) = o_b[2k] | (o_b[2k+1] << 32)          (the keystream bytes read little-endian)
// Any word is a pure function of (key, stream id, w), so samplers on any device can fetch the
// words they need in any order (this is what lets the CUDA backend reproduce the CPU's output).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "ckks/modarith.h"

namespace tensafe::ckks {

using ChaChaKey = std::array<std::uint32_t, 8>;

// One 64-byte block as 16 words (counter = block index, nonce = stream id).
TENSAFE_HD inline void chacha20_block(const std::uint32_t* key, std::uint64_t stream, std::uint64_t counter,
                                      std::uint32_t* out) {
  std::uint32_t s[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u,
                         key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
                         static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
                         static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32)};
  std::uint32_t x[16];
  for (int i = 0; i < 16; ++i) x[i] = s[i];
#define TENSAFE_ROTL(v, c) (((v) << (c)) | ((v) >> (32 - (c))))
#define TENSAFE_QR(a, b, c, d)                \
  a += b; d ^= a; d = TENSAFE_ROTL(d, 16);    \
  c += d; b ^= c; b = TENSAFE_ROTL(b, 12);    \
  a += b; d ^= a; d = TENSAFE_ROTL(d, 8);     \
  c += d; b ^= c; b = TENSAFE_ROTL(b, 7);
  for (int r = 0; r < 10; ++r) {
    TENSAFE_QR(x[0], x[4], x[8], x[12])
    TENSAFE_QR(x[1], x[5], x[9], x[13])
    TENSAFE_QR(x[2], x[6], x[10], x[14])
    TENSAFE_QR(x[3], x[7], x[11], x[15])
    TENSAFE_QR(x[0], x[5], x[10], x[15])
    TENSAFE_QR(x[1], x[6], x[11], x[12])
    TENSAFE_QR(x[2], x[7], x[8], x[13])
    TENSAFE_QR(x[3], x[4], x[9], x[14])
  }
#undef TENSAFE_QR
#undef TENSAFE_ROTL
  for (int i = 0; i < 16; ++i) out[i] = x[i] + s[i];
}

// Writes words [start, start + count) of stream `stream` into out (host; multi-threaded for
// large ranges).
void chacha20_words(const ChaChaKey& key, std::uint64_t stream, std::uint64_t start, std::size_t count,
                    std::uint64_t* out);

// 32 bytes from the operating system (getrandom(2), else /dev/urandom); throws on failure.
ChaChaKey os_random_key();

// Key from a 256-bit seed given as 4 little-endian 64-bit words (insecure test mode).
ChaChaKey key_from_seed(const std::uint64_t seed[4]);

}  // namespace tensafe::ckks
