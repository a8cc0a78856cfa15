// The JS handle classes of CKKS objects, one family for both engines: CkksPlaintext,
// CkksCiphertext, CkksSecretKey, CkksPublicKey, CkksGaloisKeys. A handle holds a type-erased
// shared pointer to an engine object, the backend that made it ('cpu' | 'cuda') and the facts
// JS reads (limbs, scale, ...; immutable once made). A context takes a handle back only with
// its own backend's type: a CPU handle passed to a CUDA context is a TypeError naming the
// argument and both backends.
//
// Lifetime: dispose() drops the engine object at once (host or device memory). Every handle is
// registered with the context that made it, and disposing the context disposes them all. The
// host bytes of a handle (ciphertexts and keys on the CPU, the host copies of keys on the GPU)
// are reported to V8 as external memory, and returned when the handle is disposed or collected.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "ckks/context.h"
#include "napi_util.h"

namespace tensafe::napi {

enum class CkksBackend : std::uint8_t { Cpu, Cuda };
inline const char* backend_name(CkksBackend b) { return b == CkksBackend::Cpu ? "cpu" : "cuda"; }

enum class CkksKind { Plaintext, Ciphertext, SecretKey, PublicKey, GaloisKeys };

// What a handle shows JS without touching the engine object.
struct HandleFacts {
  std::size_t limbs = 0;
  double scale = 0;
  ckks::Encoding encoding = ckks::Encoding::Slots;
  bool compact = false;
  std::vector<std::int64_t> steps;
  std::int64_t host_bytes = 0;  // reported to V8 as external memory
};

inline std::int64_t bytes_of(const std::vector<std::uint64_t>& v) {
  return static_cast<std::int64_t>(v.size() * sizeof(std::uint64_t));
}

// The facts of each kind, from the fields both engines' objects share.
template <typename Pt>
HandleFacts plaintext_facts(const Pt& p, std::int64_t host_bytes) {
  HandleFacts f;
  f.limbs = p.limbs;
  f.scale = p.scale;
  f.encoding = p.encoding;
  f.host_bytes = host_bytes;
  return f;
}
template <typename Ct>
HandleFacts ciphertext_facts(const Ct& c, std::int64_t host_bytes) {
  HandleFacts f;
  f.limbs = c.limbs;
  f.scale = c.scale;
  f.compact = c.c1_seed.has_value();
  f.host_bytes = host_bytes;
  return f;
}
inline HandleFacts key_facts(std::int64_t host_bytes) {
  HandleFacts f;
  f.host_bytes = host_bytes;
  return f;
}
inline HandleFacts galois_facts(const ckks::GaloisKeys& g) {  // the host keys (the GPU keeps a copy)
  HandleFacts f;
  f.steps = g.steps;
  for (const auto& [step, key] : g.keys) f.host_bytes += bytes_of(key.data);
  return f;
}

// What a context needs to release a handle it made.
class CkksHandleBase {
 public:
  virtual void release(Napi::BasicEnv env) = 0;

 protected:
  ~CkksHandleBase() = default;
};

// The live handles of one context (touched on the JS thread only).
class HandleRegistry {
 public:
  explicit HandleRegistry(std::string owner) : owner_(std::move(owner)) {}
  void add(CkksHandleBase* h) {
    if (closed_) throw DisposedError(owner_);
    live_.insert(h);
  }
  void remove(CkksHandleBase* h) { live_.erase(h); }
  // The context is disposed: release every handle it made and accept no new ones.
  void close(Napi::BasicEnv env) {
    closed_ = true;
    const auto copy = live_;
    for (auto* h : copy) h->release(env);
    live_.clear();
  }

