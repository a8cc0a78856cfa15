// CkksContextCuda: the CUDA CKKS backend, with exactly the shape of CkksContextCpu (the
// contract is src/engine/ckks/native-api.ts). Ciphertexts and plaintexts are GPU-resident
// handles (CkksCiphertextCuda, ...); serialisation and ciphertextWords copy them down.
// Beyond the contract (for tests and stage timers):
//   setPoison(on)     every new device allocation is filled with junk (catches unwritten words)
//   setTiming(on)     record CUDA events around every operation
//   drainTimings()    [{ op, us }] of the recorded operations (synchronises once)
// Without a CUDA build or a usable GPU, the constructor throws ERR_TENSAFE_BACKEND.
#include <cstring>
#include <memory>
#include <vector>

#include "ckks/benchmarks.h"
#include "ckks/context.h"
#include "ckks_options.h"
#include "napi_util.h"
#ifdef TENSAFE_WITH_CUDA
#include "ckks/cuda/context_cuda.h"
#endif

namespace tensafe::napi {
namespace {

using namespace ckks_options;

[[noreturn, maybe_unused]] void no_cuda_build() {
  throw BackendUnavailableError(
      "CkksContextCuda: this build of tensafe has no CUDA backend (nvcc was not found when it was built)");
}

#ifdef TENSAFE_WITH_CUDA

using ckks::cuda::CiphertextCuda;
using ckks::cuda::CkksContextCuda;
using ckks::cuda::GaloisKeysCuda;
using ckks::cuda::PlaintextCuda;
using ckks::cuda::PublicKeyCuda;
using ckks::cuda::SecretKeyCuda;

template <typename T>
struct GpuTraits;
template <>
struct GpuTraits<PlaintextCuda> {
  static constexpr const char* js_name = "CkksPlaintextCuda";
  static constexpr const char* what = "Plaintext";
};
template <>
struct GpuTraits<CiphertextCuda> {
  static constexpr const char* js_name = "CkksCiphertextCuda";
  static constexpr const char* what = "Ciphertext";
};
template <>
struct GpuTraits<SecretKeyCuda> {
  static constexpr const char* js_name = "CkksSecretKeyCuda";
  static constexpr const char* what = "SecretKey";
};
template <>
struct GpuTraits<PublicKeyCuda> {
  static constexpr const char* js_name = "CkksPublicKeyCuda";
  static constexpr const char* what = "PublicKey";
};
template <>
struct GpuTraits<GaloisKeysCuda> {
  static constexpr const char* js_name = "CkksGaloisKeysCuda";
  static constexpr const char* what = "GaloisKeys";
};

// JS handle of a GPU object: dispose() frees its device memory at once (stream-ordered).
template <typename T>
class GpuHandle : public Napi::ObjectWrap<GpuHandle<T>> {
 public:
  using Base = Napi::ObjectWrap<GpuHandle<T>>;
  static Napi::FunctionReference* ctor;

  static void Define(Napi::Env env) {
    std::vector<typename Base::PropertyDescriptor> props = {
        Base::InstanceMethod("dispose", &GpuHandle::Dispose),
        Base::InstanceAccessor("disposed", &GpuHandle::Disposed, nullptr),
    };
    if constexpr (std::is_same_v<T, PlaintextCuda> || std::is_same_v<T, CiphertextCuda>) {
      props.push_back(Base::InstanceAccessor("limbs", &GpuHandle::Limbs, nullptr));
      props.push_back(Base::InstanceAccessor("scale", &GpuHandle::Scale, nullptr));
    }
    if constexpr (std::is_same_v<T, CiphertextCuda>) {
      props.push_back(Base::InstanceAccessor("size", &GpuHandle::Size, nullptr));
      props.push_back(Base::InstanceAccessor("compact", &GpuHandle::Compact, nullptr));
    }
    if constexpr (std::is_same_v<T, PlaintextCuda>)
      props.push_back(Base::InstanceAccessor("encoding", &GpuHandle::EncodingName, nullptr));
    if constexpr (std::is_same_v<T, GaloisKeysCuda>) props.push_back(Base::InstanceAccessor("steps", &GpuHandle::Steps, nullptr));
    Napi::Function f = Base::DefineClass(env, GpuTraits<T>::js_name, props);
    ctor = new Napi::FunctionReference(Napi::Persistent(f));
  }

