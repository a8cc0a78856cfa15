#include "ckks_options.h"

#include <cstdio>
#include <cstring>

#include "ckks/params.h"

namespace tensafe::napi::ckks_options {

ckks::CkksParamsSpec read_spec(const Napi::Object& o) {
  ckks::CkksParamsSpec s;
  const std::string range = "[" + std::to_string(ckks::kMinPolyN) + ", " + std::to_string(ckks::kMaxPolyN) + "]";
  if (!has_key(o, "polyN")) throw_type("options.polyN is required (a power of two in " + range + ")");
  s.n = static_cast<uint64_t>(require_int(o.Get("polyN"), "options.polyN", 1, 1 << 20));
  if (has_key(o, "primeBits")) {
    Napi::Value v = o.Get("primeBits");
    if (!v.IsArray()) throw_type("options.primeBits must be an array of integers");
    auto a = v.As<Napi::Array>();
    if (a.Length() < 1 || a.Length() > static_cast<uint32_t>(ckks::kMaxPrimes))
      throw_range("options.primeBits must list 1.." + std::to_string(ckks::kMaxPrimes) + " prime sizes");
    s.prime_bits.clear();
    for (uint32_t i = 0; i < a.Length(); ++i)
      s.prime_bits.push_back(static_cast<int>(require_int(a.Get(i), "options.primeBits[" + std::to_string(i) + "]",
                                                          ckks::kMinPrimeBits, ckks::kMaxPrimeBits)));
  }
  s.special_bits =
      static_cast<int>(optional_int(o, "specialPrimeBits", "options.specialPrimeBits", 0, ckks::kMaxPrimeBits, 0));
  s.scale_bits = static_cast<int>(
      optional_int(o, "scaleBits", "options.scaleBits", ckks::kMinScaleBits, ckks::kMaxScaleBits, 40));
  s.allow_insecure = optional_bool(o, "allowInsecure", "options.allowInsecure", false);
  if (has_key(o, "seed")) {
    Napi::Value v = o.Get("seed");
    if (!v.IsBigInt()) throw_type("options.seed must be a bigint");
    int sign = 0;
    size_t words = 4;
    uint64_t w[4] = {0, 0, 0, 0};
    v.As<Napi::BigInt>().ToWords(&sign, &words, w);
    if (sign != 0 || words > 4) throw_range("options.seed must be a bigint in [0, 2^256)");
    s.seeded = true;
    for (int i = 0; i < 4; ++i) s.seed[i] = w[i];
  }
  return s;
}

namespace {
double read_scale(const Napi::Object& o, double fallback) {
  if (!has_key(o, "scale")) return fallback;
  const double scale = require_finite(o.Get("scale"), "options.scale");
  if (!(scale >= 1.0) || scale > 1e300) throw_range("options.scale must be in [1, 1e300]");
  return scale;
}
// A required options.limbs in [1, max_limbs]; `why` says what it counts.
size_t require_limbs(const Napi::Object& o, size_t max_limbs, const char* why) {
  if (!has_key(o, "limbs")) throw_type(std::string("options.limbs is required (") + why + ")");
  return static_cast<size_t>(require_int(o.Get("limbs"), "options.limbs", 1, static_cast<int64_t>(max_limbs)));
}
}  // namespace

EncodeOpts read_encode_opts(const Napi::CallbackInfo& info, size_t index, size_t max_limbs) {
  EncodeOpts e;
  if (info.Length() <= index || info[index].IsUndefined()) return e;
  Napi::Object o = require_object(info[index], "options");
  e.limbs = static_cast<size_t>(optional_int(o, "limbs", "options.limbs", 1, static_cast<int64_t>(max_limbs), 0));
  e.scale = read_scale(o, 0);
  return e;
}

WordsOpts read_words_opts(const Napi::CallbackInfo& info, size_t index, size_t max_limbs) {
  WordsOpts w;
  Napi::Object o = require_object(require_arg(info, index, "options"), "options");
  w.limbs = require_limbs(o, max_limbs, "the number of primes the words cover");
  w.scale = read_scale(o, 1);
  if (has_key(o, "encoding"))
    w.encoding = require_enum(o.Get("encoding"), "options.encoding", {"coefficients", "slots"}) == "slots"
                     ? ckks::Encoding::Slots
                     : ckks::Encoding::Coefficients;
  return w;
}

SampleOpts read_sample_opts(const Napi::CallbackInfo& info, size_t index, size_t max_limbs) {
  SampleOpts s;
  Napi::Object o = require_object(require_arg(info, index, "options"), "options");
  s.limbs = require_limbs(o, max_limbs, "the number of primes to sample residues of");
  if (!has_key(o, "count")) throw_type("options.count is required (residues per limb)");
  s.count = static_cast<size_t>(require_int(o.Get("count"), "options.count", 1, int64_t{1} << 22));
  if (!has_key(o, "distribution")) throw_type("options.distribution is required ('uniform' or 'centered')");
  const bool centered = require_enum(o.Get("distribution"), "options.distribution", {"uniform", "centered"}) == "centered";
  s.distribution = centered ? ckks::SampleDistribution::Centered : ckks::SampleDistribution::Uniform;
  if (centered) {
    if (!has_key(o, "bits")) throw_type("options.bits is required for distribution 'centered' (e in [-2^bits, 2^bits])");
    s.bits = static_cast<int>(require_int(o.Get("bits"), "options.bits", 0, 126));
  } else if (has_key(o, "bits")) {
    throw_range("options.bits applies to distribution 'centered' only");
  }
  return s;
}

bool read_compact(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return false;
  Napi::Object o = require_object(info[index], "options");
  return optional_bool(o, "compact", "options.compact", false);
}

std::vector<uint32_t> read_positions(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw_type(name + " must be a Uint32Array of coefficient positions");
  auto a = v.As<Napi::Uint32Array>();
  return std::vector<uint32_t>(a.Data(), a.Data() + a.ElementLength());
}

namespace {
std::vector<std::vector<uint32_t>> read_position_lists(const Napi::Object& o, const char* key, const std::string& name) {
  std::vector<std::vector<uint32_t>> out;
  if (!has_key(o, key)) return out;
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw_type(name + " must be an array of Uint32Array (one per plaintext)");
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(read_positions(a.Get(i), name + "[" + std::to_string(i) + "]"));
  return out;
}
}  // namespace

ckks::SanitizeOptions read_sanitize_opts(const Napi::Value& v) {
  Napi::Object o = require_object(v, "options");
  ckks::SanitizeOptions s;
  s.read = read_position_lists(o, "read", "options.read");
  s.keep = read_position_lists(o, "keep", "options.keep");
  s.mask_at = read_position_lists(o, "returnMaskAt", "options.returnMaskAt");
  s.flood_bits = static_cast<int>(optional_int(o, "floodBits", "options.floodBits", 0, 126, 0));
  s.mask_all = optional_bool(o, "maskAll", "options.maskAll", false);
  s.rescales = static_cast<size_t>(optional_int(o, "rescale", "options.rescale", 0, ckks::kMaxPrimes, 0));
  if (!has_key(o, "format")) throw_type("options.format is required ('partial' or 'full')");
  s.partial = require_enum(o.Get("format"), "options.format", {"partial", "full"}) == "partial";
  s.timings = optional_bool(o, "timings", "options.timings", false);
  return s;
}

bool read_timings_opt(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || info[index].IsUndefined()) return false;
  Napi::Object o = require_object(info[index], "options");
  return optional_bool(o, "timings", "options.timings", false);
}