 private:
  std::string owner_;
  std::unordered_set<CkksHandleBase*> live_;
  bool closed_ = false;
};

template <CkksKind K>
struct CkksKindName;
template <>
struct CkksKindName<CkksKind::Plaintext> {
  static constexpr const char* js = "CkksPlaintext";
  static constexpr const char* what = "Plaintext";
};
template <>
struct CkksKindName<CkksKind::Ciphertext> {
  static constexpr const char* js = "CkksCiphertext";
  static constexpr const char* what = "Ciphertext";
};
template <>
struct CkksKindName<CkksKind::SecretKey> {
  static constexpr const char* js = "CkksSecretKey";
  static constexpr const char* what = "SecretKey";
};
template <>
struct CkksKindName<CkksKind::PublicKey> {
  static constexpr const char* js = "CkksPublicKey";
  static constexpr const char* what = "PublicKey";
};
template <>
struct CkksKindName<CkksKind::GaloisKeys> {
  static constexpr const char* js = "CkksGaloisKeys";
  static constexpr const char* what = "GaloisKeys";
};

template <CkksKind K>
class CkksHandle : public Napi::ObjectWrap<CkksHandle<K>>, public CkksHandleBase {
 public:
  using Base = Napi::ObjectWrap<CkksHandle<K>>;
  static constexpr const char* kWhat = CkksKindName<K>::what;

  // Defines the JS class once per addon instance (the first binding that needs it).
  static void Define(Napi::Env env) {
    if (ctor()) return;
    std::vector<typename Base::PropertyDescriptor> props = {
        Base::InstanceMethod("dispose", &CkksHandle::Dispose),
        Base::InstanceAccessor("disposed", &CkksHandle::Disposed, nullptr),
        Base::InstanceAccessor("backend", &CkksHandle::BackendName, nullptr),
    };
    if constexpr (K == CkksKind::Plaintext || K == CkksKind::Ciphertext) {
      props.push_back(Base::InstanceAccessor("limbs", &CkksHandle::Limbs, nullptr));
      props.push_back(Base::InstanceAccessor("scale", &CkksHandle::Scale, nullptr));
    }
    if constexpr (K == CkksKind::Ciphertext) {
      props.push_back(Base::InstanceAccessor("size", &CkksHandle::Size, nullptr));
      props.push_back(Base::InstanceAccessor("compact", &CkksHandle::Compact, nullptr));
    }
    if constexpr (K == CkksKind::Plaintext)
      props.push_back(Base::InstanceAccessor("encoding", &CkksHandle::EncodingName, nullptr));
    if constexpr (K == CkksKind::GaloisKeys) props.push_back(Base::InstanceAccessor("steps", &CkksHandle::Steps, nullptr));
    ctor() = new Napi::FunctionReference(Napi::Persistent(Base::DefineClass(env, CkksKindName<K>::js, props)));
  }

  explicit CkksHandle(const Napi::CallbackInfo& info) : Base(info) {}
  ~CkksHandle() {
    if (registry_) registry_->remove(this);
  }

  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<void> obj, CkksBackend backend,
                           const std::shared_ptr<HandleRegistry>& registry, HandleFacts facts) {
    Napi::Object o = ctor()->New({});
    CkksHandle* h = Base::Unwrap(o);
    registry->add(h);  // throws when the context is already disposed
    h->registry_ = registry;
    h->obj_ = std::move(obj);
    h->backend_ = backend;
    h->facts_ = std::move(facts);
    if (h->facts_.host_bytes) Napi::MemoryManagement::AdjustExternalMemory(env, h->facts_.host_bytes);
    return o;
  }

  static bool Is(const Napi::Value& v) { return v.IsObject() && v.As<Napi::Object>().InstanceOf(ctor()->Value()); }

  // The engine object behind a JS value: TypeError naming `name` for anything else or for a
  // handle of the other backend, DisposedError after dispose().
  template <typename T>
  static std::shared_ptr<T> From(const Napi::Value& v, const std::string& name, CkksBackend want) {
    if (!Is(v)) throw ArgumentTypeError(name + " must be a " + kWhat + " of this " + backend_name(want) + " context");
    CkksHandle* h = Base::Unwrap(v.As<Napi::Object>());
    if (h->backend_ != want)
      throw ArgumentTypeError(name + " is a " + kWhat + " of the " + backend_name(h->backend_) +
                              " backend; this context runs on " + backend_name(want));
    if (!h->obj_) throw DisposedError(kWhat);
    return std::static_pointer_cast<T>(h->obj_);
  }

