// The CPU CKKS context: parameters, NTT tables of every prime, the slot encoder, the
// ChaCha20 key and stream counter, and every operation (keys, encode/decode, encryption,
// evaluator, serialisation). Polynomials are RNS, limb-major, in the NTT domain unless noted.
// Objects remember the id of the context that made them; using one with another context is a
// RangeError (deserialisation re-homes an object after checking the parameter fingerprint).
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ckks/chacha20.h"
#include "ckks/encoder.h"
#include "ckks/ntt_tables.h"
#include "ckks/params.h"
#include "ckks/private_ops.h"

namespace tensafe::ckks {

enum class Encoding : std::uint8_t { Slots = 1, Coefficients = 2 };

struct Plaintext {
  std::uint64_t context_id = 0;
  std::size_t limbs = 0;
  double scale = 1;
  Encoding encoding = Encoding::Slots;
  bool ntt = true;  // false: coefficient form (not produced by the CPU backend today; accepted by decode)
  std::vector<std::uint64_t> data;  // limbs * n
  // Optional Shoup companions of data (prepare_multiplier): a plaintext multiplied many times,
  // such as a pre-encoded LoRA-A row block, then costs one mulhi + two multiplies per word.
  std::vector<std::uint64_t> shoup;
};

struct Ciphertext {
  std::uint64_t context_id = 0;
  std::size_t limbs = 0;
  double scale = 1;
  std::vector<std::uint64_t> data;  // c0 (limbs*n) then c1 (limbs*n), NTT domain
  // Compact symmetric encryption: c1 is the expansion of this public 32-byte seed
  // (sampling.h), so serialize() writes the seed instead of c1. Operations that change c1 do
  // not carry it; add_plain (c1 unchanged) and mod_switch (c1 a prefix of the expansion) do.
  std::optional<ChaChaKey> c1_seed;
  std::uint64_t* c(std::size_t i, std::uint64_t n) { return data.data() + i * limbs * n; }
  const std::uint64_t* c(std::size_t i, std::uint64_t n) const { return data.data() + i * limbs * n; }
};

// Overwrites memory in a way the optimiser may not drop (used for secret material).
void secure_wipe(void* p, std::size_t bytes);

struct SecretKey {
  std::uint64_t context_id = 0;
  std::vector<std::uint64_t> ntt;  // s over the key moduli (ciphertext primes + special), NTT domain
  std::vector<std::uint64_t> ntt_shoup;  // Shoup companions of ntt (decryption multiplies by s)

  SecretKey() = default;
  SecretKey(const SecretKey&) = default;
  SecretKey(SecretKey&&) noexcept = default;
  SecretKey& operator=(const SecretKey&) = default;
  SecretKey& operator=(SecretKey&& o) noexcept {
    if (this != &o) {
      wipe();
      context_id = o.context_id;
      ntt = std::move(o.ntt);
      ntt_shoup = std::move(o.ntt_shoup);
    }
    return *this;
  }
  // The key is wiped when its last copy goes away (dispose() in JS drops it at once).
  ~SecretKey() { wipe(); }
  void wipe() {
    secure_wipe(ntt.data(), ntt.size() * sizeof(std::uint64_t));
    secure_wipe(ntt_shoup.data(), ntt_shoup.size() * sizeof(std::uint64_t));
  }
};

struct PublicKey {
  std::uint64_t context_id = 0;
  std::vector<std::uint64_t> data;  // b = -a s + e (L limbs) then a (L limbs), NTT domain
};

// Key-switching key for one Galois element: for each ciphertext prime i (digit), the pair
// (b_i, a_i) over K = L + 1 primes: b_i = -a_i s + e_i + [limb i] P * tau_g(s).
struct KeySwitchKey {
  std::uint64_t galois = 0;
  std::vector<std::uint64_t> data;  // [digit i][b|a][K limbs][n]
};

struct GaloisKeys {
  std::uint64_t context_id = 0;
  std::map<std::int64_t, KeySwitchKey> keys;  // by rotation step (normalised to [0, slots))
  std::vector<std::int64_t> steps;             // as asked, in order
};

enum class ObjectKind : std::uint16_t { Ciphertext = 1, Plaintext = 2, PublicKey = 3, GaloisKeys = 4, SecretKey = 5, Reply = 6 };

// What sample_words draws (sampling.h documents the layouts).
enum class SampleDistribution : std::uint8_t { Uniform = 1, Centered = 2 };

class CkksContext {
 public:
  explicit CkksContext(const CkksParamsSpec& spec);

