// HE-LoRA bindings: the per-token step (HeLoraGenerator, created on a model context: its calls
// run on the context's strand, in order with the context's own calls) and the packing arithmetic
// for tests (heLoraLayout, heLoraSimulate, heLoraNoise). Arguments are checked here, the work is
// in native/src/helora.
#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "helora/dp_noise.h"
#include "helora/generator.h"
#include "helora/he_linear_cpu.h"
#include "helora/packing.h"
#if defined(TENSAFE_WITH_CUDA)
#include "helora/cuda/he_linear_cuda.h"
#include "helora/cuda/resident_cuda.h"
#endif
#include "model/config.h"
#include "model/weights.h"
#include "model_binding.h"
#include "napi_util.h"

namespace tensafe::napi {
namespace {

using helora::Generator;
using helora::GeneratorConfig;

const std::vector<std::string> kModules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

helora::PackingLayout read_layout_spec(const Napi::Value& v, const std::string& name) {
  Napi::Object o = require_object(v, name);
  auto packing = helora::parse_packing(require_enum(o.Get("packing"), name + ".packing", {"replicated-slots", "rotations", "coefficients"}));
  int n = static_cast<int>(require_int(o.Get("polyN"), name + ".polyN", 8, 1 << 17));
  if (n & (n - 1)) throw_range(name + ".polyN must be a power of two");
  int rank = static_cast<int>(require_int(o.Get("rank"), name + ".rank", 1, 4096));
  int in_dim = static_cast<int>(require_int(o.Get("inDim"), name + ".inDim", 1, 1 << 20));
  return helora::make_layout(packing, n, in_dim, rank);
}

Napi::Object layout_to_js(Napi::Env env, const helora::PackingLayout& L) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("packing", helora::packing_name(L.packing));
  o.Set("polyN", L.n);
  o.Set("slots", L.slots);
  o.Set("inDim", L.in_dim);
  o.Set("rank", L.rank);
  o.Set("chunk", L.chunk);
  o.Set("chunks", L.chunks);
  o.Set("segment", L.segment);
  o.Set("rowsPerPlaintext", L.rows_per_pt);
  o.Set("products", L.products());
  o.Set("rotationsPerProduct", L.rotation_steps);
  return o;
}

// heLoraLayout({ packing, polyN, rank, inDim })
Napi::Value Layout(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return layout_to_js(info.Env(), read_layout_spec(require_arg(info, 0, "spec"), "spec")); });
}

// heLoraSimulate(spec, a: Float32Array [rank*inDim], x: Float64Array [inDim]) -> Float64Array [rank]
Napi::Value Simulate(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto L = read_layout_spec(require_arg(info, 0, "spec"), "spec");
    auto a = require_float32_array(require_arg(info, 1, "a"), "a", static_cast<size_t>(L.rank) * L.in_dim);
    auto x = require_float64_array(require_arg(info, 2, "x"), "x", static_cast<size_t>(L.in_dim));
    if (static_cast<double>(L.rank) * L.width() * 8 > 2e9) throw_range("spec is too large to simulate");
    Napi::Float64Array y = Napi::Float64Array::New(info.Env(), L.rank);
    helora::simulate(L, a.Data(), x.Data(), y.Data());
    return y;
  });
}

// heLoraNoise(n) -> Float64Array of N(0, 1) from the native DP sampler (ChaCha20, OS key).
Napi::Value Noise(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    int n = static_cast<int>(require_int(require_arg(info, 0, "n"), "n", 1, 1 << 24));
    static std::mutex mu;
    static helora::DpNoise noise;
    Napi::Float64Array out = Napi::Float64Array::New(info.Env(), n);
    std::lock_guard<std::mutex> lock(mu);
    noise.standard_normal(out.Data(), n);
    return out;
  });
}