  // The handle behind a value already checked by From (to update its facts).
  static CkksHandle* Of(const Napi::Value& v) { return Base::Unwrap(v.As<Napi::Object>()); }

  // An engine call grew the object (prepareMultiplier adds Shoup companions).
  void set_host_bytes(Napi::Env env, std::int64_t bytes) {
    if (!obj_ || bytes == facts_.host_bytes) return;
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes - facts_.host_bytes);
    facts_.host_bytes = bytes;
  }

  void release(Napi::BasicEnv env) override {
    obj_.reset();
    if (facts_.host_bytes) {
      Napi::MemoryManagement::AdjustExternalMemory(env, -facts_.host_bytes);
      facts_.host_bytes = 0;
    }
    if (registry_) {
      registry_->remove(this);
      registry_.reset();
    }
  }

  // Collected without dispose(): return the memory to V8's accounting (GC-safe calls only).
  void Finalize(Napi::BasicEnv env) override { release(env); }

 private:
  static Napi::FunctionReference*& ctor() {
    static Napi::FunctionReference* c = nullptr;
    return c;
  }
  const HandleFacts& facts() const {
    if (!obj_) throw DisposedError(kWhat);
    return facts_;
  }
  template <typename Fn>
  Napi::Value Get(const Napi::CallbackInfo& info, Fn fn) {
    return guard(info.Env(), [&]() -> Napi::Value { return fn(facts(), info.Env()); });
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release(info.Env());
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !obj_); }
  Napi::Value BackendName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), backend_name(backend_)); }
  Napi::Value Limbs(const Napi::CallbackInfo& info) {
    return Get(info, [](const HandleFacts& f, Napi::Env env) -> Napi::Value { return Napi::Number::New(env, double(f.limbs)); });
  }
  Napi::Value Scale(const Napi::CallbackInfo& info) {
    return Get(info, [](const HandleFacts& f, Napi::Env env) -> Napi::Value { return Napi::Number::New(env, f.scale); });
  }
  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Get(info, [](const HandleFacts&, Napi::Env env) -> Napi::Value { return Napi::Number::New(env, 2); });
  }
  Napi::Value Compact(const Napi::CallbackInfo& info) {
    return Get(info, [](const HandleFacts& f, Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, f.compact); });
  }
  Napi::Value EncodingName(const Napi::CallbackInfo& info) {
    return Get(info, [](const HandleFacts& f, Napi::Env env) -> Napi::Value {
      return Napi::String::New(env, f.encoding == ckks::Encoding::Slots ? "slots" : "coefficients");
    });
  }
  Napi::Value Steps(const Napi::CallbackInfo& info) {
    return Get(info, [](const HandleFacts& f, Napi::Env env) -> Napi::Value {
      Napi::Array a = Napi::Array::New(env, f.steps.size());
      for (size_t i = 0; i < f.steps.size(); ++i) a.Set(uint32_t(i), Napi::Number::New(env, double(f.steps[i])));
      return a;
    });
  }

  std::shared_ptr<void> obj_;
  CkksBackend backend_ = CkksBackend::Cpu;
  HandleFacts facts_;
  std::shared_ptr<HandleRegistry> registry_;
};

// Defines the five handle classes (idempotent: both bindings call it).
inline void define_ckks_handles(Napi::Env env) {
  CkksHandle<CkksKind::Plaintext>::Define(env);
  CkksHandle<CkksKind::Ciphertext>::Define(env);
  CkksHandle<CkksKind::SecretKey>::Define(env);
  CkksHandle<CkksKind::PublicKey>::Define(env);
  CkksHandle<CkksKind::GaloisKeys>::Define(env);
}

}  // namespace tensafe::napi