  explicit GpuHandle(const Napi::CallbackInfo& info) : Base(info), h_(GpuTraits<T>::what) {}

  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<T> value) {
    Napi::Object o = ctor->New({});
    GpuHandle::Unwrap(o)->h_.set(std::move(value));
    return o;
  }

  static std::shared_ptr<T> From(const Napi::Value& v, const std::string& name) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor->Value()))
      throw ArgumentTypeError(name + " must be a " + GpuTraits<T>::what + " of the CUDA backend");
    return GpuHandle::Unwrap(v.As<Napi::Object>())->h_.get();
  }
  static bool Is(const Napi::Value& v) { return v.IsObject() && v.As<Napi::Object>().InstanceOf(ctor->Value()); }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    h_.dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), h_.disposed()); }
  Napi::Value Limbs(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, PlaintextCuda> || std::is_same_v<T, CiphertextCuda>)
        return Napi::Number::New(info.Env(), double(h_.get()->limbs));
      return info.Env().Undefined();
    });
  }
  Napi::Value Scale(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, PlaintextCuda> || std::is_same_v<T, CiphertextCuda>)
        return Napi::Number::New(info.Env(), h_.get()->scale);
      return info.Env().Undefined();
    });
  }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      h_.get();
      return Napi::Number::New(info.Env(), 2);
    });
  }
  Napi::Value Compact(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, CiphertextCuda>) return Napi::Boolean::New(info.Env(), h_.get()->c1_seed.has_value());
      return info.Env().Undefined();
    });
  }
  Napi::Value EncodingName(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, PlaintextCuda>)
        return Napi::String::New(info.Env(), h_.get()->encoding == ckks::Encoding::Slots ? "slots" : "coefficients");
      return info.Env().Undefined();
    });
  }
  Napi::Value Steps(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, GaloisKeysCuda>) {
        auto g = h_.get();
        Napi::Array a = Napi::Array::New(info.Env(), g->host.steps.size());
        for (size_t i = 0; i < g->host.steps.size(); ++i)
          a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(g->host.steps[i])));
        return a;
      }
      return info.Env().Undefined();
    });
  }

  Handle<T> h_;
};

template <typename T>
Napi::FunctionReference* GpuHandle<T>::ctor = nullptr;

using PtH = GpuHandle<PlaintextCuda>;
using CtH = GpuHandle<CiphertextCuda>;
using SkH = GpuHandle<SecretKeyCuda>;
using PkH = GpuHandle<PublicKeyCuda>;
using GkH = GpuHandle<GaloisKeysCuda>;

#endif  // TENSAFE_WITH_CUDA

