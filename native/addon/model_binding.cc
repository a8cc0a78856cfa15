// Bindings of the Qwen2 decoder's models: the ModelCpu class and, in CUDA builds, ModelCuda (the
// same class over load_cuda_model): a loaded model (weights, loaded once, shared by its contexts)
// whose createContext() makes ModelContext objects (model_context_binding.cc), plus free
// functions for configs, safetensors files, the reference sampler and the LM-head benchmark.
// Loading, context creation and disposal run off the JS thread.
#include "model_binding.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "common/thread_pool.h"
#include "model/config.h"
#include "model/cpu_kernels.h"
#include "model/safetensors.h"
#include "model/sampling.h"
#include "model/weights.h"
#include "napi_util.h"

namespace tensafe::napi {

using model::DType;
using Clock = std::chrono::steady_clock;

Napi::Object config_to_js(Napi::Env env, const model::Qwen2Config& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", c.name);
  o.Set("modelType", c.model_type);
  o.Set("architecture", c.architecture);
  o.Set("hiddenSize", c.hidden_size);
  o.Set("numHiddenLayers", c.num_hidden_layers);
  o.Set("numAttentionHeads", c.num_attention_heads);
  o.Set("numKeyValueHeads", c.num_key_value_heads);
  o.Set("headDim", c.head_dim);
  o.Set("intermediateSize", c.intermediate_size);
  o.Set("vocabSize", c.vocab_size);
  o.Set("maxPositionEmbeddings", c.max_position_embeddings);
  o.Set("rmsNormEps", c.rms_norm_eps);
  o.Set("ropeTheta", c.rope_theta);
  o.Set("tieWordEmbeddings", c.tie_word_embeddings);
  o.Set("torchDtype", c.torch_dtype);
  o.Set("bosTokenId", c.bos_token_id);
  Napi::Array eos = Napi::Array::New(env, c.eos_token_ids.size());
  for (size_t i = 0; i < c.eos_token_ids.size(); ++i) eos.Set(static_cast<uint32_t>(i), c.eos_token_ids[i]);
  o.Set("eosTokenIds", eos);
  o.Set("parameterCount", Napi::Number::New(env, static_cast<double>(c.parameter_count())));
  return o;
}

std::vector<int32_t> read_tokens(const Napi::Value& v, const std::string& name) {
  std::vector<int32_t> out;
  if (v.IsTypedArray()) {
    auto a = require_int32_array(v, name);
    out.assign(a.Data(), a.Data() + a.ElementLength());
  } else if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    out.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i)
      out.push_back(static_cast<int32_t>(require_int(a.Get(i), name + "[" + std::to_string(i) + "]", INT32_MIN, INT32_MAX)));
  } else {
    throw_type(name + " must be an Int32Array or an array of token ids");
  }
  if (out.empty()) throw_range(name + " must hold at least one token id");
  return out;
}

model::SamplingOptions read_sampling(const Napi::Value& v, const std::string& name) {
  model::SamplingOptions s;
  if (v.IsUndefined() || v.IsNull()) return s;
  Napi::Object o = require_object(v, name);
  s.temperature = static_cast<float>(optional_finite(o, "temperature", name + ".temperature", 0.0));
  s.top_k = static_cast<int>(optional_int(o, "topK", name + ".topK", 0, 1 << 24, 0));
  s.top_p = static_cast<float>(optional_finite(o, "topP", name + ".topP", 1.0));
  try {
    s.validate();
  } catch (const ArgumentRangeError& e) {
    throw ArgumentRangeError(name + ": " + e.what());
  }
  return s;
}