// heLoraLinear({ packing, polyN, rank, inDim, decrypt?, allowInsecure? }, a, x, iterations = 1)
//   -> Promise<{ y: Float64Array, stages: Float64Array[] }>: A x under CKKS without a model (one
//   session, A encoded once, `iterations` applications each with its own stage times).
Napi::Value Linear(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Value specv = require_arg(info, 0, "spec");
    auto L = read_layout_spec(specv, "spec");
    Napi::Object so = specv.As<Napi::Object>();
    helora::HeParams hp;
    hp.packing = L.packing;
    hp.poly_n = L.n;
    if (L.n < 1024) throw_range("spec.polyN must be >= 1024 for CKKS");
    hp.batched_decrypt = so.Has("decrypt") ? require_enum(so.Get("decrypt"), "spec.decrypt", {"sequential", "batched"}) == "batched" : true;
    hp.allow_insecure = optional_bool(so, "allowInsecure", "spec.allowInsecure", false);
    if (so.Has("encryption"))
      hp.symmetric = require_enum(so.Get("encryption"), "spec.encryption", {"secret-key", "public-key"}) == "secret-key";
    auto a = require_float32_array(require_arg(info, 1, "a"), "a", static_cast<size_t>(L.rank) * L.in_dim);
    auto x = require_float64_array(require_arg(info, 2, "x"), "x", static_cast<size_t>(L.in_dim));
    const int iterations = info.Length() > 3 && !info[3].IsUndefined() ? static_cast<int>(require_int(info[3], "iterations", 1, 100000)) : 1;
    auto av = std::make_shared<std::vector<float>>(a.Data(), a.Data() + a.ElementLength());
    auto xv = std::make_shared<std::vector<double>>(x.Data(), x.Data() + x.ElementLength());
    auto y = std::make_shared<std::vector<double>>(L.rank);
    auto times = std::make_shared<std::vector<helora::StageTimes>>(iterations);
    const int rank = L.rank, in_dim = L.in_dim;
    return PromiseWorker::run(
        info.Env(), "tensafe.helora.linear",
        [=]() {
          auto session = std::make_shared<helora::HeSessionCpu>(hp, helora::make_layout(hp.packing, hp.poly_n, in_dim, rank).rotations());
          helora::HeLinearCpu lin(session, av->data(), rank, in_dim);
          for (int i = 0; i < iterations; ++i) {
            helora::StageClock clock(true, &(*times)[i]);
            lin.apply(xv->data(), y->data(), clock);
          }
        },
        [=](Napi::Env e) -> Napi::Value {
          Napi::Object o = Napi::Object::New(e);
          Napi::Float64Array yy = Napi::Float64Array::New(e, y->size());
          for (size_t i = 0; i < y->size(); ++i) yy[i] = (*y)[i];
          o.Set("y", yy);
          Napi::Array arr = Napi::Array::New(e, times->size());
          for (size_t i = 0; i < times->size(); ++i) {
            Napi::Float64Array t = Napi::Float64Array::New(e, helora::kStageCount);
            for (int k = 0; k < helora::kStageCount; ++k) t[k] = (*times)[i].ms[k];
            arr.Set(static_cast<uint32_t>(i), t);
          }
          o.Set("stages", arr);
          return o;
        });
  });
}

// ---- HeLoraGenerator ------------------------------------------------------------------------

helora::PairSpec read_pair(const Napi::Value& v, const std::string& name, const model::Qwen2Config& mc, bool final_hidden) {
  Napi::Object o = require_object(v, name);
  helora::PairSpec p;
  p.rank = static_cast<int>(require_int(o.Get("rank"), name + ".rank", 1, 4096));
  if (final_hidden) {
    p.in_dim = p.out_dim = mc.hidden_size;
  } else {
    p.layer = static_cast<int>(require_int(o.Get("layer"), name + ".layer", 0, mc.num_hidden_layers - 1));
    p.target = model::parse_projection(require_enum(o.Get("module"), name + ".module", kModules));
    p.in_dim = model::projection_in_dim(mc, p.target);
    p.out_dim = model::projection_out_dim(mc, p.target);
    p.under_he = optional_bool(o, "underHe", name + ".underHe", true);
  }
  auto a = require_float32_array(o.Get("a"), name + ".a", static_cast<size_t>(p.rank) * p.in_dim);
  auto b = require_float32_array(o.Get("b"), name + ".b", static_cast<size_t>(p.out_dim) * p.rank);
  p.a.assign(a.Data(), a.Data() + a.ElementLength());
  p.b.assign(b.Data(), b.Data() + b.ElementLength());
  return p;
}

