// modelCudaKernels: thin test access to the CUDA decoder kernels (model/cuda/kernel_tests.h),
// used by test/gpu/model-kernels.test.ts to check each kernel against a float64 reference on
// random inputs. Synchronous on purpose (tests only). Without a CUDA build or a GPU every
// kernel entry throws ERR_TENSAFE_BACKEND; the CPU references (cpuSample, cpuSynth) always work.
//   gemv({ w, dtype, n, k, x, normW?, eps?, bias?, y0?, epilogue }) -> { y, w }   (w rounded)
//   attention({ qkv, kCache, vCache, dtype, ropeTheta, pos, heads, kvHeads, headDim, context })
//       -> { out, kCache, vCache, rope }
//   rmsnorm({ x, w, eps }) -> Float32Array
//   embed({ table, dtype, d, tokens, pos }) -> { x, table }
//   argmax(logits) -> number;  sample({ logits, temperature, topK, topP, u }) -> number
//   synth({ dtype, count, seed, tensorId, center, halfWidth }) -> Float32Array
//   gemm({ a, b, dtype, m, n, k, c0?, impl: 'auto'|'cublas'|'own' }) -> { c, a, b, impl }  (a, b rounded)
//   cublas() -> { available, detail }   (detail: the library's path, or why it cannot be loaded)
//   prefillAttention({ q, kCache, vCache, dtype, p0, m, heads, kvHeads, headDim, context, simple?, split?, poisonFrom? })
//       -> { out, q, kCache, vCache }   (inputs rounded)
//   qkvRope({ qkv, bias?, dtype, ropeTheta, p0, m, heads, kvHeads, headDim, context, kCache, vCache, split? })
//       -> { q, kCache, vCache, rope }
//   rmsnormRows({ x, w, m, eps, dtype, split? }) -> Float32Array;  swigluRows({ gu, m, n, dtype, split? })
//       -> Float32Array   (split: the outputs' 16-bit rests too, returned summed: hi + lo)
//   lora({ a, b, x, y0?, rank, inDim, outDim, scaling }) -> Float32Array y   (y0 given: y = y0 + delta,
//       else y = delta; the shapes go to the kernel's own validation, the arrays must match them)
//   cpuSample({ logits, temperature, topK, topP, u }) -> number   (model/sampling.h reference)
//   cpuSynth({ dtype, count, seed, tensorId, center, halfWidth }) -> Float32Array
#include <cstring>
#include <initializer_list>
#include <utility>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "model/sampling.h"
#include "model/synthetic.h"
#include "napi_util.h"
#ifdef TENSAFE_WITH_CUDA
#include "model/cuda/kernel_tests.h"
#endif