namespace {

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Distinguishes our model objects from any other JS object (napi type tags).
const napi_type_tag kModelTag = {0x7e5a5afe0d31c0deULL, 0x51a2b3c4d5e6f708ULL};

using ModelFactory = std::function<std::shared_ptr<model::Model>(const model::WeightSource&, const model::ModelOptions&)>;

struct ClassData {
  std::string name;
  ModelFactory factory;
  bool cuda = false;
  Napi::FunctionReference ctor;
};

// External memory reported to V8 for host buffers (the CPU backend's weights and KV caches), so
// that the GC sees what a notebook holds; device memory is not V8's concern.
int64_t host_bytes(const model::Model& m, uint64_t bytes) { return m.device() < 0 ? static_cast<int64_t>(bytes) : 0; }

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env, ClassData* data) {
    return DefineClass(
        env, data->name.c_str(),
        {
            StaticMethod("load", &ModelWrap::Load, napi_default, data),
            InstanceMethod("createContext", &ModelWrap::CreateContext),
            InstanceMethod("createContextSync", &ModelWrap::CreateContextSync),
            InstanceMethod("contextBytes", &ModelWrap::ContextBytes),
            InstanceMethod("dispose", &ModelWrap::Dispose),
            InstanceAccessor("backend", &ModelWrap::Backend, nullptr),
            InstanceAccessor("dtype", &ModelWrap::Dtype, nullptr),
            InstanceAccessor("config", &ModelWrap::Config, nullptr),
            InstanceAccessor("contextLength", &ModelWrap::ContextLength, nullptr),
            InstanceAccessor("device", &ModelWrap::Device, nullptr),
            InstanceAccessor("weightBytesPerToken", &ModelWrap::WeightBytes, nullptr),
            InstanceAccessor("memoryBytes", &ModelWrap::MemoryBytes, nullptr),
            InstanceAccessor("contexts", &ModelWrap::Contexts, nullptr),
            InstanceAccessor("disposed", &ModelWrap::Disposed, nullptr),
        },
        data);
  }

  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    auto* data = static_cast<ClassData*>(info.Data());
    if (info.Length() < 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(env, std::string("use ") + (data ? data->name : "the model class") +
                                          ".load(options) to create a model");
    st_ = *info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data();
    if (st_->external_bytes) Napi::MemoryManagement::AdjustExternalMemory(env, st_->external_bytes);
    info.This().As<Napi::Object>().TypeTag(&kModelTag);
  }
  ~ModelWrap() override {
    // Collected without dispose(): give the reported bytes back (the weights go with the last
    // context that still holds them).
    if (st_ && st_->model && st_->external_bytes) Napi::MemoryManagement::AdjustExternalMemory(Env(), -st_->external_bytes);
  }

 private:
  const model::Model& model() const {
    if (!st_->model) throw DisposedError("model");
    return *st_->model;
  }

  // ModelXxx.load({ preset | dir, numLayers, seed, dtype, contextLength, device }) -> Promise<ModelXxx>
  static Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto* data = static_cast<ClassData*>(info.Data());
    return guard(env, [&]() -> Napi::Value {
      Napi::Object o = require_object(require_arg(info, 0, "options"), "options");
      const bool has_preset = has_key(o, "preset"), has_dir = has_key(o, "dir");
      if (has_preset == has_dir) throw_type("options must name exactly one of preset or dir");
      std::string preset = has_preset ? require_string(o.Get("preset"), "options.preset") : "";
      std::string dir = has_dir ? require_string(o.Get("dir"), "options.dir") : "";
      if (has_preset && !model::Qwen2Config::is_preset(preset)) model::Qwen2Config::preset(preset);  // throws the list
      // numLayers: a preset's shape with only its first layers (the CPU default of the pipeline
      // keeps 4 of the 1.5B shape's 28), named so.
      const int layers = static_cast<int>(optional_int(o, "numLayers", "options.numLayers", 1, 1024, 0));
      if (layers && has_dir) throw_range("options.numLayers applies to presets only");
      model::Qwen2Config preset_cfg;
      if (has_preset) {
        preset_cfg = model::Qwen2Config::preset(preset);
        if (layers) {
          if (layers > preset_cfg.num_hidden_layers)
            throw_range("options.numLayers must be <= " + std::to_string(preset_cfg.num_hidden_layers) + " for preset " + preset);
          preset_cfg.name = preset + " shape, " + std::to_string(layers) + " of " +
                            std::to_string(preset_cfg.num_hidden_layers) + " layers (random weights)";
          preset_cfg.num_hidden_layers = layers;
        }
      }
      uint64_t seed = has_key(o, "seed") ? require_u64(o.Get("seed"), "options.seed") : 0;
      model::ModelOptions opts;
      opts.context_length = static_cast<int>(optional_int(o, "contextLength", "options.contextLength", 1, 1 << 20, 4096));
      if (has_key(o, "dtype"))
        opts.weight_dtype = model::parse_dtype(require_enum(o.Get("dtype"), "options.dtype", {"f32", "f16", "bf16"}),
                                               "options.dtype");
      if (has_key(o, "device")) {
        if (!data->cuda) throw_range("options.device selects a CUDA device; it does not apply to " + data->name);
        opts.device = static_cast<int>(require_int(o.Get("device"), "options.device", 0, 1023));
      }
      auto result = std::make_shared<std::shared_ptr<ModelState>>();
      ModelFactory factory = data->factory;
      return PromiseWorker::run(
          env, "tensafe.model.load",
          [=]() {
            model::WeightSource src;
            if (!dir.empty()) {
              src.host = model::load_pretrained(dir);
              src.config = src.host->config;
            } else {
              src.config = preset_cfg;
              src.seed = seed;
            }
            auto st = std::make_shared<ModelState>();
            auto m = factory(src, opts);
            st->external_bytes = host_bytes(*m, m->memory_bytes());
            st->model = std::move(m);
            *result = st;
          },
          [=](Napi::Env e) -> Napi::Value {
            return data->ctor.New({Napi::External<std::shared_ptr<ModelState>>::New(e, result.get())});
          });
    });
  }

  // { contextLength?, seed? } of createContext (contextLength defaults to the model's).
  static std::pair<int, uint64_t> read_context_options(const Napi::CallbackInfo& info, const model::Model& m) {
    Napi::Object o = info.Length() > 0 && !info[0].IsUndefined() ? require_object(info[0], "options") : Napi::Object::New(info.Env());
    const int n = static_cast<int>(optional_int(o, "contextLength", "options.contextLength", 1, m.max_context_length(),
                                                m.max_context_length()));
    const uint64_t seed = has_key(o, "seed") ? require_u64(o.Get("seed"), "options.seed") : 0;
    return {n, seed};
  }

  // createContext({ contextLength?, seed? }) -> Promise<ModelContext>: KV cache and scratch of
  // its own, allocated off the JS thread. contextLength defaults to the model's.
  Napi::Value CreateContext(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto m = st_->model;
      if (!m) throw DisposedError("model");
      const auto [n, seed] = read_context_options(info, *m);
      auto made = std::make_shared<std::unique_ptr<model::ModelBackend>>();
      auto owner = st_;
      owner->live_contexts++;  // counts from now: the model cannot be disposed under a context being made
      auto created = std::make_shared<bool>(false);
      auto once = std::make_shared<Strand>();  // a strand of its own: only for the settled hook
      return run_on_strand(
          env, *once, "tensafe.model.createContext",
          [m, n, seed, made]() {
            auto ctx = m->create_context(n);  // binds the model's device
            ctx->set_sampling_seed(seed);
            *made = std::move(ctx);
          },
          [owner, made, created](Napi::Env e) -> Napi::Value {
            auto st = std::make_shared<ContextState>();
            st->owner = owner;
            st->external_bytes = host_bytes((*made)->model(), (*made)->memory_bytes());
            st->backend = std::move(*made);
            *created = true;
            return new_context_object(e, std::move(st));
          },
          [owner, created]() {
            if (!*created) owner->live_contexts--;  // failed: nothing to dispose later
          });
    });
  }

  // createContextSync(options) -> ModelContext: the same, allocated on the JS thread (cheap: the
  // KV cache is allocated, not written; for the TS Model's lazily made default context).
  Napi::Value CreateContextSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      auto m = st_->model;
      if (!m) throw DisposedError("model");
      const auto [n, seed] = read_context_options(info, *m);
      auto st = std::make_shared<ContextState>();
      st->backend = m->create_context(n);
      st->backend->set_sampling_seed(seed);
      st->owner = st_;
      st->external_bytes = host_bytes(*m, st->backend->memory_bytes());
      st_->live_contexts++;
      return new_context_object(env, std::move(st));
    });
  }

  // contextBytes(contextLength?) -> bytes a context of that length holds (KV cache + scratch).
  Napi::Value ContextBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const model::Model& m = model();
      const int n = info.Length() > 0 && !info[0].IsUndefined()
                        ? static_cast<int>(require_int(info[0], "contextLength", 1, m.max_context_length()))
                        : m.max_context_length();
      return Napi::Number::New(info.Env(), static_cast<double>(m.context_bytes(n)));
    });
  }

  // dispose() -> Promise<void>: frees the weights (off the JS thread; the promise settles when
  // they are freed). ERR_TENSAFE_BUSY while contexts of this model are alive.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (!st_->model) return resolved_promise(env);
      if (st_->live_contexts > 0)
        throw BusyError("this model has " + std::to_string(st_->live_contexts) + " live context" +
                        (st_->live_contexts == 1 ? "" : "s") + "; dispose them before the model");
      if (st_->external_bytes) Napi::MemoryManagement::AdjustExternalMemory(env, -st_->external_bytes);
      auto holder = std::make_shared<std::shared_ptr<const model::Model>>(std::move(st_->model));
      st_->model = nullptr;
      return PromiseWorker::run(
          env, "tensafe.model.dispose",
          [holder]() {
            if (*holder) (*holder)->bind_thread();
            holder->reset();
          },
          nullptr);
    });
  }

  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), model().backend_name()); });
  }
  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), model::dtype_name(model().weight_dtype())); });
  }
  Napi::Value Config(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return config_to_js(info.Env(), model().config()); });
  }
  Napi::Value ContextLength(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), model().max_context_length()); });
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      const int d = model().device();
      return d < 0 ? info.Env().Null() : Napi::Number::New(info.Env(), d);
    });
  }
  Napi::Value WeightBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(model().weight_bytes_per_token()));
    });
  }
  Napi::Value MemoryBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(model().memory_bytes())); });
  }
  Napi::Value Contexts(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), st_->live_contexts); }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !st_->model); }

  std::shared_ptr<ModelState> st_;
};