  const CkksParams& params() const { return params_; }
  std::uint64_t n() const { return params_.spec.n; }
  std::size_t max_limbs() const { return params_.moduli.size(); }
  std::uint64_t id() const { return id_; }
  double default_scale() const { return scale_; }
  const SlotEncoder& encoder() const { return encoder_; }
  // Tables of key modulus k (k < L: ciphertext primes; k == L: the special prime).
  const NttTables& tables(std::size_t k) const { return *tables_[k]; }
  std::uint64_t next_stream() { return stream_counter_.fetch_add(1); }

  // keys
  SecretKey generate_secret_key();
  PublicKey generate_public_key(const SecretKey& sk);
  GaloisKeys generate_galois_keys(const SecretKey& sk, const std::vector<std::int64_t>& steps);

  // encoding (limbs 0 = all ciphertext primes; scale <= 0 = default scale)
  Plaintext encode(const double* values, std::size_t count, std::size_t limbs, double scale) const;
  Plaintext encode_coefficients(const double* values, std::size_t count, std::size_t limbs, double scale) const;
  void decode(const Plaintext& pt, double* out) const;               // n/2 values
  void decode_coefficients(const Plaintext& pt, double* out) const;  // n values
  // A plaintext from coefficient-form residues, limb-major (limbs*n words, word j of limb i =
  // coefficient j mod q_i), moved to the NTT domain. Every word must be below its prime.
  Plaintext plaintext_from_words(const std::uint64_t* words, std::size_t count, std::size_t limbs, double scale,
                                 Encoding encoding) const;
  // The inverse: coefficient-form residues of pt, limb-major.
  std::vector<std::uint64_t> plaintext_words(const Plaintext& pt) const;
  // RangeError naming `what`[k] for the first word not below its prime (limb-major words).
  void check_residues(const std::uint64_t* words, std::size_t limbs, const char* what) const;

  // randomness for callers (masks, flooding noise): limbs*count words, limb-major, from a
  // fresh stream of the context's ChaCha20 key (sampling.h). bits: Centered only.
  std::vector<std::uint64_t> sample_words(std::size_t limbs, std::size_t count, SampleDistribution dist, int bits);
  // sample_words' checks, and its samples from a given stream id (no checks, no id taken).
  void check_sample(std::size_t limbs, std::size_t count, SampleDistribution dist, int bits) const;
  void sample_words_at(std::uint64_t stream, std::size_t limbs, std::size_t count, SampleDistribution dist, int bits,
                       std::uint64_t* out) const;
  // The 32-byte seed of a compact symmetric encryption: words [0, 4) of `stream`.
  ChaChaKey derive_seed(std::uint64_t stream) const;
  // c1 of a compact encryption over `limbs` primes: the uniform expansion of `seed`.
  void expand_seed(const ChaChaKey& seed, std::size_t limbs, std::uint64_t* out) const;

  // encryption
  Ciphertext encrypt(const Plaintext& pt, const PublicKey& pk);
  // compact: c1 is expanded from a fresh seed that the ciphertext keeps (half the bytes serialised).
  Ciphertext encrypt_symmetric(const Plaintext& pt, const SecretKey& sk, bool compact = false);
  // ct + Enc_pk(0) at ct's level (fresh u, e0, e1): the result's c1 is independent of ct's.
  Ciphertext rerandomize(const Ciphertext& ct, const PublicKey& pk);
  Plaintext decrypt(const Ciphertext& ct, const SecretKey& sk) const;
  std::vector<Plaintext> decrypt_batch(const std::vector<const Ciphertext*>& cts, const SecretKey& sk) const;

  // evaluator
  Ciphertext add(const Ciphertext& a, const Ciphertext& b) const;
  Ciphertext sub(const Ciphertext& a, const Ciphertext& b) const;
  Ciphertext add_plain(const Ciphertext& a, const Plaintext& b) const;
  Ciphertext multiply_plain(const Ciphertext& a, const Plaintext& b) const;
  Ciphertext rescale(const Ciphertext& a) const;
  Ciphertext mod_switch(const Ciphertext& a) const;
  Ciphertext rotate(const Ciphertext& a, std::int64_t steps, const GaloisKeys& gk) const;

