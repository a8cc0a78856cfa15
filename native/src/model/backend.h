// ModelBackend: the contract of one conversation's state over a loaded Qwen2 decoder (a
// "context", as in llama.cpp / node-llama-cpp). The weights live in a Model (model/model.h),
// loaded once and shared by every context created from it; a context holds what one sequence
// needs: its KV cache (its own contextLength), scratch buffers, position, hidden state, logits,
// sampling seed, adapters, hooks (and on CUDA its stream and captured decode graph). Two
// implementations: CPU (model/cpu_model.h) and CUDA (model/cuda/). Batch 1, one sequence.
//
// Contract
// --------
// * A context is made by Model::create_context(contextLength) and keeps its Model alive
//   (shared_ptr). Its buffers are allocated at creation; nothing is allocated per token.
// * State: position() tokens are in the cache. prefill(tokens, n) appends n >= 1 tokens at
//   positions position() .. position()+n-1 (causal attention over everything cached) and
//   decode_step(t) appends one; both leave in hidden() the final hidden state of the LAST
//   appended token: the output of the final RMSNorm, the vector the LM head multiplies (the
//   original's `h`, d floats). reset() empties the cache, trim(n) keeps its first n positions
//   (n <= position()), so a caller can rewind and recompute.
// * Validation happens in the non-virtual entry points here, identically for every backend,
//   before any state changes: a token outside [0, vocab) or a prompt that would overflow the
//   context raises ArgumentRangeError naming the index / the capacity; the cache is unchanged.
//   A forward that fails part way (a projection hook that throws, a device error) leaves
//   position() and the cached positions as they were before the call (on_abort()); hidden()
//   and logits() are then unspecified until the next successful forward.
// * Separate stages, so timers see each: forward (prefill / decode_step) -> [caller may add a
//   delta to hidden(): the HE-LoRA output, via add_to_hidden() or in place through hidden()] ->
//   lm_head() (logits = lm_head_weight . hidden, float32 output) -> sample(opts) (token id).
//   hidden() and logits() are spans in the backend's memory space (device memory on CUDA);
//   read_hidden()/read_logits() copy to the host and synchronise.
// * Split mode (both the CPU and the CUDA backends implement it): embed() gives the embedding rows of
//   tokens, prefill_embeddings() runs the layers from such rows, set_hidden() replaces the
//   hidden state before lm_head() (a client's LM head over the server's hidden state).
// * Sampling follows sampling.h exactly. The draw counter (one per non-greedy sample() call)
//   restarts at 0 with set_sampling_seed(seed); the same seed and logits give the same tokens
//   on every backend.
// * Per-layer adapters (the HE-LoRA "layers" placement and plaintext LoRA comparisons):
//   set_layer_adapters() installs plaintext LoRA pairs on any of q/k/v/o/gate/up/down of any
//   layer (y = W x + b + scaling * B (A x)); set_projection_hook() asks the backend to call a
//   function after the chosen projections with the projection's input and output, to which the
//   hook adds its delta (an encrypted LoRA computes it). Hooks run synchronously inside the
//   forward, one row (position) per call, rows in order (on CUDA they disable the captured
//   decode graph). A backend that lacks either raises BackendUnavailableError.
// * Threads: one call at a time per context (the binding serialises calls on a context);
//   different contexts of one model may run at the same time on different threads (the
//   weights are read-only). bind_thread() makes the calling thread use the context's device
//   (CUDA: cudaSetDevice); the binding calls it before every operation.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/dtype.h"
#include "model/sampling.h"
#include "model/weights.h"

namespace tensafe::model {

enum class MemorySpace { Host, Device };

// A view of backend-owned floats; valid until the next call on the backend.
struct FloatSpan {
  float* data = nullptr;
  size_t size = 0;
  MemorySpace space = MemorySpace::Host;
};

// Where the weights come from.
struct WeightSource {
  Qwen2Config config;
  // Loaded tensors (load_pretrained) or, on the CPU, generated ones; null means "synthetic":
  // the backend generates config-shaped weights from `seed` per synthetic.h.
  std::shared_ptr<const HostWeights> host;
  uint64_t seed = 0;
};

struct ModelOptions {
  // Longest context a context of this model may have (RoPE tables are sized for it); also the
  // default contextLength of its contexts.
  int context_length = 4096;
  // Storage type of the weights on the backend (compute is float32 accumulation everywhere).
  // Unset: the CPU keeps the checkpoint's dtype (bf16 for synthetic weights, whose values are
  // bf16-exact) and converts rows on the fly; CUDA uses f16. Set: tensors are converted once.
  std::optional<DType> weight_dtype;
  // CUDA device index among the visible ones (CUDA_VISIBLE_DEVICES applies); unset: 0.
  std::optional<int> device;
};

class Model;

enum class Projection : int { Q = 0, K, V, O, Gate, Up, Down, Count };
constexpr int kProjectionCount = static_cast<int>(Projection::Count);
const char* projection_name(Projection p);                  // "q_proj", ..., "down_proj"
Projection parse_projection(const std::string& s);           // accepts "q"/"q_proj"...; ArgumentRangeError
int projection_in_dim(const Qwen2Config& c, Projection p);   // d, or q_dim (o), or intermediate (down)
int projection_out_dim(const Qwen2Config& c, Projection p);

// A plaintext LoRA pair on one projection of one layer: y += scaling * B (A x).
struct LoraAdapter {
  int layer = 0;
  Projection target = Projection::Q;
  int rank = 0;
  float scaling = 1.0f;      // alpha / r (or alpha / sqrt(r) for rsLoRA); the caller decides
  std::vector<float> a;      // [rank, in] row-major (PEFT lora_A.weight)
  std::vector<float> b;      // [out, rank] row-major (PEFT lora_B.weight)
};

// What a projection hook sees. `input` is the projection's input (in_dim floats), `output`
// its result so far (out_dim floats, bias and plaintext adapters included); the hook adds to it.
struct ProjectionHookArgs {
  int layer;
  Projection target;
  int position;              // absolute position of the token (batch 1: one row per call)
  const float* input;
  int in_dim;
  float* output;
  int out_dim;
  MemorySpace space;
};
using ProjectionHook = std::function<void(const ProjectionHookArgs&)>;
struct HookSite {
  int layer;
  Projection target;
};

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;
  ModelBackend(const ModelBackend&) = delete;
  ModelBackend& operator=(const ModelBackend&) = delete;