// ---- free functions --------------------------------------------------------------------------

Napi::Value ModelPresets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto names = model::Qwen2Config::preset_names();
    Napi::Array out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("preset", names[i]);
      o.Set("config", config_to_js(env, model::Qwen2Config::preset(names[i])));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

// modelConfig(presetOrDir) -> config object (reads config.json only).
Napi::Value ModelConfig(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::string s = require_string(require_arg(info, 0, "source"), "source");
    if (model::Qwen2Config::is_preset(s)) return config_to_js(env, model::Qwen2Config::preset(s));
    return config_to_js(env, model::Qwen2Config::from_directory(s));
  });
}

// readSafetensors(path) -> { metadata, tensors: { name: { dtype, shape, data: Float32Array } } }
// Float tensors only are converted (F32/F16/BF16); other dtypes are listed without data.
Napi::Value ReadSafetensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::string path = require_string(require_arg(info, 0, "path"), "path");
    auto f = model::SafetensorsFile::open(path);
    Napi::Object out = Napi::Object::New(env);
    Napi::Object meta = Napi::Object::New(env);
    for (const auto& kv : f->metadata()) meta.Set(kv.first, kv.second);
    out.Set("metadata", meta);
    Napi::Object tensors = Napi::Object::New(env);
    for (const auto& e : f->entries()) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("dtype", e.dtype_name);
      Napi::Array shape = Napi::Array::New(env, e.shape.size());
      for (size_t i = 0; i < e.shape.size(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(e.shape[i])));
      t.Set("shape", shape);
      if (e.supported) {
        const size_t n = e.nbytes / model::dtype_size(e.dtype);
        auto a = Napi::Float32Array::New(env, n);
        for (size_t i = 0; i < n; ++i) {
          float v;
          if (e.dtype == DType::F32) std::memcpy(&v, static_cast<const char*>(e.data) + 4 * i, 4);
          else {
            uint16_t h;
            std::memcpy(&h, static_cast<const char*>(e.data) + 2 * i, 2);
            v = e.dtype == DType::BF16 ? model::bf16_to_float(h) : model::f16_to_float(h);
          }
          a.Data()[i] = v;
        }
        t.Set("data", a);
      }
      tensors.Set(e.name, t);
    }
    out.Set("tensors", tensors);
    return out;
  });
}

