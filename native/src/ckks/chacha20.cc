#include "ckks/chacha20.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/random.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "common/errors.h"
#include "common/thread_pool.h"

namespace tensafe::ckks {

namespace {
#if defined(__AVX2__)
// Eight consecutive blocks at once: vector i holds state word i of blocks b .. b+7. Same words
// as chacha20_block (checked by the RFC 7539 test and the scalar/vector comparison test).
inline __m256i rotl16(__m256i x) {
  const __m256i r = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10,
                                     11, 8, 9, 14, 15, 12, 13);
  return _mm256_shuffle_epi8(x, r);
}
inline __m256i rotl8(__m256i x) {
  const __m256i r = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11,
                                     8, 9, 10, 15, 12, 13, 14);
  return _mm256_shuffle_epi8(x, r);
}
template <int c>
inline __m256i rotl(__m256i x) {
  return _mm256_or_si256(_mm256_slli_epi32(x, c), _mm256_srli_epi32(x, 32 - c));
}
#define TENSAFE_QRV(a, b, c, d)                                                   \
  a = _mm256_add_epi32(a, b); d = rotl16(_mm256_xor_si256(d, a));                \
  c = _mm256_add_epi32(c, d); b = rotl<12>(_mm256_xor_si256(b, c));             \
  a = _mm256_add_epi32(a, b); d = rotl8(_mm256_xor_si256(d, a));                 \
  c = _mm256_add_epi32(c, d); b = rotl<7>(_mm256_xor_si256(b, c));

void blocks8(const std::uint32_t* key, std::uint64_t stream, std::uint64_t b0, std::uint64_t* out /* 64 words */) {
  alignas(32) std::uint32_t lo[8], hi[8];
  for (int l = 0; l < 8; ++l) {
    const std::uint64_t c = b0 + static_cast<std::uint64_t>(l);
    lo[l] = static_cast<std::uint32_t>(c);
    hi[l] = static_cast<std::uint32_t>(c >> 32);
  }
  const __m256i s0 = _mm256_set1_epi32(0x61707865), s1 = _mm256_set1_epi32(0x3320646e);
  const __m256i s2 = _mm256_set1_epi32(0x79622d32), s3 = _mm256_set1_epi32(0x6b206574);
  const __m256i k0 = _mm256_set1_epi32(static_cast<int>(key[0])), k1 = _mm256_set1_epi32(static_cast<int>(key[1]));
  const __m256i k2 = _mm256_set1_epi32(static_cast<int>(key[2])), k3 = _mm256_set1_epi32(static_cast<int>(key[3]));
  const __m256i k4 = _mm256_set1_epi32(static_cast<int>(key[4])), k5 = _mm256_set1_epi32(static_cast<int>(key[5]));
  const __m256i k6 = _mm256_set1_epi32(static_cast<int>(key[6])), k7 = _mm256_set1_epi32(static_cast<int>(key[7]));
  const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
  const __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
  const __m256i n0 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(stream)));
  const __m256i n1 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(stream >> 32)));
  __m256i x0 = s0, x1 = s1, x2 = s2, x3 = s3, x4 = k0, x5 = k1, x6 = k2, x7 = k3;
  __m256i x8 = k4, x9 = k5, x10 = k6, x11 = k7, x12 = c0, x13 = c1, x14 = n0, x15 = n1;
  for (int r = 0; r < 10; ++r) {
    TENSAFE_QRV(x0, x4, x8, x12)
    TENSAFE_QRV(x1, x5, x9, x13)
    TENSAFE_QRV(x2, x6, x10, x14)
    TENSAFE_QRV(x3, x7, x11, x15)
    TENSAFE_QRV(x0, x5, x10, x15)
    TENSAFE_QRV(x1, x6, x11, x12)
    TENSAFE_QRV(x2, x7, x8, x13)
    TENSAFE_QRV(x3, x4, x9, x14)
  }
  alignas(32) std::uint32_t v[16][8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[0]), _mm256_add_epi32(x0, s0));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[1]), _mm256_add_epi32(x1, s1));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[2]), _mm256_add_epi32(x2, s2));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[3]), _mm256_add_epi32(x3, s3));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[4]), _mm256_add_epi32(x4, k0));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[5]), _mm256_add_epi32(x5, k1));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[6]), _mm256_add_epi32(x6, k2));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[7]), _mm256_add_epi32(x7, k3));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[8]), _mm256_add_epi32(x8, k4));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[9]), _mm256_add_epi32(x9, k5));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[10]), _mm256_add_epi32(x10, k6));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[11]), _mm256_add_epi32(x11, k7));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[12]), _mm256_add_epi32(x12, c0));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[13]), _mm256_add_epi32(x13, c1));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[14]), _mm256_add_epi32(x14, n0));
  _mm256_store_si256(reinterpret_cast<__m256i*>(v[15]), _mm256_add_epi32(x15, n1));
  for (int l = 0; l < 8; ++l)
    for (int k = 0; k < 8; ++k)
      out[l * 8 + k] = static_cast<std::uint64_t>(v[2 * k][l]) | (static_cast<std::uint64_t>(v[2 * k + 1][l]) << 32);
}
#undef TENSAFE_QRV
#endif

