// CkksContextCuda: the CUDA engine behind the one CKKS binding (ckks_context_wrap.h; the
// contract is src/engine/ckks/native-api.ts). Ciphertexts and plaintexts are GPU-resident;
// keys keep a host copy (key generation, export). Beyond the contract (for tests and stage
// timers):
//   setPoison(on)     every new device allocation is filled with junk (catches unwritten words)
//   setTiming(on)     record CUDA events around every operation
//   drainTimings()    [{ op, us }] of the recorded operations (synchronises once)
// Without a CUDA build the class still exists: it reads and checks the options as the CPU
// class does, then throws ERR_TENSAFE_BACKEND (so the same bad options give the same errors).
#include <memory>
#include <vector>

#include "ckks_context_wrap.h"
#include "ckks_handles.h"
#include "ckks_options.h"
#include "napi_util.h"
#ifdef TENSAFE_WITH_CUDA
#include "ckks/cuda/context_cuda.h"
#endif

namespace tensafe::napi {
namespace {

#ifdef TENSAFE_WITH_CUDA

using ckks::cuda::CiphertextCuda;
using ckks::cuda::CkksContextCuda;
using ckks::cuda::GaloisKeysCuda;
using ckks::cuda::PlaintextCuda;
using ckks::cuda::PublicKeyCuda;
using ckks::cuda::SecretKeyCuda;

bool require_flag(const Napi::CallbackInfo& info) {
  Napi::Value v = require_arg(info, 0, "on");
  if (!v.IsBoolean()) throw_type("on must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

struct CudaTraits {
  using Engine = CkksContextCuda;
  using Pt = PlaintextCuda;
  using Ct = CiphertextCuda;
  using Sk = SecretKeyCuda;
  using Pk = PublicKeyCuda;
  using Gk = GaloisKeysCuda;
  static constexpr CkksBackend kBackend = CkksBackend::Cuda;
  static constexpr const char* kName = "CkksContextCuda";

  static std::shared_ptr<Engine> make(const ckks::CkksParamsSpec& spec) { return std::make_shared<Engine>(spec); }
  static const ckks::CkksContext& host(const Engine& e) { return e.cpu(); }

  // Device words are not V8's concern (dispose() frees them); the host copies of keys are.
  static HandleFacts describe(const Pt& p) { return plaintext_facts(p, 0); }
  static HandleFacts describe(const Ct& c) { return ciphertext_facts(c, 0); }
  static HandleFacts describe(const Sk& s) { return key_facts(bytes_of(s.host.ntt) + bytes_of(s.host.ntt_shoup)); }
  static HandleFacts describe(const Pk& p) { return key_facts(bytes_of(p.host.data)); }
  static HandleFacts describe(const Gk& g) { return galois_facts(g.host); }

  static ckks::OpTiming benchmark_op(Engine& c, const std::string& op, int iterations) {
    return c.benchmark_op(op, iterations);
  }
  static ckks::HeLoraTiming benchmark_helora(Engine& c, int d, int r, int iterations, int replicas, bool streamed) {
    return c.benchmark_helora(d, r, iterations, replicas, streamed);
  }

  static Napi::Value set_poison(Engine& c, const Napi::CallbackInfo& info) {
    c.set_poison(require_flag(info));
    return info.Env().Undefined();
  }
  static Napi::Value set_timing(Engine& c, const Napi::CallbackInfo& info) {
    c.set_timing(require_flag(info));
    return info.Env().Undefined();
  }
  static Napi::Value drain_timings(Engine& c, const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto t = c.drain_timings();
    Napi::Array a = Napi::Array::New(env, t.size());
    for (size_t i = 0; i < t.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("op", t[i].op);
      o.Set("us", t[i].us);
      a.Set(uint32_t(i), o);
    }
    return a;
  }
  template <typename Wrap, typename Props>
  static void add_methods(Props& props) {
    props.push_back(Wrap::template InstanceMethod<&Wrap::template Extra<&CudaTraits::set_poison>>("setPoison"));
    props.push_back(Wrap::template InstanceMethod<&Wrap::template Extra<&CudaTraits::set_timing>>("setTiming"));
    props.push_back(Wrap::template InstanceMethod<&Wrap::template Extra<&CudaTraits::drain_timings>>("drainTimings"));
  }
};

Napi::Function define_cuda_context(Napi::Env env) { return CkksContextWrap<CudaTraits>::Define(env); }

#else  // no CUDA compiler at build time

class CkksContextCudaUnavailable : public Napi::ObjectWrap<CkksContextCudaUnavailable> {
 public:
  explicit CkksContextCudaUnavailable(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CkksContextCudaUnavailable>(info) {
    guard(info.Env(), [&] {
      // The same option errors as the CPU class, parameter checks included, then the backend error.
      ckks::CkksParams::create(ckks_options::read_spec(require_object(require_arg(info, 0, "options"), "options")));
      throw BackendUnavailableError(
          "CkksContextCuda: this build of tensafe has no CUDA backend (nvcc was not found when it was built)");
    });
  }
};

Napi::Function define_cuda_context(Napi::Env env) {
  define_ckks_handles(env);
  return CkksContextCudaUnavailable::DefineClass(env, "CkksContextCuda", {});
}

#endif  // TENSAFE_WITH_CUDA

void Register(Napi::Env env, Napi::Object exports) { exports.Set("CkksContextCuda", define_cuda_context(env)); }

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(ckks_cuda, tensafe::napi::Register);