struct GenState {
  std::shared_ptr<ContextState> context;           // the context it runs on (kept alive)
  std::shared_ptr<const model::Model> model;       // for the device of heApply's CKKS work
  std::unique_ptr<Generator> gen;
  std::mutex mu;  // one call at a time on this generator (heApply runs beside the context's queue)
  bool counted = false;  // counted in context->generators (JS thread)

  // A generator collected without dispose(): its hooks are removed from the context between
  // two operations of the context, never while the context computes.
  ~GenState() {
    if (!gen || !context || !counted) return;
    auto g = std::make_shared<std::unique_ptr<Generator>>(std::move(gen));
    auto ctx = context;
    ctx->generators--;
    ctx->strand->when_idle([g, ctx]() {
      std::lock_guard<std::mutex> lock(ctx->mu);
      if (ctx->backend) ctx->backend->bind_thread();
      g->reset();  // detaches from the context
    });
  }
};

Napi::Object step_to_js(Napi::Env env, const helora::StepResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("token", r.token);
  Napi::Float64Array st = Napi::Float64Array::New(env, helora::kStageCount);
  for (int i = 0; i < helora::kStageCount; ++i) st[i] = r.stages.ms[i];
  o.Set("stages", st);
  return o;
}

class HeLoraGeneratorWrap : public Napi::ObjectWrap<HeLoraGeneratorWrap> {
 public:
  static Napi::FunctionReference* ctor;
  static void Define(Napi::Env env, Napi::Object exports) {
    Napi::Function f = DefineClass(
        env, "HeLoraGenerator",
        {StaticMethod("create", &HeLoraGeneratorWrap::Create), InstanceMethod("start", &HeLoraGeneratorWrap::Start),
         InstanceMethod("next", &HeLoraGeneratorWrap::Next), InstanceMethod("heApply", &HeLoraGeneratorWrap::HeApply),
         InstanceMethod("info", &HeLoraGeneratorWrap::Info), InstanceMethod("lastHeInput", &HeLoraGeneratorWrap::LastHeInput),
         InstanceMethod("dispose", &HeLoraGeneratorWrap::Dispose),
         InstanceAccessor("disposed", &HeLoraGeneratorWrap::Disposed, nullptr)});
    ctor = new Napi::FunctionReference(Napi::Persistent(f));
    exports.Set("HeLoraGenerator", f);
    Napi::Array stages = Napi::Array::New(env, helora::kStageCount);
    for (int i = 0; i < helora::kStageCount; ++i) stages.Set(static_cast<uint32_t>(i), helora::stage_name(i));
    exports.Set("heLoraStages", stages);
  }
  explicit HeLoraGeneratorWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<HeLoraGeneratorWrap>(info), handle_("HeLoraGenerator") {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      Napi::TypeError::New(info.Env(), "HeLoraGenerator is created with HeLoraGenerator.create(context, config)")
          .ThrowAsJavaScriptException();
      return;
    }
    handle_.set(*info[0].As<Napi::External<std::shared_ptr<GenState>>>().Data());
  }

 private:
  // HeLoraGenerator.create(context, config) -> Promise<HeLoraGenerator>; keys and weight
  // plaintexts are made off the JS thread, on the context's queue.
  static Napi::Value Create(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      std::shared_ptr<ContextState> cs = unwrap_context(require_arg(info, 0, "context"), "context");
      const model::ModelBackend& engine = cs->engine();
      const model::Qwen2Config mc = engine.config();
      Napi::Object o = require_object(require_arg(info, 1, "config"), "config");
      GeneratorConfig cfg;
      std::string mode = require_enum(o.Get("mode"), "config.mode", {"base", "lora", "he-lora"});
      cfg.mode = mode == "base" ? helora::Mode::Base : mode == "lora" ? helora::Mode::Lora : helora::Mode::HeLora;
      std::string placement = o.Has("placement") ? require_enum(o.Get("placement"), "config.placement", {"final-hidden", "layers"}) : "final-hidden";
      cfg.placement = placement == "layers" ? helora::Placement::Layers : helora::Placement::FinalHidden;
      if (o.Has("packing"))
        cfg.he.packing = helora::parse_packing(require_enum(o.Get("packing"), "config.packing", {"replicated-slots", "rotations", "coefficients"}));
      if (o.Has("decrypt")) cfg.he.batched_decrypt = require_enum(o.Get("decrypt"), "config.decrypt", {"sequential", "batched"}) == "batched";
      cfg.he.poly_n = static_cast<int>(optional_int(o, "polyN", "config.polyN", 1024, 65536, 16384));
      if (cfg.he.poly_n & (cfg.he.poly_n - 1)) throw_range("config.polyN must be a power of two");
      cfg.he.allow_insecure = optional_bool(o, "allowInsecure", "config.allowInsecure", false);
      if (o.Has("encryption"))
        cfg.he.symmetric = require_enum(o.Get("encryption"), "config.encryption", {"secret-key", "public-key"}) == "secret-key";
      cfg.scaling = static_cast<float>(optional_finite(o, "scaling", "config.scaling", 1.0));
      cfg.timers = optional_bool(o, "timers", "config.timers", true);
      cfg.record_he_input = optional_bool(o, "recordHeInput", "config.recordHeInput", false);
      if (o.Has("lmHead"))
        cfg.lm_head = require_enum(o.Get("lmHead"), "config.lmHead", {"backend", "cpu-f32-single-thread"}) == "backend"
                          ? helora::LmHead::Backend
                          : helora::LmHead::CpuF32SingleThread;
      // HE on the model's device: a CUDA model gets the CUDA CKKS backend (config.heBackend
      // 'cpu' keeps CKKS on the host, for comparisons).
      const std::string model_backend = engine.backend_name();
      const std::string he_backend =
          o.Has("heBackend") ? require_enum(o.Get("heBackend"), "config.heBackend", {"cpu", "cuda"}) : model_backend;
      if (he_backend == "cuda") {
#if defined(TENSAFE_WITH_CUDA)
        cfg.he_factory = helora::make_cuda_he_backend;
        // Device-resident step where it applies (config.resident: false forces the per-op path).
        if (optional_bool(o, "resident", "config.resident", true) && model_backend == "cuda")
          cfg.resident_factory = helora::make_cuda_resident_step;
#else
        throw BackendUnavailableError("config.heBackend 'cuda': this build has no CUDA backend");
#endif
      }
#if defined(TENSAFE_WITH_CUDA)
      // Plaintext LoRA on a CUDA model: on the device too (config.resident: false keeps the
      // host float64 path, for comparisons).
      if (model_backend == "cuda" && optional_bool(o, "resident", "config.resident", true))
        cfg.lora_factory = helora::make_cuda_lora_step;
#endif
      if (has_key(o, "dp") && !o.Get("dp").IsNull()) {
        Napi::Object d = require_object(o.Get("dp"), "config.dp");
        cfg.dp = true;
        cfg.clip_norm = require_finite(d.Get("clipNorm"), "config.dp.clipNorm");
        cfg.sigma = require_finite(d.Get("sigma"), "config.dp.sigma");
      }
      if (cfg.mode != helora::Mode::Base) {
        if (cfg.placement == helora::Placement::FinalHidden) {
          cfg.final_pair = read_pair(o.Get("finalPair"), "config.finalPair", mc, true);
        } else {
          Napi::Value pv = o.Get("pairs");
          if (!pv.IsArray()) throw_type("config.pairs must be an array of LoRA pairs");
          Napi::Array arr = pv.As<Napi::Array>();
          for (uint32_t i = 0; i < arr.Length(); ++i)
            cfg.pairs.push_back(read_pair(arr.Get(i), "config.pairs[" + std::to_string(i) + "]", mc, false));
        }
      }
      auto result = std::make_shared<std::shared_ptr<GenState>>();
      auto cfgp = std::make_shared<GeneratorConfig>(std::move(cfg));
      auto model = engine.model_ptr();
      return run_on_strand(
          env, *cs->strand, "tensafe.helora.create",
          [result, cfgp, cs, model]() {
            auto st = std::make_shared<GenState>();
            st->context = cs;
            st->model = model;
            std::lock_guard<std::mutex> lock(cs->mu);
            model::ModelBackend& m = cs->engine();
            m.bind_thread();
            st->gen = std::make_unique<Generator>(m, std::move(*cfgp));
            *result = st;
          },
          [result](Napi::Env e) -> Napi::Value {
            (*result)->context->generators++;
            (*result)->counted = true;
            return ctor->New({Napi::External<std::shared_ptr<GenState>>::New(e, result.get())});
          },
          [cs]() { cs->sync_position(); });
    });
  }

  // A step on the context's queue. The generator's state is held by the JS-thread hook (so it
  // is released on the JS thread), the work sees it through a plain pointer.
  template <typename Body>
  Napi::Value run(const Napi::CallbackInfo& info, const char* name, Body body) {
    auto st = handle_.get();
    auto cs = st->context;
    if (cs->disposed) throw DisposedError("the context of this HeLoraGenerator");
    auto out = std::make_shared<helora::StepResult>();
    GenState* raw = st.get();
    if (!cs->strand->busy()) cs->busy_what = name;
    return run_on_strand(
        info.Env(), *cs->strand, name,
        [raw, body, out]() {
          std::lock_guard<std::mutex> g(raw->mu);
          std::lock_guard<std::mutex> m(raw->context->mu);
          raw->context->engine().bind_thread();
          *out = body(*raw->gen);
        },
        [out](Napi::Env e) -> Napi::Value { return step_to_js(e, *out); },
        [st]() {
          st->context->sync_position();
          st->context->busy_what.clear();
        });
  }

  // start(prompt: Int32Array, sampling?: { temperature, topK, topP, seed }) -> Promise<{ token, stages }>
  Napi::Value Start(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto arr = require_int32_array(require_arg(info, 0, "prompt"), "prompt");
      if (arr.ElementLength() == 0) throw_range("prompt must hold at least one token");
      std::vector<int32_t> prompt(arr.Data(), arr.Data() + arr.ElementLength());
      model::SamplingOptions s;
      uint64_t seed = 0;
      if (info.Length() > 1 && !info[1].IsUndefined()) {
        Napi::Object o = require_object(info[1], "sampling");
        s.temperature = static_cast<float>(optional_finite(o, "temperature", "sampling.temperature", 0.0));
        s.top_k = static_cast<int>(optional_int(o, "topK", "sampling.topK", 0, 1 << 24, 0));
        s.top_p = static_cast<float>(optional_finite(o, "topP", "sampling.topP", 1.0));
        if (has_key(o, "seed")) seed = require_u64(o.Get("seed"), "sampling.seed");
      }
      s.validate();
      return run(info, "tensafe.helora.start", [prompt, s, seed](Generator& g) {
        return g.start(prompt.data(), static_cast<int>(prompt.size()), s, seed);
      });
    });
  }

  // next(token) -> Promise<{ token, stages }>
  Napi::Value Next(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      int32_t t = static_cast<int32_t>(require_int(require_arg(info, 0, "token"), "token", 0, INT32_MAX));
      return run(info, "tensafe.helora.next", [t](Generator& g) { return g.next(t); });
    });
  }

  // heApply(x: Float64Array, pairIndex = 0) -> Promise<Float64Array>: A x under HE (no DP).
  Napi::Value HeApply(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto xa = require_float64_array(require_arg(info, 0, "x"), "x");
      std::vector<double> x(xa.Data(), xa.Data() + xa.ElementLength());
      int idx = info.Length() > 1 && !info[1].IsUndefined() ? static_cast<int>(require_int(info[1], "pairIndex", 0, 1 << 20)) : 0;
      auto st = handle_.get();
      auto y = std::make_shared<std::vector<double>>();
      GenState* raw = st.get();
      // Not on the context's queue: heApply touches only the generator's CKKS state.
      return run_on_strand(
          info.Env(), *std::make_shared<Strand>(), "tensafe.helora.heApply",
          [raw, x, idx, y]() {
            std::lock_guard<std::mutex> g(raw->mu);
            raw->model->bind_thread();
            *y = raw->gen->he_apply(x.data(), static_cast<int>(x.size()), idx);
          },
          [y, st](Napi::Env e) -> Napi::Value {
            Napi::Float64Array out = Napi::Float64Array::New(e, y->size());
            for (size_t i = 0; i < y->size(); ++i) out[i] = (*y)[i];
            return out;
          });
    });
  }

  // info() -> { heSites, releases, layouts, model, modelBackend, heBackend, loraBackend }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto st = handle_.get();
      std::unique_lock<std::mutex> g(st->mu, std::try_to_lock);
      if (!g.owns_lock()) throw BusyError("info() while this HeLoraGenerator is computing; await its pending calls first");
      Napi::Object o = Napi::Object::New(env);
      const Generator& gen = *st->gen;
      o.Set("heSites", gen.he_sites());
      o.Set("releases", Napi::Number::New(env, static_cast<double>(gen.releases())));
      Napi::Array layouts = Napi::Array::New(env);
      const int n = gen.config().placement == helora::Placement::FinalHidden ? 1 : static_cast<int>(gen.config().pairs.size());
      for (int i = 0; i < n; ++i) {
        const helora::PackingLayout* L = gen.layout(i);
        layouts.Set(static_cast<uint32_t>(i), L ? Napi::Value(layout_to_js(env, *L)) : env.Null());
      }
      o.Set("layouts", layouts);
      o.Set("model", config_to_js(env, st->model->config()));
      o.Set("modelBackend", st->model->backend_name());
      o.Set("heBackend", gen.he_backend_name());
      o.Set("loraBackend", gen.lora_backend_name());
      return o;
    });
  }

  // lastHeInput() -> { hidden, input } (Float64Arrays: the last release before clip + noise, and
  // the HE input itself), or null before the first release. Test hook: config.recordHeInput.
  Napi::Value LastHeInput(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      auto st = handle_.get();
      std::unique_lock<std::mutex> g(st->mu, std::try_to_lock);
      if (!g.owns_lock()) throw BusyError("lastHeInput() while this HeLoraGenerator is computing; await its pending calls first");
      if (!st->gen->config().record_he_input) throw_range("lastHeInput needs config.recordHeInput: true");
      const auto& rec = st->gen->last_he_input();
      if (rec.input.empty()) return env.Null();
      auto copy = [&](const std::vector<double>& v) {
        Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
        std::copy(v.begin(), v.end(), a.Data());
        return a;
      };
      Napi::Object o = Napi::Object::New(env);
      o.Set("hidden", copy(rec.hidden));
      o.Set("input", copy(rec.input));
      return o;
    });
  }

  // dispose() -> Promise<void>: removes the generator's adapters and hooks from its context and
  // frees its CKKS state, on the context's queue (after the work queued before), off the JS thread.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handle_.disposed()) return resolved_promise(env);
    auto st = handle_.get();
    handle_.dispose();
    auto cs = st->context;
    if (st->counted) {
      cs->generators--;
      st->counted = false;
    }
    auto holder = std::make_shared<std::shared_ptr<GenState>>(st);
    return run_on_strand(
        env, *cs->strand, "tensafe.helora.dispose",
        [holder]() {
          std::shared_ptr<GenState> s = std::move(*holder);
          std::lock_guard<std::mutex> g(s->mu);
          std::lock_guard<std::mutex> lock(s->context->mu);
          if (s->context->backend) s->context->backend->bind_thread();
          s->gen.reset();  // detach() + CKKS keys and buffers, after the calls queued before
        },
        nullptr);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), handle_.disposed()); }

  Handle<GenState> handle_;
};
Napi::FunctionReference* HeLoraGeneratorWrap::ctor = nullptr;

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("heLoraLayout", Napi::Function::New(env, Layout, "heLoraLayout"));
  exports.Set("heLoraSimulate", Napi::Function::New(env, Simulate, "heLoraSimulate"));
  exports.Set("heLoraNoise", Napi::Function::New(env, Noise, "heLoraNoise"));
  exports.Set("heLoraLinear", Napi::Function::New(env, Linear, "heLoraLinear"));
  HeLoraGeneratorWrap::Define(env, exports);
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(helora, tensafe::napi::Register);
