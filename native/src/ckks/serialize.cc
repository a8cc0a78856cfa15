// Serialisation of CKKS objects. Layout (little-endian):
//   magic "TSCK" | u16 version | u16 kind (ObjectKind) | u64 parameter fingerprint |
//   u64 body length | body | u64 checksum of everything before it.
// Versions: 3 is every object in full, 4 a compact ciphertext (its c1 expanded from a seed),
// both with the word checksum below; versions 1 and 2 are the same bodies with the byte-serial
// FNV-1a 64 checksum (written until 2026-12; readers accept all four, writers write 3 and 4).
// The word checksum (a corruption check, not a MAC), over the bytes before it read as
// little-endian u64 words w_0..w_{m-1} (the last one zero-padded), in 8 independent lanes:
//   h_k = F ^ k (k < 8);  for each i: k = i % 8, h_k = (h_k ^ w_i) * G, h_k ^= h_k >> 32;
//   r = F ^ length; for k < 8: r = (r ^ h_k) * G, r ^= r >> 32;  checksum = r
// with F = 0xcbf29ce484222325 (FNV offset basis) and G = 0x9e3779b97f4a7c15 (2^64 / golden
// ratio, odd). The lanes keep ~8 bytes per cycle where FNV-1a's one-byte chain does ~1 byte per
// 4 cycles: for a reply of 130 KB, ~15 us instead of ~150 us, on each side.
// Bodies:  Ciphertext: u32 limbs, u32 size (2), f64 scale, 2*limbs*n words
//          Ciphertext, version 2 (compact): u32 limbs, u32 size (2), f64 scale, u32 form (1 =
//                      c1 seeded), u32 0, 32-byte seed, limbs*n words of c0; c1 is the
//                      expansion of the seed (sampling.h)
//          Plaintext:  u32 limbs, u8 encoding, u8 ntt, u16 0, f64 scale, limbs*n words
//          PublicKey:  u32 L, 2*L*n words
//          GaloisKeys: u32 count of steps asked, i64 steps[count], u32 keys, then per key:
//                      i64 normalised step, u64 Galois element, L*2*K*n words
//          SecretKey:  u32 K, K*n words (NTT domain)   (only via serialize_secret_key)
//          Reply (a partial ciphertext, private_ops.h): u32 limbs, u32 count, f64 scale,
//                      u32 positions[count] (strictly increasing, < n), u32 0 when count is
//                      odd (the words stay 8-aligned), limbs*count words of c0 in COEFFICIENT
//                      form at the positions (limb-major), then limbs*n words of c1 (NTT domain)
// Every length is checked against the context and every word against its modulus, so corrupt
// or foreign bytes fail with FormatError instead of producing garbage.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ckks/context.h"
#include "common/errors.h"

namespace tensafe::ckks {

namespace {
constexpr std::uint16_t kVersionFnv = 1;         // full objects, FNV-1a checksum (read only)
constexpr std::uint16_t kVersionCompactFnv = 2;  // compact ciphertexts, FNV-1a checksum (read only)
constexpr std::uint16_t kVersion = 3;            // full objects, word checksum
constexpr std::uint16_t kVersionCompact = 4;     // ciphertexts with a seeded c1, word checksum
constexpr std::size_t kHeaderBytes = 24;

bool is_compact(std::uint16_t version) { return version == kVersionCompact || version == kVersionCompactFnv; }

std::uint64_t fnv1a_bytes(const std::uint8_t* p, std::size_t len) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

// The word checksum of versions 3 and 4 (the header comment defines it).
std::uint64_t word_checksum(const std::uint8_t* p, std::size_t len) {
  constexpr std::uint64_t F = 0xcbf29ce484222325ULL, G = 0x9e3779b97f4a7c15ULL;
  std::uint64_t h[8];
  for (int k = 0; k < 8; ++k) h[k] = F ^ static_cast<std::uint64_t>(k);
  const std::size_t full = len / 64;  // whole rounds of 8 words
  for (std::size_t r = 0; r < full; ++r) {
    std::uint64_t w[8];
    std::memcpy(w, p + 64 * r, 64);
    for (int k = 0; k < 8; ++k) {
      h[k] = (h[k] ^ w[k]) * G;
      h[k] ^= h[k] >> 32;
    }
  }
  for (std::size_t i = 8 * full, off = 64 * full; off < len; ++i, off += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p + off, std::min<std::size_t>(8, len - off));  // little-endian, zero-padded
    const int k = static_cast<int>(i % 8);
    h[k] = (h[k] ^ w) * G;
    h[k] ^= h[k] >> 32;
  }
  std::uint64_t out = F ^ static_cast<std::uint64_t>(len);
  for (int k = 0; k < 8; ++k) {
    out = (out ^ h[k]) * G;
    out ^= out >> 32;
  }
  return out;
}

// Writes one object: the header at construction, then the body, then finish() patches the body
// length and appends the checksum. One buffer, reserved to its final size.
class Writer {
 public:
  Writer(ObjectKind kind, std::uint64_t fingerprint, std::size_t body_bytes, std::uint16_t version = kVersion) {
    buf.reserve(kHeaderBytes + body_bytes + 8);
    buf = {'T', 'S', 'C', 'K'};
    put<std::uint16_t>(version);
    put<std::uint16_t>(static_cast<std::uint16_t>(kind));
    put<std::uint64_t>(fingerprint);
    put<std::uint64_t>(0);  // body length, patched by finish()
  }
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    buf.insert(buf.end(), p, p + sizeof(T));
  }
  void words(const std::vector<std::uint64_t>& w) { words(w.data(), w.size()); }
  void words(const std::uint64_t* w, std::size_t count) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(w);
    buf.insert(buf.end(), p, p + count * 8);
  }
  std::vector<std::uint8_t> finish() {
    const std::uint64_t body = buf.size() - kHeaderBytes;
    std::memcpy(buf.data() + 16, &body, 8);
    put<std::uint64_t>(word_checksum(buf.data(), buf.size()));
    return std::move(buf);
  }

 private:
  std::vector<std::uint8_t> buf;
};