// syntheticWeights(preset, seed) -> { name: { shape, data: Float32Array } }: the generated weights
// of a small preset exactly as the backends use them (for tests of the generator and of the
// forward against an independent implementation). Presets above 20M parameters are refused.
Napi::Value SyntheticWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::string preset = require_string(require_arg(info, 0, "preset"), "preset");
    uint64_t seed = info.Length() > 1 && !info[1].IsUndefined() ? require_u64(info[1], "seed") : 0;
    model::Qwen2Config c = model::Qwen2Config::preset(preset);
    if (c.parameter_count() > 20000000ull)
      throw_range("syntheticWeights is for small presets (<= 20M parameters); " + preset + " has " +
                  std::to_string(c.parameter_count()));
    auto w = model::make_synthetic_weights(c, seed, DType::F32);
    Napi::Object out = Napi::Object::New(env);
    auto put = [&](const model::Tensor& t) {
      Napi::Object o = Napi::Object::New(env);
      Napi::Array shape = Napi::Array::New(env, t.shape.size());
      for (size_t i = 0; i < t.shape.size(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(t.shape[i])));
      o.Set("shape", shape);
      auto a = Napi::Float32Array::New(env, t.numel());
      std::memcpy(a.Data(), t.data, t.numel() * sizeof(float));
      o.Set("data", a);
      out.Set(t.name, o);
    };
    put(w->embed_tokens);
    for (const auto& l : w->layers)
      for (const auto& t : l.tensors) put(t);
    put(w->norm);
    if (!c.tie_word_embeddings) put(w->lm_head);
    return out;
  });
}