namespace tensafe::napi {
namespace {

using model::DType;

std::vector<float> floats(const Napi::Object& o, const char* key, const std::string& name, size_t len = 0,
                          bool optional = false) {
  if (!has_key(o, key)) {
    if (optional) return {};
    throw_type(name + " is required (a Float32Array)");
  }
  Napi::Float32Array a = require_float32_array(o.Get(key), name, len);
  return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
}

Napi::Float32Array to_js(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

DType half_type(const Napi::Object& o, const std::string& name) {
  std::string t = require_enum(o.Get("dtype"), name, {"f16", "bf16"});
  return t == "bf16" ? DType::BF16 : DType::F16;
}

[[maybe_unused]] [[noreturn]] void no_cuda() {
  throw BackendUnavailableError("modelCudaKernels: this build of tensafe has no CUDA backend");
}

model::SamplingOptions sampling_options(const Napi::Object& o, double* u) {
  model::SamplingOptions s;
  s.temperature = static_cast<float>(optional_finite(o, "temperature", "temperature", 1.0));
  s.top_k = static_cast<int>(optional_int(o, "topK", "topK", 0, 1 << 30, 0));
  s.top_p = static_cast<float>(optional_finite(o, "topP", "topP", 1.0));
  s.validate();
  *u = optional_finite(o, "u", "u", 0.5);
  if (!(*u >= 0.0 && *u < 1.0)) throw_range("u must be in [0, 1)");
  return s;
}

struct SynthArgs {
  DType dtype;
  size_t count;
  uint64_t seed;
  uint32_t id;
  float center, half_width;
};
SynthArgs synth_args(const Napi::Object& o) {
  SynthArgs a{};
  std::string t = require_enum(o.Get("dtype"), "dtype", {"f32", "f16", "bf16"});
  a.dtype = t == "bf16" ? DType::BF16 : t == "f16" ? DType::F16 : DType::F32;
  a.count = static_cast<size_t>(require_int(o.Get("count"), "count", 1, 1 << 26));
  a.seed = require_u64(o.Get("seed"), "seed");
  a.id = static_cast<uint32_t>(require_int(o.Get("tensorId"), "tensorId", 0, 1 << 30));
  a.center = static_cast<float>(require_finite(o.Get("center"), "center"));
  a.half_width = static_cast<float>(require_finite(o.Get("halfWidth"), "halfWidth"));
  return a;
}

Napi::Value Gemv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    std::string epi = require_enum(o.Get("epilogue"), "epilogue", {"store", "accumulate", "swiglu"});
    const int n = static_cast<int>(require_int(o.Get("n"), "n", 1, 1 << 20));
    const int k = static_cast<int>(require_int(o.Get("k"), "k", 1, 1 << 16));
    const size_t rows = static_cast<size_t>(epi == "swiglu" ? 2 * n : n);
#ifdef TENSAFE_WITH_CUDA
    model::cuda::kernel_tests::GemvCase c;
    c.wtype = half_type(o, "dtype");
    c.n = n;
    c.k = k;
    c.w = floats(o, "w", "w", rows * k);
    c.x = floats(o, "x", "x", k);
    c.norm_w = floats(o, "normW", "normW", k, true);
    c.eps = static_cast<float>(optional_finite(o, "eps", "eps", 1e-6));
    c.bias = floats(o, "bias", "bias", n, true);
    c.y = floats(o, "y0", "y0", n, true);
    c.epilogue = epi == "swiglu" ? 2 : epi == "accumulate" ? 1 : 0;
    model::cuda::kernel_tests::run_gemv(c);
    Napi::Object out = Napi::Object::New(env);
    out.Set("y", to_js(env, c.y));
    out.Set("w", to_js(env, c.w));
    return out;
#else
    (void)rows;
    (void)k;
    no_cuda();
#endif
  });
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int heads = static_cast<int>(require_int(o.Get("heads"), "heads", 1, 256));
    const int kv = static_cast<int>(require_int(o.Get("kvHeads"), "kvHeads", 1, 256));
    const int hd = static_cast<int>(require_int(o.Get("headDim"), "headDim", 2, 512));
    const int ctx = static_cast<int>(require_int(o.Get("context"), "context", 1, 1 << 16));
    if (heads % kv != 0) throw_range("heads must be a multiple of kvHeads");
    if (hd % 2 != 0) throw_range("headDim must be even");
#ifdef TENSAFE_WITH_CUDA
    model::cuda::kernel_tests::AttentionCase c;
    c.heads = heads;
    c.kv_heads = kv;
    c.head_dim = hd;
    c.context = ctx;
    c.pos = static_cast<int>(require_int(o.Get("pos"), "pos", 0, ctx - 1));
    c.cache_type = half_type(o, "dtype");
    c.rope_theta = optional_finite(o, "ropeTheta", "ropeTheta", 1e6);
    c.qkv = floats(o, "qkv", "qkv", static_cast<size_t>(heads + 2 * kv) * hd);
    c.k_cache = floats(o, "kCache", "kCache", static_cast<size_t>(kv) * ctx * hd);
    c.v_cache = floats(o, "vCache", "vCache", static_cast<size_t>(kv) * ctx * hd);
    model::cuda::kernel_tests::run_attention(c);
    Napi::Object out = Napi::Object::New(env);
    out.Set("out", to_js(env, c.out));
    out.Set("kCache", to_js(env, c.k_cache));
    out.Set("vCache", to_js(env, c.v_cache));
    out.Set("rope", to_js(env, c.rope));
    return out;
#else
    (void)ctx;
    no_cuda();
#endif
  });
}

Napi::Value Rmsnorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    std::vector<float> x = floats(o, "x", "x");
    std::vector<float> w = floats(o, "w", "w", x.size());
    const float eps = static_cast<float>(optional_finite(o, "eps", "eps", 1e-6));
#ifdef TENSAFE_WITH_CUDA
    return to_js(env, model::cuda::kernel_tests::run_rmsnorm(x, w, eps));
#else
    (void)eps;
    no_cuda();
#endif
  });
}