class Reader {
 public:
  Reader(const std::uint8_t* p, std::size_t len) : p_(p), len_(len) {}
  template <typename T>
  T get(const char* what) {
    if (pos_ + sizeof(T) > len_) throw FormatError(std::string("truncated bytes: missing ") + what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void words(std::uint64_t* out, std::size_t count, const char* what) {
    if (count > (len_ - pos_) / 8) throw FormatError(std::string("truncated bytes: missing words of ") + what);
    std::memcpy(out, p_ + pos_, count * 8);
    pos_ += count * 8;
  }
  std::size_t pos() const { return pos_; }

 private:
  const std::uint8_t* p_;
  std::size_t len_;
  std::size_t pos_ = 0;
};

const char* kind_name(ObjectKind k) {
  switch (k) {
    case ObjectKind::Ciphertext: return "a ciphertext";
    case ObjectKind::Plaintext: return "a plaintext";
    case ObjectKind::PublicKey: return "a public key";
    case ObjectKind::GaloisKeys: return "Galois keys";
    case ObjectKind::SecretKey: return "a secret key";
    case ObjectKind::Reply: return "a partial reply";
  }
  return "an unknown object";
}

// Validates header and checksum; returns a reader positioned at the body (and the version).
Reader open(const std::uint8_t* p, std::size_t len, ObjectKind want, std::uint64_t fingerprint,
            std::uint16_t* version_out = nullptr) {
  if (len < 32) throw FormatError("bytes too short to be a tensafe CKKS object (" + std::to_string(len) + " bytes)");
  if (std::memcmp(p, "TSCK", 4) != 0) throw FormatError("bad magic: these bytes are not a tensafe CKKS object");
  std::uint64_t stored;
  std::memcpy(&stored, p + len - 8, 8);
  Reader r(p, len - 8);
  r.get<std::uint32_t>("magic");
  const auto version = r.get<std::uint16_t>("version");
  if (version < kVersionFnv || version > kVersionCompact)
    throw FormatError("unsupported format version " + std::to_string(version));
  const auto kind = static_cast<ObjectKind>(r.get<std::uint16_t>("kind"));
  if (kind != want)
    throw FormatError(std::string("these bytes hold ") + kind_name(kind) + ", expected " + kind_name(want));
  if (is_compact(version) && kind != ObjectKind::Ciphertext)
    throw FormatError("unsupported format version " + std::to_string(version) + " for " + std::string(kind_name(kind)));
  if (version_out) *version_out = version;
  const auto fp = r.get<std::uint64_t>("fingerprint");
  if (fp != fingerprint) throw FormatError("parameter fingerprint mismatch: the bytes come from a context with other parameters");
  const auto body = r.get<std::uint64_t>("body length");
  if (body != len - 8 - r.pos()) throw FormatError("length mismatch: header says " + std::to_string(body) + " body bytes");
  const std::uint64_t sum = version >= kVersion ? word_checksum(p, len - 8) : fnv1a_bytes(p, len - 8);
  if (sum != stored) throw FormatError("checksum mismatch: the bytes are corrupt");
  return r;
}

void check_words(const std::uint64_t* w, std::size_t limbs, std::uint64_t n, const std::vector<std::uint64_t>& moduli,
                 const char* what) {
  for (std::size_t k = 0; k < limbs; ++k)
    for (std::uint64_t j = 0; j < n; ++j)
      if (w[k * n + j] >= moduli[k]) throw FormatError(std::string("corrupt ") + what + ": a word is not reduced");
}

double check_scale_value(double s) {
  if (!std::isfinite(s) || s <= 0) throw FormatError("corrupt bytes: invalid scale");
  return s;
}
}  // namespace

std::vector<std::uint8_t> CkksContext::serialize(const Ciphertext& ct) const {
  check_owner(ct.context_id, "ciphertext");
  if (!ct.c1_seed) {
    Writer w(ObjectKind::Ciphertext, params_.fingerprint, 16 + ct.data.size() * 8);
    w.put<std::uint32_t>(static_cast<std::uint32_t>(ct.limbs));
    w.put<std::uint32_t>(2);
    w.put<double>(ct.scale);
    w.words(ct.data);
    return w.finish();
  }
  return serialize_compact_parts(ct.limbs, ct.scale, *ct.c1_seed, ct.data.data());
}

std::vector<std::uint8_t> CkksContext::serialize_compact_parts(std::size_t limbs, double scale, const ChaChaKey& seed,
                                                               const std::uint64_t* c0) const {
  Writer w(ObjectKind::Ciphertext, params_.fingerprint, 56 + limbs * n() * 8, kVersionCompact);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(limbs));
  w.put<std::uint32_t>(2);
  w.put<double>(scale);
  w.put<std::uint32_t>(1);  // form: c1 seeded
  w.put<std::uint32_t>(0);
  for (std::uint32_t k : seed) w.put<std::uint32_t>(k);
  w.words(c0, limbs * n());
  return w.finish();
}