class CkksContextCudaJs : public Napi::ObjectWrap<CkksContextCudaJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "CkksContextCuda",
        {InstanceMethod<&CkksContextCudaJs::Info>("info"),
         InstanceMethod<&CkksContextCudaJs::GenerateSecretKey>("generateSecretKey"),
         InstanceMethod<&CkksContextCudaJs::GeneratePublicKey>("generatePublicKey"),
         InstanceMethod<&CkksContextCudaJs::GenerateGaloisKeys>("generateGaloisKeys"),
         InstanceMethod<&CkksContextCudaJs::Encode>("encode"),
         InstanceMethod<&CkksContextCudaJs::EncodeCoefficients>("encodeCoefficients"),
         InstanceMethod<&CkksContextCudaJs::Decode>("decode"),
         InstanceMethod<&CkksContextCudaJs::DecodeCoefficients>("decodeCoefficients"),
         InstanceMethod<&CkksContextCudaJs::PlaintextFromWords>("plaintextFromWords"),
         InstanceMethod<&CkksContextCudaJs::PlaintextWords>("plaintextWords"),
         InstanceMethod<&CkksContextCudaJs::SampleWords>("sampleWords"),
         InstanceMethod<&CkksContextCudaJs::Rerandomize>("rerandomize"),
         InstanceMethod<&CkksContextCudaJs::GaloisElement>("galoisElement"),
         InstanceMethod<&CkksContextCudaJs::GaloisStep>("galoisStep"),
         InstanceMethod<&CkksContextCudaJs::Encrypt>("encrypt"),
         InstanceMethod<&CkksContextCudaJs::EncryptSymmetric>("encryptSymmetric"),
         InstanceMethod<&CkksContextCudaJs::Decrypt>("decrypt"),
         InstanceMethod<&CkksContextCudaJs::DecryptBatch>("decryptBatch"),
         InstanceMethod<&CkksContextCudaJs::Add>("add"),
         InstanceMethod<&CkksContextCudaJs::Sub>("sub"),
         InstanceMethod<&CkksContextCudaJs::AddPlain>("addPlain"),
         InstanceMethod<&CkksContextCudaJs::MultiplyPlain>("multiplyPlain"),
         InstanceMethod<&CkksContextCudaJs::Rescale>("rescale"),
         InstanceMethod<&CkksContextCudaJs::ModSwitch>("modSwitch"),
         InstanceMethod<&CkksContextCudaJs::Rotate>("rotate"),
         InstanceMethod<&CkksContextCudaJs::Serialize>("serialize"),
         InstanceMethod<&CkksContextCudaJs::DeserializeCiphertext>("deserializeCiphertext"),
         InstanceMethod<&CkksContextCudaJs::DeserializePlaintext>("deserializePlaintext"),
         InstanceMethod<&CkksContextCudaJs::DeserializePublicKey>("deserializePublicKey"),
         InstanceMethod<&CkksContextCudaJs::DeserializeGaloisKeys>("deserializeGaloisKeys"),
         InstanceMethod<&CkksContextCudaJs::ExportSecretKey>("exportSecretKey"),
         InstanceMethod<&CkksContextCudaJs::ImportSecretKey>("importSecretKey"),
         InstanceMethod<&CkksContextCudaJs::CiphertextWords>("ciphertextWords"),
         InstanceMethod<&CkksContextCudaJs::BenchmarkOp>("benchmarkOp"),
         InstanceMethod<&CkksContextCudaJs::BenchmarkHeLora>("benchmarkHeLora"),
         InstanceMethod<&CkksContextCudaJs::SetPoison>("setPoison"),
         InstanceMethod<&CkksContextCudaJs::SetTiming>("setTiming"),
         InstanceMethod<&CkksContextCudaJs::DrainTimings>("drainTimings"),
         InstanceMethod<&CkksContextCudaJs::Dispose>("dispose"),
         InstanceAccessor<&CkksContextCudaJs::Disposed>("disposed")});
  }

#ifndef TENSAFE_WITH_CUDA
  explicit CkksContextCudaJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CkksContextCudaJs>(info) {
    guard(info.Env(), [&] {
      read_spec(require_object(require_arg(info, 0, "options"), "options"));
      no_cuda_build();
    });
  }
