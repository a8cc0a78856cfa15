#include "model/backend.h"

#include <cmath>

#include "common/errors.h"
#include "model/model.h"

namespace tensafe::model {

namespace {
void check_tokens(const int32_t* tokens, int n, int vocab) {
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab)
      throw ArgumentRangeError("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                               " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
}
}  // namespace

const char* projection_name(Projection p) {
  switch (p) {
    case Projection::Q: return "q_proj";
    case Projection::K: return "k_proj";
    case Projection::V: return "v_proj";
    case Projection::O: return "o_proj";
    case Projection::Gate: return "gate_proj";
    case Projection::Up: return "up_proj";
    case Projection::Down: return "down_proj";
    default: return "?";
  }
}

Projection parse_projection(const std::string& s) {
  for (int i = 0; i < kProjectionCount; ++i) {
    Projection p = static_cast<Projection>(i);
    std::string full = projection_name(p);
    if (s == full || s == full.substr(0, full.size() - 5)) return p;
  }
  throw ArgumentRangeError("unknown projection \"" + s + "\" (expected one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)");
}

int projection_in_dim(const Qwen2Config& c, Projection p) {
  switch (p) {
    case Projection::O: return c.q_dim();
    case Projection::Down: return c.intermediate_size;
    default: return c.hidden_size;
  }
}

int projection_out_dim(const Qwen2Config& c, Projection p) {
  switch (p) {
    case Projection::Q: return c.q_dim();
    case Projection::K:
    case Projection::V: return c.kv_dim();
    case Projection::Gate:
    case Projection::Up: return c.intermediate_size;
    default: return c.hidden_size;
  }
}

Model::Model(const Qwen2Config& config, int max_context, bool synthetic, uint64_t seed)
    : config_(config), max_context_(max_context), synthetic_(synthetic), synthetic_seed_(seed) {
  config_.validate();
  if (max_context < 1 || max_context > (1 << 20))
    throw ArgumentRangeError("contextLength must be in [1, 1048576], got " + std::to_string(max_context));
}

std::unique_ptr<ModelBackend> Model::create_context(int context_length) const {
  const int n = context_length == 0 ? max_context_ : context_length;
  if (n < 1 || n > max_context_)
    throw ArgumentRangeError("contextLength must be in [1, " + std::to_string(max_context_) +
                             "] (the model was loaded with contextLength " + std::to_string(max_context_) + "), got " +
                             std::to_string(context_length));
  bind_thread();
  return do_create_context(n);
}

ModelBackend::ModelBackend(std::shared_ptr<const Model> model, int context_length)
    : model_(std::move(model)), config_(model_->config()), context_length_(context_length) {
  if (context_length < 1 || context_length > model_->max_context_length())
    throw ArgumentRangeError("contextLength must be in [1, " + std::to_string(model_->max_context_length()) + "], got " +
                             std::to_string(context_length));
}

const char* ModelBackend::backend_name() const { return model_->backend_name(); }
DType ModelBackend::weight_dtype() const { return model_->weight_dtype(); }
uint64_t ModelBackend::weight_bytes_per_token() const { return model_->weight_bytes_per_token(); }

void ModelBackend::trim(int n) {
  if (n < 0 || n > position_)
    throw ArgumentRangeError("trim length must be in [0, " + std::to_string(position_) + "] (tokens in the cache), got " +
                             std::to_string(n));
  on_trim(n);
  position_ = n;
}

void ModelBackend::prefill(const int32_t* tokens, int n) {
  if (n < 1) throw ArgumentRangeError("tokens must hold at least one token id");
  if (static_cast<int64_t>(position_) + n > context_length_)
    throw ArgumentRangeError("context length exceeded: " + std::to_string(position_) + " tokens cached + " +
                             std::to_string(n) + " new > contextLength " + std::to_string(context_length_) +
                             " (reset() or trim() the cache, or load with a larger contextLength)");
  check_tokens(tokens, n, config_.vocab_size);
  try {
    do_forward(tokens, n);
  } catch (...) {
    on_abort();
    throw;
  }
  position_ += n;
}


void ModelBackend::embed(const int32_t* tokens, int n, float* host_out) {
  if (n < 1) throw ArgumentRangeError("tokens must hold at least one token id");
  check_tokens(tokens, n, config_.vocab_size);
  do_embed(tokens, n, host_out);
}

void ModelBackend::prefill_embeddings(const float* rows, int n) {
  if (n < 1) throw ArgumentRangeError("rows must hold at least one embedding row");
  if (static_cast<int64_t>(position_) + n > context_length_)
    throw ArgumentRangeError("context length exceeded: " + std::to_string(position_) + " positions cached + " +
                             std::to_string(n) + " new > contextLength " + std::to_string(context_length_));
  const size_t count = static_cast<size_t>(n) * static_cast<size_t>(config_.hidden_size);
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(rows[i])) throw ArgumentRangeError("rows[" + std::to_string(i) + "] is not finite");
  try {
    do_forward_embeddings(rows, n);
  } catch (...) {
    on_abort();
    throw;
  }
  position_ += n;
}

