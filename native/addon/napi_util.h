// Conventions of the native boundary (every binding file follows them):
//  * arguments are validated here, before any engine work, and a bad one raises a
//    TypeError / RangeError whose message names the argument;
//  * engine exceptions (common/errors.h) become JS errors of the matching class with a
//    `code` property; the TS layer (src/engine/native.ts) re-attaches the caller's JS stack;
//  * anything long runs in a PromiseWorker (off the main thread) and returns a Promise;
//  * native objects derive from Disposable: dispose() frees their memory at once and any
//    later use throws ERR_TENSAFE_DISPOSED.
// Binding files register themselves with TENSAFE_REGISTER_BINDING, so adding one needs no
// edit elsewhere.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/errors.h"

namespace tensafe::napi {

// ---- errors ------------------------------------------------------------------------------

// Builds the JS error matching an engine exception (TypeError, RangeError or Error + code).
Napi::Error to_js_error(Napi::Env env, const std::exception& e);

// Runs fn and converts any C++ exception into a thrown JS error of the right class.
template <typename Fn>
auto guard(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js_error(env, e);
  }
}

[[noreturn]] inline void throw_type(const std::string& message) { throw ArgumentTypeError(message); }
[[noreturn]] inline void throw_range(const std::string& message) { throw ArgumentRangeError(message); }

// ---- argument readers (each names the argument in its error) -------------------------------

Napi::Object require_object(const Napi::Value& v, const std::string& name);
Napi::Value require_arg(const Napi::CallbackInfo& info, size_t index, const std::string& name);
bool has_key(const Napi::Object& o, const char* key);

// Integer in [min, max]; rejects non-numbers, NaN, infinities and fractions.
int64_t require_int(const Napi::Value& v, const std::string& name, int64_t min, int64_t max);
int64_t optional_int(const Napi::Object& o, const char* key, const std::string& name, int64_t min, int64_t max,
                     int64_t fallback);
double require_finite(const Napi::Value& v, const std::string& name);
double optional_finite(const Napi::Object& o, const char* key, const std::string& name, double fallback);
bool optional_bool(const Napi::Object& o, const char* key, const std::string& name, bool fallback);
std::string require_string(const Napi::Value& v, const std::string& name);
std::string optional_string(const Napi::Object& o, const char* key, const std::string& name,
                            const std::string& fallback);
// One of the allowed strings.
std::string require_enum(const Napi::Value& v, const std::string& name, const std::vector<std::string>& allowed);

// Unsigned 64-bit from a BigInt or a non-negative safe integer Number.
uint64_t require_u64(const Napi::Value& v, const std::string& name);
std::vector<uint64_t> require_u64_list(const Napi::Value& v, const std::string& name, size_t min_len, size_t max_len);

// Typed arrays. expected_length 0 means any length; a mismatch is a RangeError naming both lengths.
Napi::BigUint64Array require_biguint64_array(const Napi::Value& v, const std::string& name, size_t expected_length = 0);
Napi::Float64Array require_float64_array(const Napi::Value& v, const std::string& name, size_t expected_length = 0,
                                         bool require_finite_values = true);
Napi::Float32Array require_float32_array(const Napi::Value& v, const std::string& name, size_t expected_length = 0,
                                         bool require_finite_values = true);
Napi::Int32Array require_int32_array(const Napi::Value& v, const std::string& name, size_t expected_length = 0);
Napi::Uint8Array require_uint8_array(const Napi::Value& v, const std::string& name);

// ---- async work ------------------------------------------------------------------------------

// Runs `execute` on the libuv pool and resolves the promise with `complete(env)` on the main
// thread. Exceptions from either side reject the promise with the matching JS error.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using ExecuteFn = std::function<void()>;
  using CompleteFn = std::function<Napi::Value(Napi::Env)>;
  static Napi::Promise run(Napi::Env env, const char* name, ExecuteFn execute, CompleteFn complete);

 protected:
  PromiseWorker(Napi::Env env, const char* name, ExecuteFn execute, CompleteFn complete);
  // The promise this worker settles (for subclasses that queue the worker later).
  Napi::Promise promise() const { return deferred_.Promise(); }
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  ExecuteFn execute_;
  CompleteFn complete_;
  std::exception_ptr failure_;
};

// ---- disposable native objects -----------------------------------------------------------------

// Holder of an engine object behind a JS wrapper. The engine object lives in a shared_ptr so
// that in-flight async work keeps it alive; dispose() drops the wrapper's reference at once.
template <typename Engine>
class Handle {
 public:
  explicit Handle(std::string type_name) : type_name_(std::move(type_name)) {}
  void set(std::shared_ptr<Engine> obj) { obj_ = std::move(obj); }
  std::shared_ptr<Engine> get() const {
    if (!obj_) throw DisposedError(type_name_);
    return obj_;
  }
  bool disposed() const { return !obj_; }
  void dispose() { obj_.reset(); }

 private:
  std::string type_name_;
  std::shared_ptr<Engine> obj_;
};

// ---- registration ---------------------------------------------------------------------------

using BindingInit = void (*)(Napi::Env env, Napi::Object exports);
struct BindingRegistrar {
  BindingRegistrar(const char* name, BindingInit init);
};
void init_all_bindings(Napi::Env env, Napi::Object exports);

}  // namespace tensafe::napi

#define TENSAFE_REGISTER_BINDING(name, fn) \
  static ::tensafe::napi::BindingRegistrar tensafe_binding_registrar_##name(#name, fn)
