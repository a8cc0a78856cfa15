#include "napi_util.h"

#include <limits>
#include <utility>

namespace tensafe::napi {

// ---- errors ----------------------------------------------------------------------------

Napi::Error to_js_error(Napi::Env env, const std::exception& e) {
  Napi::Error err;
  std::string code = "ERR_TENSAFE_NATIVE";
  if (auto* engine = dynamic_cast<const EngineError*>(&e)) {
    code = engine->code();
    if (dynamic_cast<const ArgumentTypeError*>(&e)) {
      err = Napi::TypeError::New(env, e.what());
    } else if (dynamic_cast<const ArgumentRangeError*>(&e)) {
      err = Napi::RangeError::New(env, e.what());
    } else {
      err = Napi::Error::New(env, e.what());
    }
  } else if (dynamic_cast<const std::bad_alloc*>(&e)) {
    code = "ERR_TENSAFE_OUT_OF_MEMORY";
    err = Napi::Error::New(env, "out of host memory");
  } else {
    err = Napi::Error::New(env, std::string("native error: ") + e.what());
  }
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// ---- argument readers ------------------------------------------------------------------------

Napi::Value require_arg(const Napi::CallbackInfo& info, size_t index, const std::string& name) {
  if (info.Length() <= index || info[index].IsUndefined()) throw_type(name + " is required");
  return info[index];
}

Napi::Object require_object(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || v.IsArray() || v.IsNull()) throw_type(name + " must be an object");
  return v.As<Napi::Object>();
}

bool has_key(const Napi::Object& o, const char* key) { return o.Has(key) && !o.Get(key).IsUndefined(); }

int64_t require_int(const Napi::Value& v, const std::string& name, int64_t min, int64_t max) {
  double d;
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t x = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw_range(name + " is out of the 64-bit range");
    d = static_cast<double>(x);
    if (x < min || x > max)
      throw_range(name + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + std::to_string(x));
    return x;
  }
  if (!v.IsNumber()) throw_type(name + " must be an integer number");
  d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_range(name + " must be finite, got " + std::to_string(d));
  if (std::floor(d) != d) throw_range(name + " must be an integer, got " + std::to_string(d));
  if (d < static_cast<double>(min) || d > static_cast<double>(max))
    throw_range(name + " must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " +
                std::to_string(static_cast<long long>(d)));
  return static_cast<int64_t>(d);
}

int64_t optional_int(const Napi::Object& o, const char* key, const std::string& name, int64_t min, int64_t max,
                     int64_t fallback) {
  return has_key(o, key) ? require_int(o.Get(key), name, min, max) : fallback;
}

double require_finite(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) throw_type(name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw_range(name + " must be finite");
  return d;
}

double optional_finite(const Napi::Object& o, const char* key, const std::string& name, double fallback) {
  return has_key(o, key) ? require_finite(o.Get(key), name) : fallback;
}

bool optional_bool(const Napi::Object& o, const char* key, const std::string& name, bool fallback) {
  if (!has_key(o, key)) return fallback;
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw_type(name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string require_string(const Napi::Value& v, const std::string& name) {
  if (!v.IsString()) throw_type(name + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string optional_string(const Napi::Object& o, const char* key, const std::string& name,
                            const std::string& fallback) {
  return has_key(o, key) ? require_string(o.Get(key), name) : fallback;
}

std::string require_enum(const Napi::Value& v, const std::string& name, const std::vector<std::string>& allowed) {
  std::string s = require_string(v, name);
  for (const auto& a : allowed)
    if (a == s) return s;
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i) list += (i ? ", '" : "'") + allowed[i] + "'";
  throw_range(name + " must be one of " + list + ", got '" + s + "'");
}

uint64_t require_u64(const Napi::Value& v, const std::string& name) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw_range(name + " must be a non-negative 64-bit integer");
    return x;
  }
  return static_cast<uint64_t>(require_int(v, name, 0, (int64_t{1} << 53) - 1));
}

std::vector<uint64_t> require_u64_list(const Napi::Value& v, const std::string& name, size_t min_len, size_t max_len) {
  std::vector<uint64_t> out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_biguint64_array) {
    auto a = v.As<Napi::BigUint64Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
  } else if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(require_u64(a.Get(i), name + "[" + std::to_string(i) + "]"));
  } else {
    throw_type(name + " must be an array of bigint or a BigUint64Array");
  }
  if (out.size() < min_len || out.size() > max_len)
    throw_range(name + " must have " + std::to_string(min_len) + ".." + std::to_string(max_len) + " entries, got " +
                std::to_string(out.size()));
  return out;
}

