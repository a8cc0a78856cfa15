// ModelCuda: the weights of the Qwen2 decoder on one CUDA device, shared read-only by every
// ContextCuda (context_cuda.h) made from it.
//
// Layout on the device (one allocation for all weights, f16 or bf16):
//   per layer  qkv   [q_dim + 2 kv_dim, d]   q, k, v rows stacked (one gemv, fused bias)
//              o     [d, q_dim]              (gemv adds into the residual stream)
//              gu    [2 I, d]                gate rows then up rows (one gemv, SwiGLU epilogue)
//              down  [d, I]                  (gemv adds into the residual stream)
//              norms and q/k/v biases in float32
//   embed [V, d], lm_head [V, d] (the embedding's memory when tied), final norm float32.
// RoPE table [max context][head_dim / 2] (cos, sin) in float32, shared by the contexts.
//
// Shared by the contexts, also made at load: the decode megakernel's launch configuration
// (decode_step.h; TENSAFE_DECODE=graph keeps the layer kernels) with the layer table in device
// memory, and the batched prefill (batched_prefill.h: its scratch and cuBLAS workspace; one
// prefill at a time, under prefill_mutex; TENSAFE_PREFILL=steps prefills token by token).
//
// Device: chosen at load (ModelOptions::device, an index among the CUDA_VISIBLE_DEVICES);
// every thread that touches the model or its contexts calls bind_thread() first (the binding
// does), since the CUDA runtime's current device is per host thread.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <vector>

#include "cuda/device_buffer.h"
#include "model/cuda/batched_prefill.h"
#include "model/cuda/decode_step.h"
#include "model/cuda/decoder_view.h"
#include "model/cuda/kernels.h"
#include "model/model.h"

namespace tensafe::model::cuda {

template <typename T>
using DeviceBuffer = ::tensafe::cuda::DeviceBuffer<T>;

class ModelCuda final : public Model {
 public:
  ModelCuda(const WeightSource& source, const ModelOptions& options);

  const char* backend_name() const override { return "cuda"; }
  DType weight_dtype() const override { return wtype_; }
  uint64_t weight_bytes_per_token() const override { return bytes_per_token_; }
  uint64_t memory_bytes() const override {
    return arena_.bytes() + rope_.bytes() + sampling_scratch_.bytes() + layers_device_.bytes() +
           (prefill_ ? prefill_->memory_bytes() : 0);
  }
  uint64_t context_bytes(int context_length) const override;
  int device() const override { return device_; }
  void bind_thread() const override;

  using Layer = LayerWeights;
  const std::vector<Layer>& layers() const { return layers_; }
  const Layer* layers_device() const { return layers_device_.data(); }
  const uint16_t* embed() const { return embed_; }
  const uint16_t* lm_head() const { return lm_head_; }
  const float* final_norm() const { return final_norm_; }
  const float2* rope() const { return rope_.data(); }
  // Scratch of the sampling kernels, shared by the contexts: hold sampling_mutex() from the
  // launch until the launching stream has finished with it.
  SamplingScratch sampling_scratch() const { return SamplingScratch{sampling_scratch_.data(), sampling_scratch_.bytes()}; }
  std::mutex& sampling_mutex() const { return sampling_mu_; }
  // The decode megakernel, or null: decode steps run the layer kernels.
  const DecodeMegakernel* megakernel() const { return mega_.get(); }
  // The batched prefill, or null (TENSAFE_PREFILL=steps): hold prefill_mutex() from run() until
  // the launching stream has finished with it.
  BatchedPrefill* batched_prefill() const { return prefill_.get(); }
  std::mutex& prefill_mutex() const { return prefill_mu_; }

 protected:
  std::unique_ptr<ModelBackend> do_create_context(int context_length) const override;

 private:
  void upload_weights(const WeightSource& source, cudaStream_t stream);
  // The shared step drivers (after the weights): megakernel configuration and batched prefill.
  void create_step_drivers();

  DType wtype_ = DType::F16;
  uint64_t bytes_per_token_ = 0;
  int device_ = 0;
  DeviceBuffer<unsigned char> arena_;  // all weights
  DeviceBuffer<float2> rope_;
  mutable DeviceBuffer<unsigned char> sampling_scratch_;  // written by the sampling kernels
  mutable std::mutex sampling_mu_;
  std::vector<Layer> layers_;
  DeviceBuffer<Layer> layers_device_;
  std::unique_ptr<DecodeMegakernel> mega_;
  std::unique_ptr<BatchedPrefill> prefill_;  // its scratch is written by the contexts' prefills
  mutable std::mutex prefill_mu_;
  const uint16_t* embed_ = nullptr;
  const uint16_t* lm_head_ = nullptr;
  const float* final_norm_ = nullptr;
};

}  // namespace tensafe::model::cuda
