// ModelContext.runWithSites(op, sites, onSite): a forward (a prefill or one decode step) that
// pauses at chosen projections of chosen layers for work done in JavaScript (the encrypted
// network round trip of the private HE-LoRA mode: the client's base model stops at each
// adapted layer, sends Enc(x), waits for the server and adds the decrypted delta).
//
//   sites:  [{ layer, modules: ['q_proj', 'v_proj'] }, ...]   one group of modules per entry
//   onSite: ({ layer, modules, position, input }) => Promise<Float32Array[]>
//
// A group's modules share one input: q/k/v take the post-attention-norm x, gate/up the
// post-MLP-norm x, o and down their own (groups that mix inputs are refused). At the FIRST
// projection of a group for a position, the hook (on the forward's thread) copies the input row,
// calls onSite on the JS thread through a ThreadSafeFunction and blocks until the returned
// promise settles; the deltas (one per module, out_dim floats each, validated: type, length,
// finite) are added to each module's output when that module is computed (cached for the
// later modules of the group). One call per prompt position per group, rows in order.
//
// The forward runs on a thread of its own, not a pool thread: it waits on JavaScript, which may
// itself need the pool (async CKKS work, file I/O) while it waits.
//
// Failure (onSite throws or rejects, a bad delta): the forward stops, the promise rejects
// (ERR_TENSAFE_SITE with the JS reason as `cause`, or the TypeError / RangeError naming the bad
// delta); the context keeps its position and cached positions as before the call (its hidden
// state and logits are then unspecified). The context runs nothing else meanwhile (its strand
// is busy), so onSite must not use the same context.
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "model_binding.h"
#include "napi_util.h"

namespace tensafe::napi {
namespace {

using model::Projection;

// Which input a projection reads: q/k/v 0, o 1, gate/up 2, down 3.
int input_group(Projection p) {
  switch (p) {
    case Projection::Q: case Projection::K: case Projection::V: return 0;
    case Projection::O: return 1;
    case Projection::Gate: case Projection::Up: return 2;
    default: return 3;
  }
}

struct SiteGroup {
  int layer = 0;
  std::vector<Projection> modules;
  std::vector<int> out_dims;
  int in_dim = 0;
};

struct Cached {
  std::vector<std::vector<float>> deltas;
  size_t consumed = 0;
};

struct SiteRun {
  std::vector<SiteGroup> groups;
  std::vector<int> slot_group;   // [layer * kProjectionCount + projection] -> group, -1
  std::vector<int> slot_module;  // index of the module in its group
  std::vector<int32_t> tokens;
  Napi::ThreadSafeFunction tsfn;

  // JS thread only.
  std::shared_ptr<Napi::Promise::Deferred> deferred;
  Napi::Reference<Napi::Value> cause;
  Strand::Done done;
  std::weak_ptr<ContextState> context;

  // Handoff between the forward's thread and the JS thread.
  std::mutex mu;
  std::condition_variable cv;
  bool answered = false;
  std::exception_ptr site_error;  // set with answered when onSite failed
  std::vector<std::vector<float>> reply;

