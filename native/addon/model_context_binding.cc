// The ModelContext class: one conversation's state over a loaded model (model.createContext()).
// One class for both backends (the engine's ModelBackend is the interface).
//
// Calls on a context are ordered on its strand (context_strand.h):
//  * long calls (prefill, decodeStep, forward, step, generate, lmHead, prefillEmbeddings,
//    runWithSites) return a Promise and run on a pool thread when their turn comes;
//  * state changes without a result (reset, trim, setSamplingSeed, setLayerAdapters,
//    setHookLora, addToHidden, setHidden) run at once when the context is idle (their errors
//    thrown synchronously, the returned promise already resolved) and are queued behind the
//    running work otherwise (the promise settles when they ran), so they never wait on the JS
//    thread;
//  * reads with a result (hidden, logits, sample, embed) run at once when the context is idle
//    and throw ERR_TENSAFE_BUSY while work is running or queued (await it first);
//  * position is the position after the last finished call.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "model_binding.h"
#include "napi_util.h"

namespace tensafe::napi {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

const napi_type_tag kContextTag = {0x7e5a5afe0c07e47dULL, 0x2b3c4d5e6f708192ULL};
Napi::FunctionReference* context_ctor = nullptr;

Napi::Float32Array to_f32(Napi::Env env, const std::vector<float>& v) {
  auto a = Napi::Float32Array::New(env, v.size());
  std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(
        env, "ModelContext",
        {
            InstanceMethod("prefill", &ContextWrap::Prefill),
            InstanceMethod("decodeStep", &ContextWrap::DecodeStep),
            InstanceMethod("lmHead", &ContextWrap::LmHead),
            InstanceMethod("forward", &ContextWrap::Forward),
            InstanceMethod("step", &ContextWrap::Step),
            InstanceMethod("generate", &ContextWrap::Generate),
            InstanceMethod("sample", &ContextWrap::Sample),
            InstanceMethod("hidden", &ContextWrap::Hidden),
            InstanceMethod("logits", &ContextWrap::Logits),
            InstanceMethod("addToHidden", &ContextWrap::AddToHidden),
            InstanceMethod("setHidden", &ContextWrap::SetHidden),
            InstanceMethod("embed", &ContextWrap::Embed),
            InstanceMethod("prefillEmbeddings", &ContextWrap::PrefillEmbeddings),
            InstanceMethod("reset", &ContextWrap::Reset),
            InstanceMethod("trim", &ContextWrap::Trim),
            InstanceMethod("setSamplingSeed", &ContextWrap::SetSamplingSeed),
            InstanceMethod("setLayerAdapters", &ContextWrap::SetLayerAdapters),
            InstanceMethod("setHookLora", &ContextWrap::SetHookLora),
            InstanceMethod("runWithSites", &ContextWrap::RunWithSites),
            InstanceMethod("dispose", &ContextWrap::Dispose),
            InstanceAccessor("hookCalls", &ContextWrap::HookCalls, nullptr),
            InstanceAccessor("layerAdapterPath", &ContextWrap::LayerAdapterPath, nullptr),
            InstanceAccessor("position", &ContextWrap::Position, nullptr),
            InstanceAccessor("contextLength", &ContextWrap::ContextLength, nullptr),
            InstanceAccessor("backend", &ContextWrap::Backend, nullptr),
            InstanceAccessor("dtype", &ContextWrap::Dtype, nullptr),
            InstanceAccessor("config", &ContextWrap::Config, nullptr),
            InstanceAccessor("device", &ContextWrap::Device, nullptr),
            InstanceAccessor("weightBytesPerToken", &ContextWrap::WeightBytes, nullptr),
            InstanceAccessor("memoryBytes", &ContextWrap::MemoryBytes, nullptr),
            InstanceAccessor("busy", &ContextWrap::Busy, nullptr),
            InstanceAccessor("disposed", &ContextWrap::Disposed, nullptr),
        });
  }

