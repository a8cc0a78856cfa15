#include "ckks/chacha20.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/random.h>

#include "common/errors.h"
#include "common/thread_pool.h"

namespace tensafe::ckks {

namespace {
void words_serial(const ChaChaKey& key, std::uint64_t stream, std::uint64_t start, std::size_t count,
                  std::uint64_t* out) {
  // Word w is bytes [8w, 8w + 8) of the keystream read little-endian, so a whole block is a
  // plain 64-byte copy (x86 is little-endian); partial blocks at the ends go word by word.
  std::uint32_t block[16];
  std::uint64_t w = start;
  const std::uint64_t end = start + count;
  while (w < end) {
    const std::uint64_t b = w / 8;
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
