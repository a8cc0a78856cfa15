// ContextCuda: one sequence's state over a ModelCuda (model/backend.h is the contract).
//
// Per context, one device allocation (its own arena, so that a context costs exactly its KV
// cache and a little scratch): the KV cache [layer][k|v][kv_head][context][head_dim] in the
// weight type, the residual stream and activations (float32), the attention split scratch,
// hidden state, logits, the token of each position and the device position. The sampling
// sort's scratch is the model's, shared under a lock (sample() waits for its result anyway).
// Plus its own stream, its own captured decode graph and pinned staging for tokens.
//
// Prefill of n > 1 tokens: the model's BatchedPrefill (batched_prefill.h: tensor-core GEMMs,
// cuBLAS when it loads, a causal attention kernel), in chunks, under the model's prefill lock;
// with adapters or hooks installed, or TENSAFE_PREFILL=steps, decode steps instead.
//
// Decode step: by default the model's megakernel (decode_step.h: embedding, every layer and the
// final norm in one persistent cooperative kernel, over this context's buffers; its barrier
// lives in the arena). With TENSAFE_DECODE=graph, or where the megakernel cannot run:
// one decode step = embedding, 28 x (norm+qkv, attention, o+residual, norm+gate/up+SwiGLU,
// down+residual), final norm: 6 kernels a layer (enqueue_step), captured once per context in a
// CUDA graph that reads the token and the position from device memory (the last kernel
// advances the position), so a step costs one graph launch. lm_head() and sample() are
// separate launches (separate timer stages); sample() is the only call that waits for the GPU
// (to return the token id). Adapters and projection hooks run the instrumented eager path
// (run_instrumented_step): unfused at the adapted projections. Plaintext adapters are
// resident: install_adapters uploads each A and B (float32) to the context's own device
// buffers, and a site with adapters but no hook adds them on the device (lora_apply, on the
// stream: no host copy, no synchronisation), to the projection's output with its bias, as the
// CPU backend does. A hooked site (HE in layers) takes a host round trip: the projection's
// input and output are copied to the host, its adapters added there (float64), then the hook.
//
// Split mode (backend.h): embed() gathers rows on the device and copies them to the host;
// prefill_embeddings() runs each position eagerly (row -> residual stream, the graph's layer
// kernels without the gather), bit-identical to a token step with the same input row;
// set_hidden() overwrites the final hidden state before lm_head().
//
// Stream: all work runs on this context's own stream (cuda_stream()). hidden() and logits()
// synchronise it before handing out device pointers, so other streams may read them; a device
// delta given to add_to_hidden() must be complete when the call is made.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "model/backend.h"
#include "model/cuda/kernels.h"
#include "model/cuda/model_cuda.h"

namespace tensafe::model::cuda {

// A typed view into a context's arena (not owning).
template <typename T>
struct DeviceSpan {
  T* ptr = nullptr;
  size_t count = 0;
  size_t offset = 0;  // bytes into the arena
  T* data() const { return ptr; }
  size_t size() const { return count; }
  size_t bytes() const { return count * sizeof(T); }
};

class ContextCuda final : public ModelBackend {
 public:
  ContextCuda(std::shared_ptr<const ModelCuda> model, int context_length);
  ~ContextCuda() override;

  // Device bytes of a context's arena (KV cache + scratch) for `context_length` positions.
  static uint64_t bytes_for(const Qwen2Config& c, int context_length);
  uint64_t memory_bytes() const override { return arena_.bytes() + adapter_bytes_; }
  // "cuda-resident" when every installed adapter sits at a site without a hook (all run on the
  // device), "host" when all sit at hooked sites, "mixed" otherwise, "none" without adapters.
  const char* layer_adapter_path() const override;
  void bind_thread() const override { m_.bind_thread(); }

  FloatSpan hidden() override;
  void add_to_hidden(const float* delta, MemorySpace space) override;
  void lm_head() override;
  FloatSpan logits() override;
  void read_hidden(float* host_out) override;
  void read_logits(float* host_out) override;
  void synchronize() override;
  // Split mode: hidden = h (host or device d floats; a device h must be complete when called).
  void set_hidden(const float* h, MemorySpace space) override;

  cudaStream_t cuda_stream() const { return stream_; }
  // Whether decode steps replay the captured graph (false: eager launches, e.g. for profiling).
  void set_use_graph(bool on) { use_graph_ = on; }
  // Timing runs: device storage for the megakernel's clock stamps (decode_step.h), before the
  // first step (the graph captures it); null: none.
  void set_mega_trace(unsigned long long* stamps) { trace_ = stamps; }
  const ModelCuda& model_cuda() const { return m_; }