Napi::Value Embed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int d = static_cast<int>(require_int(o.Get("d"), "d", 1, 1 << 16));
    std::vector<float> table = floats(o, "table", "table");
    if (table.size() % d != 0) throw_range("table length must be a multiple of d");
    Napi::Int32Array t = require_int32_array(o.Get("tokens"), "tokens");
    std::vector<int32_t> tokens(t.Data(), t.Data() + t.ElementLength());
    const int rows = static_cast<int>(table.size() / d);
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] < 0 || tokens[i] >= rows) throw_range("tokens[" + std::to_string(i) + "] outside the table");
    const int pos = static_cast<int>(require_int(o.Get("pos"), "pos", 0, static_cast<int64_t>(tokens.size()) - 1));
#ifdef TENSAFE_WITH_CUDA
    std::vector<float> x = model::cuda::kernel_tests::run_embed(table, half_type(o, "dtype"), d, tokens, pos);
    Napi::Object out = Napi::Object::New(env);
    out.Set("x", to_js(env, x));
    out.Set("table", to_js(env, table));
    return out;
#else
    (void)pos;
    no_cuda();
#endif
  });
}

Napi::Value Argmax(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Float32Array a = require_float32_array(require_arg(info, 0, "logits"), "logits");
    std::vector<float> l(a.Data(), a.Data() + a.ElementLength());
    if (l.empty()) throw_range("logits must not be empty");
#ifdef TENSAFE_WITH_CUDA
    return Napi::Number::New(env, model::cuda::kernel_tests::run_argmax(l));
#else
    no_cuda();
#endif
  });
}

Napi::Value Sample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    std::vector<float> l = floats(o, "logits", "logits");
    if (l.empty()) throw_range("logits must not be empty");
    double u = 0;
    model::SamplingOptions s = sampling_options(o, &u);
#ifdef TENSAFE_WITH_CUDA
    return Napi::Number::New(env, model::cuda::kernel_tests::run_sample(l, s.temperature, s.top_k, s.top_p, u));
#else
    (void)s;
    no_cuda();
#endif
  });
}

// heads / kvHeads / headDim / context and the prefill window p0, m (p0 + m <= context).
struct AttnShape {
  int heads, kv, hd, ctx, p0, m;
};
AttnShape attn_shape(const Napi::Object& o) {
  AttnShape a{};
  a.heads = static_cast<int>(require_int(o.Get("heads"), "heads", 1, 256));
  a.kv = static_cast<int>(require_int(o.Get("kvHeads"), "kvHeads", 1, 256));
  a.hd = static_cast<int>(require_int(o.Get("headDim"), "headDim", 2, 512));
  a.ctx = static_cast<int>(require_int(o.Get("context"), "context", 1, 1 << 16));
  if (a.heads % a.kv != 0) throw_range("heads must be a multiple of kvHeads");
  if (a.hd % 2 != 0) throw_range("headDim must be even");
  a.p0 = static_cast<int>(require_int(o.Get("p0"), "p0", 0, a.ctx - 1));
  a.m = static_cast<int>(require_int(o.Get("m"), "m", 1, a.ctx - a.p0));
  return a;
}
// The window, the type and the two caches of a prefill-kernel case.
template <typename Case>
void read_cache_case(Case& c, const AttnShape& s, const Napi::Object& o) {
  c.heads = s.heads; c.kv_heads = s.kv; c.head_dim = s.hd; c.context = s.ctx; c.p0 = s.p0; c.m = s.m;
  c.type = half_type(o, "dtype");
  c.k_cache = floats(o, "kCache", "kCache", static_cast<size_t>(s.kv) * s.ctx * s.hd);
  c.v_cache = floats(o, "vCache", "vCache", static_cast<size_t>(s.kv) * s.ctx * s.hd);
}
// { ...named vectors, kCache, vCache } of a finished case.
template <typename Case>
Napi::Object cache_result(Napi::Env env, const Case& c, std::initializer_list<std::pair<const char*, const std::vector<float>*>> extra) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& [name, v] : extra) out.Set(name, to_js(env, *v));
  out.Set("kCache", to_js(env, c.k_cache));
  out.Set("vCache", to_js(env, c.v_cache));
  return out;
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int m = static_cast<int>(require_int(o.Get("m"), "m", 1, 1 << 16));
    const int n = static_cast<int>(require_int(o.Get("n"), "n", 1, 1 << 18));
    const int k = static_cast<int>(require_int(o.Get("k"), "k", 1, 1 << 16));
    const std::string impl = optional_string(o, "impl", "impl", "auto");
    if (impl != "auto" && impl != "cublas" && impl != "own") throw_range("impl must be 'auto', 'cublas' or 'own'");
