// CkksContextCpu: the CPU CKKS backend behind src/engine/ckks (the contract is
// src/engine/ckks/native-api.ts; CkksContextCuda implements the same shape). Only argument
// checks and conversions live here; the maths is in native/src/ckks.
#include <cstring>
#include <memory>
#include <vector>

#include "ckks/benchmarks.h"
#include "ckks/chacha20.h"
#include "ckks/context.h"
#include "ckks/sampling.h"
#include "ckks_handles.h"
#include "ckks_options.h"
#include "napi_util.h"

namespace tensafe::napi {
namespace {

using ckks::CkksContext;

using namespace ckks_options;

class CkksContextCpu : public Napi::ObjectWrap<CkksContextCpu> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "CkksContextCpu",
        {InstanceMethod<&CkksContextCpu::Info>("info"),
         InstanceMethod<&CkksContextCpu::GenerateSecretKey>("generateSecretKey"),
         InstanceMethod<&CkksContextCpu::GeneratePublicKey>("generatePublicKey"),
         InstanceMethod<&CkksContextCpu::GenerateGaloisKeys>("generateGaloisKeys"),
         InstanceMethod<&CkksContextCpu::Encode>("encode"),
         InstanceMethod<&CkksContextCpu::EncodeCoefficients>("encodeCoefficients"),
         InstanceMethod<&CkksContextCpu::Decode>("decode"),
         InstanceMethod<&CkksContextCpu::DecodeCoefficients>("decodeCoefficients"),
         InstanceMethod<&CkksContextCpu::PlaintextFromWords>("plaintextFromWords"),
         InstanceMethod<&CkksContextCpu::PlaintextWords>("plaintextWords"),
         InstanceMethod<&CkksContextCpu::SampleWords>("sampleWords"),
         InstanceMethod<&CkksContextCpu::Rerandomize>("rerandomize"),
         InstanceMethod<&CkksContextCpu::GaloisElement>("galoisElement"),
         InstanceMethod<&CkksContextCpu::GaloisStep>("galoisStep"),
         InstanceMethod<&CkksContextCpu::Encrypt>("encrypt"),
         InstanceMethod<&CkksContextCpu::EncryptSymmetric>("encryptSymmetric"),
         InstanceMethod<&CkksContextCpu::Decrypt>("decrypt"),
         InstanceMethod<&CkksContextCpu::DecryptBatch>("decryptBatch"),
         InstanceMethod<&CkksContextCpu::Add>("add"),
         InstanceMethod<&CkksContextCpu::Sub>("sub"),
         InstanceMethod<&CkksContextCpu::AddPlain>("addPlain"),
         InstanceMethod<&CkksContextCpu::MultiplyPlain>("multiplyPlain"),
         InstanceMethod<&CkksContextCpu::PrepareMultiplier>("prepareMultiplier"),
         InstanceMethod<&CkksContextCpu::Rescale>("rescale"),
         InstanceMethod<&CkksContextCpu::ModSwitch>("modSwitch"),
         InstanceMethod<&CkksContextCpu::Rotate>("rotate"),
         InstanceMethod<&CkksContextCpu::Serialize>("serialize"),
         InstanceMethod<&CkksContextCpu::DeserializeCiphertext>("deserializeCiphertext"),
         InstanceMethod<&CkksContextCpu::DeserializePlaintext>("deserializePlaintext"),
         InstanceMethod<&CkksContextCpu::DeserializePublicKey>("deserializePublicKey"),
         InstanceMethod<&CkksContextCpu::DeserializeGaloisKeys>("deserializeGaloisKeys"),
         InstanceMethod<&CkksContextCpu::ExportSecretKey>("exportSecretKey"),
         InstanceMethod<&CkksContextCpu::ImportSecretKey>("importSecretKey"),
         InstanceMethod<&CkksContextCpu::CiphertextWords>("ciphertextWords"),
         InstanceMethod<&CkksContextCpu::BenchmarkOp>("benchmarkOp"),
         InstanceMethod<&CkksContextCpu::BenchmarkHeLora>("benchmarkHeLora"),
         InstanceMethod<&CkksContextCpu::Dispose>("dispose"),
         InstanceAccessor<&CkksContextCpu::Disposed>("disposed")});
  }

  explicit CkksContextCpu(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CkksContextCpu>(info), ctx_("CkksContextCpu") {
    guard(info.Env(), [&] {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      auto spec = read_spec(o);
      try {
        ctx_.set(std::make_shared<CkksContext>(spec));
      } catch (const ArgumentRangeError& e) {
        const std::string m = e.what();
        throw ArgumentRangeError(m.rfind("options.", 0) == 0 ? m : "options." + m);
      }
    });
  }

 private:
  template <typename Fn>
  Napi::Value Run(const Napi::CallbackInfo& info, Fn&& fn) {
    return guard(info.Env(), [&]() -> Napi::Value { return fn(*ctx_.get(), info.Env()); });
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value { return params_info(env, c, "cpu"); });
  }

  Napi::Value GenerateSecretKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value { return SecretKeyHandle::Wrap(env, c.generate_secret_key()); });
  }
  Napi::Value GeneratePublicKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto sk = SecretKeyHandle::From(require_arg(info, 0, "secretKey"), "secretKey");
      return PublicKeyHandle::Wrap(env, c.generate_public_key(*sk));
    });
  }
  Napi::Value GenerateGaloisKeys(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto sk = SecretKeyHandle::From(require_arg(info, 0, "secretKey"), "secretKey");
      Napi::Value sv = require_arg(info, 1, "steps");
      if (!sv.IsArray()) throw_type("steps must be an array of integers");
      auto a = sv.As<Napi::Array>();
      if (a.Length() < 1 || a.Length() > 256) throw_range("steps must list 1..256 rotation steps");
      const int64_t slots = static_cast<int64_t>(c.n() / 2);
      std::vector<int64_t> steps;
      for (uint32_t i = 0; i < a.Length(); ++i)
        steps.push_back(require_int(a.Get(i), "steps[" + std::to_string(i) + "]", -(slots - 1), slots - 1));
      if (!c.params().special)
        throw_range("rotation keys need a special prime: create the context with specialPrimeBits");
      auto ctx = ctx_.get();
      auto result = std::make_shared<ckks::GaloisKeys>();
      return PromiseWorker::run(
          env, "CkksContextCpu.generateGaloisKeys", [ctx, sk, steps, result] { *result = ctx->generate_galois_keys(*sk, steps); },
          [result](Napi::Env e) -> Napi::Value { return GaloisKeysHandle::Wrap(e, std::move(*result)); });
    });
  }

  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto v = require_float64_array(require_arg(info, 0, "values"), "values");
      if (v.ElementLength() > c.n() / 2)
        throw_range("values must hold at most polyN/2 = " + std::to_string(c.n() / 2) + " numbers, got " +
                    std::to_string(v.ElementLength()));
      auto o = read_encode_opts(info, 1, c.max_limbs());
      return PlaintextHandle::Wrap(env, c.encode(v.Data(), v.ElementLength(), o.limbs, o.scale));
    });
  }
  Napi::Value EncodeCoefficients(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto v = require_float64_array(require_arg(info, 0, "values"), "values");
      if (v.ElementLength() > c.n())
        throw_range("values must hold at most polyN = " + std::to_string(c.n()) + " numbers, got " +
                    std::to_string(v.ElementLength()));
      auto o = read_encode_opts(info, 1, c.max_limbs());
      return PlaintextHandle::Wrap(env, c.encode_coefficients(v.Data(), v.ElementLength(), o.limbs, o.scale));
    });
  }
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto pt = PlaintextHandle::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto out = Napi::Float64Array::New(env, c.n() / 2);
      c.decode(*pt, out.Data());
      return out;
    });
  }
  Napi::Value DecodeCoefficients(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto pt = PlaintextHandle::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto out = Napi::Float64Array::New(env, c.n());
      c.decode_coefficients(*pt, out.Data());
      return out;
    });
  }

  Napi::Value PlaintextFromWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto w = require_biguint64_array(require_arg(info, 0, "words"), "words");
      auto o = read_words_opts(info, 1, c.max_limbs());
      return PlaintextHandle::Wrap(env, c.plaintext_from_words(w.Data(), w.ElementLength(), o.limbs, o.scale, o.encoding));
    });
  }
  Napi::Value PlaintextWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      return words_to_js(env, c.plaintext_words(*PlaintextHandle::From(require_arg(info, 0, "plaintext"), "plaintext")));
    });
  }
  Napi::Value SampleWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto o = read_sample_opts(info, 0, c.max_limbs());
      return words_to_js(env, c.sample_words(o.limbs, o.count, o.distribution, o.bits));
    });
  }
  Napi::Value Rerandomize(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto ct = CiphertextHandle::From(require_arg(info, 0, "ciphertext"), "ciphertext");
      auto pk = PublicKeyHandle::From(require_arg(info, 1, "publicKey"), "publicKey");
      return CiphertextHandle::Wrap(env, c.rerandomize(*ct, *pk));
    });
  }
  Napi::Value GaloisElement(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env) -> Napi::Value { return galois_element(info, c); });
  }
  Napi::Value GaloisStep(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env) -> Napi::Value { return galois_step(info, c); });
  }

  Napi::Value Encrypt(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto pt = PlaintextHandle::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto pk = PublicKeyHandle::From(require_arg(info, 1, "publicKey"), "publicKey");
      return CiphertextHandle::Wrap(env, c.encrypt(*pt, *pk));
    });
  }
  Napi::Value EncryptSymmetric(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto pt = PlaintextHandle::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto sk = SecretKeyHandle::From(require_arg(info, 1, "secretKey"), "secretKey");
      const bool compact = read_compact(info, 2);
      return CiphertextHandle::Wrap(env, c.encrypt_symmetric(*pt, *sk, compact));
    });
  }
  Napi::Value Decrypt(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto ct = CiphertextHandle::From(require_arg(info, 0, "ciphertext"), "ciphertext");
      auto sk = SecretKeyHandle::From(require_arg(info, 1, "secretKey"), "secretKey");
      return PlaintextHandle::Wrap(env, c.decrypt(*ct, *sk));
    });
  }
  Napi::Value DecryptBatch(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "ciphertexts");
      if (!v.IsArray()) throw_type("ciphertexts must be an array of Ciphertext");
      auto a = v.As<Napi::Array>();
      if (a.Length() > 4096) throw_range("ciphertexts must hold at most 4096 entries");
      std::vector<std::shared_ptr<ckks::Ciphertext>> keep;
      std::vector<const ckks::Ciphertext*> ptrs;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        keep.push_back(CiphertextHandle::From(a.Get(i), "ciphertexts[" + std::to_string(i) + "]"));
        ptrs.push_back(keep.back().get());
      }
      auto sk = SecretKeyHandle::From(require_arg(info, 1, "secretKey"), "secretKey");
      auto pts = c.decrypt_batch(ptrs, *sk);
      Napi::Array out = Napi::Array::New(env, pts.size());
      for (size_t i = 0; i < pts.size(); ++i) out.Set(uint32_t(i), PlaintextHandle::Wrap(env, std::move(pts[i])));
      return out;
    });
  }

  template <typename Op>
  Napi::Value Binary(const Napi::CallbackInfo& info, Op op) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto a = CiphertextHandle::From(require_arg(info, 0, "a"), "a");
      auto b = CiphertextHandle::From(require_arg(info, 1, "b"), "b");
      return CiphertextHandle::Wrap(env, op(c, *a, *b));
    });
  }
  Napi::Value Add(const Napi::CallbackInfo& info) {
    return Binary(info, [](CkksContext& c, const ckks::Ciphertext& a, const ckks::Ciphertext& b) { return c.add(a, b); });
  }
  Napi::Value Sub(const Napi::CallbackInfo& info) {
    return Binary(info, [](CkksContext& c, const ckks::Ciphertext& a, const ckks::Ciphertext& b) { return c.sub(a, b); });
  }
  Napi::Value AddPlain(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto a = CiphertextHandle::From(require_arg(info, 0, "a"), "a");
      auto b = PlaintextHandle::From(require_arg(info, 1, "b"), "b");
      return CiphertextHandle::Wrap(env, c.add_plain(*a, *b));
    });
  }
  Napi::Value MultiplyPlain(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto a = CiphertextHandle::From(require_arg(info, 0, "a"), "a");
      auto b = PlaintextHandle::From(require_arg(info, 1, "b"), "b");
      return CiphertextHandle::Wrap(env, c.multiply_plain(*a, *b));
    });
  }
  Napi::Value PrepareMultiplier(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto pt = PlaintextHandle::From(require_arg(info, 0, "plaintext"), "plaintext");
      c.prepare_multiplier(*pt);
      return env.Undefined();
    });
  }
  Napi::Value Rescale(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      return CiphertextHandle::Wrap(env, c.rescale(*CiphertextHandle::From(require_arg(info, 0, "a"), "a")));
    });
  }
  Napi::Value ModSwitch(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      return CiphertextHandle::Wrap(env, c.mod_switch(*CiphertextHandle::From(require_arg(info, 0, "a"), "a")));
    });
  }
  Napi::Value Rotate(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto a = CiphertextHandle::From(require_arg(info, 0, "a"), "a");
      const int64_t slots = static_cast<int64_t>(c.n() / 2);
      int64_t steps = require_int(require_arg(info, 1, "steps"), "steps", -(slots - 1), slots - 1);
      auto gk = GaloisKeysHandle::From(require_arg(info, 2, "galoisKeys"), "galoisKeys");
      return CiphertextHandle::Wrap(env, c.rotate(*a, steps, *gk));
    });
  }

  Napi::Value Serialize(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "obj");
      if (v.IsObject()) {
        Napi::Object o = v.As<Napi::Object>();
        if (o.InstanceOf(CiphertextHandle::ctor->Value())) return bytes_to_js(env, c.serialize(*CiphertextHandle::From(v, "obj")));
        if (o.InstanceOf(PlaintextHandle::ctor->Value())) return bytes_to_js(env, c.serialize(*PlaintextHandle::From(v, "obj")));
        if (o.InstanceOf(PublicKeyHandle::ctor->Value())) return bytes_to_js(env, c.serialize(*PublicKeyHandle::From(v, "obj")));
        if (o.InstanceOf(GaloisKeysHandle::ctor->Value())) return bytes_to_js(env, c.serialize(*GaloisKeysHandle::From(v, "obj")));
        if (o.InstanceOf(SecretKeyHandle::ctor->Value()))
          throw_type("obj is a secret key: secret keys serialise only through exportSecretKey()");
      }
      throw_type("obj must be a Ciphertext, Plaintext, PublicKey or GaloisKeys of this backend");
    });
  }
  template <typename H, typename Fn>
  Napi::Value Deserialize(const Napi::CallbackInfo& info, Fn fn) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto b = require_uint8_array(require_arg(info, 0, "bytes"), "bytes");
      return H::Wrap(env, fn(c, b.Data(), b.ElementLength()));
    });
  }
  Napi::Value DeserializeCiphertext(const Napi::CallbackInfo& info) {
    return Deserialize<CiphertextHandle>(info, [](CkksContext& c, const uint8_t* p, size_t n) { return c.deserialize_ciphertext(p, n); });
  }
  Napi::Value DeserializePlaintext(const Napi::CallbackInfo& info) {
    return Deserialize<PlaintextHandle>(info, [](CkksContext& c, const uint8_t* p, size_t n) { return c.deserialize_plaintext(p, n); });
  }
  Napi::Value DeserializePublicKey(const Napi::CallbackInfo& info) {
    return Deserialize<PublicKeyHandle>(info, [](CkksContext& c, const uint8_t* p, size_t n) { return c.deserialize_public_key(p, n); });
  }
  Napi::Value DeserializeGaloisKeys(const Napi::CallbackInfo& info) {
    return Deserialize<GaloisKeysHandle>(info, [](CkksContext& c, const uint8_t* p, size_t n) { return c.deserialize_galois_keys(p, n); });
  }
  Napi::Value ImportSecretKey(const Napi::CallbackInfo& info) {
    return Deserialize<SecretKeyHandle>(info, [](CkksContext& c, const uint8_t* p, size_t n) { return c.deserialize_secret_key(p, n); });
  }
  Napi::Value ExportSecretKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      return bytes_to_js(env, c.serialize_secret_key(*SecretKeyHandle::From(require_arg(info, 0, "secretKey"), "secretKey")));
    });
  }
  Napi::Value CiphertextWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      auto ct = CiphertextHandle::From(require_arg(info, 0, "ciphertext"), "ciphertext");
      c.check_owner(ct->context_id, "ciphertext");
      auto out = Napi::BigUint64Array::New(env, ct->data.size());
      std::memcpy(out.Data(), ct->data.data(), ct->data.size() * 8);
      return out;
    });
  }

  Napi::Value BenchmarkOp(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContext&, Napi::Env env) -> Napi::Value {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      std::string op = require_enum(o.Get("op"), "options.op",
                                    {"encode", "decode", "encode_coefficients", "encrypt", "encrypt_symmetric", "decrypt", "add",
                                     "sub", "multiply_plain", "rescale", "mod_switch", "rotate"});
      int iterations = static_cast<int>(optional_int(o, "iterations", "options.iterations", 1, 100000, 20));
      auto ctx = ctx_.get();
      if (op == "rotate" && !ctx->params().special) throw_range("options.op: rotate needs a context with specialPrimeBits");
      auto result = std::make_shared<ckks::OpTiming>();
      return PromiseWorker::run(
          env, "CkksContextCpu.benchmarkOp", [ctx, op, iterations, result] { *result = ckks::benchmark_op(*ctx, op, iterations); },
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
    return Run(info, [&](CkksContext& c, Napi::Env env) -> Napi::Value {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      int d = static_cast<int>(require_int(o.Get("d"), "options.d", 1, static_cast<int64_t>(c.n() / 2)));
      int r = static_cast<int>(require_int(o.Get("r"), "options.r", 1, 4096));
      int iterations = static_cast<int>(optional_int(o, "iterations", "options.iterations", 1, 100000, 10));
      int replicas = static_cast<int>(optional_int(o, "replicas", "options.replicas", 1, static_cast<int64_t>(c.n() / 2), 0));
      bool streamed = false;  // staged by default: the original's structure
      if (has_key(o, "pipeline") && !o.Get("pipeline").IsUndefined())
        streamed = require_enum(o.Get("pipeline"), "options.pipeline", {"staged", "streamed"}) == "streamed";
      auto ctx = ctx_.get();
      auto result = std::make_shared<ckks::HeLoraTiming>();
      return PromiseWorker::run(
          env, "CkksContextCpu.benchmarkHeLora",
          [ctx, d, r, iterations, replicas, streamed, result] {
            *result = ckks::benchmark_helora(*ctx, d, r, iterations, replicas, streamed);
          },
          [result](Napi::Env e) -> Napi::Value {
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
            return r;
          });
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    ctx_.dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ctx_.disposed()); }

  Handle<CkksContext> ctx_;
};

// ckksTesting.chacha20Words(key: Uint8Array(32), stream: bigint, start: bigint, count): BigUint64Array
// (words of the keystream, for test vectors and for checking the CUDA sampler).
Napi::Value Chacha20Words(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto key = require_uint8_array(require_arg(info, 0, "key"), "key");
    if (key.ElementLength() != 32) throw_range("key must hold 32 bytes, got " + std::to_string(key.ElementLength()));
    uint64_t stream = require_u64(require_arg(info, 1, "stream"), "stream");
    uint64_t start = require_u64(require_arg(info, 2, "start"), "start");
    int64_t count = require_int(require_arg(info, 3, "count"), "count", 0, 1 << 24);
    ckks::ChaChaKey k{};
    std::memcpy(k.data(), key.Data(), 32);
    auto out = Napi::BigUint64Array::New(env, static_cast<size_t>(count));
    ckks::chacha20_words(k, stream, start, static_cast<size_t>(count), out.Data());
    return out;
  });
}

