// ModelCuda: the CUDA backend of the Qwen2 decoder (model/backend.h), batch-1 decode.
//
// Layout on the device (one allocation for all weights, f16 or bf16):
//   per layer  qkv   [q_dim + 2 kv_dim, d]   q, k, v rows stacked (one gemv, fused bias)
//              o     [d, q_dim]              (gemv adds into the residual stream)
//              gu    [2 I, d]                gate rows then up rows (one gemv, SwiGLU epilogue)
//              down  [d, I]                  (gemv adds into the residual stream)
//              norms and q/k/v biases in float32
//   embed [V, d], lm_head [V, d] (the embedding's memory when tied), final norm float32.
// KV cache [layer][k|v][kv_head][context][head_dim] in the weight type. The residual stream
// and every activation are float32.
//
// Prefill of n > 1 tokens: BatchedPrefill (batched_prefill.h), tensor-core GEMMs (cuBLAS when
// it can be loaded, else our own kernel; TENSAFE_GEMM=own|cublas) and a causal attention kernel,
// in chunks; TENSAFE_PREFILL=steps runs decode steps instead.
//
// Decode step: by default the megakernel (DecodeMegakernel: embedding, all layers and the final
// norm in one persistent cooperative kernel, weights streamed into L2 ahead of use); with
// TENSAFE_DECODE=graph, or where the megakernel cannot run, the layer kernels below.
//
// One decode step (layer kernels) = embedding, 28 x (norm+qkv, attention, o+residual, norm+gate/up+SwiGLU,
// down+residual), final norm: 6 kernels a layer, captured once in a CUDA graph that reads the
// token and the position from device memory (the last kernel advances the position), so a
// step costs one graph launch. lm_head() and sample() are separate launches (separate timer
// stages); sample() is the only call that waits for the GPU (to return the token id).
//
// Split mode (backend.h): embed() gathers rows on the device and copies them to the host;
// prefill_embeddings() runs each position eagerly (row -> residual stream, the graph's layer
// kernels without the gather), bit-identical to a token step with the same input row;
// set_hidden() overwrites the final hidden state before lm_head().
//
// Stream: all work runs on this model's own stream (cuda_stream()). hidden() and logits()
// synchronise it before handing out device pointers, so other streams may read them; a device
// delta given to add_to_hidden() must be complete when the call is made.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "cuda/device_buffer.h"
#include "model/backend.h"
#include "model/cuda/batched_prefill.h"
#include "model/cuda/decode_step.h"
#include "model/cuda/decoder_view.h"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda {

template <typename T>
using DeviceBuffer = ::tensafe::cuda::DeviceBuffer<T>;

class ModelCuda final : public ModelBackend {
 public:
  ModelCuda(const WeightSource& source, const ModelOptions& options);
  ~ModelCuda() override;

  const char* backend_name() const override { return "cuda"; }
  DType weight_dtype() const override { return wtype_; }
  uint64_t weight_bytes_per_token() const override { return bytes_per_token_; }

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
  // The decode megakernel, or null when decode steps run the layer kernels.
  DecodeMegakernel* megakernel() { return mega_.get(); }

 protected:
  void do_forward(const int32_t* tokens, int n) override;
  void on_reset() override;
  void on_trim(int n) override;
  int32_t do_sample(const SamplingOptions& opts, double u) override;
  // Plaintext LoRA adapters and projection hooks: while any is installed, decode steps run the
  // instrumented eager path (unfused at the adapted projections, host round trip per site).
  void install_adapters(const std::vector<LoraAdapter>& adapters) override;
  void install_hook(ProjectionHook hook, std::vector<HookSite> sites) override;
  // Split mode: embedding rows gathered on the device (exact f16/bf16 -> float32), and an eager
  // prefill from rows (each row copied into the residual stream, then the decode step's layer
  // kernels without the embedding gather; the captured graph is not used).
  void do_embed(const int32_t* tokens, int n, float* host_out) override;
  void do_forward_embeddings(const float* rows, int n) override;

 private:
  using Layer = LayerWeights;

  void upload_weights(const WeightSource& source);
  void create_megakernel(DecodeKernel kind);
  // Device pointers of this model's weights and sequence state, for the step drivers.
  DecoderView view();
  // The token-by-token path: n decode steps (captured graph, eager, or instrumented).
  void forward_steps(int n);
  bool capture_step(std::string* why);
  // One token's forward, on stream_ (captured into the graph once). gather = false skips the
  // embedding lookup: x_ already holds the input row (prefill from embedding rows).
  void enqueue_step(bool gather = true);
  void run_instrumented_step(int position, bool gather = true);  // same forward with adapters / hooks applied
  bool has_site(int layer, Projection p) const;
  // out[0..out_dim) += adapters of (layer, p) applied to in, then the hook if it is a site.
  void apply_host(int layer, Projection p, int position, const float* in, int in_dim, float* out, int out_dim);
  void set_device_position(int pos);

  DType wtype_ = DType::F16;
  uint64_t bytes_per_token_ = 0;
  cudaStream_t stream_ = nullptr;
  bool use_graph_ = true;
  cudaGraphExec_t graph_ = nullptr;
  // Prompts of n > 1 tokens go through the batched tensor-core prefill unless TENSAFE_PREFILL=steps
  // or adapters / hooks are installed (those need the per-token instrumented path).
  bool batched_prefill_ = true;
  std::unique_ptr<BatchedPrefill> prefill_;  // created on the first batched prefill
  // The decode step as one persistent kernel (decode_step.h) where supported, unless
  // TENSAFE_DECODE=graph; null: the 6-kernels-a-layer step.
  std::unique_ptr<DecodeMegakernel> mega_;

  DeviceBuffer<unsigned char> arena_;  // all weights
  std::vector<Layer> layers_;
  const uint16_t* embed_ = nullptr;
  const uint16_t* lm_head_ = nullptr;
  const float* final_norm_ = nullptr;

  DeviceBuffer<uint16_t> kv_cache_;
  DeviceBuffer<float2> rope_;
  DeviceBuffer<float> x_, qkv_, attn_, act_, hidden_, logits_, delta_;
  DeviceBuffer<float> o_part_, m_part_, l_part_;
  DeviceBuffer<int> attn_counters_;
  DeviceBuffer<int32_t> tokens_;  // [context]: token of each position
  DeviceBuffer<int> pos_;         // position of the next token
  DeviceBuffer<int32_t> sampled_;
  DeviceBuffer<unsigned char> sampling_scratch_;

  // Adapters and hooks (instrumented path).
  std::vector<LoraAdapter> adapters_;
  ProjectionHook hook_;
  std::vector<char> hook_site_;  // [layer * kProjectionCount + projection]
  std::vector<char> adapted_;    // same indexing: any adapter there
  DeviceBuffer<float> xn_, proj_;
  std::vector<float> h_in_, h_out_;

  // Pinned host staging (async copies need page-locked memory).
  int32_t* h_tokens_ = nullptr;  // [context]
  int32_t* h_sampled_ = nullptr;
};

}  // namespace tensafe::model::cuda
