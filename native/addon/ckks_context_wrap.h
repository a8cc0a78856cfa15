// The JS class shared by CkksContextCpu and CkksContextCuda (the contract is
// src/engine/ckks/native-api.ts): option reading, argument checks, handle conversion, async
// work, benchmarks and dispose are written once here, so the two backends cannot drift. The
// engines have the same method names (CkksContext, cuda::CkksContextCuda); a Traits type
// supplies only what differs:
//   using Engine, Pt, Ct, Sk, Pk, Gk;                 the engine and its object types
//   static constexpr CkksBackend kBackend;            which backend tag its handles carry
//   static constexpr const char* kName;               the JS class name
//   static std::shared_ptr<Engine> make(const ckks::CkksParamsSpec&);
//   static const ckks::CkksContext& host(const Engine&);   parameters, n, primes
//   static HandleFacts describe(const Pt& | const Ct& | const Sk& | const Pk& | const Gk&);
//   static ckks::OpTiming benchmark_op(Engine&, const std::string& op, int iterations);
//   static ckks::HeLoraTiming benchmark_helora(Engine&, int d, int r, int iterations, int replicas, bool streamed);
//   template <typename Wrap, typename Props> static void add_methods(Props&);   extra methods
//       (each registered as Wrap::template Extra<&Traits::fn>, fn(Engine&, const CallbackInfo&))
#pragma once
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ckks/bench_loop.h"
#include "ckks/benchmarks.h"
#include "ckks/valcheck.h"
#include "ckks_handles.h"
#include "ckks_options.h"
#include "napi_util.h"

namespace tensafe::napi {

template <typename Traits>
class CkksContextWrap : public Napi::ObjectWrap<CkksContextWrap<Traits>> {
  using Self = CkksContextWrap<Traits>;
  using Engine = typename Traits::Engine;
  using Pt = typename Traits::Pt;
  using Ct = typename Traits::Ct;
  using Sk = typename Traits::Sk;
  using Pk = typename Traits::Pk;
  using Gk = typename Traits::Gk;
  using PtH = CkksHandle<CkksKind::Plaintext>;
  using CtH = CkksHandle<CkksKind::Ciphertext>;
  using SkH = CkksHandle<CkksKind::SecretKey>;
  using PkH = CkksHandle<CkksKind::PublicKey>;
  using GkH = CkksHandle<CkksKind::GaloisKeys>;

 public:
  using PropertyDescriptor = typename Napi::ObjectWrap<Self>::PropertyDescriptor;