ReencryptOpts read_reencrypt_opts(const Napi::Value& v) {
  Napi::Object o = require_object(v, "options");
  ReencryptOpts r;
  if (!has_key(o, "expect")) throw_type("options.expect is required (one Uint32Array of positions per reply)");
  r.expect = read_position_lists(o, "expect", "options.expect");
  r.limbs = static_cast<size_t>(optional_int(o, "limbs", "options.limbs", 1, ckks::kMaxPrimes, 0));
  r.timings = optional_bool(o, "timings", "options.timings", false);
  return r;
}

Napi::Object timings_to_js(Napi::Env env, const ckks::PhaseTimings& t) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, us] : t.phases) o.Set(name, Napi::Number::New(env, us));
  return o;
}

Napi::Object reply_to_js(Napi::Env env, const ckks::DecryptedReply& r) {
  Napi::Object o = Napi::Object::New(env);
  auto pos = Napi::Uint32Array::New(env, r.positions.size());
  if (!r.positions.empty()) std::memcpy(pos.Data(), r.positions.data(), r.positions.size() * sizeof(uint32_t));
  o.Set("positions", pos);
  o.Set("limbs", Napi::Number::New(env, double(r.limbs)));
  o.Set("scale", Napi::Number::New(env, r.scale));
  o.Set("words", words_to_js(env, r.words));
  auto values = Napi::Float64Array::New(env, r.values.size());
  if (!r.values.empty()) std::memcpy(values.Data(), r.values.data(), r.values.size() * sizeof(double));
  o.Set("values", values);
  return o;
}