void words_serial(const ChaChaKey& key, std::uint64_t stream, std::uint64_t start, std::size_t count,
                  std::uint64_t* out) {
  // Word w is bytes [8w, 8w + 8) of the keystream read little-endian, so a whole block is a
  // plain 64-byte copy (x86 is little-endian); partial blocks at the ends go word by word.
  std::uint32_t block[16];
  std::uint64_t w = start;
  const std::uint64_t end = start + count;
  while (w < end) {
    const std::uint64_t b = w / 8;
#if defined(__AVX2__)
    if (w % 8 == 0 && end - w >= 64) {
      blocks8(key.data(), stream, b, out + (w - start));
      w += 64;
      continue;
    }
#endif
    chacha20_block(key.data(), stream, b, block);
    if (w % 8 == 0 && end - w >= 8) {
      std::memcpy(out + (w - start), block, 64);
      w += 8;
      continue;
    }
    for (std::uint64_t k = w % 8; k < 8 && w < end; ++k, ++w)
      out[w - start] = static_cast<std::uint64_t>(block[2 * k]) | (static_cast<std::uint64_t>(block[2 * k + 1]) << 32);
  }
}
}  // namespace

void chacha20_words(const ChaChaKey& key, std::uint64_t stream, std::uint64_t start, std::size_t count,
                    std::uint64_t* out) {
  // Chunks of whole blocks in parallel; each chunk is independent (random access by counter).
  const std::size_t chunk = 4096;
  const std::size_t chunks = (count + chunk - 1) / chunk;
  parallel_for(chunks, [&](std::size_t b, std::size_t e) {
    for (std::size_t c = b; c < e; ++c) {
      std::size_t off = c * chunk;
      std::size_t len = off + chunk <= count ? chunk : count - off;
      words_serial(key, stream, start + off, len, out + off);
    }
  });
}

ChaChaKey os_random_key() {
  ChaChaKey key{};
  unsigned char* p = reinterpret_cast<unsigned char*>(key.data());
  std::size_t got = 0;
  while (got < 32) {
    ssize_t r = getrandom(p + got, 32 - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += static_cast<std::size_t>(r);
  }
  if (got < 32) {
    std::FILE* f = std::fopen("/dev/urandom", "rb");
    if (!f) throw EngineError("ERR_TENSAFE_RANDOM", "cannot read OS entropy (getrandom and /dev/urandom failed)");
    std::size_t r = std::fread(p + got, 1, 32 - got, f);
    std::fclose(f);
    if (r != 32 - got) throw EngineError("ERR_TENSAFE_RANDOM", "short read from /dev/urandom");
  }
  return key;
}

ChaChaKey key_from_seed(const std::uint64_t seed[4]) {
  ChaChaKey key{};
  for (int i = 0; i < 4; ++i) {
    key[2 * i] = static_cast<std::uint32_t>(seed[i]);
    key[2 * i + 1] = static_cast<std::uint32_t>(seed[i] >> 32);
  }
  return key;
}

}  // namespace tensafe::ckks
