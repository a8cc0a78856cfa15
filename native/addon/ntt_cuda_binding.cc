// NttPlanCuda: the CUDA negacyclic NTT, with exactly the shape of NttPlanCpu (ntt_binding.cc):
//   new NttPlanCuda({ n, moduli: bigint[] })      n a power of two in [2^12, 2^16], 1..16 moduli
//   forward(data) / inverse(data): Promise<BigUint64Array>   data = limbs*n words, limb-major
//   forwardSync(data) / inverseSync(data): BigUint64Array
//   benchmark({ direction, iterations }): Promise<{ medianUs, minUs, maxUs, runs }>
//       (CUDA events over replays of a graph of back-to-back transforms on device-resident data)
//   dispose(), disposed, n, moduli
//   NttPlanCuda.measureCopyBandwidth(): number   device-to-device bytes/s (read + write)
// Arguments are validated (by the same CPU plan code) before any CUDA call. Without a CUDA
// build or a usable GPU, the constructor throws ERR_TENSAFE_BACKEND.
#include <cstring>
#include <memory>
#include <vector>

#include "ckks/ntt_plan.h"
#include "napi_util.h"
#ifdef TENSAFE_WITH_CUDA
#include "ckks/cuda/ntt_plan_cuda.h"
#endif

namespace tensafe::napi {
namespace {

#ifdef TENSAFE_WITH_CUDA
using Engine = ckks::cuda::NttPlanCuda;
#else
// Stand-in so the class compiles in CPU-only builds; it is never constructed.
struct Engine {
  const ckks::NttPlan& cpu_plan() const { throw BackendUnavailableError("unreachable"); }
  void forward(uint64_t*) {}
  void inverse(uint64_t*) {}
  ckks::NttTiming benchmark(bool, int) { return {}; }
};
#endif

[[noreturn, maybe_unused]] void no_cuda_build(const char* what) {
  throw BackendUnavailableError(std::string(what) +
                                ": this build of tensafe has no CUDA backend (nvcc was not found when it was built)");
}

class NttPlanCudaJs : public Napi::ObjectWrap<NttPlanCudaJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NttPlanCuda",
                       {InstanceMethod<&NttPlanCudaJs::Forward>("forward"),
                        InstanceMethod<&NttPlanCudaJs::Inverse>("inverse"),
                        InstanceMethod<&NttPlanCudaJs::ForwardSync>("forwardSync"),
                        InstanceMethod<&NttPlanCudaJs::InverseSync>("inverseSync"),
                        InstanceMethod<&NttPlanCudaJs::Benchmark>("benchmark"),
                        InstanceMethod<&NttPlanCudaJs::Dispose>("dispose"),
                        InstanceAccessor<&NttPlanCudaJs::Disposed>("disposed"),
                        InstanceAccessor<&NttPlanCudaJs::N>("n"),
                        InstanceAccessor<&NttPlanCudaJs::Moduli>("moduli"),
                        StaticMethod<&NttPlanCudaJs::MeasureCopyBandwidth>("measureCopyBandwidth")});
  }

  explicit NttPlanCudaJs(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<NttPlanCudaJs>(info), plan_("NttPlanCuda") {
    guard(info.Env(), [&] {
      Napi::Object opts = require_object(require_arg(info, 0, "options"), "options");
      int64_t n = require_int(opts.Get("n"), "options.n", 4096, 65536);
      if ((n & (n - 1)) != 0) throw_range("options.n must be a power of two, got " + std::to_string(n));
      if (!has_key(opts, "moduli")) throw_type("options.moduli is required (an array of bigint)");
      std::vector<uint64_t> moduli = require_u64_list(opts.Get("moduli"), "options.moduli", 1, 16);
      std::shared_ptr<const ckks::NttPlan> cpu;
      try {
        cpu = std::make_shared<const ckks::NttPlan>(static_cast<uint64_t>(n), moduli);
      } catch (const ArgumentRangeError& e) {
        throw ArgumentRangeError(std::string("options.") + e.what());
      }
#ifdef TENSAFE_WITH_CUDA
      plan_.set(std::make_shared<Engine>(cpu));
#else
      no_cuda_build("NttPlanCuda");
#endif
    });
  }

 private:
  static Napi::Value to_js(Napi::Env env, const std::vector<uint64_t>& v) {
    auto out = Napi::BigUint64Array::New(env, v.size());
    std::memcpy(out.Data(), v.data(), v.size() * sizeof(uint64_t));
    return out;
  }

  Napi::Value Transform(const Napi::CallbackInfo& info, bool forward, bool async) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto plan = plan_.get();
      auto a = require_biguint64_array(require_arg(info, 0, "data"), "data");
      plan->cpu_plan().validate(a.Data(), a.ElementLength(), "data");
      auto data = std::make_shared<std::vector<uint64_t>>(a.Data(), a.Data() + a.ElementLength());
      if (!async) {
        forward ? plan->forward(data->data()) : plan->inverse(data->data());
        return to_js(env, *data);
      }
      return PromiseWorker::run(
          env, forward ? "NttPlanCuda.forward" : "NttPlanCuda.inverse",
          [plan, data, forward] { forward ? plan->forward(data->data()) : plan->inverse(data->data()); },
          [data](Napi::Env e) { return to_js(e, *data); });
    });
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) { return Transform(info, true, true); }
  Napi::Value Inverse(const Napi::CallbackInfo& info) { return Transform(info, false, true); }
  Napi::Value ForwardSync(const Napi::CallbackInfo& info) { return Transform(info, true, false); }
  Napi::Value InverseSync(const Napi::CallbackInfo& info) { return Transform(info, false, false); }

  Napi::Value Benchmark(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto plan = plan_.get();
      Napi::Object opts = require_object(require_arg(info, 0, "options"), "options");
      bool forward = require_enum(opts.Get("direction"), "options.direction", {"forward", "inverse"}) == "forward";
      int iterations = static_cast<int>(optional_int(opts, "iterations", "options.iterations", 1, 100000, 50));
      auto result = std::make_shared<ckks::NttTiming>();
      return PromiseWorker::run(
          env, "NttPlanCuda.benchmark",
          [plan, result, forward, iterations] { *result = plan->benchmark(forward, iterations); },
          [result](Napi::Env e) -> Napi::Value {
            Napi::Object o = Napi::Object::New(e);
            o.Set("medianUs", result->median_us);
            o.Set("minUs", result->min_us);
            o.Set("maxUs", result->max_us);
            o.Set("runs", result->runs);
            return o;
          });
    });
  }

  static Napi::Value MeasureCopyBandwidth(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
#ifdef TENSAFE_WITH_CUDA
      return Napi::Number::New(info.Env(), Engine::measure_copy_bandwidth());
#else
      no_cuda_build("NttPlanCuda.measureCopyBandwidth");
#endif
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    plan_.dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), plan_.disposed()); }
  Napi::Value N(const Napi::CallbackInfo& info) {
    return guard(info.Env(),
                 [&]() -> Napi::Value { return Napi::Number::New(info.Env(), double(plan_.get()->cpu_plan().n())); });
  }
  Napi::Value Moduli(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto m = plan_.get()->cpu_plan().moduli();
      Napi::Array a = Napi::Array::New(info.Env(), m.size());
      for (size_t i = 0; i < m.size(); ++i) a.Set(uint32_t(i), Napi::BigInt::New(info.Env(), m[i]));
      return a;
    });
  }

  Handle<Engine> plan_;
};

void Register(Napi::Env env, Napi::Object exports) { exports.Set("NttPlanCuda", NttPlanCudaJs::Define(env)); }

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(ntt_cuda, tensafe::napi::Register);
