// modelCudaBench: device timings of the decoder's kernels for the GPU harness
// (scripts/device/kernels-bench.mjs; model/cuda/kernel_bench.h). Each call validates its
// options, runs off the main thread and resolves with
//   { medianUs, minUs, maxUs, runs, bytes, flops }   (decode / prefill: more, below).
//   copy({ bytes, reps })
//   gemv({ n, k, epilogue: 'store'|'accumulate'|'swiglu', dtype, norm, reps })
//   attention({ heads, kvHeads, headDim, context, pos, dtype, reps })
//   gemm({ m, n, k, dtype, impl: 'cublas'|'own', reps })
//   prefillAttention({ heads, kvHeads, headDim, m, dtype, simple, reps })
//   decode({ preset, dtype, variant: 'graph'|'mega', lookaheadKb?, startPos, steps })
//       -> { step, lmHead, argmax, token, stageUs: number[], detail, weightBytes }
//   prefill({ preset, dtype, n, impl: 'cublas'|'own', split, reps }) -> { prefill, detail }
// Without a CUDA build (or a GPU) every entry rejects with ERR_TENSAFE_BACKEND.
#include <memory>
#include <string>

#include "common/errors.h"
#include "model/cuda/kernel_bench.h"  // no CUDA types: declared in every build
#include "model/dtype.h"
#include "napi_util.h"

#ifndef TENSAFE_WITH_CUDA
// A CPU-only build has no kernels to time: every entry rejects.
namespace tensafe::model::cuda::kernel_bench {
[[noreturn]] static void unavailable() {
  throw BackendUnavailableError("modelCudaBench: this build of tensafe has no CUDA backend");
}
Timing copy(size_t, int) { unavailable(); }
Timing gemv(int, int, int, DType, bool, int) { unavailable(); }
Timing attention(int, int, int, int, int, DType, int) { unavailable(); }
Timing gemm(int, int, int, DType, int, int) { unavailable(); }
Timing prefill_attention(int, int, int, int, DType, bool, int) { unavailable(); }
DecodeTiming decode(const std::string&, DType, const std::string&, int, int, int) { unavailable(); }
PrefillTiming prefill(const std::string&, DType, int, int, bool, int) { unavailable(); }
}  // namespace tensafe::model::cuda::kernel_bench
#endif

namespace tensafe::napi {
namespace {

using model::DType;

DType half_type(const Napi::Object& o) {
  return require_enum(o.Get("dtype"), "dtype", {"f16", "bf16"}) == "bf16" ? DType::BF16 : DType::F16;
}
int reps_of(const Napi::Object& o) { return static_cast<int>(optional_int(o, "reps", "reps", 1, 10000, 20)); }

using Timing = model::cuda::kernel_bench::Timing;

Napi::Object timing_js(Napi::Env env, const Timing& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("medianUs", t.median_us);
  o.Set("minUs", t.min_us);
  o.Set("maxUs", t.max_us);
  o.Set("runs", t.runs);
  o.Set("bytes", t.bytes);
  o.Set("flops", t.flops);
  return o;
}

// Runs `measure` off the main thread; resolves with timing_js of its result.
template <typename Fn>
Napi::Value timed(const Napi::CallbackInfo& info, const char* name, Fn measure) {
  auto out = std::make_shared<Timing>();
  return PromiseWorker::run(
      info.Env(), name, [out, measure] { *out = measure(); }, [out](Napi::Env e) -> Napi::Value { return timing_js(e, *out); });
}

namespace kb = ::tensafe::model::cuda::kernel_bench;

Napi::Value Copy(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const size_t bytes = static_cast<size_t>(require_int(o.Get("bytes"), "bytes", 1 << 20, int64_t(1) << 36));
    const int reps = reps_of(o);
    return timed(info, "tensafe.bench.copy", [=] { return kb::copy(bytes, reps); });
  });
}

Napi::Value Gemv(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int n = static_cast<int>(require_int(o.Get("n"), "n", 1, 1 << 20));
    const int k = static_cast<int>(require_int(o.Get("k"), "k", 8, 1 << 16));
    const std::string epi = require_enum(o.Get("epilogue"), "epilogue", {"store", "accumulate", "swiglu"});
    const int e = epi == "swiglu" ? 2 : epi == "accumulate" ? 1 : 0;
    const DType t = half_type(o);
    const bool norm = optional_bool(o, "norm", "norm", false);
    const int reps = reps_of(o);
    return timed(info, "tensafe.bench.gemv", [=] { return kb::gemv(n, k, e, t, norm, reps); });
  });
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int heads = static_cast<int>(require_int(o.Get("heads"), "heads", 1, 256));
    const int kv = static_cast<int>(require_int(o.Get("kvHeads"), "kvHeads", 1, 256));
    const int hd = static_cast<int>(require_int(o.Get("headDim"), "headDim", 2, 256));
    const int ctx = static_cast<int>(require_int(o.Get("context"), "context", 1, 1 << 20));
    const int pos = static_cast<int>(require_int(o.Get("pos"), "pos", 0, ctx - 1));
    if (heads % kv != 0 || hd % 2 != 0) throw_range("heads must be a multiple of kvHeads and headDim even");
    const DType t = half_type(o);
    const int reps = reps_of(o);
    return timed(info, "tensafe.bench.attention", [=] { return kb::attention(heads, kv, hd, ctx, pos, t, reps); });
  });
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int m = static_cast<int>(require_int(o.Get("m"), "m", 1, 1 << 16));
    const int n = static_cast<int>(require_int(o.Get("n"), "n", 1, 1 << 20));
    const int k = static_cast<int>(require_int(o.Get("k"), "k", 8, 1 << 16));
    const int impl = require_enum(o.Get("impl"), "impl", {"cublas", "own"}) == "own" ? 2 : 1;
    const DType t = half_type(o);
    const int reps = reps_of(o);
    return timed(info, "tensafe.bench.gemm", [=] { return kb::gemm(m, n, k, t, impl, reps); });
  });
}