  // ---- fused operations of the private protocols (private_ops.h; context_private.cc) ----
  std::vector<std::uint8_t> serialize_reply(const Ciphertext& ct, const std::uint32_t* positions, std::size_t count) const;
  DecryptedReply decrypt_reply(const std::uint8_t* p, std::size_t len, const SecretKey& sk) const;
  std::vector<DecryptedReply> decrypt_replies(const std::vector<ByteSpan>& replies, const SecretKey& sk,
                                              PhaseTimings* timings = nullptr) const;
  // limbs: the prime count every reply must have (0: any, the same in all).
  std::vector<std::uint8_t> reencrypt_replies(const std::vector<ByteSpan>& replies, const SecretKey& sk,
                                              const std::vector<std::vector<std::uint32_t>>& expect, std::size_t limbs = 0,
                                              PhaseTimings* timings = nullptr);
  SanitizeResult sanitize_products(const Ciphertext& ct, const std::vector<const Plaintext*>& pts, const PublicKey& pk,
                                   const SanitizeOptions& o);
  // Checks the steps (in range, a key for each) before any work.
  void check_trace(const std::vector<std::int64_t>& steps, const GaloisKeys& gk) const;
  Ciphertext trace_rotations(const Ciphertext& ct, const std::vector<std::int64_t>& steps, const GaloisKeys& gk) const;
  // Building blocks the CUDA engine shares: the reply bytes from their parts (c0 at the
  // positions, limbs x count; c1, limbs x n), the format check, the last step of a decryption
  // (c1*s at the positions, limbs x count, in coefficient form), and the host half of
  // sanitize_products (its stream ids, in the composition's order, and its masks).
  std::vector<std::uint8_t> serialize_reply_parts(std::size_t limbs, double scale, const std::vector<std::uint32_t>& positions,
                                                  const std::uint64_t* c0_at, const std::uint64_t* c1) const;
  ReplyParts parse_reply(const std::uint8_t* p, std::size_t len) const;
  // serialize() of a compact ciphertext from its parts (c0: limbs x n, NTT domain).
  std::vector<std::uint8_t> serialize_compact_parts(std::size_t limbs, double scale, const ChaChaKey& seed,
                                                    const std::uint64_t* c0) const;
  DecryptedReply finish_reply(const ReplyParts& r, const std::uint64_t* c1s_at) const;
  // reencrypt_replies' host half: the checks of the decrypted replies against `expect` (one
  // list per reply, the same prime count in all) and U, limb-major (limbs x n), from them.
  // want_limbs 0: the first reply's prime count. Returns the rows of U.
  std::size_t check_share_replies(const std::vector<std::size_t>& limbs,
                                  const std::vector<const std::vector<std::uint32_t>*>& positions,
                                  const std::vector<std::vector<std::uint32_t>>& expect, std::size_t want_limbs) const;
  std::vector<std::uint64_t> shares_polynomial(const std::vector<DecryptedReply>& replies,
                                               const std::vector<std::vector<std::uint32_t>>& expect,
                                               std::size_t want_limbs) const;
  std::vector<SanitizeStreams> reserve_sanitize_streams(std::size_t products, bool flood);
  std::vector<std::uint64_t> sanitize_mask(const SanitizeStreams& ids, std::size_t limbs, const SanitizeOptions& o,
                                           std::size_t product) const;

  // Raw words of a ciphertext (c0 then c1, NTT domain): for comparing backends.
  std::vector<std::uint64_t> ciphertext_words(const Ciphertext& ct) const;

  // serialisation (versioned header, fingerprint, lengths, checksum)
  std::vector<std::uint8_t> serialize(const Ciphertext& ct) const;
  std::vector<std::uint8_t> serialize(const Plaintext& pt) const;
  std::vector<std::uint8_t> serialize(const PublicKey& pk) const;
  std::vector<std::uint8_t> serialize(const GaloisKeys& gk) const;
  std::vector<std::uint8_t> serialize_secret_key(const SecretKey& sk) const;
  Ciphertext deserialize_ciphertext(const std::uint8_t* p, std::size_t len) const;
  Plaintext deserialize_plaintext(const std::uint8_t* p, std::size_t len) const;
  PublicKey deserialize_public_key(const std::uint8_t* p, std::size_t len) const;
  GaloisKeys deserialize_galois_keys(const std::uint8_t* p, std::size_t len) const;
  SecretKey deserialize_secret_key(const std::uint8_t* p, std::size_t len) const;