Napi::Value bytes_to_js(Napi::Env env, const std::vector<uint8_t>& b) {
  auto a = Napi::Uint8Array::New(env, b.size());
  if (!b.empty()) std::memcpy(a.Data(), b.data(), b.size());
  return a;
}

Napi::Value bytes_to_js(Napi::Env env, std::vector<uint8_t>&& b) {
  // The vector's storage becomes the ArrayBuffer's (no copy of ciphertext-sized replies); its
  // size is reported to V8 so that the collector sees the memory it holds.
  if (b.empty()) return Napi::Uint8Array::New(env, 0);
  auto* owned = new std::vector<uint8_t>(std::move(b));
  const size_t len = owned->size();
  Napi::ArrayBuffer ab;
  try {
    ab = Napi::ArrayBuffer::New(env, owned->data(), len, [](Napi::Env e, void*, std::vector<uint8_t>* v) {
      Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(v->size()));
      delete v;
    }, owned);
  } catch (...) {
    delete owned;
    throw;
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(len));
  return Napi::Uint8Array::New(env, len, ab, 0);
}

Napi::Value words_to_js(Napi::Env env, const uint64_t* w, size_t count) {
  auto out = Napi::BigUint64Array::New(env, count);
  if (count) std::memcpy(out.Data(), w, count * sizeof(uint64_t));
  return out;
}

Napi::Value words_to_js(Napi::Env env, const std::vector<uint64_t>& w) { return words_to_js(env, w.data(), w.size()); }

Napi::Object params_info(Napi::Env env, const ckks::CkksContext& c, const char* backend) {
  const auto& p = c.params();
  Napi::Object o = Napi::Object::New(env);
  o.Set("backend", backend);
  o.Set("polyN", Napi::Number::New(env, double(c.n())));
  o.Set("slots", Napi::Number::New(env, double(c.n() / 2)));
  Napi::Array m = Napi::Array::New(env, p.moduli.size());
  for (size_t i = 0; i < p.moduli.size(); ++i) m.Set(uint32_t(i), Napi::BigInt::New(env, p.moduli[i]));
  o.Set("moduli", m);
  Napi::Array bits = Napi::Array::New(env, p.spec.prime_bits.size());
  for (size_t i = 0; i < p.spec.prime_bits.size(); ++i) bits.Set(uint32_t(i), Napi::Number::New(env, p.spec.prime_bits[i]));
  o.Set("primeBits", bits);
  o.Set("specialModulus", p.special ? Napi::Value(Napi::BigInt::New(env, p.special)) : env.Null());
  o.Set("specialPrimeBits", p.special ? Napi::Value(Napi::Number::New(env, p.spec.special_bits)) : env.Null());
  o.Set("logQP", p.log_qp);
  o.Set("maxLogQP128", p.max_log_qp);
  // The seeded test mode is never secure: its randomness is a function of a public seed.
  o.Set("insecure", p.insecure || p.spec.seeded);
  o.Set("belowSecurityBound", p.insecure);
  o.Set("seeded", p.spec.seeded);
  o.Set("scale", c.default_scale());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(p.fingerprint));
  o.Set("fingerprint", hex);
  return o;
}

