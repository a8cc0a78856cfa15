// CkksContextCpu: the CPU engine behind the one CKKS binding (ckks_context_wrap.h; the
// contract is src/engine/ckks/native-api.ts). Only what is particular to the CPU engine lives
// here (its object types, their host sizes, its benchmark clock), plus the testing hooks of
// the sampler layouts and the addon's parameter rules.
#include <cstring>
#include <memory>
#include <vector>

#include "ckks/benchmarks.h"
#include "ckks/chacha20.h"
#include "ckks/context.h"
#include "ckks/sampling.h"
#include "ckks_context_wrap.h"
#include "ckks_handles.h"
#include "ckks_options.h"
#include "napi_util.h"

namespace tensafe::napi {
namespace {

struct CpuTraits {
  using Engine = ckks::CkksContext;
  using Pt = ckks::Plaintext;
  using Ct = ckks::Ciphertext;
  using Sk = ckks::SecretKey;
  using Pk = ckks::PublicKey;
  using Gk = ckks::GaloisKeys;
  static constexpr CkksBackend kBackend = CkksBackend::Cpu;
  static constexpr const char* kName = "CkksContextCpu";

  static std::shared_ptr<Engine> make(const ckks::CkksParamsSpec& spec) { return std::make_shared<Engine>(spec); }
  static const ckks::CkksContext& host(const Engine& e) { return e; }

  static HandleFacts describe(const Pt& p) { return plaintext_facts(p, bytes_of(p.data) + bytes_of(p.shoup)); }
  static HandleFacts describe(const Ct& c) { return ciphertext_facts(c, bytes_of(c.data)); }
  static HandleFacts describe(const Sk& s) { return key_facts(bytes_of(s.ntt) + bytes_of(s.ntt_shoup)); }
  static HandleFacts describe(const Pk& p) { return key_facts(bytes_of(p.data)); }
  static HandleFacts describe(const Gk& g) { return galois_facts(g); }

  static ckks::OpTiming benchmark_op(Engine& c, const std::string& op, int iterations) {
    return ckks::benchmark_op(c, op, iterations);
  }
  static ckks::HeLoraTiming benchmark_helora(Engine& c, int d, int r, int iterations, int replicas, bool streamed) {
    return ckks::benchmark_helora(c, d, r, iterations, replicas, streamed);
  }
  template <typename Wrap, typename Props>
  static void add_methods(Props&) {}
};

// ckksTesting.chacha20Words(key: Uint8Array(32), stream: bigint, start: bigint, count): BigUint64Array
// (words of the keystream, for test vectors and for checking the CUDA sampler).
Napi::Value Chacha20Words(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto key = require_uint8_array(require_arg(info, 0, "key"), "key");
    if (key.ElementLength() != 32) throw_range("key must hold 32 bytes, got " + std::to_string(key.ElementLength()));
    uint64_t stream = require_u64(require_arg(info, 1, "stream"), "stream");
    uint64_t start = require_u64(require_arg(info, 2, "start"), "start");
    int64_t count = require_int(require_arg(info, 3, "count"), "count", 0, 1 << 24);
    ckks::ChaChaKey k{};
    std::memcpy(k.data(), key.Data(), 32);
    auto out = Napi::BigUint64Array::New(env, static_cast<size_t>(count));
    ckks::chacha20_words(k, stream, start, static_cast<size_t>(count), out.Data());
    return out;
  });
}

// ckksTesting.sampleUniformExact(key, stream, moduli: bigint[], count) and
// ckksTesting.sampleCentered(key, stream, moduli, count, bits): the sampleWords samplers over
// any odd moduli below 2^64 (moduli near 2^64 make the rejection branch frequent, which the
// 20..60-bit primes of a context almost never do).
Napi::Value SampleTesting(const Napi::CallbackInfo& info, bool centered) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto key = require_uint8_array(require_arg(info, 0, "key"), "key");
    if (key.ElementLength() != 32) throw_range("key must hold 32 bytes, got " + std::to_string(key.ElementLength()));
    uint64_t stream = require_u64(require_arg(info, 1, "stream"), "stream");
    std::vector<uint64_t> moduli = require_u64_list(require_arg(info, 2, "moduli"), "moduli", 1, 8);
    for (auto q : moduli)
      if (q < 3 || q % 2 == 0) throw_range("moduli must be odd and at least 3");
    const size_t count = static_cast<size_t>(require_int(require_arg(info, 3, "count"), "count", 1, 1 << 20));
    ckks::ChaChaKey k{};
    std::memcpy(k.data(), key.Data(), 32);
    std::vector<uint64_t> out(moduli.size() * count);
    ckks::Sampler smp(k, stream);
    if (centered)
      smp.centered(moduli, count, static_cast<int>(require_int(require_arg(info, 4, "bits"), "bits", 0, 126)), out.data());
    else
      smp.uniform_exact(moduli, count, out.data());
    return ckks_options::words_to_js(env, out);
  });
}

// ckksTesting.gaussianCdt(): BigUint64Array of the 38 CDT thresholds (sampling.h).
Napi::Value GaussianCdt(const Napi::CallbackInfo& info) {
  const auto& t = ckks::gaussian_cdt();
  auto out = Napi::BigUint64Array::New(info.Env(), t.size());
  std::memcpy(out.Data(), t.data(), t.size() * 8);
  return out;
}

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("chacha20Words", Napi::Function::New(env, Chacha20Words, "chacha20Words"));
  testing.Set("gaussianCdt", Napi::Function::New(env, GaussianCdt, "gaussianCdt"));
  testing.Set("sampleUniformExact",
              Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return SampleTesting(i, false); }, "sampleUniformExact"));
  testing.Set("sampleCentered",
              Napi::Function::New(env, [](const Napi::CallbackInfo& i) { return SampleTesting(i, true); }, "sampleCentered"));
  // ckksTesting.externalMemory(): V8's count of external bytes (what the handles report;
  // process.memoryUsage() does not show it on Node 20).
  testing.Set("externalMemory", Napi::Function::New(
                                    env,
                                    [](const Napi::CallbackInfo& i) {
                                      return Napi::Number::New(i.Env(), double(Napi::MemoryManagement::AdjustExternalMemory(i.Env(), 0)));
                                    },
                                    "externalMemory"));
  exports.Set("ckksTesting", testing);
  exports.Set("ckksRules", ckks_options::rules(env));
  exports.Set("CkksContextCpu", CkksContextWrap<CpuTraits>::Define(env));
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(ckks, tensafe::napi::Register);
