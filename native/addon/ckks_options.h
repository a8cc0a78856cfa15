// Option readers and conversions shared by the CKKS bindings of both engines: one reading of
// every option, one error message per bad value (the engines then validate the values again
// against the context, e.g. limbs against its primes).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ckks/context.h"
#include "napi_util.h"

namespace tensafe::napi::ckks_options {

// new CkksContext*(options): polyN, primeBits, specialPrimeBits, scaleBits, allowInsecure, seed
// (a key whose value is undefined counts as absent, for every key).
ckks::CkksParamsSpec read_spec(const Napi::Object& o);

struct EncodeOpts {
  size_t limbs = 0;  // 0: all primes
  double scale = 0;  // 0: the context scale
};
// encode*(values, options?): limbs, scale.
EncodeOpts read_encode_opts(const Napi::CallbackInfo& info, size_t index, size_t max_limbs);

struct WordsOpts {
  size_t limbs = 0;
  double scale = 1;
  ckks::Encoding encoding = ckks::Encoding::Coefficients;
};
// plaintextFromWords(words, { limbs, scale?, encoding? }).
WordsOpts read_words_opts(const Napi::CallbackInfo& info, size_t index, size_t max_limbs);

struct SampleOpts {
  size_t limbs = 0;
  size_t count = 0;
  ckks::SampleDistribution distribution = ckks::SampleDistribution::Uniform;
  int bits = 0;
};
// sampleWords({ limbs, count, distribution, bits? }).
SampleOpts read_sample_opts(const Napi::CallbackInfo& info, size_t index, size_t max_limbs);

// encryptSymmetric(pt, sk, { compact? }).
bool read_compact(const Napi::CallbackInfo& info, size_t index);

// A Uint32Array of positions (the engine checks their range and order).
std::vector<uint32_t> read_positions(const Napi::Value& v, const std::string& name);

// sanitizeProducts(ct, plaintexts, publicKey, options): read, keep, returnMaskAt (arrays of
// Uint32Array), floodBits, maskAll, rescale, format ('partial' | 'full').
ckks::SanitizeOptions read_sanitize_opts(const Napi::Value& v);

// The optional { timings? } argument of decryptReplies at `index`.
bool read_timings_opt(const Napi::CallbackInfo& info, size_t index);

struct ReencryptOpts {
  std::vector<std::vector<uint32_t>> expect;
  size_t limbs = 0;  // 0: any (the same in every reply)
  bool timings = false;
};
// reencryptReplies(replies, secretKey, { expect, limbs?, timings? }).
ReencryptOpts read_reencrypt_opts(const Napi::Value& v);

// Per-phase microseconds as { phase: us } (insertion order = the order the phases ran).
Napi::Object timings_to_js(Napi::Env env, const ckks::PhaseTimings& t);

// A decrypted partial reply as JS: { positions, limbs, scale, words, values }.
Napi::Object reply_to_js(Napi::Env env, const ckks::DecryptedReply& r);

Napi::Value bytes_to_js(Napi::Env env, const std::vector<uint8_t>& b);
// Without a copy: the Uint8Array takes over the vector's storage.
Napi::Value bytes_to_js(Napi::Env env, std::vector<uint8_t>&& b);
Napi::Value words_to_js(Napi::Env env, const std::vector<uint64_t>& w);
Napi::Value words_to_js(Napi::Env env, const uint64_t* w, size_t count);

// Facts of a parameter set as info() reports them (backend-independent part).
Napi::Object params_info(Napi::Env env, const ckks::CkksContext& c, const char* backend);

// 5^steps mod 2N (rotate's Galois element) and its inverse (the step of an element = 1 mod 4).
Napi::Value galois_element(const Napi::CallbackInfo& info, const ckks::CkksContext& c);
Napi::Value galois_step(const Napi::CallbackInfo& info, const ckks::CkksContext& c);

// The addon's ckksRules: securityTable128, limits and checkParameters(options) (the one owner
// of these rules; TypeScript reads them).
Napi::Object rules(Napi::Env env);

}  // namespace tensafe::napi::ckks_options