#define TENSAFE_NO_CUDA_METHOD(name) \
  Napi::Value name(const Napi::CallbackInfo& info) { return guard(info.Env(), []() -> Napi::Value { no_cuda_build(); }); }
 private:
  TENSAFE_NO_CUDA_METHOD(Info)
  TENSAFE_NO_CUDA_METHOD(GenerateSecretKey)
  TENSAFE_NO_CUDA_METHOD(GeneratePublicKey)
  TENSAFE_NO_CUDA_METHOD(GenerateGaloisKeys)
  TENSAFE_NO_CUDA_METHOD(Encode)
  TENSAFE_NO_CUDA_METHOD(EncodeCoefficients)
  TENSAFE_NO_CUDA_METHOD(Decode)
  TENSAFE_NO_CUDA_METHOD(DecodeCoefficients)
  TENSAFE_NO_CUDA_METHOD(PlaintextFromWords)
  TENSAFE_NO_CUDA_METHOD(PlaintextWords)
  TENSAFE_NO_CUDA_METHOD(SampleWords)
  TENSAFE_NO_CUDA_METHOD(Rerandomize)
  TENSAFE_NO_CUDA_METHOD(GaloisElement)
  TENSAFE_NO_CUDA_METHOD(GaloisStep)
  TENSAFE_NO_CUDA_METHOD(Encrypt)
  TENSAFE_NO_CUDA_METHOD(EncryptSymmetric)
  TENSAFE_NO_CUDA_METHOD(Decrypt)
  TENSAFE_NO_CUDA_METHOD(DecryptBatch)
  TENSAFE_NO_CUDA_METHOD(Add)
  TENSAFE_NO_CUDA_METHOD(Sub)
  TENSAFE_NO_CUDA_METHOD(AddPlain)
  TENSAFE_NO_CUDA_METHOD(MultiplyPlain)
  TENSAFE_NO_CUDA_METHOD(Rescale)
  TENSAFE_NO_CUDA_METHOD(ModSwitch)
  TENSAFE_NO_CUDA_METHOD(Rotate)
  TENSAFE_NO_CUDA_METHOD(Serialize)
  TENSAFE_NO_CUDA_METHOD(DeserializeCiphertext)
  TENSAFE_NO_CUDA_METHOD(DeserializePlaintext)
  TENSAFE_NO_CUDA_METHOD(DeserializePublicKey)
  TENSAFE_NO_CUDA_METHOD(DeserializeGaloisKeys)
  TENSAFE_NO_CUDA_METHOD(ExportSecretKey)
  TENSAFE_NO_CUDA_METHOD(ImportSecretKey)
  TENSAFE_NO_CUDA_METHOD(CiphertextWords)
  TENSAFE_NO_CUDA_METHOD(BenchmarkOp)
  TENSAFE_NO_CUDA_METHOD(BenchmarkHeLora)
  TENSAFE_NO_CUDA_METHOD(SetPoison)
  TENSAFE_NO_CUDA_METHOD(SetTiming)
  TENSAFE_NO_CUDA_METHOD(DrainTimings)
  Napi::Value Dispose(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), true); }