  // Forward's thread only.
  std::map<std::pair<int, int>, Cached> cache;  // (group, position)
  std::exception_ptr failure;                   // what ended the forward
};

std::string describe(const SiteGroup& g, int position) {
  std::string mods;
  for (size_t i = 0; i < g.modules.size(); ++i) mods += (i ? ", " : "") + std::string(model::projection_name(g.modules[i]));
  return "onSite (layer " + std::to_string(g.layer) + ", " + mods + ", position " + std::to_string(position) + ")";
}

void answer(SiteRun& run, std::exception_ptr error, std::vector<std::vector<float>> reply) {
  {
    std::lock_guard<std::mutex> lock(run.mu);
    run.answered = true;
    run.site_error = std::move(error);
    run.reply = std::move(reply);
  }
  run.cv.notify_one();
}

// The resolved value of onSite: one Float32Array (or Float64Array) per module of the group.
void accept(const std::shared_ptr<SiteRun>& run, int g, int position, const Napi::Value& v) {
  const SiteGroup& grp = run->groups[static_cast<size_t>(g)];
  const std::string who = describe(grp, position);
  try {
    if (!v.IsArray())
      throw ArgumentTypeError(who + " must resolve to an array of " + std::to_string(grp.modules.size()) +
                              " Float32Array deltas (one per module)");
    Napi::Array arr = v.As<Napi::Array>();
    if (arr.Length() != grp.modules.size())
      throw ArgumentRangeError(who + " must resolve to " + std::to_string(grp.modules.size()) + " deltas (one per module), got " +
                               std::to_string(arr.Length()));
    std::vector<std::vector<float>> out(grp.modules.size());
    for (uint32_t k = 0; k < arr.Length(); ++k) {
      const std::string name = who + " result[" + std::to_string(k) + "] (" + model::projection_name(grp.modules[k]) + ")";
      Napi::Value e = arr.Get(k);
      const size_t want = static_cast<size_t>(grp.out_dims[k]);
      if (!e.IsTypedArray()) throw ArgumentTypeError(name + " must be a Float32Array");
      auto ta = e.As<Napi::TypedArray>();
      if (ta.TypedArrayType() != napi_float32_array && ta.TypedArrayType() != napi_float64_array)
        throw ArgumentTypeError(name + " must be a Float32Array");
      if (ta.ElementLength() != want)
        throw ArgumentRangeError(name + " must hold " + std::to_string(want) + " values, got " + std::to_string(ta.ElementLength()));
      out[k].resize(want);
      for (size_t i = 0; i < want; ++i) {
        const double x = ta.TypedArrayType() == napi_float32_array ? e.As<Napi::Float32Array>()[i] : e.As<Napi::Float64Array>()[i];
        if (!std::isfinite(x)) throw ArgumentRangeError(name + "[" + std::to_string(i) + "] is not finite");
        out[k][i] = static_cast<float>(x);
      }
    }
    answer(*run, nullptr, std::move(out));
  } catch (const std::exception&) {
    answer(*run, std::current_exception(), {});
  }
}

void refuse(const std::shared_ptr<SiteRun>& run, int g, int position, const Napi::Value& reason) {
  std::string msg;
  if (reason.IsObject() && reason.As<Napi::Object>().Has("message")) msg = reason.As<Napi::Object>().Get("message").ToString().Utf8Value();
  else if (!reason.IsUndefined()) msg = reason.ToString().Utf8Value();
  if (run->cause.IsEmpty()) run->cause = Napi::Persistent(reason);
  answer(*run,
         std::make_exception_ptr(EngineError("ERR_TENSAFE_SITE", describe(run->groups[static_cast<size_t>(g)], position) +
                                                                     " failed: " + (msg.empty() ? "rejected" : msg))),
         {});
}

struct SiteRequest {
  int group;
  int position;
  std::vector<float> input;
};

// JS thread: calls onSite and wires its promise to accept / refuse.
void call_on_site(Napi::Env env, Napi::Function on_site, const std::shared_ptr<SiteRun>& run, SiteRequest* req) {
  std::unique_ptr<SiteRequest> r(req);
  const SiteGroup& grp = run->groups[static_cast<size_t>(r->group)];
  const int g = r->group, position = r->position;
  Napi::HandleScope scope(env);
  try {
    Napi::Object call = Napi::Object::New(env);
    call.Set("layer", grp.layer);
    Napi::Array mods = Napi::Array::New(env, grp.modules.size());
    for (size_t k = 0; k < grp.modules.size(); ++k) mods.Set(static_cast<uint32_t>(k), model::projection_name(grp.modules[k]));
    call.Set("modules", mods);
    call.Set("position", position);
    auto input = Napi::Float32Array::New(env, r->input.size());
    std::memcpy(input.Data(), r->input.data(), r->input.size() * sizeof(float));
    call.Set("input", input);
    Napi::Value result = on_site.Call({call});
    Napi::Object promise_class = env.Global().Get("Promise").As<Napi::Object>();
    Napi::Value p = promise_class.Get("resolve").As<Napi::Function>().Call(promise_class, {result});
    auto ok = Napi::Function::New(env, [run, g, position](const Napi::CallbackInfo& ci) {
      accept(run, g, position, ci.Length() > 0 ? ci[0] : ci.Env().Undefined());
    });
    auto bad = Napi::Function::New(env, [run, g, position](const Napi::CallbackInfo& ci) {
      refuse(run, g, position, ci.Length() > 0 ? ci[0] : ci.Env().Undefined());
    });
    p.As<Napi::Object>().Get("then").As<Napi::Function>().Call(p, {ok, bad});
  } catch (const Napi::Error& e) {
    refuse(run, g, position, e.Value());  // onSite threw synchronously
  } catch (const std::exception& e) {
    answer(*run, std::current_exception(), {});
  }
}

// Forward's thread: asks JS for the deltas of group g at `position` and waits for them.
std::vector<std::vector<float>> ask(const std::shared_ptr<SiteRun>& run, int g, int position, const float* input, int in_dim) {
  {
    std::lock_guard<std::mutex> lock(run->mu);
    run->answered = false;
    run->site_error = nullptr;
  }
  auto* req = new SiteRequest{g, position, std::vector<float>(input, input + in_dim)};
  napi_status s = run->tsfn.BlockingCall(req, [run](Napi::Env env, Napi::Function fn, SiteRequest* r) {
    call_on_site(env, fn, run, r);
  });
  if (s != napi_ok) {
    delete req;
    throw EngineError("ERR_TENSAFE_SITE", "runWithSites: the JavaScript thread is shutting down");
  }
  std::unique_lock<std::mutex> lock(run->mu);
  run->cv.wait(lock, [&] { return run->answered; });
  if (run->site_error) std::rethrow_exception(run->site_error);
  return std::move(run->reply);
}

void site_hook(const std::shared_ptr<SiteRun>& run, const model::ProjectionHookArgs& a) {
  const size_t slot = static_cast<size_t>(a.layer) * model::kProjectionCount + static_cast<size_t>(a.target);
  const int g = run->slot_group[slot];
  if (g < 0) return;
  if (a.space != model::MemorySpace::Host) throw BackendUnavailableError("runWithSites needs host rows at the projection hook");
  const auto key = std::make_pair(g, a.position);
  auto it = run->cache.find(key);
  if (it == run->cache.end()) it = run->cache.emplace(key, Cached{ask(run, g, a.position, a.input, a.in_dim), 0}).first;
  const std::vector<float>& d = it->second.deltas[static_cast<size_t>(run->slot_module[slot])];
  for (int o = 0; o < a.out_dim; ++o) a.output[o] += d[static_cast<size_t>(o)];
  if (++it->second.consumed == run->groups[static_cast<size_t>(g)].modules.size()) run->cache.erase(it);
}

// JS thread: settles the promise, then lets the strand run the next operation.
void finish(Napi::Env env, const std::shared_ptr<SiteRun>& run) {
  Napi::HandleScope scope(env);
  if (auto st = run->context.lock()) {
    st->sync_position();
    st->busy_what.clear();
  }
  if (run->failure) {
    Napi::Value reason;
    try {
      std::rethrow_exception(run->failure);
    } catch (const std::exception& e) {
      Napi::Error err = to_js_error(env, e);
      if (!run->cause.IsEmpty()) err.Set("cause", run->cause.Value());
      reason = err.Value();
    } catch (...) {
      reason = Napi::Error::New(env, "runWithSites failed").Value();
    }
    run->deferred->Reject(reason);
  } else {
    run->deferred->Resolve(env.Undefined());
  }
  run->cause.Reset();
  Strand::Done done = std::move(run->done);
  if (done) done();
}

void forward_thread(std::shared_ptr<SiteRun> run, std::shared_ptr<ContextState> st) {
  try {
    std::lock_guard<std::mutex> lock(st->mu);
    model::ModelBackend& m = st->engine();
    m.bind_thread();
    std::vector<model::HookSite> sites;
    for (const SiteGroup& g : run->groups)
      for (Projection p : g.modules) sites.push_back({g.layer, p});
    m.set_projection_hook([run](const model::ProjectionHookArgs& a) { site_hook(run, a); }, sites);
    try {
      m.prefill(run->tokens.data(), static_cast<int>(run->tokens.size()));
    } catch (...) {
      m.set_projection_hook(nullptr, {});
      throw;
    }
    m.set_projection_hook(nullptr, {});
  } catch (...) {
    run->failure = std::current_exception();
  }
  st.reset();  // release the context here, off the JS thread
  napi_status s = run->tsfn.BlockingCall(run.get(), [run](Napi::Env env, Napi::Function, SiteRun*) { finish(env, run); });
  (void)s;  // not ok only while the environment is torn down: nothing left to settle
  run->tsfn.Release();
}

Napi::Value require_key(const Napi::Object& o, const char* key, const std::string& owner) {
  if (!has_key(o, key)) throw_type(owner + "." + key + " is required");
  return o.Get(key);
}

}  // namespace

Napi::Value run_with_sites(const Napi::CallbackInfo& info, const std::shared_ptr<ContextState>& st) {
  Napi::Env env = info.Env();
  const model::Qwen2Config c = st->engine().config();
  auto run = std::make_shared<SiteRun>();

  Napi::Object op = require_object(require_arg(info, 0, "op"), "op");
  const bool has_prefill = has_key(op, "prefill"), has_decode = has_key(op, "decode");
  if (has_prefill == has_decode) throw_type("op must be { prefill: Int32Array } or { decode: tokenId }");
  if (has_prefill) run->tokens = read_tokens(op.Get("prefill"), "op.prefill");
  else run->tokens = {static_cast<int32_t>(require_int(op.Get("decode"), "op.decode", INT32_MIN, INT32_MAX))};

  Napi::Value sv = require_arg(info, 1, "sites");
  if (!sv.IsArray()) throw_type("sites must be an array of { layer, modules }");
  Napi::Array sa = sv.As<Napi::Array>();
  run->slot_group.assign(static_cast<size_t>(c.num_hidden_layers) * model::kProjectionCount, -1);
  run->slot_module.assign(run->slot_group.size(), -1);
  for (uint32_t i = 0; i < sa.Length(); ++i) {
    const std::string name = "sites[" + std::to_string(i) + "]";
    Napi::Object so = require_object(sa.Get(i), name);
    SiteGroup g;
    g.layer = static_cast<int>(require_int(require_key(so, "layer", name), name + ".layer", 0, c.num_hidden_layers - 1));
    Napi::Value mv = require_key(so, "modules", name);
    if (!mv.IsArray() || mv.As<Napi::Array>().Length() == 0)
      throw_type(name + ".modules must be a non-empty array of module names (q_proj, ..., down_proj)");
    Napi::Array ma = mv.As<Napi::Array>();
    for (uint32_t k = 0; k < ma.Length(); ++k) {
      const std::string mname = name + ".modules[" + std::to_string(k) + "]";
      Projection p;
      try {
        p = model::parse_projection(require_string(ma.Get(k), mname));
      } catch (const ArgumentRangeError& e) {
        throw ArgumentRangeError(mname + ": " + e.what());
      }
      if (!g.modules.empty() && input_group(p) != input_group(g.modules[0]))
        throw_range(name + " mixes " + model::projection_name(g.modules[0]) + " and " + model::projection_name(p) +
                    ", which take different inputs (one group per input: q/k/v, o, gate/up, down)");
      const size_t slot = static_cast<size_t>(g.layer) * model::kProjectionCount + static_cast<size_t>(p);
      if (run->slot_group[slot] >= 0)
        throw_range(mname + ": " + model::projection_name(p) + " of layer " + std::to_string(g.layer) + " is named twice");
      run->slot_group[slot] = static_cast<int>(run->groups.size());
      run->slot_module[slot] = static_cast<int>(g.modules.size());
      g.modules.push_back(p);
      g.out_dims.push_back(model::projection_out_dim(c, p));
      g.in_dim = model::projection_in_dim(c, p);
    }
    run->groups.push_back(std::move(g));
  }

  Napi::Value fv = require_arg(info, 2, "onSite");
  if (!fv.IsFunction()) throw_type("onSite must be a function returning a Promise of the deltas");
  if (st->generators > 0)
    throw BusyError("runWithSites: this context is driven by " + std::to_string(st->generators) +
                    " HeLoraGenerator(s), whose hooks it would replace; use a context of its own");

  run->tsfn = Napi::ThreadSafeFunction::New(env, fv.As<Napi::Function>(), "tensafe.model.runWithSites", 0, 1);
  run->deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  run->context = st;
  Napi::Promise promise = run->deferred->Promise();
  if (!st->strand->busy()) st->busy_what = "runWithSites";
  std::shared_ptr<ContextState> strong = st;
  st->strand->submit([run, strong](Strand::Done done) mutable {
    run->done = std::move(done);
    std::thread(forward_thread, run, std::move(strong)).detach();
  });
  return promise;
}

}  // namespace tensafe::napi