  static Napi::Function Define(Napi::Env env) {
    define_ckks_handles(env);
    std::vector<PropertyDescriptor> props = {
        Self::template InstanceMethod<&Self::Info>("info"),
        Self::template InstanceMethod<&Self::GenerateSecretKey>("generateSecretKey"),
        Self::template InstanceMethod<&Self::GeneratePublicKey>("generatePublicKey"),
        Self::template InstanceMethod<&Self::GenerateGaloisKeys>("generateGaloisKeys"),
        Self::template InstanceMethod<&Self::Encode>("encode"),
        Self::template InstanceMethod<&Self::EncodeCoefficients>("encodeCoefficients"),
        Self::template InstanceMethod<&Self::Decode>("decode"),
        Self::template InstanceMethod<&Self::DecodeCoefficients>("decodeCoefficients"),
        Self::template InstanceMethod<&Self::PlaintextFromWords>("plaintextFromWords"),
        Self::template InstanceMethod<&Self::PlaintextWords>("plaintextWords"),
        Self::template InstanceMethod<&Self::SampleWords>("sampleWords"),
        Self::template InstanceMethod<&Self::Encrypt>("encrypt"),
        Self::template InstanceMethod<&Self::EncryptSymmetric>("encryptSymmetric"),
        Self::template InstanceMethod<&Self::Rerandomize>("rerandomize"),
        Self::template InstanceMethod<&Self::Decrypt>("decrypt"),
        Self::template InstanceMethod<&Self::DecryptBatch>("decryptBatch"),
        Self::template InstanceMethod<&Self::Add>("add"),
        Self::template InstanceMethod<&Self::Sub>("sub"),
        Self::template InstanceMethod<&Self::AddPlain>("addPlain"),
        Self::template InstanceMethod<&Self::MultiplyPlain>("multiplyPlain"),
        Self::template InstanceMethod<&Self::PrepareMultiplier>("prepareMultiplier"),
        Self::template InstanceMethod<&Self::Rescale>("rescale"),
        Self::template InstanceMethod<&Self::ModSwitch>("modSwitch"),
        Self::template InstanceMethod<&Self::Rotate>("rotate"),
        Self::template InstanceMethod<&Self::GaloisElement>("galoisElement"),
        Self::template InstanceMethod<&Self::GaloisStep>("galoisStep"),
        Self::template InstanceMethod<&Self::Serialize>("serialize"),
        Self::template InstanceMethod<&Self::DeserializeCiphertext>("deserializeCiphertext"),
        Self::template InstanceMethod<&Self::DeserializePlaintext>("deserializePlaintext"),
        Self::template InstanceMethod<&Self::DeserializePublicKey>("deserializePublicKey"),
        Self::template InstanceMethod<&Self::DeserializeGaloisKeys>("deserializeGaloisKeys"),
        Self::template InstanceMethod<&Self::ExportSecretKey>("exportSecretKey"),
        Self::template InstanceMethod<&Self::ImportSecretKey>("importSecretKey"),
        Self::template InstanceMethod<&Self::CiphertextWords>("ciphertextWords"),
        Self::template InstanceMethod<&Self::SerializeReply>("serializeReply"),
        Self::template InstanceMethod<&Self::DecryptReply>("decryptReply"),
        Self::template InstanceMethod<&Self::DecryptReplies>("decryptReplies"),
        Self::template InstanceMethod<&Self::ReencryptReplies>("reencryptReplies"),
        Self::template InstanceMethod<&Self::SanitizeProducts>("sanitizeProducts"),
        Self::template InstanceMethod<&Self::TraceRotations>("traceRotations"),
        Self::template InstanceMethod<&Self::BenchmarkOp>("benchmarkOp"),
        Self::template InstanceMethod<&Self::BenchmarkHeLora>("benchmarkHeLora"),
        Self::template InstanceMethod<&Self::Dispose>("dispose"),
        Self::template InstanceAccessor<&Self::Disposed>("disposed")};
    Traits::template add_methods<Self>(props);
    return Self::DefineClass(env, Traits::kName, props);
  }

  explicit CkksContextWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Self>(info), ctx_(Traits::kName), handles_(std::make_shared<HandleRegistry>(Traits::kName)) {
    guard(info.Env(), [&] {
      const auto spec = ckks_options::read_spec(require_object(require_arg(info, 0, "options"), "options"));
      try {
        ctx_.set(Traits::make(spec));  // parameters are checked before any device work
      } catch (const ArgumentRangeError& e) {
        const std::string m = e.what();
        throw ArgumentRangeError(m.rfind("options.", 0) == 0 ? m : "options." + m);
      }
    });
  }