// sampleToken(logits, sampling, u) -> number: the reference sampler of sampling.h.
Napi::Value SampleToken(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto logits = require_float32_array(require_arg(info, 0, "logits"), "logits");
    if (logits.ElementLength() == 0) throw_range("logits must not be empty");
    model::SamplingOptions s = read_sampling(info.Length() > 1 ? info[1] : env.Undefined(), "sampling");
    double u = info.Length() > 2 && !info[2].IsUndefined() ? require_finite(info[2], "u") : 0.0;
    if (u < 0.0 || u >= 1.0) throw_range("u must be in [0, 1)");
    return Napi::Number::New(env, model::sample_token(logits.Data(), static_cast<int>(logits.ElementLength()), s, u));
  });
}

// samplingUniform(seed, step) -> number: the draw the backends use for the step-th sample.
Napi::Value SamplingUniform(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    uint64_t seed = require_u64(require_arg(info, 0, "seed"), "seed");
    uint64_t step = require_u64(require_arg(info, 1, "step"), "step");
    return Napi::Number::New(env, model::sampling_uniform01(seed, step));
  });
}

// lmHeadBench({ rows, cols, mode: 'naive' | 'threads', runs, warmup, dtype }) -> Promise<{ ms[] }>
// Times y = W h for a random float32 W [rows, cols] (the LM head shape by default): 'naive' is a
// plain scalar loop on one thread, 'threads' our SIMD multi-threaded kernel; both results are
// compared with each other before timing, so a wrong fast path cannot report a time.
Napi::Value LmHeadBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = info.Length() > 0 && !info[0].IsUndefined() ? require_object(info[0], "options") : Napi::Object::New(env);
    const int rows = static_cast<int>(optional_int(o, "rows", "options.rows", 1, 1 << 22, 151936));
    const int cols = static_cast<int>(optional_int(o, "cols", "options.cols", 1, 1 << 16, 1536));
    const int runs = static_cast<int>(optional_int(o, "runs", "options.runs", 1, 10000, 5));
    const int warmup = static_cast<int>(optional_int(o, "warmup", "options.warmup", 0, 1000, 1));
    const std::string mode = has_key(o, "mode") ? require_enum(o.Get("mode"), "options.mode", {"naive", "threads"}) : "threads";
    auto times = std::make_shared<std::vector<double>>();
    auto max_err = std::make_shared<double>(0.0);
    return PromiseWorker::run(
        env, "tensafe.model.lmHeadBench",
        [=]() {
          std::vector<float> w(static_cast<size_t>(rows) * cols), h(static_cast<size_t>(cols)), y(static_cast<size_t>(rows)),
              yref(static_cast<size_t>(rows));
          std::mt19937_64 rng(12345);
          std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
          for (auto& v : w) v = dist(rng) * 0.02f;
          for (auto& v : h) v = dist(rng);
          model::cpu::MatRef m{w.data(), DType::F32, rows, cols};
          // Cross-check the two paths on a slice of rows before timing.
          const int check_rows = std::min(rows, 4096);
          model::cpu::MatRef part{w.data(), DType::F32, check_rows, cols};
          model::cpu::matmul_naive(part, h.data(), 1, yref.data());
          model::cpu::matmul(part, h.data(), 1, y.data());
          for (int i = 0; i < check_rows; ++i)
            *max_err = std::max(*max_err, static_cast<double>(std::fabs(y[static_cast<size_t>(i)] - yref[static_cast<size_t>(i)])));
          if (*max_err > 1e-3) throw EngineError("ERR_TENSAFE_NATIVE", "lmHeadBench: the threaded kernel disagrees with the naive loop");
          for (int i = 0; i < warmup + runs; ++i) {
            auto t0 = Clock::now();
            if (mode == "naive") model::cpu::matmul_naive(m, h.data(), 1, y.data());
            else model::cpu::matmul(m, h.data(), 1, y.data());
            if (i >= warmup) times->push_back(ms_since(t0));
          }
        },
        [=](Napi::Env e) -> Napi::Value {
          Napi::Object out = Napi::Object::New(e);
          auto a = Napi::Float64Array::New(e, times->size());
          std::copy(times->begin(), times->end(), a.Data());
          out.Set("ms", a);
          out.Set("rows", rows);
          out.Set("cols", cols);
          out.Set("mode", mode);
          out.Set("threads", mode == "naive" ? 1u : cpu_threads());
          out.Set("maxAbsDiff", *max_err);
          return out;
        });
  });
}

