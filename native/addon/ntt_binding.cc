// NttPlanCpu: the CPU negacyclic NTT over a batch of RNS primes.
//   new NttPlanCpu({ n, moduli: bigint[] })      n a power of two in [2^12, 2^16], 1..16 moduli
//   forward(data) / inverse(data): Promise<BigUint64Array>   data = limbs*n words, limb-major
//   forwardSync(data) / inverseSync(data): BigUint64Array
//   benchmark({ direction: 'forward'|'inverse', iterations }): Promise<{ medianUs, minUs, maxUs, runs }>
//   dispose(), disposed, n, moduli
// CUDA's NttPlanCuda has exactly this shape: both are NttPlanWrap (ntt_plan_wrap.h).
#include <memory>
#include <vector>

#include "ckks/ntt_plan.h"
#include "ckks/primes.h"
#include "napi_util.h"
#include "ntt_plan_wrap.h"

namespace tensafe::napi {
namespace {

// The CPU plan is its own table holder.
struct CpuNttTraits {
  using Engine = const ckks::NttPlan;
  static constexpr const char* kName = "NttPlanCpu";
  static constexpr bool kAllowSmallN = true;
  static std::shared_ptr<Engine> make(std::shared_ptr<const ckks::NttPlan> tables) { return tables; }
  static const ckks::NttPlan& tables(const ckks::NttPlan& plan) { return plan; }
  template <typename Props>
  static void add_statics(Props&) {}
};

// generateNttPrimes(n, bits, count): bigint[]; isPrime(x: bigint): boolean
Napi::Value GenerateNttPrimes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    int64_t n = require_int(require_arg(info, 0, "n"), "n", 2, 1 << 17);
    if ((n & (n - 1)) != 0) throw_range("n must be a power of two, got " + std::to_string(n));
    int bits = static_cast<int>(require_int(require_arg(info, 1, "bits"), "bits", 2, 61));
    int count = static_cast<int>(require_int(require_arg(info, 2, "count"), "count", 1, 256));
    auto primes = ckks::generate_ntt_primes(static_cast<uint64_t>(n), bits, count);
    Napi::Array a = Napi::Array::New(env, primes.size());
    for (size_t i = 0; i < primes.size(); ++i) a.Set(uint32_t(i), Napi::BigInt::New(env, primes[i]));
    return a;
  });
}

Napi::Value IsPrime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    return Napi::Boolean::New(env, ckks::is_prime(require_u64(require_arg(info, 0, "x"), "x")));
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("NttPlanCpu", NttPlanWrap<CpuNttTraits>::Define(env));
  exports.Set("generateNttPrimes", Napi::Function::New(env, GenerateNttPrimes, "generateNttPrimes"));
  exports.Set("isPrime", Napi::Function::New(env, IsPrime, "isPrime"));
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(ntt, tensafe::napi::Register);