std::vector<std::uint8_t> CkksContext::serialize(const Plaintext& pt) const {
  check_owner(pt.context_id, "plaintext");
  Writer w(ObjectKind::Plaintext, params_.fingerprint, 16 + pt.data.size() * 8);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(pt.limbs));
  w.put<std::uint8_t>(static_cast<std::uint8_t>(pt.encoding));
  w.put<std::uint8_t>(pt.ntt ? 1 : 0);
  w.put<std::uint16_t>(0);
  w.put<double>(pt.scale);
  w.words(pt.data);
  return w.finish();
}

std::vector<std::uint8_t> CkksContext::serialize(const PublicKey& pk) const {
  check_owner(pk.context_id, "publicKey");
  Writer w(ObjectKind::PublicKey, params_.fingerprint, 4 + pk.data.size() * 8);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(max_limbs()));
  w.words(pk.data);
  return w.finish();
}

std::vector<std::uint8_t> CkksContext::serialize(const GaloisKeys& gk) const {
  check_owner(gk.context_id, "galoisKeys");
  std::size_t body = 8 + 8 * gk.steps.size();
  for (const auto& [step, key] : gk.keys) body += 16 + key.data.size() * 8;
  Writer w(ObjectKind::GaloisKeys, params_.fingerprint, body);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(gk.steps.size()));
  for (auto s : gk.steps) w.put<std::int64_t>(s);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(gk.keys.size()));
  for (const auto& [step, key] : gk.keys) {
    w.put<std::int64_t>(step);
    w.put<std::uint64_t>(key.galois);
    w.words(key.data);
  }
  return w.finish();
}

std::vector<std::uint8_t> CkksContext::serialize_secret_key(const SecretKey& sk) const {
  check_owner(sk.context_id, "secretKey");
  Writer w(ObjectKind::SecretKey, params_.fingerprint, 4 + sk.ntt.size() * 8);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(tables_.size()));
  w.words(sk.ntt);
  return w.finish();
}