  // An engine-specific method for Traits::add_methods: Fn(engine, info), errors converted.
  template <Napi::Value (*Fn)(Engine&, const Napi::CallbackInfo&)>
  Napi::Value Extra(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env) -> Napi::Value { return Fn(c, info); });
  }

 private:
  const ckks::CkksContext& host(const Engine& c) const { return Traits::host(c); }

  // Runs fn(engine, env) on the live engine, errors converted to JS ones.
  template <typename Fn>
  Napi::Value Run(const Napi::CallbackInfo& info, Fn&& fn) {
    return guard(info.Env(), [&]() -> Napi::Value { return fn(*ctx_.get(), info.Env()); });
  }

  // A new handle of this context around an engine result (an object or a shared pointer).
  template <CkksKind K, typename T>
  static Napi::Object wrap(Napi::Env env, const std::shared_ptr<HandleRegistry>& handles, T&& result) {
    auto obj = ckks::as_shared(std::forward<T>(result));
    HandleFacts facts = Traits::describe(*obj);
    return CkksHandle<K>::Wrap(env, std::move(obj), Traits::kBackend, handles, std::move(facts));
  }
  template <CkksKind K, typename T>
  Napi::Object wrap(Napi::Env env, T&& result) {
    return wrap<K>(env, handles_, std::forward<T>(result));
  }
  // A handle argument of this backend.
  template <typename T, CkksKind K>
  static std::shared_ptr<T> arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
    return CkksHandle<K>::template From<T>(require_arg(info, index, name), name, Traits::kBackend);
  }
  static std::shared_ptr<Pt> pt_arg(const Napi::CallbackInfo& i, size_t k, const char* n) { return arg<Pt, CkksKind::Plaintext>(i, k, n); }
  static std::shared_ptr<Ct> ct_arg(const Napi::CallbackInfo& i, size_t k, const char* n) { return arg<Ct, CkksKind::Ciphertext>(i, k, n); }
  static std::shared_ptr<Sk> sk_arg(const Napi::CallbackInfo& i, size_t k) { return arg<Sk, CkksKind::SecretKey>(i, k, "secretKey"); }
  static std::shared_ptr<Pk> pk_arg(const Napi::CallbackInfo& i, size_t k) { return arg<Pk, CkksKind::PublicKey>(i, k, "publicKey"); }
  static std::shared_ptr<Gk> gk_arg(const Napi::CallbackInfo& i, size_t k) { return arg<Gk, CkksKind::GaloisKeys>(i, k, "galoisKeys"); }

  // An array argument of 1..max handles of one kind (kept alive by the returned pointers).
  template <typename T, CkksKind K>
  static std::vector<std::shared_ptr<T>> list_arg(const Napi::CallbackInfo& info, size_t index, const char* name,
                                                  const char* what, uint32_t min, uint32_t max) {
    Napi::Value v = require_arg(info, index, name);
    if (!v.IsArray()) throw_type(std::string(name) + " must be an array of " + what);
    auto a = v.As<Napi::Array>();
    if (a.Length() < min || a.Length() > max)
      throw_range(std::string(name) + " must hold " + std::to_string(min) + ".." + std::to_string(max) + " entries, got " +
                  std::to_string(a.Length()));
    std::vector<std::shared_ptr<T>> out;
    for (uint32_t i = 0; i < a.Length(); ++i)
      out.push_back(CkksHandle<K>::template From<T>(a.Get(i), std::string(name) + "[" + std::to_string(i) + "]", Traits::kBackend));
    return out;
  }
  template <typename T>
  static std::vector<const T*> raw(const std::vector<std::shared_ptr<T>>& v) {
    std::vector<const T*> out;
    for (const auto& p : v) out.push_back(p.get());
    return out;
  }
  // 1..256 rotation steps in (-slots, slots).
  std::vector<int64_t> steps_arg(const Napi::CallbackInfo& info, size_t index, const Engine& c) const {
    Napi::Value sv = require_arg(info, index, "steps");
    if (!sv.IsArray()) throw_type("steps must be an array of integers");
    auto a = sv.As<Napi::Array>();
    if (a.Length() < 1 || a.Length() > 256) throw_range("steps must list 1..256 rotation steps");
    const int64_t slots = static_cast<int64_t>(host(c).n() / 2);
    std::vector<int64_t> steps;
    for (uint32_t i = 0; i < a.Length(); ++i)
      steps.push_back(require_int(a.Get(i), "steps[" + std::to_string(i) + "]", -(slots - 1), slots - 1));
    return steps;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      return ckks_options::params_info(env, host(c), backend_name(Traits::kBackend));
    });
  }

  // ---- keys ----
  Napi::Value GenerateSecretKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value { return wrap<CkksKind::SecretKey>(env, c.generate_secret_key()); });
  }
  Napi::Value GeneratePublicKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      return wrap<CkksKind::PublicKey>(env, c.generate_public_key(*sk_arg(info, 0)));
    });
  }
  Napi::Value GenerateGaloisKeys(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto sk = sk_arg(info, 0);
      const std::vector<int64_t> steps = steps_arg(info, 1, c);
      if (!host(c).params().special)
        throw_range("rotation keys need a special prime: create the context with specialPrimeBits");
      auto ctx = ctx_.get();
      auto handles = handles_;
      using Result = decltype(ckks::as_shared(c.generate_galois_keys(*sk, steps)));
      auto result = std::make_shared<Result>();
      static const std::string name = std::string(Traits::kName) + ".generateGaloisKeys";
      return PromiseWorker::run(
          env, name.c_str(), [ctx, sk, steps, result] { *result = ckks::as_shared(ctx->generate_galois_keys(*sk, steps)); },
          [result, handles](Napi::Env e) -> Napi::Value { return wrap<CkksKind::GaloisKeys>(e, handles, std::move(*result)); });
    });
  }

  // ---- encoding ----
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto v = require_float64_array(require_arg(info, 0, "values"), "values");
      if (v.ElementLength() > host(c).n() / 2)
        throw_range("values must hold at most polyN/2 = " + std::to_string(host(c).n() / 2) + " numbers, got " +
                    std::to_string(v.ElementLength()));
      auto o = ckks_options::read_encode_opts(info, 1, host(c).max_limbs());
      return wrap<CkksKind::Plaintext>(env, c.encode(v.Data(), v.ElementLength(), o.limbs, o.scale));
    });
  }
  Napi::Value EncodeCoefficients(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto v = require_float64_array(require_arg(info, 0, "values"), "values");
      if (v.ElementLength() > host(c).n())
        throw_range("values must hold at most polyN = " + std::to_string(host(c).n()) + " numbers, got " +
                    std::to_string(v.ElementLength()));
      auto o = ckks_options::read_encode_opts(info, 1, host(c).max_limbs());
      return wrap<CkksKind::Plaintext>(env, c.encode_coefficients(v.Data(), v.ElementLength(), o.limbs, o.scale));
    });
  }
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto pt = pt_arg(info, 0, "plaintext");
      auto out = Napi::Float64Array::New(env, host(c).n() / 2);
      c.decode(*pt, out.Data());
      return out;
    });
  }
  Napi::Value DecodeCoefficients(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto pt = pt_arg(info, 0, "plaintext");
      auto out = Napi::Float64Array::New(env, host(c).n());
      c.decode_coefficients(*pt, out.Data());
      return out;
    });
  }
  Napi::Value PlaintextFromWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto w = require_biguint64_array(require_arg(info, 0, "words"), "words");
      auto o = ckks_options::read_words_opts(info, 1, host(c).max_limbs());
      return wrap<CkksKind::Plaintext>(env, c.plaintext_from_words(w.Data(), w.ElementLength(), o.limbs, o.scale, o.encoding));
    });
  }
  Napi::Value PlaintextWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      return ckks_options::words_to_js(env, c.plaintext_words(*pt_arg(info, 0, "plaintext")));
    });
  }
  Napi::Value SampleWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto o = ckks_options::read_sample_opts(info, 0, host(c).max_limbs());
      return ckks_options::words_to_js(env, c.sample_words(o.limbs, o.count, o.distribution, o.bits));
    });
  }

  // ---- encryption ----
  Napi::Value Encrypt(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto pt = pt_arg(info, 0, "plaintext");
      return wrap<CkksKind::Ciphertext>(env, c.encrypt(*pt, *pk_arg(info, 1)));
    });
  }
  Napi::Value EncryptSymmetric(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto pt = pt_arg(info, 0, "plaintext");
      auto sk = sk_arg(info, 1);
      return wrap<CkksKind::Ciphertext>(env, c.encrypt_symmetric(*pt, *sk, ckks_options::read_compact(info, 2)));
    });
  }
  Napi::Value Rerandomize(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto ct = ct_arg(info, 0, "ciphertext");
      return wrap<CkksKind::Ciphertext>(env, c.rerandomize(*ct, *pk_arg(info, 1)));
    });
  }
  Napi::Value Decrypt(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto ct = ct_arg(info, 0, "ciphertext");
      return wrap<CkksKind::Plaintext>(env, c.decrypt(*ct, *sk_arg(info, 1)));
    });
  }
  Napi::Value DecryptBatch(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "ciphertexts");
      if (!v.IsArray()) throw_type("ciphertexts must be an array of Ciphertext");
      if (v.As<Napi::Array>().Length() > 4096) throw_range("ciphertexts must hold at most 4096 entries");
      const auto keep = list_arg<Ct, CkksKind::Ciphertext>(info, 0, "ciphertexts", "Ciphertext", 0, 4096);
      auto pts = c.decrypt_batch(raw(keep), *sk_arg(info, 1));
      Napi::Array out = Napi::Array::New(env, pts.size());
      for (size_t i = 0; i < pts.size(); ++i) out.Set(uint32_t(i), wrap<CkksKind::Plaintext>(env, std::move(pts[i])));
      return out;
    });
  }

  // ---- evaluator ----
  Napi::Value Add(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto a = ct_arg(info, 0, "a");
      return wrap<CkksKind::Ciphertext>(env, c.add(*a, *ct_arg(info, 1, "b")));
    });
  }
  Napi::Value Sub(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto a = ct_arg(info, 0, "a");
      return wrap<CkksKind::Ciphertext>(env, c.sub(*a, *ct_arg(info, 1, "b")));
    });
  }
  Napi::Value AddPlain(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto a = ct_arg(info, 0, "a");
      return wrap<CkksKind::Ciphertext>(env, c.add_plain(*a, *pt_arg(info, 1, "b")));
    });
  }
  Napi::Value MultiplyPlain(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto a = ct_arg(info, 0, "a");
      return wrap<CkksKind::Ciphertext>(env, c.multiply_plain(*a, *pt_arg(info, 1, "b")));
    });
  }
  Napi::Value PrepareMultiplier(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto pt = pt_arg(info, 0, "plaintext");
      c.prepare_multiplier(*pt);
      PtH::Of(info[0])->set_host_bytes(env, Traits::describe(*pt).host_bytes);
      return env.Undefined();
    });
  }
  Napi::Value Rescale(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value { return wrap<CkksKind::Ciphertext>(env, c.rescale(*ct_arg(info, 0, "a"))); });
  }
  Napi::Value ModSwitch(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value { return wrap<CkksKind::Ciphertext>(env, c.mod_switch(*ct_arg(info, 0, "a"))); });
  }
  Napi::Value Rotate(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto a = ct_arg(info, 0, "a");
      const int64_t slots = static_cast<int64_t>(host(c).n() / 2);
      const int64_t steps = require_int(require_arg(info, 1, "steps"), "steps", -(slots - 1), slots - 1);
      return wrap<CkksKind::Ciphertext>(env, c.rotate(*a, steps, *gk_arg(info, 2)));
    });
  }
  Napi::Value GaloisElement(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env) -> Napi::Value { return ckks_options::galois_element(info, host(c)); });
  }
  Napi::Value GaloisStep(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env) -> Napi::Value { return ckks_options::galois_step(info, host(c)); });
  }

  // ---- serialisation ----
  Napi::Value Serialize(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "obj");
      const auto b = Traits::kBackend;
      if (CtH::Is(v)) return ckks_options::bytes_to_js(env, c.serialize(*CtH::template From<Ct>(v, "obj", b)));
      if (PtH::Is(v)) return ckks_options::bytes_to_js(env, c.serialize(*PtH::template From<Pt>(v, "obj", b)));
      if (PkH::Is(v)) return ckks_options::bytes_to_js(env, c.serialize(*PkH::template From<Pk>(v, "obj", b)));
      if (GkH::Is(v)) return ckks_options::bytes_to_js(env, c.serialize(*GkH::template From<Gk>(v, "obj", b)));
      if (SkH::Is(v)) throw_type("obj is a secret key: secret keys serialise only through exportSecretKey()");
      throw_type("obj must be a Ciphertext, Plaintext, PublicKey or GaloisKeys of this backend");
    });
  }
  template <CkksKind K, typename Fn>
  Napi::Value Deserialize(const Napi::CallbackInfo& info, Fn fn) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto bytes = require_uint8_array(require_arg(info, 0, "bytes"), "bytes");
      return wrap<K>(env, fn(c, bytes.Data(), bytes.ElementLength()));
    });
  }
  Napi::Value DeserializeCiphertext(const Napi::CallbackInfo& info) {
    return Deserialize<CkksKind::Ciphertext>(info, [](Engine& c, const uint8_t* p, size_t n) { return c.deserialize_ciphertext(p, n); });
  }
  Napi::Value DeserializePlaintext(const Napi::CallbackInfo& info) {
    return Deserialize<CkksKind::Plaintext>(info, [](Engine& c, const uint8_t* p, size_t n) { return c.deserialize_plaintext(p, n); });
  }
  Napi::Value DeserializePublicKey(const Napi::CallbackInfo& info) {
    return Deserialize<CkksKind::PublicKey>(info, [](Engine& c, const uint8_t* p, size_t n) { return c.deserialize_public_key(p, n); });
  }
  Napi::Value DeserializeGaloisKeys(const Napi::CallbackInfo& info) {
    return Deserialize<CkksKind::GaloisKeys>(info, [](Engine& c, const uint8_t* p, size_t n) { return c.deserialize_galois_keys(p, n); });
  }
  Napi::Value ImportSecretKey(const Napi::CallbackInfo& info) {
    return Deserialize<CkksKind::SecretKey>(info, [](Engine& c, const uint8_t* p, size_t n) { return c.deserialize_secret_key(p, n); });
  }
  Napi::Value ExportSecretKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      return ckks_options::bytes_to_js(env, c.serialize_secret_key(*sk_arg(info, 0)));
    });
  }
  Napi::Value CiphertextWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      return ckks_options::words_to_js(env, c.ciphertext_words(*ct_arg(info, 0, "ciphertext")));
    });
  }

  // ---- fused operations of the private protocols (ckks/private_ops.h) ----
  Napi::Value SerializeReply(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto ct = ct_arg(info, 0, "ciphertext");
      const auto pos = ckks_options::read_positions(require_arg(info, 1, "positions"), "positions");
      return ckks_options::bytes_to_js(env, c.serialize_reply(*ct, pos.data(), pos.size()));
    });
  }
  Napi::Value DecryptReply(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto bytes = require_uint8_array(require_arg(info, 0, "bytes"), "bytes");
      auto sk = sk_arg(info, 1);
      return ckks_options::reply_to_js(env, c.decrypt_reply(bytes.Data(), bytes.ElementLength(), *sk));
    });
  }
  // 1..4096 serialised replies, copied (the JS buffers may change while the work runs) into one
  // buffer; spans() points into it.
  struct ReplyBytes {
    std::vector<uint8_t> data;
    std::vector<size_t> offsets{0};
    std::vector<ckks::ByteSpan> spans() const {
      std::vector<ckks::ByteSpan> out;
      for (size_t i = 0; i + 1 < offsets.size(); ++i) out.push_back({data.data() + offsets[i], offsets[i + 1] - offsets[i]});
      return out;
    }
  };
  static std::shared_ptr<ReplyBytes> reply_bytes_arg(const Napi::CallbackInfo& info, size_t index) {
    Napi::Value v = require_arg(info, index, "bytes");
    if (!v.IsArray()) throw_type("bytes must be an array of Uint8Array");
    auto a = v.As<Napi::Array>();
    if (a.Length() < 1 || a.Length() > 4096) throw_range("bytes must hold 1..4096 replies, got " + std::to_string(a.Length()));
    std::vector<Napi::Uint8Array> arrays;
    size_t total = 0;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      arrays.push_back(require_uint8_array(a.Get(i), "bytes[" + std::to_string(i) + "]"));
      total += arrays.back().ElementLength();
    }
    auto out = std::make_shared<ReplyBytes>();
    out->data.resize(total);
    for (const auto& b : arrays) {
      if (b.ElementLength()) std::memcpy(out->data.data() + out->offsets.back(), b.Data(), b.ElementLength());
      out->offsets.push_back(out->offsets.back() + b.ElementLength());
    }
    return out;
  }
  Napi::Value DecryptReplies(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto inputs = reply_bytes_arg(info, 0);
      auto sk = sk_arg(info, 1);
      const bool timings = ckks_options::read_timings_opt(info, 2);
      auto ctx = ctx_.get();
      struct Result {
        std::vector<ckks::DecryptedReply> replies;
        ckks::PhaseTimings timings;
      };
      auto result = std::make_shared<Result>();
      static const std::string name = std::string(Traits::kName) + ".decryptReplies";
      return PromiseWorker::run(
          env, name.c_str(),
          [ctx, sk, inputs, result, timings] {
            result->replies = ctx->decrypt_replies(inputs->spans(), *sk, timings ? &result->timings : nullptr);
          },
          [result, timings](Napi::Env e) -> Napi::Value {
            Napi::Array out = Napi::Array::New(e, result->replies.size());
            for (size_t i = 0; i < result->replies.size(); ++i) out.Set(uint32_t(i), ckks_options::reply_to_js(e, result->replies[i]));
            if (timings) out.Set("timings", ckks_options::timings_to_js(e, result->timings));
            return out;
          });
    });
  }
  Napi::Value ReencryptReplies(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto inputs = reply_bytes_arg(info, 0);
      auto sk = sk_arg(info, 1);
      auto o = std::make_shared<ckks_options::ReencryptOpts>(ckks_options::read_reencrypt_opts(require_arg(info, 2, "options")));
      if (o->expect.size() != inputs->offsets.size() - 1)
        throw_range("options.expect must hold one position list per reply (" + std::to_string(inputs->offsets.size() - 1) +
                    "), got " + std::to_string(o->expect.size()));
      for (size_t i = 0; i < o->expect.size(); ++i)
        ckks::valcheck::positions(host(c), o->expect[i].data(), o->expect[i].size(), "options.expect[" + std::to_string(i) + "]");
      auto ctx = ctx_.get();
      struct Result {
        std::vector<uint8_t> request;
        ckks::PhaseTimings timings;
      };
      auto result = std::make_shared<Result>();
      static const std::string name = std::string(Traits::kName) + ".reencryptReplies";
      return PromiseWorker::run(
          env, name.c_str(),
          [ctx, sk, inputs, o, result] {
            result->request =
                ctx->reencrypt_replies(inputs->spans(), *sk, o->expect, o->limbs, o->timings ? &result->timings : nullptr);
          },
          [result, o](Napi::Env e) -> Napi::Value {
            Napi::Object r = Napi::Object::New(e);
            r.Set("request", ckks_options::bytes_to_js(e, std::move(result->request)));
            if (o->timings) r.Set("timings", ckks_options::timings_to_js(e, result->timings));
            return r;
          });
    });
  }
  Napi::Value SanitizeProducts(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto ct = ct_arg(info, 0, "ciphertext");
      auto pts = list_arg<Pt, CkksKind::Plaintext>(info, 1, "plaintexts", "Plaintext", 1, 4096);
      auto pk = pk_arg(info, 2);
      auto o = std::make_shared<ckks::SanitizeOptions>(ckks_options::read_sanitize_opts(require_arg(info, 3, "options")));
      ckks::valcheck::sanitize(host(c), *ct, raw(pts), *o);  // every check before the work is queued
      auto ctx = ctx_.get();
      auto result = std::make_shared<ckks::SanitizeResult>();
      static const std::string name = std::string(Traits::kName) + ".sanitizeProducts";
      return PromiseWorker::run(
          env, name.c_str(), [ctx, ct, pts, pk, o, result] { *result = ctx->sanitize_products(*ct, raw(pts), *pk, *o); },
          [result, o](Napi::Env e) -> Napi::Value {
            Napi::Object r = Napi::Object::New(e);
            Napi::Array replies = Napi::Array::New(e, result->replies.size());
            for (size_t i = 0; i < result->replies.size(); ++i)
              replies.Set(uint32_t(i), ckks_options::bytes_to_js(e, std::move(result->replies[i])));
            r.Set("replies", replies);
            if (o->timings) r.Set("timings", ckks_options::timings_to_js(e, result->timings));
            if (!result->masks.empty()) {
              Napi::Array masks = Napi::Array::New(e, result->masks.size());
              for (size_t i = 0; i < result->masks.size(); ++i)
                masks.Set(uint32_t(i), ckks_options::words_to_js(e, result->masks[i]));
              r.Set("masks", masks);
            }
            return r;
          });
    });
  }
  Napi::Value TraceRotations(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      auto ct = ct_arg(info, 0, "ciphertext");
      const auto steps = steps_arg(info, 1, c);
      auto gk = gk_arg(info, 2);
      host(c).check_owner(ct->context_id, "ciphertext");
      c.check_trace(steps, *gk);
      auto ctx = ctx_.get();
      auto handles = handles_;
      using Result = decltype(ckks::as_shared(c.trace_rotations(*ct, steps, *gk)));
      auto result = std::make_shared<Result>();
      static const std::string name = std::string(Traits::kName) + ".traceRotations";
      return PromiseWorker::run(
          env, name.c_str(), [ctx, ct, steps, gk, result] { *result = ckks::as_shared(ctx->trace_rotations(*ct, steps, *gk)); },
          [result, handles](Napi::Env e) -> Napi::Value { return wrap<CkksKind::Ciphertext>(e, handles, std::move(*result)); });
    });
  }

  // ---- native benchmarks (the loops of ckks/bench_loop.h, each engine's clock) ----
  Napi::Value BenchmarkOp(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      const std::string op = require_enum(o.Get("op"), "options.op", ckks::benchmark_op_names());
      const int iterations = static_cast<int>(optional_int(o, "iterations", "options.iterations", 1, 100000, 20));
      if (op == "rotate" && !host(c).params().special) throw_range("options.op: rotate needs a context with specialPrimeBits");
      auto ctx = ctx_.get();
      auto result = std::make_shared<ckks::OpTiming>();
      static const std::string name = std::string(Traits::kName) + ".benchmarkOp";
      return PromiseWorker::run(
          env, name.c_str(), [ctx, op, iterations, result] { *result = Traits::benchmark_op(*ctx, op, iterations); },
          [result, op](Napi::Env e) -> Napi::Value {
            Napi::Object r = Napi::Object::New(e);
            r.Set("op", op);
            r.Set("medianUs", result->median_us);
            r.Set("minUs", result->min_us);
            r.Set("maxUs", result->max_us);
            r.Set("runs", result->runs);
            return r;
          });
    });
  }
  Napi::Value BenchmarkHeLora(const Napi::CallbackInfo& info) {
    return Run(info, [&](Engine& c, Napi::Env env) -> Napi::Value {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      const int64_t slots = static_cast<int64_t>(host(c).n() / 2);
      const int d = static_cast<int>(require_int(o.Get("d"), "options.d", 1, slots));
      const int r = static_cast<int>(require_int(o.Get("r"), "options.r", 1, 4096));
      const int iterations = static_cast<int>(optional_int(o, "iterations", "options.iterations", 1, 100000, 10));
      const int replicas = static_cast<int>(optional_int(o, "replicas", "options.replicas", 1, slots, 0));
      bool streamed = false;  // staged by default: the original's structure
      if (has_key(o, "pipeline"))
        streamed = require_enum(o.Get("pipeline"), "options.pipeline", {"staged", "streamed"}) == "streamed";
      auto ctx = ctx_.get();
      auto result = std::make_shared<ckks::HeLoraTiming>();
      static const std::string name = std::string(Traits::kName) + ".benchmarkHeLora";
      return PromiseWorker::run(
          env, name.c_str(),
          [ctx, d, r, iterations, replicas, streamed, result] {
            *result = Traits::benchmark_helora(*ctx, d, r, iterations, replicas, streamed);
          },
          [result, streamed](Napi::Env e) -> Napi::Value {
            Napi::Object m = Napi::Object::New(e);
            m.Set("encode", result->encode);
            m.Set("encrypt", result->encrypt);
            m.Set("ct_pt_multiply", result->ct_pt_multiply);
            m.Set("decrypt", result->decrypt);
            m.Set("decode", result->decode);
            m.Set("extract_sum", result->extract_sum);
            m.Set("total", result->total);
            Napi::Object r = Napi::Object::New(e);
            r.Set("medianUs", m);
            r.Set("runs", result->runs);
            r.Set("replicas", result->replicas);
            r.Set("products", result->products);
            r.Set("maxAbsError", result->max_abs_error);
            r.Set("graphs", result->graphs);
            r.Set("pipeline", result->streamed ? "streamed" : "staged");
            r.Set("requestedPipeline", streamed ? "streamed" : "staged");
            r.Set("note", result->note.empty() ? e.Null() : Napi::Value(Napi::String::New(e, result->note)));
            return r;
          });
    });
  }

  // Disposes the context and every handle it made (their memory is freed at once).
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    handles_->close(info.Env());
    ctx_.dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ctx_.disposed()); }

  Handle<Engine> ctx_;
  std::shared_ptr<HandleRegistry> handles_;
};

}  // namespace tensafe::napi