#undef TENSAFE_NO_CUDA_METHOD
#else
  explicit CkksContextCudaJs(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<CkksContextCudaJs>(info), ctx_("CkksContextCuda") {
    guard(info.Env(), [&] {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      auto spec = read_spec(o);
      try {
        ctx_.set(std::make_shared<CkksContextCuda>(spec));
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
    return Run(info, [&](CkksContextCuda& g, Napi::Env env) -> Napi::Value { return params_info(env, g.cpu(), "cuda"); });
  }

  Napi::Value GenerateSecretKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value { return SkH::Wrap(env, c.generate_secret_key()); });
  }
  Napi::Value GeneratePublicKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto sk = SkH::From(require_arg(info, 0, "secretKey"), "secretKey");
      return PkH::Wrap(env, c.generate_public_key(*sk));
    });
  }
  Napi::Value GenerateGaloisKeys(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto sk = SkH::From(require_arg(info, 0, "secretKey"), "secretKey");
      Napi::Value sv = require_arg(info, 1, "steps");
      if (!sv.IsArray()) throw_type("steps must be an array of integers");
      auto a = sv.As<Napi::Array>();
      if (a.Length() < 1 || a.Length() > 256) throw_range("steps must list 1..256 rotation steps");
      const int64_t slots = static_cast<int64_t>(c.n() / 2);
      std::vector<int64_t> steps;
      for (uint32_t i = 0; i < a.Length(); ++i)
        steps.push_back(require_int(a.Get(i), "steps[" + std::to_string(i) + "]", -(slots - 1), slots - 1));
      if (!c.cpu().params().special)
        throw_range("rotation keys need a special prime: create the context with specialPrimeBits");
      auto ctx = ctx_.get();
      auto result = std::make_shared<std::shared_ptr<GaloisKeysCuda>>();
      return PromiseWorker::run(
          env, "CkksContextCuda.generateGaloisKeys", [ctx, sk, steps, result] { *result = ctx->generate_galois_keys(*sk, steps); },
          [result](Napi::Env e) -> Napi::Value { return GkH::Wrap(e, *result); });
    });
  }

  Napi::Value Encode(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto v = require_float64_array(require_arg(info, 0, "values"), "values");
      if (v.ElementLength() > c.n() / 2)
        throw_range("values must hold at most polyN/2 = " + std::to_string(c.n() / 2) + " numbers, got " +
                    std::to_string(v.ElementLength()));
      auto o = read_encode_opts(info, 1, c.cpu().max_limbs());
      return PtH::Wrap(env, c.encode(v.Data(), v.ElementLength(), o.limbs, o.scale));
    });
  }
  Napi::Value EncodeCoefficients(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto v = require_float64_array(require_arg(info, 0, "values"), "values");
      if (v.ElementLength() > c.n())
        throw_range("values must hold at most polyN = " + std::to_string(c.n()) + " numbers, got " +
                    std::to_string(v.ElementLength()));
      auto o = read_encode_opts(info, 1, c.cpu().max_limbs());
      return PtH::Wrap(env, c.encode_coefficients(v.Data(), v.ElementLength(), o.limbs, o.scale));
    });
  }
  Napi::Value Decode(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto pt = PtH::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto out = Napi::Float64Array::New(env, c.n() / 2);
      c.decode(*pt, out.Data());
      return out;
    });
  }
  Napi::Value DecodeCoefficients(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto pt = PtH::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto out = Napi::Float64Array::New(env, c.n());
      c.decode_coefficients(*pt, out.Data());
      return out;
    });
  }

  Napi::Value PlaintextFromWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto w = require_biguint64_array(require_arg(info, 0, "words"), "words");
      auto o = read_words_opts(info, 1, c.cpu().max_limbs());
      return PtH::Wrap(env, c.plaintext_from_words(w.Data(), w.ElementLength(), o.limbs, o.scale, o.encoding));
    });
  }
  Napi::Value PlaintextWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      return words_to_js(env, c.plaintext_words(*PtH::From(require_arg(info, 0, "plaintext"), "plaintext")));
    });
  }
  Napi::Value SampleWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto o = read_sample_opts(info, 0, c.cpu().max_limbs());
      return words_to_js(env, c.sample_words(o.limbs, o.count, o.distribution, o.bits));
    });
  }
  Napi::Value Rerandomize(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto ct = CtH::From(require_arg(info, 0, "ciphertext"), "ciphertext");
      auto pk = PkH::From(require_arg(info, 1, "publicKey"), "publicKey");
      return CtH::Wrap(env, c.rerandomize(*ct, *pk));
    });
  }
  Napi::Value GaloisElement(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env) -> Napi::Value { return galois_element(info, c.cpu()); });
  }
  Napi::Value GaloisStep(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env) -> Napi::Value { return galois_step(info, c.cpu()); });
  }

  Napi::Value Encrypt(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto pt = PtH::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto pk = PkH::From(require_arg(info, 1, "publicKey"), "publicKey");
      return CtH::Wrap(env, c.encrypt(*pt, *pk));
    });
  }
  Napi::Value EncryptSymmetric(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto pt = PtH::From(require_arg(info, 0, "plaintext"), "plaintext");
      auto sk = SkH::From(require_arg(info, 1, "secretKey"), "secretKey");
      const bool compact = read_compact(info, 2);
      return CtH::Wrap(env, c.encrypt_symmetric(*pt, *sk, compact));
    });
  }
  Napi::Value Decrypt(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto ct = CtH::From(require_arg(info, 0, "ciphertext"), "ciphertext");
      auto sk = SkH::From(require_arg(info, 1, "secretKey"), "secretKey");
      return PtH::Wrap(env, c.decrypt(*ct, *sk));
    });
  }
  Napi::Value DecryptBatch(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "ciphertexts");
      if (!v.IsArray()) throw_type("ciphertexts must be an array of Ciphertext");
      auto a = v.As<Napi::Array>();
      if (a.Length() > 4096) throw_range("ciphertexts must hold at most 4096 entries");
      std::vector<std::shared_ptr<CiphertextCuda>> keep;
      std::vector<const CiphertextCuda*> ptrs;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        keep.push_back(CtH::From(a.Get(i), "ciphertexts[" + std::to_string(i) + "]"));
        ptrs.push_back(keep.back().get());
      }
      auto sk = SkH::From(require_arg(info, 1, "secretKey"), "secretKey");
      auto pts = c.decrypt_batch(ptrs, *sk);
      Napi::Array out = Napi::Array::New(env, pts.size());
      for (size_t i = 0; i < pts.size(); ++i) out.Set(uint32_t(i), PtH::Wrap(env, pts[i]));
      return out;
    });
  }

  template <typename Op>
  Napi::Value Binary(const Napi::CallbackInfo& info, Op op) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto a = CtH::From(require_arg(info, 0, "a"), "a");
      auto b = CtH::From(require_arg(info, 1, "b"), "b");
      return CtH::Wrap(env, op(c, *a, *b));
    });
  }
  Napi::Value Add(const Napi::CallbackInfo& info) {
    return Binary(info, [](CkksContextCuda& c, const CiphertextCuda& a, const CiphertextCuda& b) { return c.add(a, b); });
  }
  Napi::Value Sub(const Napi::CallbackInfo& info) {
    return Binary(info, [](CkksContextCuda& c, const CiphertextCuda& a, const CiphertextCuda& b) { return c.sub(a, b); });
  }
  Napi::Value AddPlain(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto a = CtH::From(require_arg(info, 0, "a"), "a");
      auto b = PtH::From(require_arg(info, 1, "b"), "b");
      return CtH::Wrap(env, c.add_plain(*a, *b));
    });
  }
  Napi::Value MultiplyPlain(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto a = CtH::From(require_arg(info, 0, "a"), "a");
      auto b = PtH::From(require_arg(info, 1, "b"), "b");
      return CtH::Wrap(env, c.multiply_plain(*a, *b));
    });
  }
  Napi::Value Rescale(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      return CtH::Wrap(env, c.rescale(*CtH::From(require_arg(info, 0, "a"), "a")));
    });
  }
  Napi::Value ModSwitch(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      return CtH::Wrap(env, c.mod_switch(*CtH::From(require_arg(info, 0, "a"), "a")));
    });
  }
  Napi::Value Rotate(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto a = CtH::From(require_arg(info, 0, "a"), "a");
      const int64_t slots = static_cast<int64_t>(c.n() / 2);
      int64_t steps = require_int(require_arg(info, 1, "steps"), "steps", -(slots - 1), slots - 1);
      auto gk = GkH::From(require_arg(info, 2, "galoisKeys"), "galoisKeys");
      return CtH::Wrap(env, c.rotate(*a, steps, *gk));
    });
  }

  Napi::Value Serialize(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "obj");
      if (CtH::Is(v)) return bytes_to_js(env, c.cpu().serialize(c.download(*CtH::From(v, "obj"))));
      if (PtH::Is(v)) return bytes_to_js(env, c.cpu().serialize(c.download(*PtH::From(v, "obj"))));
      if (PkH::Is(v)) return bytes_to_js(env, c.cpu().serialize(PkH::From(v, "obj")->host));
      if (GkH::Is(v)) return bytes_to_js(env, c.cpu().serialize(GkH::From(v, "obj")->host));
      if (SkH::Is(v)) throw_type("obj is a secret key: secret keys serialise only through exportSecretKey()");
      throw_type("obj must be a Ciphertext, Plaintext, PublicKey or GaloisKeys of this backend");
    });
  }
  template <typename Fn>
  Napi::Value Deserialize(const Napi::CallbackInfo& info, Fn fn) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto b = require_uint8_array(require_arg(info, 0, "bytes"), "bytes");
      return fn(c, env, b.Data(), b.ElementLength());
    });
  }
  Napi::Value DeserializeCiphertext(const Napi::CallbackInfo& info) {
    return Deserialize(info, [](CkksContextCuda& c, Napi::Env env, const uint8_t* p, size_t n) {
      return CtH::Wrap(env, c.upload(c.cpu().deserialize_ciphertext(p, n)));
    });
  }
  Napi::Value DeserializePlaintext(const Napi::CallbackInfo& info) {
    return Deserialize(info, [](CkksContextCuda& c, Napi::Env env, const uint8_t* p, size_t n) {
      return PtH::Wrap(env, c.upload(c.cpu().deserialize_plaintext(p, n)));
    });
  }
  Napi::Value DeserializePublicKey(const Napi::CallbackInfo& info) {
    return Deserialize(info, [](CkksContextCuda& c, Napi::Env env, const uint8_t* p, size_t n) {
      return PkH::Wrap(env, c.upload(c.cpu().deserialize_public_key(p, n)));
    });
  }
  Napi::Value DeserializeGaloisKeys(const Napi::CallbackInfo& info) {
    return Deserialize(info, [](CkksContextCuda& c, Napi::Env env, const uint8_t* p, size_t n) {
      return GkH::Wrap(env, c.upload(c.cpu().deserialize_galois_keys(p, n)));
    });
  }
  Napi::Value ImportSecretKey(const Napi::CallbackInfo& info) {
    return Deserialize(info, [](CkksContextCuda& c, Napi::Env env, const uint8_t* p, size_t n) {
      return SkH::Wrap(env, c.upload(c.cpu().deserialize_secret_key(p, n)));
    });
  }
  Napi::Value ExportSecretKey(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      return bytes_to_js(env, c.cpu().serialize_secret_key(SkH::From(require_arg(info, 0, "secretKey"), "secretKey")->host));
    });
  }
  Napi::Value CiphertextWords(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto ct = c.download(*CtH::From(require_arg(info, 0, "ciphertext"), "ciphertext"));
      auto out = Napi::BigUint64Array::New(env, ct.data.size());
      std::memcpy(out.Data(), ct.data.data(), ct.data.size() * 8);
      return out;
    });
  }

  Napi::Value BenchmarkOp(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      std::string op = require_enum(o.Get("op"), "options.op",
                                    {"encode", "decode", "encode_coefficients", "encrypt", "encrypt_symmetric", "decrypt", "add",
                                     "sub", "multiply_plain", "rescale", "mod_switch", "rotate"});
      int iterations = static_cast<int>(optional_int(o, "iterations", "options.iterations", 1, 100000, 20));
      if (op == "rotate" && !c.cpu().params().special) throw_range("options.op: rotate needs a context with specialPrimeBits");
      auto ctx = ctx_.get();
      auto result = std::make_shared<ckks::OpTiming>();
      return PromiseWorker::run(
          env, "CkksContextCuda.benchmarkOp", [ctx, op, iterations, result] { *result = ctx->benchmark_op(op, iterations); },
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
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      int d = static_cast<int>(require_int(o.Get("d"), "options.d", 1, static_cast<int64_t>(c.n() / 2)));
      int r = static_cast<int>(require_int(o.Get("r"), "options.r", 1, 4096));
      int iterations = static_cast<int>(optional_int(o, "iterations", "options.iterations", 1, 100000, 10));
      int replicas = static_cast<int>(optional_int(o, "replicas", "options.replicas", 1, static_cast<int64_t>(c.n() / 2), 0));
      auto ctx = ctx_.get();
      auto result = std::make_shared<CkksContextCuda::HeLoraResult>();
      return PromiseWorker::run(
          env, "CkksContextCuda.benchmarkHeLora",
          [ctx, d, r, iterations, replicas, result] { *result = ctx->benchmark_helora(d, r, iterations, replicas); },
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
            r.Set("graphs", result->graphs);
            return r;
          });
    });
  }

  Napi::Value SetPoison(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "on");
      if (!v.IsBoolean()) throw_type("on must be a boolean");
      c.set_poison(v.As<Napi::Boolean>().Value());
      return env.Undefined();
    });
  }
  Napi::Value SetTiming(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      Napi::Value v = require_arg(info, 0, "on");
      if (!v.IsBoolean()) throw_type("on must be a boolean");
      c.set_timing(v.As<Napi::Boolean>().Value());
      return env.Undefined();
    });
  }
  Napi::Value DrainTimings(const Napi::CallbackInfo& info) {
    return Run(info, [&](CkksContextCuda& c, Napi::Env env) -> Napi::Value {
      auto t = c.drain_timings();
      Napi::Array a = Napi::Array::New(env, t.size());
      for (size_t i = 0; i < t.size(); ++i) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("op", t[i].op);
        o.Set("us", t[i].us);
        a.Set(uint32_t(i), o);
      }
      return a;
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    ctx_.dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), ctx_.disposed()); }

  Handle<CkksContextCuda> ctx_;
#endif  // TENSAFE_WITH_CUDA
};

void Register(Napi::Env env, Napi::Object exports) {
#ifdef TENSAFE_WITH_CUDA
  PtH::Define(env);
  CtH::Define(env);
  SkH::Define(env);
  PkH::Define(env);
  GkH::Define(env);
#endif
  exports.Set("CkksContextCuda", CkksContextCudaJs::Define(env));
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(ckks_cuda, tensafe::napi::Register);