#ifdef TENSAFE_WITH_CUDA
    model::cuda::kernel_tests::GemmCase c;
    c.type = half_type(o, "dtype");
    c.m = m; c.n = n; c.k = k;
    c.a = floats(o, "a", "a", static_cast<size_t>(m) * k);
    c.b = floats(o, "b", "b", static_cast<size_t>(n) * k);
    c.c = floats(o, "c0", "c0", static_cast<size_t>(m) * n, true);
    c.accumulate = !c.c.empty();
    c.impl = impl == "own" ? 2 : impl == "cublas" ? 1 : 0;
    model::cuda::kernel_tests::run_gemm(c);
    Napi::Object out = Napi::Object::New(env);
    out.Set("c", to_js(env, c.c));
    out.Set("a", to_js(env, c.a));
    out.Set("b", to_js(env, c.b));
    out.Set("impl", c.impl == 1 ? "cublas" : "own");
    return out;
#else
    (void)m; (void)n; (void)k;
    no_cuda();
#endif
  });
}

Napi::Value Cublas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
#ifdef TENSAFE_WITH_CUDA
    std::string detail;
    const bool ok = model::cuda::kernel_tests::cublas_loadable(&detail);
    out.Set("available", ok);
    out.Set("detail", detail);
#else
    out.Set("available", false);
    out.Set("detail", "this build of tensafe has no CUDA backend");
#endif
    return out;
  });
}

Napi::Value PrefillAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const AttnShape s = attn_shape(o);
    const size_t m = static_cast<size_t>(s.m);
#ifdef TENSAFE_WITH_CUDA
    model::cuda::kernel_tests::PrefillAttentionCase c;
    read_cache_case(c, s, o);
    c.simple = optional_bool(o, "simple", "simple", false);
    c.split = optional_bool(o, "split", "split", false);
    c.poison_from = static_cast<int>(optional_int(o, "poisonFrom", "poisonFrom", -1, s.ctx, -1));
    c.q = floats(o, "q", "q", m * s.heads * s.hd);
    model::cuda::kernel_tests::run_prefill_attention(c);
    return cache_result(env, c, {{"out", &c.out}, {"q", &c.q}});
#else
    (void)m;
    no_cuda();
#endif
  });
}

Napi::Value QkvRope(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const AttnShape s = attn_shape(o);
    const size_t m = static_cast<size_t>(s.m);
#ifdef TENSAFE_WITH_CUDA
    const size_t width = static_cast<size_t>(s.heads + 2 * s.kv) * s.hd;
    model::cuda::kernel_tests::QkvRopeCase c;
    read_cache_case(c, s, o);
    c.rope_theta = optional_finite(o, "ropeTheta", "ropeTheta", 1e6);
    c.split = optional_bool(o, "split", "split", false);
    c.qkv = floats(o, "qkv", "qkv", m * width);
    c.bias = floats(o, "bias", "bias", width, true);
    model::cuda::kernel_tests::run_qkv_rope(c);
    return cache_result(env, c, {{"q", &c.q}, {"rope", &c.rope}});
#else
    (void)m;
    no_cuda();
#endif
  });
}

Napi::Value RmsnormRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int m = static_cast<int>(require_int(o.Get("m"), "m", 1, 1 << 16));
    std::vector<float> w = floats(o, "w", "w");
    if (w.empty()) throw_range("w must not be empty");
    std::vector<float> x = floats(o, "x", "x", static_cast<size_t>(m) * w.size());
    const float eps = static_cast<float>(optional_finite(o, "eps", "eps", 1e-6));
#ifdef TENSAFE_WITH_CUDA
    const bool split = optional_bool(o, "split", "split", false);
    return to_js(env, model::cuda::kernel_tests::run_rmsnorm_rows(x, w, m, eps, half_type(o, "dtype"), split));
#else
    (void)eps;
    no_cuda();
#endif
  });
}

Napi::Value SwigluRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    const int m = static_cast<int>(require_int(o.Get("m"), "m", 1, 1 << 16));
    const int n = static_cast<int>(require_int(o.Get("n"), "n", 1, 1 << 20));
    std::vector<float> gu = floats(o, "gu", "gu", static_cast<size_t>(m) * 2 * n);