void ModelBackend::set_hidden(const float*, MemorySpace) {
  throw BackendUnavailableError(std::string("set_hidden is not implemented by the ") + backend_name() + " backend");
}

void ModelBackend::do_embed(const int32_t*, int, float*) {
  throw BackendUnavailableError(std::string("embed is not implemented by the ") + backend_name() + " backend");
}

void ModelBackend::do_forward_embeddings(const float*, int) {
  throw BackendUnavailableError(std::string("prefill from embedding rows is not implemented by the ") + backend_name() +
                                " backend");
}

int32_t ModelBackend::sample(const SamplingOptions& opts) {
  opts.validate();
  if (opts.greedy()) return do_sample(opts, 0.0);
  double u = sampling_uniform01(sampling_seed_, sampling_step_++);
  return do_sample(opts, u);
}

void ModelBackend::set_layer_adapters(std::vector<LoraAdapter> adapters) {
  for (size_t i = 0; i < adapters.size(); ++i) {
    const LoraAdapter& a = adapters[i];
    const std::string where = "adapters[" + std::to_string(i) + "]";
    if (a.layer < 0 || a.layer >= config_.num_hidden_layers)
      throw ArgumentRangeError(where + ".layer must be in [0, " + std::to_string(config_.num_hidden_layers) + "), got " +
                               std::to_string(a.layer));
    if (a.rank < 1 || a.rank > 4096) throw ArgumentRangeError(where + ".rank must be in [1, 4096]");
    if (!std::isfinite(a.scaling)) throw ArgumentRangeError(where + ".scaling must be finite");
    const size_t in = static_cast<size_t>(projection_in_dim(config_, a.target));
    const size_t out = static_cast<size_t>(projection_out_dim(config_, a.target));
    if (a.a.size() != static_cast<size_t>(a.rank) * in)
      throw ArgumentRangeError(where + ".a must hold rank x " + std::to_string(in) + " = " +
                               std::to_string(a.rank * in) + " values, got " + std::to_string(a.a.size()));
    if (a.b.size() != out * static_cast<size_t>(a.rank))
      throw ArgumentRangeError(where + ".b must hold " + std::to_string(out) + " x rank = " +
                               std::to_string(out * a.rank) + " values, got " + std::to_string(a.b.size()));
    for (float v : a.a)
      if (!std::isfinite(v)) throw ArgumentRangeError(where + ".a holds a non-finite value");
    for (float v : a.b)
      if (!std::isfinite(v)) throw ArgumentRangeError(where + ".b holds a non-finite value");
  }
  install_adapters(adapters);
}

void ModelBackend::install_adapters(const std::vector<LoraAdapter>& adapters) {
  if (!adapters.empty())
    throw BackendUnavailableError(std::string("per-layer LoRA adapters are not implemented by the ") + backend_name() +
                                  " backend");
}

void ModelBackend::set_projection_hook(ProjectionHook hook, std::vector<HookSite> sites) {
  for (size_t i = 0; i < sites.size(); ++i) {
    if (sites[i].layer < 0 || sites[i].layer >= config_.num_hidden_layers)
      throw ArgumentRangeError("sites[" + std::to_string(i) + "].layer must be in [0, " +
                               std::to_string(config_.num_hidden_layers) + "), got " + std::to_string(sites[i].layer));
    int t = static_cast<int>(sites[i].target);
    if (t < 0 || t >= kProjectionCount) throw ArgumentRangeError("sites[" + std::to_string(i) + "].target is not a projection");
  }
  if (!hook) sites.clear();
  install_hook(std::move(hook), std::move(sites));
}

void ModelBackend::install_hook(ProjectionHook hook, std::vector<HookSite> sites) {
  if (hook && !sites.empty())
    throw BackendUnavailableError(std::string("projection hooks are not implemented by the ") + backend_name() +
                                  " backend");
}

}  // namespace tensafe::model