 protected:
  void do_forward(const int32_t* tokens, int n) override;
  void on_reset() override;
  void on_trim(int n) override;
  void on_abort() noexcept override;
  int32_t do_sample(const SamplingOptions& opts, double u) override;
  // Plaintext LoRA adapters and projection hooks: while any is installed, decode steps run the
  // instrumented eager path (unfused at the adapted projections; adapters on the device, a host
  // round trip only at hooked sites).
  void install_adapters(const std::vector<LoraAdapter>& adapters) override;
  void install_hook(ProjectionHook hook, std::vector<HookSite> sites) override;
  // Split mode: embedding rows gathered on the device (exact f16/bf16 -> float32), and an eager
  // prefill from rows (each row copied into the residual stream, then the decode step's layer
  // kernels without the embedding gather; the captured graph is not used).
  void do_embed(const int32_t* tokens, int n, float* host_out) override;
  void do_forward_embeddings(const float* rows, int n) override;

 private:
  using Layer = ModelCuda::Layer;

  // Plans every buffer of the arena (offsets and counts); returns the arena's size in bytes.
  size_t plan_arena();
  // Device pointers of the model's weights and this context's state, for the step drivers.
  DecoderView view() const;
  // One token's forward, on stream_ (captured into the graph once). gather = false skips the
  // embedding lookup: x_ already holds the input row (prefill from embedding rows).
  void enqueue_step(bool gather = true);
  // Captures one decode step into graph_; false (graph_ null, *why set) when it could not.
  bool capture_step(std::string* why);
  // The batched prefill of n > 1 tokens at position_ (their ids already in tokens_).
  void prefill_batched(int n);
  void run_instrumented_step(int position, bool gather = true);  // same forward with adapters / hooks applied
  bool has_site(int layer, Projection p) const;
  bool hooked(int layer, Projection p) const;
  // Unless (layer, p) is hooked: out[0..out_dim) += its adapters applied to in, on the device
  // (in, out: device pointers; enqueued on stream_).
  void apply_device(int layer, Projection p, const float* in, int in_dim, float* out, int out_dim);
  // Hooked sites: out[0..out_dim) += adapters of (layer, p) applied to in, then the hook (host).
  void apply_host(int layer, Projection p, int position, const float* in, int in_dim, float* out, int out_dim);
  void set_device_position(int pos);

  const ModelCuda& m_;  // == *model_ (kept alive by the base)
  // The model's tables, copied for the forward code (pointers into the model's arena).
  DType wtype_ = DType::F16;
  const std::vector<Layer>& layers_;
  const uint16_t* embed_ = nullptr;
  const uint16_t* lm_head_ = nullptr;
  const float* final_norm_ = nullptr;
  const float2* rope_ = nullptr;

  cudaStream_t stream_ = nullptr;
  bool use_graph_ = true;
  cudaGraphExec_t graph_ = nullptr;

  DeviceBuffer<unsigned char> arena_;  // everything below lives here
  DeviceSpan<uint16_t> kv_cache_;
  DeviceSpan<float> x_, qkv_, attn_, act_, hidden_, logits_, delta_;
  DeviceSpan<float> o_part_, m_part_, l_part_;
  DeviceSpan<int> attn_counters_;
  DeviceSpan<int32_t> tokens_;  // [context]: token of each position
  DeviceSpan<int> pos_;         // position of the next token
  DeviceSpan<int32_t> sampled_;
  DeviceSpan<unsigned> barrier_;  // the megakernel's grid barrier (zeroed once)
  unsigned long long* trace_ = nullptr;
  DeviceSpan<float> xn_, proj_;  // instrumented path

  // Adapters and hooks (instrumented path). Each adapter's A and B also live on the device
  // (dev_adapters_, parallel to adapters_), with one A x scratch for the largest rank.
  struct DeviceAdapter {
    DeviceBuffer<float> a, b;
  };
  std::vector<LoraAdapter> adapters_;
  std::vector<DeviceAdapter> dev_adapters_;
  DeviceBuffer<double> lora_ax_;
  uint64_t adapter_bytes_ = 0;
  ProjectionHook hook_;
  std::vector<char> hook_site_;  // [layer * kProjectionCount + projection]
  std::vector<char> adapted_;    // same indexing: any adapter there
  std::vector<float> h_in_, h_out_;

  // Pinned host staging (async copies need page-locked memory).
  int32_t* h_tokens_ = nullptr;  // [context]
  int32_t* h_sampled_ = nullptr;
};

}  // namespace tensafe::model::cuda