Ciphertext CkksContext::deserialize_ciphertext(const std::uint8_t* p, std::size_t len) const {
  std::uint16_t version = 0;
  Reader r = open(p, len, ObjectKind::Ciphertext, params_.fingerprint, &version);
  const std::uint64_t n = this->n();
  Ciphertext ct;
  ct.context_id = id_;
  ct.limbs = r.get<std::uint32_t>("limbs");
  if (ct.limbs < 1 || ct.limbs > max_limbs()) throw FormatError("corrupt ciphertext: bad prime count");
  if (r.get<std::uint32_t>("size") != 2) throw FormatError("corrupt ciphertext: size must be 2");
  ct.scale = check_scale_value(r.get<double>("scale"));
  if (is_compact(version)) {
    if (r.get<std::uint32_t>("form") != 1) throw FormatError("corrupt compact ciphertext: unknown form");
    if (r.get<std::uint32_t>("padding") != 0) throw FormatError("corrupt compact ciphertext: bad padding");
    ChaChaKey seed{};
    for (auto& k : seed) k = r.get<std::uint32_t>("seed");
    const std::size_t words = ct.limbs * n;
    if (len - 8 - r.pos() != words * 8) throw FormatError("length mismatch: compact ciphertext body has the wrong size");
    ct.data.resize(2 * words);
    r.words(ct.data.data(), words, "ciphertext");
    check_words(ct.c(0, n), ct.limbs, n, params_.moduli, "ciphertext");
    expand_seed(seed, ct.limbs, ct.c(1, n));
    ct.c1_seed = seed;
    return ct;
  }
  const std::size_t words = 2 * ct.limbs * n;
  if (len - 8 - r.pos() != words * 8) throw FormatError("length mismatch: ciphertext body has the wrong size");
  ct.data.resize(words);
  r.words(ct.data.data(), words, "ciphertext");
  for (std::size_t i = 0; i < 2; ++i) check_words(ct.c(i, n), ct.limbs, n, params_.moduli, "ciphertext");
  return ct;
}

Plaintext CkksContext::deserialize_plaintext(const std::uint8_t* p, std::size_t len) const {
  Reader r = open(p, len, ObjectKind::Plaintext, params_.fingerprint);
  const std::uint64_t n = this->n();
  Plaintext pt;
  pt.context_id = id_;
  pt.limbs = r.get<std::uint32_t>("limbs");
  if (pt.limbs < 1 || pt.limbs > max_limbs()) throw FormatError("corrupt plaintext: bad prime count");
  const auto enc = r.get<std::uint8_t>("encoding");
  if (enc != 1 && enc != 2) throw FormatError("corrupt plaintext: bad encoding");
  pt.encoding = static_cast<Encoding>(enc);
  const auto ntt = r.get<std::uint8_t>("ntt flag");
  if (ntt > 1) throw FormatError("corrupt plaintext: bad NTT flag");
  pt.ntt = ntt == 1;
  if (r.get<std::uint16_t>("padding") != 0) throw FormatError("corrupt plaintext: bad padding");
  pt.scale = check_scale_value(r.get<double>("scale"));
  const std::size_t words = pt.limbs * n;
  if (len - 8 - r.pos() != words * 8) throw FormatError("length mismatch: plaintext body has the wrong size");
  pt.data.resize(words);
  r.words(pt.data.data(), words, "plaintext");
  check_words(pt.data.data(), pt.limbs, n, params_.moduli, "plaintext");
  return pt;
}

PublicKey CkksContext::deserialize_public_key(const std::uint8_t* p, std::size_t len) const {
  Reader r = open(p, len, ObjectKind::PublicKey, params_.fingerprint);
  const std::uint64_t n = this->n();
  const std::size_t L = max_limbs();
  if (r.get<std::uint32_t>("limbs") != L) throw FormatError("corrupt public key: bad prime count");
  const std::size_t words = 2 * L * n;
  if (len - 8 - r.pos() != words * 8) throw FormatError("length mismatch: public key body has the wrong size");
  PublicKey pk;
  pk.context_id = id_;
  pk.data.resize(words);
  r.words(pk.data.data(), words, "public key");
  check_words(pk.data.data(), L, n, params_.moduli, "public key");
  check_words(pk.data.data() + L * n, L, n, params_.moduli, "public key");
  return pk;
}

