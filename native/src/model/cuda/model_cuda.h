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
// Device: chosen at load (ModelOptions::device, an index among the CUDA_VISIBLE_DEVICES);
// every thread that touches the model or its contexts calls bind_thread() first (the binding
// does), since the CUDA runtime's current device is per host thread.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <vector>

#include "cuda/device_buffer.h"
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
  uint64_t memory_bytes() const override { return arena_.bytes() + rope_.bytes() + sampling_scratch_.bytes(); }
  uint64_t context_bytes(int context_length) const override;
  int device() const override { return device_; }
  void bind_thread() const override;

  struct Layer {
    const uint16_t* qkv = nullptr;
    const float* qkv_bias = nullptr;
    const uint16_t* o = nullptr;
    const uint16_t* gate_up = nullptr;
    const uint16_t* down = nullptr;
    const float* ln1 = nullptr;
    const float* ln2 = nullptr;
  };
  const std::vector<Layer>& layers() const { return layers_; }
  const uint16_t* embed() const { return embed_; }
  const uint16_t* lm_head() const { return lm_head_; }
  const float* final_norm() const { return final_norm_; }
  const float2* rope() const { return rope_.data(); }
  // Scratch of the sampling kernels, shared by the contexts: hold sampling_mutex() from the
  // launch until the launching stream has finished with it.
  SamplingScratch sampling_scratch() const { return SamplingScratch{sampling_scratch_.data(), sampling_scratch_.bytes()}; }
  std::mutex& sampling_mutex() const { return sampling_mu_; }

 protected:
  std::unique_ptr<ModelBackend> do_create_context(int context_length) const override;

 private:
  void upload_weights(const WeightSource& source, cudaStream_t stream);

  DType wtype_ = DType::F16;
  uint64_t bytes_per_token_ = 0;
  int device_ = 0;
  DeviceBuffer<unsigned char> arena_;  // all weights
  DeviceBuffer<float2> rope_;
  mutable DeviceBuffer<unsigned char> sampling_scratch_;  // written by the sampling kernels
  mutable std::mutex sampling_mu_;
  std::vector<Layer> layers_;
  const uint16_t* embed_ = nullptr;
  const uint16_t* lm_head_ = nullptr;
  const float* final_norm_ = nullptr;
};

}  // namespace tensafe::model::cuda
