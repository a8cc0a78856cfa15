// The CPU backend of the Qwen2 decoder: float32 arithmetic on both cores over weights kept in
// their stored dtype (f32, or bf16/f16 widened in registers), a float32 KV cache laid out
// [layer][kv_head][position][head_dim] so attention streams each head's keys contiguously, and
// prompt tokens processed in chunks (each weight row is read once per chunk, not per token).
//
// CpuModel holds what every context shares, read-only: the host tensors, the per-layer views
// into them, the q/k/v biases as float32 and the RoPE tables (sized for the model's longest
// context). CpuContext holds one sequence: its KV cache, scratch for one chunk, hidden state,
// logits, adapters and hook. Implements every optional part of the ModelBackend contract
// (adapters and projection hooks).
#pragma once
#include <memory>
#include <vector>

#include "model/backend.h"
#include "model/cpu_kernels.h"
#include "model/model.h"

namespace tensafe::model {

class CpuModel final : public Model {
 public:
  CpuModel(const WeightSource& source, const ModelOptions& options);

  const char* backend_name() const override { return "cpu"; }
  DType weight_dtype() const override { return dtype_; }
  uint64_t weight_bytes_per_token() const override { return weights_->bytes_per_token(); }
  uint64_t memory_bytes() const override;
  uint64_t context_bytes(int context_length) const override;
  const HostWeights* host_weights() const override { return weights_.get(); }
  const HostWeights& weights() const { return *weights_; }

  struct Layer {
    cpu::MatRef q, k, v, o, gate, up, down;
    const float* q_bias;  // biases and norms as float (converted once; they are tiny)
    const float* k_bias;
    const float* v_bias;
    const void* in_norm;
    const void* post_norm;
    DType in_norm_dtype;
    DType post_norm_dtype;
  };
  const std::vector<Layer>& layers() const { return layers_; }
  const cpu::MatRef& embed() const { return embed_; }
  const cpu::MatRef& lm_head() const { return lm_head_; }
  // [max context][head_dim / 2]
  const float* rope_cos() const { return rope_cos_.data(); }
  const float* rope_sin() const { return rope_sin_.data(); }

 protected:
  std::unique_ptr<ModelBackend> do_create_context(int context_length) const override;

 private:
  void check_memory(const WeightSource& source, const ModelOptions& options) const;

  std::shared_ptr<const HostWeights> weights_;
  uint64_t owned_bytes_ = 0;  // weights generated or converted here (not a mapped file)
  DType dtype_;
  std::vector<Layer> layers_;
  cpu::MatRef embed_, lm_head_;
  std::vector<std::vector<float>> small_;  // converted biases
  std::vector<float> rope_cos_, rope_sin_;
};

class CpuContext final : public ModelBackend {
 public:
  CpuContext(std::shared_ptr<const CpuModel> model, int context_length);

  uint64_t memory_bytes() const override;
  FloatSpan hidden() override { return {hidden_.data(), hidden_.size(), MemorySpace::Host}; }
  void add_to_hidden(const float* delta, MemorySpace space) override;
  void lm_head() override;
  FloatSpan logits() override { return {logits_.data(), logits_.size(), MemorySpace::Host}; }
  void read_hidden(float* host_out) override;
  void read_logits(float* host_out) override;
  void set_hidden(const float* h, MemorySpace space) override;

  // Bytes of a context's own buffers (KV cache + chunk scratch + hidden + logits).
  static uint64_t bytes_for(const Qwen2Config& c, int context_length);

 protected:
  void do_forward(const int32_t* tokens, int n) override;
  void do_embed(const int32_t* tokens, int n, float* host_out) override;
  void do_forward_embeddings(const float* rows, int n) override;
  int32_t do_sample(const SamplingOptions& opts, double u) override;
  void install_adapters(const std::vector<LoraAdapter>& adapters) override;
  void install_hook(ProjectionHook hook, std::vector<HookSite> sites) override;

 private:
  static constexpr int kChunk = 32;  // prompt tokens per pass over the weights

  // Runs the layers on n positions from pos0; the inputs are tokens' embedding rows, or `rows`.
  void forward_chunk(const int32_t* tokens, const float* rows, int n, int pos0);
  // Adds plaintext adapters and calls the hook for projection p of layer l on n rows.
  void after_projection(int layer, Projection p, const float* in, int in_dim, float* out, int out_dim, int n, int pos0);
  void attention(int layer, int n, int pos0);

  const CpuModel& m_;  // == *model_ (kept alive by the base)
  // KV caches: uninitialised until written (a position is read only after it is written), so
  // a long context costs address space, not resident memory, until it is used.
  std::unique_ptr<float[]> k_cache_, v_cache_;
  size_t cache_floats_ = 0;

  // Scratch for one chunk.
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, proj_;
  std::vector<float> hidden_, logits_;

  std::vector<std::vector<LoraAdapter>> adapters_;  // [layer * kProjectionCount + projection]
  ProjectionHook hook_;
  std::vector<char> hook_at_;                       // same index
};

}  // namespace tensafe::model