  // ---- building blocks (public for the benchmarks and the HE-LoRA code) ----
  void ntt_forward(std::uint64_t* data, std::size_t limbs) const;  // limbs 0..limbs-1, in parallel
  void ntt_inverse(std::uint64_t* data, std::size_t limbs) const;
  // Rounds scaled coefficients into RNS residues over `limbs` primes (checks the bound).
  void round_to_rns(const double* coeffs, std::size_t limbs, std::uint64_t* out) const;
  // Coefficient-form RNS words over `limbs` primes -> centred doubles (Garner), times inv_scale.
  void compose_to_double(const std::uint64_t* data, std::size_t limbs, double inv_scale, double* out) const;
  // The same for `count` values whose limbs lie `stride` words apart.
  void compose_words(const std::uint64_t* data, std::size_t limbs, std::size_t stride, std::size_t count,
                     double inv_scale, double* out) const;

  // Adds Shoup companions to a plaintext that will be multiplied many times (same results).
  void prepare_multiplier(Plaintext& pt) const;
  // Fills sk.ntt_shoup (done by key generation and import).
  void prepare_secret_key(SecretKey& sk) const;

  // Checks that an object belongs to this context (RangeError naming `what`).
  void check_owner(std::uint64_t owner, const char* what) const;

 private:
  void small_to_rns(const std::int8_t* v, std::size_t k_begin, std::size_t k_end, std::uint64_t* out) const;
  // ntt = false: poly and out are in coefficient form (the same map, no transforms).
  void rescale_poly(const std::uint64_t* poly, std::size_t limbs, std::uint64_t* out, bool ntt = true) const;
  void key_switch(const std::uint64_t* d, std::size_t limbs, const KeySwitchKey& key, std::uint64_t* out0,
                  std::uint64_t* out1) const;
  const std::vector<std::uint32_t>& automorphism(std::uint64_t galois) const;
  void check_limbs(std::size_t limbs, const char* what) const;
  // (c0, c1) = Enc_pk(0) + (add0, add1) over `l` limbs with fresh u, e0, e1 from `stream`:
  // c0 = e0 + b*u + add0, c1 = e1 + a*u + add1 (a null addend counts as zero; outputs must not
  // alias the addends). c0_coefficients: c0 is left in coefficient form instead (e0 is added
  // there, so it is never transformed; add0 is still an NTT-domain addend).
  void encrypt_zero_plus(std::uint64_t* c0, std::uint64_t* c1, std::size_t l, const PublicKey& pk,
                         const std::uint64_t* add0, const std::uint64_t* add1, std::uint64_t stream,
                         bool c0_coefficients = false) const;
  // out = a * b (both polynomials of a, b's first a.limbs limbs), Shoup when b is prepared.
  void multiply_plain_into(const Ciphertext& a, const Plaintext& b, std::uint64_t* out) const;
  // The sanitised reply of one product (context_private.cc).
  std::vector<std::uint8_t> sanitize_one(const Ciphertext& ct, const Plaintext& pt, const PublicKey& pk,
                                         const SanitizeOptions& o, std::size_t p, const SanitizeStreams& ids,
                                         std::vector<std::uint64_t>* mask_out, PhaseTimings* timings) const;
  Plaintext decrypt_impl(const Ciphertext& ct, const SecretKey& sk, bool parallel) const;

  CkksParams params_;
  std::uint64_t id_;
  double scale_;
  std::vector<std::shared_ptr<const NttTables>> tables_;  // K = L (+1) tables
  SlotEncoder encoder_;
  ChaChaKey key_;
  std::atomic<std::uint64_t> stream_counter_{1};
  mutable std::mutex perm_mutex_;
  mutable std::map<std::uint64_t, std::vector<std::uint32_t>> perms_;
};

}  // namespace tensafe::ckks