  explicit ContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextWrap>(info) {
    if (info.Length() < 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(info.Env(), "use model.createContext(options) to create a context");
    st_ = *info[0].As<Napi::External<std::shared_ptr<ContextState>>>().Data();
    if (st_->external_bytes) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), st_->external_bytes);
    info.This().As<Napi::Object>().TypeTag(&kContextTag);
  }
  ~ContextWrap() override {
    // Collected without dispose(): the model no longer counts it; the memory goes with the
    // last holder (queued work keeps it until it has run).
    if (st_ && !st_->disposed) release_accounting(Env());
  }

  std::shared_ptr<ContextState> state() const {
    if (!st_ || st_->disposed) throw DisposedError("model context");
    return st_;
  }

 private:
  void release_accounting(Napi::Env env) {
    st_->disposed = true;
    if (st_->owner) st_->owner->live_contexts--;
    if (st_->external_bytes) Napi::MemoryManagement::AdjustExternalMemory(env, -st_->external_bytes);
  }

  Napi::Value async(const Napi::CallbackInfo& info, const char* name, std::function<void(model::ModelBackend&)> body,
                    std::function<Napi::Value(Napi::Env)> complete = nullptr) {
    return context_async(info.Env(), state(), name, std::move(body), std::move(complete));
  }

  // A state change: at once when idle (errors thrown here), else queued behind the running work.
  Napi::Value now_or_queued(const Napi::CallbackInfo& info, const char* name, std::function<void(model::ModelBackend&)> body) {
    auto st = state();
    if (st->strand->busy()) return context_async(info.Env(), st, name, std::move(body));
    {
      std::lock_guard<std::mutex> lock(st->mu);
      model::ModelBackend& m = st->engine();
      m.bind_thread();
      body(m);
    }
    st->sync_position();
    return resolved_promise(info.Env());
  }

  // A read with a result: only on an idle context (never waits on the JS thread).
  template <typename Fn>
  auto now(const char* what, Fn fn) {
    auto st = state();
    require_idle(*st, what);
    std::lock_guard<std::mutex> lock(st->mu);
    model::ModelBackend& m = st->engine();
    m.bind_thread();
    return fn(m);
  }

  const model::ModelBackend& engine_ro() const {
    auto st = state();
    if (!st->backend) throw DisposedError("model context");
    return *st->backend;
  }

  // prefill(tokens) -> Promise<void>: appends the tokens to the cache.
  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto tokens = read_tokens(require_arg(info, 0, "tokens"), "tokens");
      return async(info, "tensafe.model.prefill",
                   [tokens](model::ModelBackend& m) { m.prefill(tokens.data(), static_cast<int>(tokens.size())); });
    });
  }

  // decodeStep(token) -> Promise<void>
  Napi::Value DecodeStep(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      int32_t t = static_cast<int32_t>(require_int(require_arg(info, 0, "token"), "token", INT32_MIN, INT32_MAX));
      return async(info, "tensafe.model.decodeStep", [t](model::ModelBackend& m) { m.decode_step(t); });
    });
  }

  // lmHead() -> Promise<void>: logits from the current hidden state.
  Napi::Value LmHead(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return async(info, "tensafe.model.lmHead", [](model::ModelBackend& m) { m.lm_head(); });
    });
  }

  // forward(tokens) -> Promise<Float32Array>: prefill + LM head, the last token's logits.
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto tokens = read_tokens(require_arg(info, 0, "tokens"), "tokens");
      auto out = std::make_shared<std::vector<float>>();
      return async(
          info, "tensafe.model.forward",
          [tokens, out](model::ModelBackend& m) {
            m.prefill(tokens.data(), static_cast<int>(tokens.size()));
            m.lm_head();
            out->resize(static_cast<size_t>(m.config().vocab_size));
            m.read_logits(out->data());
          },
          [out](Napi::Env e) -> Napi::Value { return to_f32(e, *out); });
    });
  }

  // step(tokens, sampling?) -> Promise<number>: forward of the tokens (a prompt or the last
  // sampled token), LM head, sampling; the next token id.
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      Napi::Value tv = require_arg(info, 0, "tokens");
      std::vector<int32_t> tokens =
          tv.IsNumber() ? std::vector<int32_t>{static_cast<int32_t>(require_int(tv, "tokens", INT32_MIN, INT32_MAX))}
                        : read_tokens(tv, "tokens");
      model::SamplingOptions s = read_sampling(info.Length() > 1 ? info[1] : info.Env().Undefined(), "sampling");
      auto next = std::make_shared<int32_t>(0);
      return async(
          info, "tensafe.model.step",
          [tokens, s, next](model::ModelBackend& m) {
            m.prefill(tokens.data(), static_cast<int>(tokens.size()));
            m.lm_head();
            *next = m.sample(s);
          },
          [next](Napi::Env e) -> Napi::Value { return Napi::Number::New(e, *next); });
    });
  }

  // generate(prompt, { maxNewTokens, sampling, stopTokens, timing }) -> Promise<{ tokens, ... }>
  // The whole loop in native code (what the benchmark times): prefill, then per token
  // forward -> LM head -> sampling. With timing, each stage is synchronised and timed.
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto prompt = read_tokens(require_arg(info, 0, "prompt"), "prompt");
      Napi::Object o = info.Length() > 1 && !info[1].IsUndefined() ? require_object(info[1], "options")
                                                                     : Napi::Object::New(env);
      const int max_new = static_cast<int>(optional_int(o, "maxNewTokens", "options.maxNewTokens", 1, 1 << 20, 16));
      model::SamplingOptions s = read_sampling(o.Get("sampling"), "options.sampling");
      const bool timing = optional_bool(o, "timing", "options.timing", false);
      std::vector<int32_t> stop;
      if (has_key(o, "stopTokens")) {
        Napi::Value sv = o.Get("stopTokens");
        if (!(sv.IsArray() && sv.As<Napi::Array>().Length() == 0)) stop = read_tokens(sv, "options.stopTokens");
      }
      struct Result {
        std::vector<int32_t> tokens;
        std::vector<double> forward_ms, lm_head_ms, sampling_ms;
        double prefill_ms = 0, total_ms = 0, decode_ms = 0;
      };
      auto r = std::make_shared<Result>();
      return async(
          info, "tensafe.model.generate",
          [prompt, max_new, s, timing, stop, r](model::ModelBackend& m) {
            auto t_all = Clock::now();
            auto stage = [&](auto&& fn, std::vector<double>* sink) {
              if (!timing) return fn();
              auto t0 = Clock::now();
              fn();
              m.synchronize();
              if (sink) sink->push_back(ms_since(t0));
            };
            auto t0 = Clock::now();
            m.prefill(prompt.data(), static_cast<int>(prompt.size()));
            m.lm_head();
            int32_t next = m.sample(s);
            m.synchronize();
            r->prefill_ms = ms_since(t0);
            r->tokens.push_back(next);
            auto t_dec = Clock::now();
            for (int i = 1; i < max_new; ++i) {
              if (std::find(stop.begin(), stop.end(), next) != stop.end()) break;
              stage([&] { m.decode_step(next); }, &r->forward_ms);
              stage([&] { m.lm_head(); }, &r->lm_head_ms);
              stage([&] { next = m.sample(s); }, &r->sampling_ms);
              r->tokens.push_back(next);
            }
            m.synchronize();
            r->decode_ms = ms_since(t_dec);
            r->total_ms = ms_since(t_all);
          },
          [r](Napi::Env e) -> Napi::Value {
            Napi::Object out = Napi::Object::New(e);
            auto t = Napi::Int32Array::New(e, r->tokens.size());
            std::copy(r->tokens.begin(), r->tokens.end(), t.Data());
            out.Set("tokens", t);
            out.Set("prefillMs", r->prefill_ms);
            out.Set("decodeMs", r->decode_ms);
            out.Set("totalMs", r->total_ms);
            auto arr = [&](const std::vector<double>& v) {
              auto a = Napi::Float64Array::New(e, v.size());
              std::copy(v.begin(), v.end(), a.Data());
              return a;
            };
            if (!r->forward_ms.empty() || !r->lm_head_ms.empty()) {
              out.Set("forwardMs", arr(r->forward_ms));
              out.Set("lmHeadMs", arr(r->lm_head_ms));
              out.Set("samplingMs", arr(r->sampling_ms));
            }
            return out;
          });
    });
  }

  // sample(sampling?) -> number, from the current logits (after lmHead()).
  Napi::Value Sample(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      model::SamplingOptions s = read_sampling(info.Length() > 0 ? info[0] : info.Env().Undefined(), "sampling");
      return Napi::Number::New(info.Env(), now("sample()", [&](model::ModelBackend& m) { return m.sample(s); }));
    });
  }

  Napi::Value Hidden(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return now("hidden()", [&](model::ModelBackend& m) {
        auto a = Napi::Float32Array::New(info.Env(), static_cast<size_t>(m.config().hidden_size));
        m.read_hidden(a.Data());
        return a;
      });
    });
  }

  Napi::Value Logits(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return now("logits()", [&](model::ModelBackend& m) {
        auto a = Napi::Float32Array::New(info.Env(), static_cast<size_t>(m.config().vocab_size));
        m.read_logits(a.Data());
        return a;
      });
    });
  }

  // A hidden-sized vector handed to the context (copied now, applied in the context's order).
  Napi::Value with_hidden_vector(const Napi::CallbackInfo& info, const char* arg, const char* name,
                                 void (*apply)(model::ModelBackend&, const float*)) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto v = require_float32_array(require_arg(info, 0, arg), arg, static_cast<size_t>(engine_ro().config().hidden_size));
      auto copy = std::make_shared<std::vector<float>>(v.Data(), v.Data() + v.ElementLength());
      return now_or_queued(info, name, [copy, apply](model::ModelBackend& m) { apply(m, copy->data()); });
    });
  }

  // addToHidden(delta: Float32Array) -> Promise<void>: hidden += delta (before lmHead()).
  Napi::Value AddToHidden(const Napi::CallbackInfo& info) {
    return with_hidden_vector(info, "delta", "tensafe.model.addToHidden", [](model::ModelBackend& m, const float* d) {
      m.add_to_hidden(d, model::MemorySpace::Host);
    });
  }

  // setHidden(h: Float32Array) -> Promise<void>: replaces the hidden state before lmHead().
  Napi::Value SetHidden(const Napi::CallbackInfo& info) {
    return with_hidden_vector(info, "hidden", "tensafe.model.setHidden", [](model::ModelBackend& m, const float* h) {
      m.set_hidden(h, model::MemorySpace::Host);
    });
  }

  Napi::Value Reset(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return now_or_queued(info, "tensafe.model.reset", [](model::ModelBackend& m) { m.reset(); });
    });
  }

  Napi::Value Trim(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      int n = static_cast<int>(require_int(require_arg(info, 0, "length"), "length", 0, 1 << 20));
      return now_or_queued(info, "tensafe.model.trim", [n](model::ModelBackend& m) { m.trim(n); });
    });
  }

  Napi::Value SetSamplingSeed(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      uint64_t seed = require_u64(require_arg(info, 0, "seed"), "seed");
      return now_or_queued(info, "tensafe.model.setSamplingSeed", [seed](model::ModelBackend& m) { m.set_sampling_seed(seed); });
    });
  }

  // embed(tokens) -> Float32Array (n x d): the embedding rows (split mode: the client's part).
  Napi::Value Embed(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto tokens = read_tokens(require_arg(info, 0, "tokens"), "tokens");
      const size_t d = static_cast<size_t>(engine_ro().config().hidden_size);
      std::vector<float> rows(tokens.size() * d);
      now("embed()", [&](model::ModelBackend& m) {
        m.embed(tokens.data(), static_cast<int>(tokens.size()), rows.data());
        return 0;
      });
      return to_f32(info.Env(), rows);
    });
  }

  // prefillEmbeddings(rows: Float32Array, n) -> Promise<void>: positions from embedding rows.
  Napi::Value PrefillEmbeddings(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const int d = engine_ro().config().hidden_size;
      auto rows = require_float32_array(require_arg(info, 0, "rows"), "rows", 0, false);
      const int n = static_cast<int>(require_int(require_arg(info, 1, "n"), "n", 1, 1 << 20));
      if (rows.ElementLength() != static_cast<size_t>(n) * static_cast<size_t>(d))
        throw_range("rows must hold n x hiddenSize = " + std::to_string(static_cast<size_t>(n) * d) + " values, got " +
                    std::to_string(rows.ElementLength()));
      auto copy = std::make_shared<std::vector<float>>(rows.Data(), rows.Data() + rows.ElementLength());
      return async(info, "tensafe.model.prefillEmbeddings",
                   [copy, n](model::ModelBackend& m) { m.prefill_embeddings(copy->data(), n); });
    });
  }

  static Napi::Value require_key(const Napi::Object& o, const char* key, const std::string& owner) {
    if (!has_key(o, key)) throw_type(owner + "." + key + " is required");
    return o.Get(key);
  }

  static std::vector<model::LoraAdapter> read_adapters(const Napi::Value& v) {
    if (!v.IsArray()) throw_type("adapters must be an array");
    auto arr = v.As<Napi::Array>();
    std::vector<model::LoraAdapter> list;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const std::string n = "adapters[" + std::to_string(i) + "]";
      Napi::Object o = require_object(arr.Get(i), n);
      model::LoraAdapter a;
      a.layer = static_cast<int>(require_int(require_key(o, "layer", n), n + ".layer", 0, 1 << 20));
      a.target = model::parse_projection(require_string(require_key(o, "target", n), n + ".target"));
      a.rank = static_cast<int>(require_int(require_key(o, "rank", n), n + ".rank", 1, 4096));
      a.scaling = static_cast<float>(optional_finite(o, "scaling", n + ".scaling", 1.0));
      auto fa = require_float32_array(require_key(o, "a", n), n + ".a");
      auto fb = require_float32_array(require_key(o, "b", n), n + ".b");
      a.a.assign(fa.Data(), fa.Data() + fa.ElementLength());
      a.b.assign(fb.Data(), fb.Data() + fb.ElementLength());
      list.push_back(std::move(a));
    }
    return list;
  }

  // setLayerAdapters([{ layer, target, rank, scaling, a: Float32Array, b: Float32Array }])
  Napi::Value SetLayerAdapters(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto list = std::make_shared<std::vector<model::LoraAdapter>>(read_adapters(require_arg(info, 0, "adapters")));
      return now_or_queued(info, "tensafe.model.setLayerAdapters",
                           [list](model::ModelBackend& m) { m.set_layer_adapters(std::move(*list)); });
    });
  }

  // setHookLora(adapters): the same LoRA pairs applied through the projection-hook interface
  // (the path an encrypted LoRA takes: the hook sees the projection's input and adds its delta),
  // counting the calls in `hookCalls`. For tests of the hook plumbing; [] removes the hook.
  Napi::Value SetHookLora(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto list = std::make_shared<std::vector<model::LoraAdapter>>(read_adapters(require_arg(info, 0, "adapters")));
      const model::Qwen2Config& c = engine_ro().config();
      auto sites = std::make_shared<std::vector<model::HookSite>>();
      for (size_t i = 0; i < list->size(); ++i) {
        const auto& a = (*list)[i];
        const size_t in = static_cast<size_t>(model::projection_in_dim(c, a.target));
        const size_t out = static_cast<size_t>(model::projection_out_dim(c, a.target));
        if (a.a.size() != static_cast<size_t>(a.rank) * in || a.b.size() != out * static_cast<size_t>(a.rank))
          throw_range("adapters[" + std::to_string(i) + "]: a must be rank x " + std::to_string(in) + ", b " +
                      std::to_string(out) + " x rank");
        sites->push_back({a.layer, a.target});
      }
      auto calls = hook_calls_;
      calls->store(0);
      auto hook = std::make_shared<model::ProjectionHook>();
      if (!list->empty()) {
        *hook = [list, calls](const model::ProjectionHookArgs& h) {
          calls->fetch_add(1);
          for (const auto& a : *list) {
            if (a.layer != h.layer || a.target != h.target) continue;
            std::vector<double> ax(static_cast<size_t>(a.rank), 0.0);
            for (int r = 0; r < a.rank; ++r)
              for (int i = 0; i < h.in_dim; ++i) ax[static_cast<size_t>(r)] += double(a.a[static_cast<size_t>(r) * h.in_dim + i]) * h.input[i];
            for (int o = 0; o < h.out_dim; ++o) {
              double s = 0.0;
              for (int r = 0; r < a.rank; ++r) s += double(a.b[static_cast<size_t>(o) * a.rank + r]) * ax[static_cast<size_t>(r)];
              h.output[o] += a.scaling * static_cast<float>(s);
            }
          }
        };
      }
      return now_or_queued(info, "tensafe.model.setHookLora", [hook, sites](model::ModelBackend& m) {
        m.set_projection_hook(std::move(*hook), std::move(*sites));
      });
    });
  }

  Napi::Value HookCalls(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(hook_calls_->load()));
  }

  // layerAdapterPath: where the installed plaintext adapters run (ModelBackend::layer_adapter_path:
  // CUDA "cuda-resident" | "host" | "mixed" | "none"; the CPU backend "host"). Needs an idle context.
  Napi::Value LayerAdapterPath(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const char* path = now("layerAdapterPath", [](model::ModelBackend& m) { return m.layer_adapter_path(); });
      return Napi::String::New(info.Env(), path);
    });
  }

  Napi::Value RunWithSites(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return run_with_sites(info, state()); });
  }

  // dispose() -> Promise<void>: the context's memory is freed off the JS thread once the work
  // queued before has run (the promise settles then); later calls throw ERR_TENSAFE_DISPOSED.
  // ERR_TENSAFE_BUSY while HE-LoRA generators still run on it.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (!st_ || st_->disposed) return resolved_promise(env);
      if (st_->generators > 0)
        throw BusyError("this context has " + std::to_string(st_->generators) + " live HeLoraGenerator" +
                        (st_->generators == 1 ? "" : "s") + "; dispose them before the context");
      release_accounting(env);
      auto holder = std::make_shared<std::shared_ptr<ContextState>>(st_);
      return run_on_strand(
          env, *st_->strand, "tensafe.model.disposeContext",
          [holder]() {
            std::shared_ptr<ContextState> st = std::move(*holder);
            std::unique_ptr<model::ModelBackend> b;
            {
              std::lock_guard<std::mutex> lock(st->mu);
              b = std::move(st->backend);
            }
            if (b) b->bind_thread();
            b.reset();  // KV cache and scratch (device memory on CUDA) freed here, off the JS thread
          },
          nullptr);
    });
  }

  Napi::Value Position(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), state()->position); });
  }
  Napi::Value ContextLength(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), engine_ro().context_length()); });
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), engine_ro().backend_name()); });
  }
  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::String::New(info.Env(), model::dtype_name(engine_ro().weight_dtype()));
    });
  }
  Napi::Value Config(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return config_to_js(info.Env(), engine_ro().config()); });
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const int d = engine_ro().model().device();
      return d < 0 ? info.Env().Null() : Napi::Number::New(info.Env(), d);
    });
  }
  Napi::Value WeightBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(engine_ro().weight_bytes_per_token()));
    });
  }
  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(engine_ro().memory_bytes())); });
  }
  Napi::Value Busy(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), state()->strand->busy()); });
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !st_ || st_->disposed); }

  std::shared_ptr<ContextState> st_;
  std::shared_ptr<std::atomic<int64_t>> hook_calls_ = std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace

