// engine.info(): version, backends built, CUDA devices, threads.
#include "common/device_info.h"
#include "common/thread_pool.h"
#include "napi_util.h"

namespace tensafe::napi {
namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("version", TENSAFE_VERSION);
    Napi::Array backends = Napi::Array::New(env);
    backends.Set(0u, "cpu");
    CudaRuntimeInfo cuda = cuda_runtime_info();
    if (cuda.built) backends.Set(1u, "cuda");
    out.Set("backendsBuilt", backends);
    out.Set("cpuThreads", Napi::Number::New(env, cpu_threads()));
    out.Set("cpuModel", cpu_model_name());

    Napi::Object c = Napi::Object::New(env);
    c.Set("built", cuda.built);
    c.Set("available", cuda.built && !cuda.devices.empty());
    c.Set("runtimeVersion", cuda.runtime_version);
    c.Set("driverVersion", cuda.driver_version);
    c.Set("cublas", cuda.cublas);
    if (!cuda.unavailable_reason.empty()) c.Set("unavailableReason", cuda.unavailable_reason);
    Napi::Array devices = Napi::Array::New(env);
    for (size_t i = 0; i < cuda.devices.size(); ++i) {
      const auto& d = cuda.devices[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("name", d.name);
      o.Set("computeCapability", std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
      o.Set("totalMemoryBytes", Napi::Number::New(env, static_cast<double>(d.total_memory)));
      o.Set("freeMemoryBytes", Napi::Number::New(env, static_cast<double>(d.free_memory)));
      o.Set("multiprocessors", d.multiprocessors);
      o.Set("memoryBusWidthBits", d.memory_bus_width_bits);
      o.Set("l2CacheBytes", d.l2_cache_bytes);
      devices.Set(static_cast<uint32_t>(i), o);
    }
    c.Set("devices", devices);
    out.Set("cuda", c);
    return out;
  });
}

// gpuMemory(device = 0) -> { available, device, usedBytes, freeBytes, totalBytes, allocatedBytes }:
// cudaMemGetInfo of the device (used = total - free: this process's CUDA context and every other
// process included) and our own DeviceBuffer counter (bytes the engine holds, all devices).
Napi::Value GpuMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const int device = info.Length() > 0 && !info[0].IsUndefined() ? static_cast<int>(require_int(info[0], "device", 0, 1023)) : 0;
    GpuMemoryInfo m = gpu_memory_info(device);
    Napi::Object o = Napi::Object::New(env);
    o.Set("available", m.available);
    o.Set("device", m.available ? Napi::Value(Napi::Number::New(env, m.device)) : env.Null());
    o.Set("usedBytes", Napi::Number::New(env, static_cast<double>(m.total_bytes - m.free_bytes)));
    o.Set("freeBytes", Napi::Number::New(env, static_cast<double>(m.free_bytes)));
    o.Set("totalBytes", Napi::Number::New(env, static_cast<double>(m.total_bytes)));
    o.Set("allocatedBytes", Napi::Number::New(env, static_cast<double>(m.allocated_bytes)));
    return o;
  });
}

// useCudaDevice(device, option = 'device'): the JS thread's current CUDA device, for engine
// objects made on it (a CKKS CUDA context); errors name `option`.
Napi::Value UseCudaDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const std::string option = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "device";
    const int device = static_cast<int>(require_int(require_arg(info, 0, option), option, 0, 1023));
    use_cuda_device(device, option.c_str());
    return env.Undefined();
  });
}

// externalMemory() -> bytes of native memory reported to V8 (AdjustExternalMemory: the CPU
// backend's weights and KV caches), which V8 weighs in its GC decisions. process.memoryUsage()
// does not include it on Node 20.
Napi::Value ExternalMemory(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Napi::MemoryManagement::AdjustExternalMemory(info.Env(), 0)));
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("externalMemory", Napi::Function::New(env, ExternalMemory, "externalMemory"));
  exports.Set("useCudaDevice", Napi::Function::New(env, UseCudaDevice, "useCudaDevice"));
  exports.Set("gpuMemory", Napi::Function::New(env, GpuMemory, "gpuMemory"));
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(engine, tensafe::napi::Register);