namespace {
template <typename Array>
Array require_typed(const Napi::Value& v, const std::string& name, napi_typedarray_type type, const char* type_name,
                    size_t expected_length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw_type(name + " must be a " + type_name);
  auto a = v.As<Array>();
  if (expected_length != 0 && a.ElementLength() != expected_length)
    throw_range(name + " must have length " + std::to_string(expected_length) + ", got " +
                std::to_string(a.ElementLength()));
  return a;
}
template <typename Array>
void check_finite_values(const Array& a, const std::string& name) {
  auto* p = a.Data();
  for (size_t i = 0; i < a.ElementLength(); ++i)
    if (!std::isfinite(p[i])) throw_range(name + "[" + std::to_string(i) + "] is not finite (NaN or Infinity)");
}
}  // namespace

Napi::BigUint64Array require_biguint64_array(const Napi::Value& v, const std::string& name, size_t expected_length) {
  return require_typed<Napi::BigUint64Array>(v, name, napi_biguint64_array, "BigUint64Array", expected_length);
}
Napi::Float64Array require_float64_array(const Napi::Value& v, const std::string& name, size_t expected_length,
                                         bool finite) {
  auto a = require_typed<Napi::Float64Array>(v, name, napi_float64_array, "Float64Array", expected_length);
  if (finite) check_finite_values(a, name);
  return a;
}
Napi::Float32Array require_float32_array(const Napi::Value& v, const std::string& name, size_t expected_length,
                                         bool finite) {
  auto a = require_typed<Napi::Float32Array>(v, name, napi_float32_array, "Float32Array", expected_length);
  if (finite) check_finite_values(a, name);
  return a;
}
Napi::Int32Array require_int32_array(const Napi::Value& v, const std::string& name, size_t expected_length) {
  return require_typed<Napi::Int32Array>(v, name, napi_int32_array, "Int32Array", expected_length);
}
Napi::Uint8Array require_uint8_array(const Napi::Value& v, const std::string& name) {
  return require_typed<Napi::Uint8Array>(v, name, napi_uint8_array, "Uint8Array", 0);
}

// ---- async work ---------------------------------------------------------------------------------

PromiseWorker::PromiseWorker(Napi::Env env, const char* name, ExecuteFn execute, CompleteFn complete)
    : Napi::AsyncWorker(env, name),
      deferred_(Napi::Promise::Deferred::New(env)),
      execute_(std::move(execute)),
      complete_(std::move(complete)) {}

Napi::Promise PromiseWorker::run(Napi::Env env, const char* name, ExecuteFn execute, CompleteFn complete) {
  auto* worker = new PromiseWorker(env, name, std::move(execute), std::move(complete));
  Napi::Promise promise = worker->deferred_.Promise();
  worker->Queue();
  return promise;
}

void PromiseWorker::Execute() {
  try {
    execute_();
  } catch (const std::exception& e) {
    failure_ = std::current_exception();
    SetError(e.what());
  } catch (...) {
    failure_ = std::current_exception();
    SetError("unknown native error");
  }
  execute_ = nullptr;  // what it captured is released here, off the JS thread (may free device memory)
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    deferred_.Resolve(complete_ ? complete_(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (const std::exception& e) {
    deferred_.Reject(to_js_error(env, e).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& e) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (failure_) {
    try {
      std::rethrow_exception(failure_);
    } catch (const std::exception& ex) {
      deferred_.Reject(to_js_error(env, ex).Value());
      return;
    } catch (...) {
    }
  }
  deferred_.Reject(e.Value());
}

// ---- registration -----------------------------------------------------------------------------

namespace {
std::vector<std::pair<const char*, BindingInit>>& registry() {
  static std::vector<std::pair<const char*, BindingInit>> r;
  return r;
}
}  // namespace

BindingRegistrar::BindingRegistrar(const char* name, BindingInit init) { registry().emplace_back(name, init); }

void init_all_bindings(Napi::Env env, Napi::Object exports) {
  for (auto& [name, init] : registry()) init(env, exports);
}

}  // namespace tensafe::napi