Napi::Value galois_element(const Napi::CallbackInfo& info, const ckks::CkksContext& c) {
  const int64_t slots = static_cast<int64_t>(c.n() / 2);
  const int64_t steps = require_int(require_arg(info, 0, "steps"), "steps", -(slots - 1), slots - 1);
  return Napi::Number::New(info.Env(), double(c.encoder().galois_element(steps)));
}

Napi::Value galois_step(const Napi::CallbackInfo& info, const ckks::CkksContext& c) {
  const uint64_t M = 2 * c.n();
  const uint64_t g = static_cast<uint64_t>(require_int(require_arg(info, 0, "element"), "element", 1, int64_t(M - 1)));
  // Z*_2N = <5> x <-1>: the elements of <5> are exactly those = 1 (mod 4).
  if (g % 4 != 1)
    throw_range("element " + std::to_string(g) +
                " is not a power of 5 mod 2N (those are = 1 mod 4); rotate applies X -> X^(5^steps) only");
  uint64_t e = 1;
  for (uint64_t j = 0; j < c.n() / 2; ++j, e = (e * 5) % M)
    if (e == g) return Napi::Number::New(info.Env(), double(j));
  throw_range("element " + std::to_string(g) + " is not a power of 5 mod 2N");
}

namespace {
// ckksRules.checkParameters(options): the parameter checks of a context without making one
// (primes drawn, security table consulted; ERR_TENSAFE_INSECURE unless allowInsecure).
Napi::Value check_parameters(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const auto spec = read_spec(require_object(require_arg(info, 0, "options"), "options"));
    ckks::CkksParams p;
    try {
      p = ckks::CkksParams::create(spec);
    } catch (const ArgumentRangeError& e) {
      const std::string m = e.what();
      throw ArgumentRangeError(m.rfind("options.", 0) == 0 ? m : "options." + m);
    }
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("logQP", p.log_qp);
    o.Set("maxLogQP128", p.max_log_qp);
    o.Set("belowSecurityBound", p.insecure);
    return o;
  });
}
}  // namespace

Napi::Object rules(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("checkParameters", Napi::Function::New(env, check_parameters, "checkParameters"));
  Napi::Object table = Napi::Object::New(env);
  for (const auto& b : ckks::security_table_128()) table.Set(std::to_string(b.n), Napi::Number::New(env, b.max_log_qp));
  o.Set("securityTable128", table);
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("minPolyN", Napi::Number::New(env, double(ckks::kMinPolyN)));
  limits.Set("maxPolyN", Napi::Number::New(env, double(ckks::kMaxPolyN)));
  limits.Set("minPrimeBits", Napi::Number::New(env, ckks::kMinPrimeBits));
  limits.Set("maxPrimeBits", Napi::Number::New(env, ckks::kMaxPrimeBits));
  limits.Set("maxPrimes", Napi::Number::New(env, ckks::kMaxPrimes));
  limits.Set("minScaleBits", Napi::Number::New(env, ckks::kMinScaleBits));
  limits.Set("maxScaleBits", Napi::Number::New(env, ckks::kMaxScaleBits));
  o.Set("limits", limits);
  return o;
}

}  // namespace tensafe::napi::ckks_options
