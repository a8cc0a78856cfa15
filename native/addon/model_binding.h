// The model binding's shared pieces, for the binding files of the model (model_binding.cc:
// ModelCpu / ModelCuda and the free functions; model_context_binding.cc: ModelContext;
// model_sites.cc: runWithSites) and for the HE-LoRA generator (helora_binding.cc), which runs
// on a context.
//
//  * ModelState: one loaded model (the weights, shared), with the count of its live contexts.
//  * ContextState: one context (the engine's ModelBackend) with its Strand: every operation on
//    the context, the generators' included, is submitted to the strand (context_strand.h).
//    `position` mirrors the engine's position on the JS thread (read without waiting).
#pragma once
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/errors.h"
#include "context_strand.h"
#include "model/model.h"

namespace tensafe::napi {

struct ModelState {
  std::shared_ptr<const model::Model> model;  // null after dispose()
  int live_contexts = 0;                      // JS thread only
  int64_t external_bytes = 0;                 // reported to V8 (CPU weights)
};

struct ContextState {
  std::shared_ptr<ModelState> owner;            // for the live-context count (JS thread)
  std::unique_ptr<model::ModelBackend> backend;  // null once the context is disposed
  std::shared_ptr<Strand> strand = std::make_shared<Strand>();
  std::mutex mu;              // held by whatever runs on `backend` (the strand makes it uncontended)
  int position = 0;           // JS-thread mirror of backend->position()
  int generators = 0;         // live HE-LoRA generators on this context (JS thread)
  bool disposed = false;      // JS thread
  int64_t external_bytes = 0;  // reported to V8 (CPU KV cache)
  std::string busy_what;      // name of the running operation (for BUSY messages)

  // The engine object; DisposedError after dispose (for work queued behind a dispose).
  model::ModelBackend& engine() {
    if (!backend) throw DisposedError("model context");
    return *backend;
  }
  // Refreshes the position mirror (JS thread, between operations).
  void sync_position() {
    if (backend) position = backend->position();
  }
};

// Shared argument readers and marshalling of the model bindings.
Napi::Object config_to_js(Napi::Env env, const model::Qwen2Config& c);
// Token ids from an Int32Array or an array of integers (at least one; the vocabulary range is
// checked by the engine).
std::vector<int32_t> read_tokens(const Napi::Value& v, const std::string& name);
model::SamplingOptions read_sampling(const Napi::Value& v, const std::string& name);

// The context behind a ModelContext object; TypeError naming `name` when v is not one,
// ERR_TENSAFE_DISPOSED after its dispose().
std::shared_ptr<ContextState> unwrap_context(const Napi::Value& v, const std::string& name);

// Runs `body` on the context's strand (a pool thread, the context's device bound, its mutex
// held) and settles the returned promise with complete(env). The position mirror is refreshed
// when it settles.
Napi::Promise context_async(Napi::Env env, const std::shared_ptr<ContextState>& st, const char* name,
                            std::function<void(model::ModelBackend&)> body,
                            std::function<Napi::Value(Napi::Env)> complete = nullptr);

// For synchronous accessors: BusyError naming what runs when the context's strand is busy.
void require_idle(const ContextState& st, const char* what);

// Defines the ModelContext class and returns a new instance wrapping `st`.
void define_context_class(Napi::Env env, Napi::Object exports);
Napi::Object new_context_object(Napi::Env env, std::shared_ptr<ContextState> st);

// runWithSites(op, sites, onSite) of a context (model_sites.cc).
Napi::Value run_with_sites(const Napi::CallbackInfo& info, const std::shared_ptr<ContextState>& st);

}  // namespace tensafe::napi