void require_idle(const ContextState& st, const char* what) {
  if (st.strand->busy())
    throw BusyError(std::string(what) + " needs an idle context, and this one is running " +
                    (st.busy_what.empty() ? std::string("work") : st.busy_what) +
                    (st.strand->queued() ? " (" + std::to_string(st.strand->queued()) + " more queued)" : std::string()) +
                    "; await the pending calls first");
}

Napi::Promise context_async(Napi::Env env, const std::shared_ptr<ContextState>& st, const char* name,
                            std::function<void(model::ModelBackend&)> body, std::function<Napi::Value(Napi::Env)> complete) {
  // Only the work holds the context strongly (released on the pool thread when it is done);
  // the JS-thread hooks hold it weakly, so a context collected meanwhile is freed off the JS thread.
  auto holder = std::make_shared<std::shared_ptr<ContextState>>(st);
  std::weak_ptr<ContextState> weak = st;
  if (!st->strand->busy()) st->busy_what = name;  // starts at once
  return run_on_strand(
      env, *st->strand, name,
      [holder, body = std::move(body)]() {
        std::shared_ptr<ContextState> s = std::move(*holder);
        std::lock_guard<std::mutex> lock(s->mu);
        model::ModelBackend& m = s->engine();
        m.bind_thread();
        body(m);
      },
      std::move(complete),
      [weak]() {
        if (auto s = weak.lock()) {
          s->sync_position();
          s->busy_what.clear();
        }
      });
}

std::shared_ptr<ContextState> unwrap_context(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kContextTag))
    throw ArgumentTypeError(name + " must be a model context (from model.createContext())");
  return ContextWrap::Unwrap(v.As<Napi::Object>())->state();
}

void define_context_class(Napi::Env env, Napi::Object exports) {
  Napi::Function f = ContextWrap::define(env);
  context_ctor = new Napi::FunctionReference(Napi::Persistent(f));
  context_ctor->SuppressDestruct();
  exports.Set("ModelContext", f);
}

Napi::Object new_context_object(Napi::Env env, std::shared_ptr<ContextState> st) {
  return context_ctor->New({Napi::External<std::shared_ptr<ContextState>>::New(env, &st)});
}

}  // namespace tensafe::napi
