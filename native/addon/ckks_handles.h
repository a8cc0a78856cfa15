// JS handle classes of CKKS objects (Plaintext, Ciphertext, keys): each wraps a shared_ptr to
// an engine object, has dispose() / disposed and a few read-only facts. They are created only
// by CkksContextCpu methods; the context checks that a handle is of the right class.
#pragma once
#include <memory>
#include <string>

#include "ckks/context.h"
#include "napi_util.h"

namespace tensafe::napi {

template <typename T>
struct HandleTraits;
template <>
struct HandleTraits<ckks::Plaintext> {
  static constexpr const char* js_name = "CkksPlaintext";
  static constexpr const char* what = "Plaintext";
};
template <>
struct HandleTraits<ckks::Ciphertext> {
  static constexpr const char* js_name = "CkksCiphertext";
  static constexpr const char* what = "Ciphertext";
};
template <>
struct HandleTraits<ckks::SecretKey> {
  static constexpr const char* js_name = "CkksSecretKey";
  static constexpr const char* what = "SecretKey";
};
template <>
struct HandleTraits<ckks::PublicKey> {
  static constexpr const char* js_name = "CkksPublicKey";
  static constexpr const char* what = "PublicKey";
};
template <>
struct HandleTraits<ckks::GaloisKeys> {
  static constexpr const char* js_name = "CkksGaloisKeys";
  static constexpr const char* what = "GaloisKeys";
};

template <typename T>
class ObjHandle : public Napi::ObjectWrap<ObjHandle<T>> {
 public:
  using Base = Napi::ObjectWrap<ObjHandle<T>>;
  static Napi::FunctionReference* ctor;

  static void Define(Napi::Env env) {
    std::vector<typename Base::PropertyDescriptor> props = {
        Base::InstanceMethod("dispose", &ObjHandle::Dispose),
        Base::InstanceAccessor("disposed", &ObjHandle::Disposed, nullptr),
    };
    if constexpr (std::is_same_v<T, ckks::Plaintext> || std::is_same_v<T, ckks::Ciphertext>) {
      props.push_back(Base::InstanceAccessor("limbs", &ObjHandle::Limbs, nullptr));
      props.push_back(Base::InstanceAccessor("scale", &ObjHandle::Scale, nullptr));
    }
    if constexpr (std::is_same_v<T, ckks::Ciphertext>) {
      props.push_back(Base::InstanceAccessor("size", &ObjHandle::Size, nullptr));
      props.push_back(Base::InstanceAccessor("compact", &ObjHandle::Compact, nullptr));
    }
    if constexpr (std::is_same_v<T, ckks::Plaintext>)
      props.push_back(Base::InstanceAccessor("encoding", &ObjHandle::EncodingName, nullptr));
    if constexpr (std::is_same_v<T, ckks::GaloisKeys>) props.push_back(Base::InstanceAccessor("steps", &ObjHandle::Steps, nullptr));
    Napi::Function f = Base::DefineClass(env, HandleTraits<T>::js_name, props);
    ctor = new Napi::FunctionReference(Napi::Persistent(f));
  }

  explicit ObjHandle(const Napi::CallbackInfo& info) : Base(info), h_(HandleTraits<T>::what) {}

  static Napi::Object Wrap(Napi::Env env, T&& value) {
    Napi::Object o = ctor->New({});
    ObjHandle::Unwrap(o)->h_.set(std::make_shared<T>(std::move(value)));
    return o;
  }

  // The engine object behind a JS value, or a TypeError naming `name` / DisposedError.
  static std::shared_ptr<T> From(const Napi::Value& v, const std::string& name) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor->Value()))
      throw ArgumentTypeError(name + " must be a " + HandleTraits<T>::what + " of this backend");
    return ObjHandle::Unwrap(v.As<Napi::Object>())->h_.get();
  }

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    h_.dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), h_.disposed()); }
  Napi::Value Limbs(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), double(h_.get()->limbs)); });
  }
  Napi::Value Scale(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), h_.get()->scale); });
  }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      h_.get();
      return Napi::Number::New(info.Env(), 2);
    });
  }
  Napi::Value Compact(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, ckks::Ciphertext>) return Napi::Boolean::New(info.Env(), h_.get()->c1_seed.has_value());
      return info.Env().Undefined();
    });
  }
  Napi::Value EncodingName(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, ckks::Plaintext>)
        return Napi::String::New(info.Env(), h_.get()->encoding == ckks::Encoding::Slots ? "slots" : "coefficients");
      return info.Env().Undefined();
    });
  }
  Napi::Value Steps(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      if constexpr (std::is_same_v<T, ckks::GaloisKeys>) {
        auto g = h_.get();
        Napi::Array a = Napi::Array::New(info.Env(), g->steps.size());
        for (size_t i = 0; i < g->steps.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(info.Env(), double(g->steps[i])));
        return a;
      }
      return info.Env().Undefined();
    });
  }

  Handle<T> h_;
};

template <typename T>
Napi::FunctionReference* ObjHandle<T>::ctor = nullptr;

using PlaintextHandle = ObjHandle<ckks::Plaintext>;
using CiphertextHandle = ObjHandle<ckks::Ciphertext>;
using SecretKeyHandle = ObjHandle<ckks::SecretKey>;
using PublicKeyHandle = ObjHandle<ckks::PublicKey>;
using GaloisKeysHandle = ObjHandle<ckks::GaloisKeys>;

}  // namespace tensafe::napi