#ifdef TENSAFE_WITH_CUDA
    const bool split = optional_bool(o, "split", "split", false);
    return to_js(env, model::cuda::kernel_tests::run_swiglu_rows(gu, m, n, half_type(o, "dtype"), split));
#else
    no_cuda();
#endif
  });
}

Napi::Value Lora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    // Zero and too-large shapes pass here on purpose: lora_apply must reject them itself.
    const int rank = static_cast<int>(require_int(o.Get("rank"), "rank", 0, 1 << 16));
    const int in_dim = static_cast<int>(require_int(o.Get("inDim"), "inDim", 0, 1 << 21));
    const int out_dim = static_cast<int>(require_int(o.Get("outDim"), "outDim", 0, 1 << 21));
    const size_t r = static_cast<size_t>(rank);
#ifdef TENSAFE_WITH_CUDA
    model::cuda::kernel_tests::LoraCase c;
    c.rank = rank;
    c.in_dim = in_dim;
    c.out_dim = out_dim;
    c.a = floats(o, "a", "a", r * in_dim);
    c.b = floats(o, "b", "b", static_cast<size_t>(out_dim) * r);
    c.x = floats(o, "x", "x", static_cast<size_t>(in_dim));
    c.y = floats(o, "y0", "y0", static_cast<size_t>(out_dim), true);
    c.accumulate = has_key(o, "y0");
    c.scaling = static_cast<float>(optional_finite(o, "scaling", "scaling", 1.0));
    model::cuda::kernel_tests::run_lora(c);
    return to_js(env, c.y);
#else
    (void)r; (void)in_dim; (void)out_dim;
    no_cuda();
#endif
  });
}

Napi::Value CpuSample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
    std::vector<float> l = floats(o, "logits", "logits");
    if (l.empty()) throw_range("logits must not be empty");
    double u = 0;
    model::SamplingOptions s = sampling_options(o, &u);
    return Napi::Number::New(env, model::sample_token(l.data(), static_cast<int>(l.size()), s, u));
  });
}

Napi::Value Synth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    SynthArgs a = synth_args(require_object(require_arg(info, 0, "options"), "options"));
#ifdef TENSAFE_WITH_CUDA
    return to_js(env, model::cuda::kernel_tests::run_synth(a.dtype, a.count, a.seed, a.id, a.center, a.half_width));
#else
    (void)a;
    no_cuda();
#endif
  });
}

Napi::Value CpuSynth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    SynthArgs a = synth_args(require_object(require_arg(info, 0, "options"), "options"));
    std::vector<float> v(a.count);
    const model::synthetic::Scale s{a.center, a.half_width};
    for (size_t i = 0; i < a.count; ++i) {
      const uint16_t b = model::synthetic::value_bf16(a.seed, a.id, i, s);
      const float f = model::bf16_to_float(b);
      v[i] = a.dtype == DType::F16 ? model::f16_to_float(model::float_to_f16(f)) : f;
    }
    return to_js(env, v);
  });
}

void Register(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("gemv", Napi::Function::New(env, Gemv, "gemv"));
  k.Set("attention", Napi::Function::New(env, Attention, "attention"));
  k.Set("rmsnorm", Napi::Function::New(env, Rmsnorm, "rmsnorm"));
  k.Set("embed", Napi::Function::New(env, Embed, "embed"));
  k.Set("argmax", Napi::Function::New(env, Argmax, "argmax"));
  k.Set("sample", Napi::Function::New(env, Sample, "sample"));
  k.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  k.Set("cublas", Napi::Function::New(env, Cublas, "cublas"));
  k.Set("prefillAttention", Napi::Function::New(env, PrefillAttention, "prefillAttention"));
  k.Set("qkvRope", Napi::Function::New(env, QkvRope, "qkvRope"));
  k.Set("rmsnormRows", Napi::Function::New(env, RmsnormRows, "rmsnormRows"));
  k.Set("swigluRows", Napi::Function::New(env, SwigluRows, "swigluRows"));
  k.Set("lora", Napi::Function::New(env, Lora, "lora"));
  k.Set("cpuSample", Napi::Function::New(env, CpuSample, "cpuSample"));
  k.Set("synth", Napi::Function::New(env, Synth, "synth"));
  k.Set("cpuSynth", Napi::Function::New(env, CpuSynth, "cpuSynth"));
  exports.Set("modelCudaKernels", k);
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(model_cuda_kernels, tensafe::napi::Register);