GaloisKeys CkksContext::deserialize_galois_keys(const std::uint8_t* p, std::size_t len) const {
  Reader r = open(p, len, ObjectKind::GaloisKeys, params_.fingerprint);
  if (!params_.special) throw FormatError("Galois keys need a context with a special prime");
  const std::uint64_t n = this->n();
  const std::size_t L = max_limbs(), K = L + 1;
  const std::int64_t slots = static_cast<std::int64_t>(encoder_.slots());
  GaloisKeys gk;
  gk.context_id = id_;
  const auto count = r.get<std::uint32_t>("step count");
  if (count > 65536) throw FormatError("corrupt Galois keys: too many steps");
  for (std::uint32_t i = 0; i < count; ++i) gk.steps.push_back(r.get<std::int64_t>("step"));
  const auto keys = r.get<std::uint32_t>("key count");
  if (keys > count) throw FormatError("corrupt Galois keys: more keys than steps");
  const std::size_t words = L * 2 * K * n;
  if (len - 8 - r.pos() != keys * (16 + words * 8)) throw FormatError("length mismatch: Galois keys body has the wrong size");
  const auto kmod = params_.key_moduli();
  for (std::uint32_t i = 0; i < keys; ++i) {
    const auto step = r.get<std::int64_t>("step");
    if (step <= 0 || step >= slots) throw FormatError("corrupt Galois keys: bad step");
    KeySwitchKey key;
    key.galois = r.get<std::uint64_t>("Galois element");
    if (key.galois != encoder_.galois_element(step)) throw FormatError("corrupt Galois keys: element does not match its step");
    key.data.resize(words);
    r.words(key.data.data(), words, "Galois key");
    for (std::size_t c = 0; c < 2 * L; ++c) check_words(key.data.data() + c * K * n, K, n, kmod, "Galois key");
    gk.keys.emplace(step, std::move(key));
  }
  for (auto s : gk.steps) {
    const std::int64_t norm = ((s % slots) + slots) % slots;
    if (norm != 0 && !gk.keys.count(norm)) throw FormatError("corrupt Galois keys: a listed step has no key");
  }
  return gk;
}

std::vector<std::uint8_t> CkksContext::serialize_reply_parts(std::size_t limbs, double scale,
                                                            const std::vector<std::uint32_t>& positions,
                                                            const std::uint64_t* c0_at, const std::uint64_t* c1) const {
  const std::size_t count = positions.size();
  Writer w(ObjectKind::Reply, params_.fingerprint, 16 + 4 * (count + count % 2) + (limbs * (count + n())) * 8);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(limbs));
  w.put<std::uint32_t>(static_cast<std::uint32_t>(count));
  w.put<double>(scale);
  for (auto p : positions) w.put<std::uint32_t>(p);
  if (count % 2) w.put<std::uint32_t>(0);
  w.words(c0_at, limbs * count);
  w.words(c1, limbs * n());
  return w.finish();
}

ReplyParts CkksContext::parse_reply(const std::uint8_t* p, std::size_t len) const {
  Reader r = open(p, len, ObjectKind::Reply, params_.fingerprint);
  const std::uint64_t n = this->n();
  ReplyParts out;
  out.limbs = r.get<std::uint32_t>("limbs");
  if (out.limbs < 1 || out.limbs > max_limbs()) throw FormatError("corrupt partial reply: bad prime count");
  const std::uint32_t count = r.get<std::uint32_t>("position count");
  if (count > n) throw FormatError("corrupt partial reply: more positions than polyN");
  out.scale = check_scale_value(r.get<double>("scale"));
  const std::size_t pad = count % 2 ? 4 : 0;
  const std::size_t words = out.limbs * (count + n);
  if (len - 8 - r.pos() != 4 * std::size_t{count} + pad + 8 * words)
    throw FormatError("length mismatch: partial reply body has the wrong size");
  out.positions.resize(count);
  for (std::uint32_t k = 0; k < count; ++k) {
    out.positions[k] = r.get<std::uint32_t>("position");
    if (out.positions[k] >= n || (k > 0 && out.positions[k] <= out.positions[k - 1]))
      throw FormatError("corrupt partial reply: positions must be strictly increasing and below polyN");
  }
  if (pad && r.get<std::uint32_t>("padding") != 0) throw FormatError("corrupt partial reply: bad padding");
  out.c0.resize(out.limbs * count);
  out.c1.resize(out.limbs * n);
  r.words(out.c0.data(), out.c0.size(), "partial reply");
  r.words(out.c1.data(), out.c1.size(), "partial reply");
  check_words(out.c0.data(), out.limbs, count, params_.moduli, "partial reply");
  check_words(out.c1.data(), out.limbs, n, params_.moduli, "partial reply");
  return out;
}

SecretKey CkksContext::deserialize_secret_key(const std::uint8_t* p, std::size_t len) const {
  Reader r = open(p, len, ObjectKind::SecretKey, params_.fingerprint);
  const std::uint64_t n = this->n();
  const std::size_t K = tables_.size();
  if (r.get<std::uint32_t>("limbs") != K) throw FormatError("corrupt secret key: bad prime count");
  if (len - 8 - r.pos() != K * n * 8) throw FormatError("length mismatch: secret key body has the wrong size");
  SecretKey sk;
  sk.context_id = id_;
  sk.ntt.resize(K * n);
  r.words(sk.ntt.data(), K * n, "secret key");
  check_words(sk.ntt.data(), K, n, params_.key_moduli(), "secret key");
  prepare_secret_key(sk);
  return sk;
}

}  // namespace tensafe::ckks