  // The model this context runs (kept alive by the context).
  const Model& model() const { return *model_; }
  const std::shared_ptr<const Model>& model_ptr() const { return model_; }
  const char* backend_name() const;  // "cpu" | "cuda" (the model's)
  const Qwen2Config& config() const { return config_; }
  int context_length() const { return context_length_; }
  int position() const { return position_; }
  DType weight_dtype() const;
  // Weight bytes one decode step reads (bandwidth floor numerator).
  uint64_t weight_bytes_per_token() const;
  // Bytes this context holds (KV cache + scratch), in the backend's memory space.
  virtual uint64_t memory_bytes() const = 0;
  // Makes the calling thread use this context's device (CUDA: cudaSetDevice). Call before
  // any other method on a thread that may have used another device.
  virtual void bind_thread() const {}

  // ---- KV cache ----
  void reset() { position_ = 0; on_reset(); }
  void trim(int n);

  // ---- forward (validated here, then the backend's do_forward) ----
  void prefill(const int32_t* tokens, int n);
  void decode_step(int32_t token) { prefill(&token, 1); }

  // ---- stages after the forward ----
  virtual FloatSpan hidden() = 0;   // [d], final hidden of the last token (post final norm)
  // hidden += delta; delta lives in `space` (host or this backend's device).
  virtual void add_to_hidden(const float* delta, MemorySpace space) = 0;
  virtual void lm_head() = 0;       // logits = W_lm . hidden
  virtual FloatSpan logits() = 0;   // [vocab]
  int32_t sample(const SamplingOptions& opts);
  void set_sampling_seed(uint64_t seed) { sampling_seed_ = seed; sampling_step_ = 0; }

  virtual void read_hidden(float* host_out) = 0;
  virtual void read_logits(float* host_out) = 0;
  virtual void synchronize() {}

  // ---- split mode: the client embeds and runs the LM head, the server runs the layers ----
  // Embedding rows of n tokens (n x d floats, host); tokens validated as in prefill().
  void embed(const int32_t* tokens, int n, float* host_out);
  // Appends n positions whose inputs are embedding rows (n x d floats, host) instead of ids;
  // validated like prefill (count, context, finite values). hidden() is then the last row's.
  void prefill_embeddings(const float* rows, int n);
  // hidden = h (d floats in `space`): a hidden state computed elsewhere, before lm_head().
  virtual void set_hidden(const float* h, MemorySpace space);

  // ---- per-layer adapters ----
  // Replaces the installed set (empty clears). Validates layer, shapes and finiteness.
  void set_layer_adapters(std::vector<LoraAdapter> adapters);
  // Installs `hook` at `sites` (empty hook or no sites clears). Validates the sites.
  void set_projection_hook(ProjectionHook hook, std::vector<HookSite> sites);
  // Where the installed plaintext adapters run, for reports: "host" here (the CPU backend);
  // a device backend names its own path (ContextCuda: "cuda-resident", "host" or "mixed").
  virtual const char* layer_adapter_path() const { return "host"; }

 protected:
  ModelBackend(std::shared_ptr<const Model> model, int context_length);

  // Appends n validated tokens at position_ .. position_+n-1; the base advances position_
  // after it returns.
  virtual void do_forward(const int32_t* tokens, int n) = 0;
  virtual void on_reset() {}
  virtual void on_trim(int /*n*/) {}
  // A forward threw part way: bring the backend's own view of the position back to position_
  // (which the base did not advance). Must not throw.
  virtual void on_abort() noexcept {}
  // Split mode; the defaults raise BackendUnavailableError.
  virtual void do_embed(const int32_t* tokens, int n, float* host_out);
  virtual void do_forward_embeddings(const float* rows, int n);
  // Picks a token from the current logits given the draw u (unused when greedy).
  virtual int32_t do_sample(const SamplingOptions& opts, double u) = 0;
  // Defaults raise BackendUnavailableError for a non-empty request.
  virtual void install_adapters(const std::vector<LoraAdapter>& adapters);
  virtual void install_hook(ProjectionHook hook, std::vector<HookSite> sites);

  std::shared_ptr<const Model> model_;
  Qwen2Config config_;
  int context_length_;
  int position_ = 0;

 private:
  uint64_t sampling_seed_ = 0;
  uint64_t sampling_step_ = 0;
};

}  // namespace tensafe::model