// ckksTesting.sampleUniformExact(key, stream, moduli: bigint[], count) and
// ckksTesting.sampleCentered(key, stream, moduli, count, bits): the sampleWords samplers over
// any odd moduli below 2^64 (moduli near 2^64 make the rejection branch frequent, which the
// 20..60-bit primes of a context almost never do).
Napi::Value SampleTesting(const Napi::CallbackInfo& info, bool centered) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto key = require_uint8_array(require_arg(info, 0, "key"), "key");
    if (key.ElementLength() != 32) throw_range("key must hold 32 bytes, got " + std::to_string(key.ElementLength()));
    uint64_t stream = require_u64(require_arg(info, 1, "stream"), "stream");
    std::vector<uint64_t> moduli = require_u64_list(require_arg(info, 2, "moduli"), "moduli", 1, 8);
    for (auto q : moduli)
      if (q < 3 || q % 2 == 0) throw_range("moduli must be odd and at least 3");
    const size_t count = static_cast<size_t>(require_int(require_arg(info, 3, "count"), "count", 1, 1 << 20));
    ckks::ChaChaKey k{};
    std::memcpy(k.data(), key.Data(), 32);
    std::vector<uint64_t> out(moduli.size() * count);
    ckks::Sampler smp(k, stream);
    if (centered)
      smp.centered(moduli, count, static_cast<int>(require_int(require_arg(info, 4, "bits"), "bits", 0, 126)), out.data());
    else
      smp.uniform_exact(moduli, count, out.data());
    return words_to_js(env, out);
  });
}

// ckksTesting.gaussianCdt(): BigUint64Array of the 38 CDT thresholds (sampling.h).
Napi::Value GaussianCdt(const Napi::CallbackInfo& info) {
  const auto& t = ckks::gaussian_cdt();
  auto out = Napi::BigUint64Array::New(info.Env(), t.size());
  std::memcpy(out.Data(), t.data(), t.size() * 8);
  return out;
}

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("chacha20Words", Napi::Function::New(env, Chacha20Words, "chacha20Words"));
  testing.Set("gaussianCdt", Napi::Function::New(env, GaussianCdt, "gaussianCdt"));
  testing.Set("sampleUniformExact",
              Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return SampleTesting(i, false); }, "sampleUniformExact"));
  testing.Set("sampleCentered",
              Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return SampleTesting(i, true); }, "sampleCentered"));
  exports.Set("ckksTesting", testing);
  exports.Set("ckksRules", rules(env));
  PlaintextHandle::Define(env);
  CiphertextHandle::Define(env);
  SecretKeyHandle::Define(env);
  PublicKeyHandle::Define(env);
  GaloisKeysHandle::Define(env);
  exports.Set("CkksContextCpu", CkksContextCpu::Define(env));
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(ckks, tensafe::napi::Register);
