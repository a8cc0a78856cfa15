// profiler.{available, start, stop}: per-kernel GPU profile for lab.profile().
#include "napi_util.h"
#include "timing/kernel_profiler.h"

namespace tensafe::napi {
namespace {

Napi::Value Available(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::string reason = timing::kernel_profiler_unavailable_reason();
    Napi::Object o = Napi::Object::New(env);
    o.Set("available", reason.empty());
    if (!reason.empty()) o.Set("reason", reason);
    return o;
  });
}

Napi::Value Start(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    timing::kernel_profiler_start();
    return info.Env().Undefined();
  });
}

Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    timing::ProfileReport r = timing::kernel_profiler_stop();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array kernels = Napi::Array::New(env, r.kernels.size());
    for (size_t i = 0; i < r.kernels.size(); ++i) {
      const auto& k = r.kernels[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", k.name);
      o.Set("calls", Napi::Number::New(env, static_cast<double>(k.calls)));
      o.Set("totalUs", k.total_us);
      o.Set("meanUs", k.mean_us);
      o.Set("minUs", k.min_us);
      o.Set("maxUs", k.max_us);
      kernels.Set(static_cast<uint32_t>(i), o);
    }
    out.Set("kernels", kernels);
    out.Set("wallUs", r.wall_us);
    out.Set("droppedRecords", Napi::Number::New(env, static_cast<double>(r.dropped_records)));
    return out;
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object p = Napi::Object::New(env);
  p.Set("available", Napi::Function::New(env, Available, "available"));
  p.Set("start", Napi::Function::New(env, Start, "start"));
  p.Set("stop", Napi::Function::New(env, Stop, "stop"));
  exports.Set("profiler", p);
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(profiler, tensafe::napi::Register);
