// Bindings of the Qwen2 decoder: the ModelCpu class and, in CUDA builds, ModelCuda (the same
// class over create_cuda_model), plus free functions for configs, safetensors files, the reference sampler
// and the LM-head benchmark. Every long call runs in a PromiseWorker; calls on one model are
// serialised by its mutex, so a second call waits for the first instead of racing it.
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
namespace {

using model::DType;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// Distinguishes our model objects from any other JS object (napi type tags).
const napi_type_tag kModelTag = {0x7e5a5afe0d31c0deULL, 0x51a2b3c4d5e6f708ULL};

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

// Token ids from an Int32Array or an array of integers (range against the vocabulary is checked
// by the engine, which knows it).
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

struct ClassData {
  std::string name;
  ModelFactory factory;
  Napi::FunctionReference ctor;
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env, ClassData* data) {
    return DefineClass(
        env, data->name.c_str(),
        {
            StaticMethod("load", &ModelWrap::Load, napi_default, data),
            InstanceMethod("prefill", &ModelWrap::Prefill),
            InstanceMethod("decodeStep", &ModelWrap::DecodeStep),
            InstanceMethod("lmHead", &ModelWrap::LmHead),
            InstanceMethod("forward", &ModelWrap::Forward),
            InstanceMethod("step", &ModelWrap::Step),
            InstanceMethod("generate", &ModelWrap::Generate),
            InstanceMethod("sample", &ModelWrap::Sample),
            InstanceMethod("hidden", &ModelWrap::Hidden),
            InstanceMethod("logits", &ModelWrap::Logits),
            InstanceMethod("addToHidden", &ModelWrap::AddToHidden),
            InstanceMethod("setHidden", &ModelWrap::SetHidden),
            InstanceMethod("embed", &ModelWrap::Embed),
            InstanceMethod("prefillEmbeddings", &ModelWrap::PrefillEmbeddings),
            InstanceMethod("reset", &ModelWrap::Reset),
            InstanceMethod("trim", &ModelWrap::Trim),
            InstanceMethod("setSamplingSeed", &ModelWrap::SetSamplingSeed),
            InstanceMethod("setLayerAdapters", &ModelWrap::SetLayerAdapters),
            InstanceMethod("setHookLora", &ModelWrap::SetHookLora),
            InstanceAccessor("hookCalls", &ModelWrap::HookCalls, nullptr),
            InstanceMethod("dispose", &ModelWrap::Dispose),
            InstanceAccessor("position", &ModelWrap::Position, nullptr),
            InstanceAccessor("contextLength", &ModelWrap::ContextLength, nullptr),
            InstanceAccessor("backend", &ModelWrap::Backend, nullptr),
            InstanceAccessor("dtype", &ModelWrap::Dtype, nullptr),
            InstanceAccessor("config", &ModelWrap::Config, nullptr),
            InstanceAccessor("weightBytesPerToken", &ModelWrap::WeightBytes, nullptr),
            InstanceAccessor("disposed", &ModelWrap::Disposed, nullptr),
        },
        data);
  }

  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info), handle_("model") {
    Napi::Env env = info.Env();
    auto* data = static_cast<ClassData*>(info.Data());
    if (info.Length() < 1 || !info[0].IsExternal())
      throw Napi::TypeError::New(env, std::string("use ") + (data ? data->name : "the model class") +
                                          ".load(options) to create a model");
    auto* state = info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data();
    handle_.set(*state);
    info.This().As<Napi::Object>().TypeTag(&kModelTag);
  }

  std::shared_ptr<ModelState> state() const { return handle_.get(); }

 private:
  // ModelXxx.load({ preset | dir, seed, dtype, contextLength }) -> Promise<ModelXxx>
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
      // numLayers: a preset's shape with only its first layers (as HeLoraModel.load), so that a
      // split-mode twin of the pipeline's truncated CPU default can be made.
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
            st->backend = factory(src, opts);
            *result = st;
          },
          [=](Napi::Env e) -> Napi::Value {
            return data->ctor.New({Napi::External<std::shared_ptr<ModelState>>::New(e, result.get())});
          });
    });
  }

  template <typename Body>
  Napi::Value async(const Napi::CallbackInfo& info, const char* name, Body body,
                    std::function<Napi::Value(Napi::Env)> complete = nullptr) {
    auto st = state();
    return PromiseWorker::run(
        info.Env(), name,
        [st, body]() {
          std::lock_guard<std::mutex> lock(st->mu);
          body(*st->backend);
        },
        std::move(complete));
  }

  // prefill(tokens) -> Promise<void>: appends the tokens to the cache.
  Napi::Value Prefill(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto tokens = read_tokens(require_arg(info, 0, "tokens"), "tokens");
      return async(info, "tensafe.model.prefill", [tokens](model::ModelBackend& m) {
        m.prefill(tokens.data(), static_cast<int>(tokens.size()));
      });
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
          [out](Napi::Env e) -> Napi::Value {
            auto a = Napi::Float32Array::New(e, out->size());
            std::memcpy(a.Data(), out->data(), out->size() * sizeof(float));
            return a;
          });
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
      auto st = state();
      std::lock_guard<std::mutex> lock(st->mu);
      return Napi::Number::New(info.Env(), st->backend->sample(s));
    });
  }

  Napi::Value Hidden(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      std::lock_guard<std::mutex> lock(st->mu);
      auto a = Napi::Float32Array::New(info.Env(), static_cast<size_t>(st->backend->config().hidden_size));
      st->backend->read_hidden(a.Data());
      return a;
    });
  }

  Napi::Value Logits(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      std::lock_guard<std::mutex> lock(st->mu);
      auto a = Napi::Float32Array::New(info.Env(), static_cast<size_t>(st->backend->config().vocab_size));
      st->backend->read_logits(a.Data());
      return a;
    });
  }

  Napi::Value AddToHidden(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      auto d = require_float32_array(require_arg(info, 0, "delta"), "delta",
                                     static_cast<size_t>(st->backend->config().hidden_size));
      std::lock_guard<std::mutex> lock(st->mu);
      st->backend->add_to_hidden(d.Data(), model::MemorySpace::Host);
      return info.Env().Undefined();
    });
  }

  Napi::Value Reset(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      std::lock_guard<std::mutex> lock(st->mu);
      st->backend->reset();
      return info.Env().Undefined();
    });
  }

  Napi::Value Trim(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      int n = static_cast<int>(require_int(require_arg(info, 0, "length"), "length", 0, 1 << 20));
      std::lock_guard<std::mutex> lock(st->mu);
      st->backend->trim(n);
      return info.Env().Undefined();
    });
  }

  Napi::Value SetSamplingSeed(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      uint64_t seed = require_u64(require_arg(info, 0, "seed"), "seed");
      std::lock_guard<std::mutex> lock(st->mu);
      st->backend->set_sampling_seed(seed);
      return info.Env().Undefined();
    });
  }

  // embed(tokens) -> Float32Array (n x d): the embedding rows (split mode: the client's part).
  Napi::Value Embed(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      auto tokens = read_tokens(require_arg(info, 0, "tokens"), "tokens");
      const size_t d = static_cast<size_t>(st->backend->config().hidden_size);
      std::vector<float> rows(tokens.size() * d);
      {
        std::lock_guard<std::mutex> lock(st->mu);
        st->backend->embed(tokens.data(), static_cast<int>(tokens.size()), rows.data());
      }
      auto a = Napi::Float32Array::New(info.Env(), rows.size());
      std::memcpy(a.Data(), rows.data(), rows.size() * sizeof(float));
      return a;
    });
  }

  // prefillEmbeddings(rows: Float32Array, n) -> Promise<void>: positions from embedding rows.
  Napi::Value PrefillEmbeddings(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      const int d = st->backend->config().hidden_size;
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

  // setHidden(h: Float32Array): replaces the hidden state before lmHead().
  Napi::Value SetHidden(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      auto h = require_float32_array(require_arg(info, 0, "hidden"), "hidden",
                                     static_cast<size_t>(st->backend->config().hidden_size));
      std::lock_guard<std::mutex> lock(st->mu);
      st->backend->set_hidden(h.Data(), model::MemorySpace::Host);
      return info.Env().Undefined();
    });
  }

  static std::vector<model::LoraAdapter> read_adapters(const Napi::Value& v) {
    if (!v.IsArray()) throw_type("adapters must be an array");
    auto arr = v.As<Napi::Array>();
    std::vector<model::LoraAdapter> list;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      const std::string n = "adapters[" + std::to_string(i) + "]";
      Napi::Object o = require_object(arr.Get(i), n);
      model::LoraAdapter a;
      a.layer = static_cast<int>(require_int(require_arg_obj(o, "layer", n), n + ".layer", 0, 1 << 20));
      a.target = model::parse_projection(require_string(require_arg_obj(o, "target", n), n + ".target"));
      a.rank = static_cast<int>(require_int(require_arg_obj(o, "rank", n), n + ".rank", 1, 4096));
      a.scaling = static_cast<float>(optional_finite(o, "scaling", n + ".scaling", 1.0));
      auto fa = require_float32_array(require_arg_obj(o, "a", n), n + ".a");
      auto fb = require_float32_array(require_arg_obj(o, "b", n), n + ".b");
      a.a.assign(fa.Data(), fa.Data() + fa.ElementLength());
      a.b.assign(fb.Data(), fb.Data() + fb.ElementLength());
      list.push_back(std::move(a));
    }
    return list;
  }

  // setLayerAdapters([{ layer, target, rank, scaling, a: Float32Array, b: Float32Array }])
  Napi::Value SetLayerAdapters(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      auto list = read_adapters(require_arg(info, 0, "adapters"));
      std::lock_guard<std::mutex> lock(st->mu);
      st->backend->set_layer_adapters(std::move(list));
      return info.Env().Undefined();
    });
  }

  // setHookLora(adapters): the same LoRA pairs applied through the projection-hook interface
  // (the path an encrypted LoRA takes: the hook sees the projection's input and adds its delta),
  // counting the calls in `hookCalls`. For tests of the hook plumbing; [] removes the hook.
  Napi::Value SetHookLora(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      auto st = state();
      auto list = std::make_shared<std::vector<model::LoraAdapter>>(read_adapters(require_arg(info, 0, "adapters")));
      const model::Qwen2Config& c = st->backend->config();
      std::vector<model::HookSite> sites;
      for (size_t i = 0; i < list->size(); ++i) {
        const auto& a = (*list)[i];
        const size_t in = static_cast<size_t>(model::projection_in_dim(c, a.target));
        const size_t out = static_cast<size_t>(model::projection_out_dim(c, a.target));
        if (a.a.size() != static_cast<size_t>(a.rank) * in || a.b.size() != out * static_cast<size_t>(a.rank))
          throw_range("adapters[" + std::to_string(i) + "]: a must be rank x " + std::to_string(in) + ", b " +
                      std::to_string(out) + " x rank");
        sites.push_back({a.layer, a.target});
      }
      auto calls = hook_calls_;
      calls->store(0);
      model::ProjectionHook hook;
      if (!list->empty()) {
        hook = [list, calls](const model::ProjectionHookArgs& h) {
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
      std::lock_guard<std::mutex> lock(st->mu);
      st->backend->set_projection_hook(std::move(hook), std::move(sites));
      return info.Env().Undefined();
    });
  }

  Napi::Value HookCalls(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(hook_calls_->load()));
  }

  static Napi::Value require_arg_obj(const Napi::Object& o, const char* key, const std::string& owner) {
    if (!has_key(o, key)) throw_type(owner + "." + key + " is required");
    return o.Get(key);
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    handle_.dispose();
    return info.Env().Undefined();
  }

  Napi::Value Position(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), state()->backend->position()); });
  }
  Napi::Value ContextLength(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), state()->backend->context_length());
    });
  }
  Napi::Value Backend(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), state()->backend->backend_name()); });
  }
  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::String::New(info.Env(), model::dtype_name(state()->backend->weight_dtype()));
    });
  }
  Napi::Value Config(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value { return config_to_js(info.Env(), state()->backend->config()); });
  }
  Napi::Value WeightBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), static_cast<double>(state()->backend->weight_bytes_per_token()));
    });
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), handle_.disposed()); }

  Handle<ModelState> handle_;
  std::shared_ptr<std::atomic<int64_t>> hook_calls_ = std::make_shared<std::atomic<int64_t>>(0);
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

void Register(Napi::Env env, Napi::Object exports) {
  register_model_class(env, exports, "ModelCpu", model::create_cpu_model);
#if defined(TENSAFE_WITH_CUDA)
  // Same class over the CUDA backend (model/cuda/); it reports ERR_TENSAFE_BACKEND at load()
  // when the build has CUDA but the machine has no usable device.
  register_model_class(env, exports, "ModelCuda", model::create_cuda_model);
#endif
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

void register_model_class(Napi::Env env, Napi::Object exports, const char* class_name, ModelFactory factory) {
  // Lives as long as the process: the class's static `load` and constructor refer to it.
  auto* data = new ClassData{class_name, std::move(factory), Napi::FunctionReference()};
  Napi::Function ctor = ModelWrap::define(env, data);
  data->ctor = Napi::Persistent(ctor);
  data->ctor.SuppressDestruct();
  exports.Set(class_name, ctor);
}

std::shared_ptr<ModelState> unwrap_model(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kModelTag))
    throw ArgumentTypeError(name + " must be a model (ModelCpu or ModelCuda)");
  return ModelWrap::Unwrap(v.As<Napi::Object>())->state();
}

}  // namespace tensafe::napi

TENSAFE_REGISTER_BINDING(model, tensafe::napi::Register);