// modelCpuMatmul(w: Float32Array, rows, cols, x: Float32Array, n, dtype) -> Float32Array (n x rows):
// the CPU kernel (threads, SIMD, multi-token path for n > 1) on weights stored as `dtype`
// (converted from w here), for tests against a plain reference.
Napi::Value ModelCpuMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const int rows = static_cast<int>(require_int(require_arg(info, 1, "rows"), "rows", 1, 1 << 20));
    const int cols = static_cast<int>(require_int(require_arg(info, 2, "cols"), "cols", 1, 1 << 16));
    const int n = static_cast<int>(require_int(require_arg(info, 4, "n"), "n", 1, 1024));
    auto w = require_float32_array(require_arg(info, 0, "w"), "w", static_cast<size_t>(rows) * cols);
    auto x = require_float32_array(require_arg(info, 3, "x"), "x", static_cast<size_t>(n) * cols);
    DType dt = model::parse_dtype(require_enum(require_arg(info, 5, "dtype"), "dtype", {"f32", "f16", "bf16"}));
    std::vector<uint16_t> half;
    const void* data = w.Data();
    if (dt != DType::F32) {
      half.resize(w.ElementLength());
      for (size_t i = 0; i < half.size(); ++i)
        half[i] = dt == DType::BF16 ? model::float_to_bf16(w.Data()[i]) : model::float_to_f16(w.Data()[i]);
      data = half.data();
    }
    auto y = Napi::Float32Array::New(env, static_cast<size_t>(n) * rows);
    model::cpu::matmul(model::cpu::MatRef{data, dt, rows, cols}, x.Data(), n, y.Data());
    return y;
  });
}

void register_model_class(Napi::Env env, Napi::Object exports, const char* class_name, ModelFactory factory, bool cuda) {
  // Lives as long as the process: the class's static `load` and constructor refer to it.
  auto* data = new ClassData{class_name, std::move(factory), cuda, Napi::FunctionReference()};
  Napi::Function ctor = ModelWrap::define(env, data);
  data->ctor = Napi::Persistent(ctor);
  data->ctor.SuppressDestruct();
  exports.Set(class_name, ctor);
}

void Register(Napi::Env env, Napi::Object exports) {
  register_model_class(env, exports, "ModelCpu", model::load_cpu_model, false);
#if defined(TENSAFE_WITH_CUDA)
  // Same class over the CUDA backend (model/cuda/); it reports ERR_TENSAFE_BACKEND at load()
  // when the build has CUDA but the machine has no usable device.
  register_model_class(env, exports, "ModelCuda", model::load_cuda_model, true);
#endif
  define_context_class(env, exports);
  exports.Set("modelPresets", Napi::Function::New(env, ModelPresets, "modelPresets"));
  exports.Set("modelConfig", Napi::Function::New(env, ModelConfig, "modelConfig"));
  exports.Set("readSafetensors", Napi::Function::New(env, ReadSafetensors, "readSafetensors"));
  exports.Set("sampleToken", Napi::Function::New(env, SampleToken, "sampleToken"));
  exports.Set("syntheticWeights", Napi::Function::New(env, SyntheticWeights, "syntheticWeights"));
  exports.Set("samplingUniform", Napi::Function::New(env, SamplingUniform, "samplingUniform"));
  exports.Set("lmHeadBench", Napi::Function::New(env, LmHeadBench, "lmHeadBench"));
  exports.Set("modelCpuMatmul", Napi::Function::New(env, ModelCpuMatmul, "modelCpuMatmul"));
}

}  // namespace
}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(model, tensafe::napi::Register);
