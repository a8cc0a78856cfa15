// NttPlanCuda: the CUDA negacyclic NTT, with exactly the shape of NttPlanCpu (both are
// NttPlanWrap, ntt_plan_wrap.h), plus
//   benchmark(...) timed with CUDA events over replays of a graph of back-to-back transforms
//   on device-resident data;
//   NttPlanCuda.measureCopyBandwidth(): number   device-to-device bytes/s (read + write).
// Arguments are validated (by the same CPU plan code) before any CUDA call. Without a CUDA
// build or a usable GPU, the constructor throws ERR_TENSAFE_BACKEND.
#include <memory>
#include <string>
#include <vector>

#include "ckks/ntt_plan.h"
#include "napi_util.h"
#include "ntt_plan_wrap.h"
#ifdef TENSAFE_WITH_CUDA
#include "ckks/cuda/ntt_plan_cuda.h"
#endif

namespace tensafe::napi {
namespace {

[[noreturn, maybe_unused]] void no_cuda_build(const char* what) {
  throw BackendUnavailableError(std::string(what) +
                                ": this build of tensafe has no CUDA backend (nvcc was not found when it was built)");
}

#ifdef TENSAFE_WITH_CUDA
using CudaNttEngine = ckks::cuda::NttPlanCuda;
#else
// Stand-in so the class compiles in CPU-only builds; it is never constructed.
struct CudaNttEngine {
  const ckks::NttPlan& cpu_plan() const { throw BackendUnavailableError("unreachable"); }
  void forward(uint64_t*) {}
  void inverse(uint64_t*) {}
  ckks::NttTiming benchmark(bool, int) { return {}; }
};
#endif

Napi::Value MeasureCopyBandwidth(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
#ifdef TENSAFE_WITH_CUDA
    return Napi::Number::New(info.Env(), CudaNttEngine::measure_copy_bandwidth());
#else
    no_cuda_build("NttPlanCuda.measureCopyBandwidth");
#endif
  });
}

struct CudaNttTraits {
  using Engine = CudaNttEngine;
  static constexpr const char* kName = "NttPlanCuda";
  static constexpr bool kAllowSmallN = false;
  static std::shared_ptr<Engine> make(std::shared_ptr<const ckks::NttPlan> tables) {
#ifdef TENSAFE_WITH_CUDA
    return std::make_shared<Engine>(std::move(tables));
#else
    no_cuda_build("NttPlanCuda");
#endif
  }
  static const ckks::NttPlan& tables(const Engine& plan) { return plan.cpu_plan(); }
  template <typename Props>
  static void add_statics(Props& props) {
    props.push_back(NttPlanWrap<CudaNttTraits>::StaticMethod<&MeasureCopyBandwidth>("measureCopyBandwidth"));
  }
};

void Register(Napi::Env env, Napi::Object exports) { exports.Set("NttPlanCuda", NttPlanWrap<CudaNttTraits>::Define(env)); }

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(ntt_cuda, tensafe::napi::Register);