Napi::Value PrefillAttention(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int heads = static_cast<int>(require_int(o.Get("heads"), "heads", 1, 256));
    const int kv = static_cast<int>(require_int(o.Get("kvHeads"), "kvHeads", 1, 256));
    const int hd = static_cast<int>(require_int(o.Get("headDim"), "headDim", 2, 256));
    const int m = static_cast<int>(require_int(o.Get("m"), "m", 1, 1 << 16));
    if (heads % kv != 0 || hd % 2 != 0) throw_range("heads must be a multiple of kvHeads and headDim even");
    const DType t = half_type(o);
    const bool simple = optional_bool(o, "simple", "simple", false);
    const int reps = reps_of(o);
    return timed(info, "tensafe.bench.prefillAttention", [=] { return kb::prefill_attention(heads, kv, hd, m, t, simple, reps); });
  });
}

Napi::Value Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const std::string preset = require_enum(o.Get("preset"), "preset", {"qwen2.5-1.5b-shape", "qwen2.5-0.5b-shape", "tiny"});
    const DType t = half_type(o);
    const std::string variant = require_enum(o.Get("variant"), "variant", {"graph", "mega"});
    const int look = static_cast<int>(optional_int(o, "lookaheadKb", "lookaheadKb", -1, 4096, -1));
    const int start = static_cast<int>(optional_int(o, "startPos", "startPos", 0, 1 << 16, 8));
    const int steps = static_cast<int>(optional_int(o, "steps", "steps", 1, 1 << 16, 64));
    auto out = std::make_shared<kb::DecodeTiming>();
    return PromiseWorker::run(
        env, "tensafe.bench.decode", [=] { *out = kb::decode(preset, t, variant, look, start, steps); },
        [out](Napi::Env e) -> Napi::Value {
          Napi::Object r = Napi::Object::New(e);
          r.Set("step", timing_js(e, out->step));
          r.Set("lmHead", timing_js(e, out->lm_head));
          r.Set("argmax", timing_js(e, out->argmax));
          r.Set("token", timing_js(e, out->token));
          Napi::Array st = Napi::Array::New(e, out->stage_us.size());
          for (size_t i = 0; i < out->stage_us.size(); ++i) st.Set(static_cast<uint32_t>(i), out->stage_us[i]);
          r.Set("stageUs", st);
          r.Set("detail", out->detail);
          r.Set("weightBytes", out->weight_bytes);
          return r;
        });
  });
}

Napi::Value Prefill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const std::string preset = require_enum(o.Get("preset"), "preset", {"qwen2.5-1.5b-shape", "qwen2.5-0.5b-shape", "tiny"});
    const DType t = half_type(o);
    const int n = static_cast<int>(require_int(o.Get("n"), "n", 2, 1 << 15));
    const int impl = require_enum(o.Get("impl"), "impl", {"cublas", "own"}) == "own" ? 2 : 1;
    const bool split = optional_bool(o, "split", "split", true);
    const int reps = reps_of(o);
    auto out = std::make_shared<kb::PrefillTiming>();
    return PromiseWorker::run(
        env, "tensafe.bench.prefill", [=] { *out = kb::prefill(preset, t, n, impl, split, reps); },
        [out](Napi::Env e) -> Napi::Value {
          Napi::Object r = Napi::Object::New(e);
          r.Set("prefill", timing_js(e, out->prefill));
          r.Set("detail", out->detail);
          return r;
        });
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object b = Napi::Object::New(env);
  b.Set("copy", Napi::Function::New(env, Copy, "copy"));
  b.Set("gemv", Napi::Function::New(env, Gemv, "gemv"));
  b.Set("attention", Napi::Function::New(env, Attention, "attention"));
  b.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  b.Set("prefillAttention", Napi::Function::New(env, PrefillAttention, "prefillAttention"));
  b.Set("decode", Napi::Function::New(env, Decode, "decode"));
  b.Set("prefill", Napi::Function::New(env, Prefill, "prefill"));
  exports.Set("modelCudaBench", b);
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(model_cuda_bench, tensafe::napi::Register);
