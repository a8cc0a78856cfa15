// What the step-level CUDA drivers (the batched prefill, the decode megakernel) read and write:
// device pointers to one model's weights (ModelCuda, shared by its contexts) and to one
// context's state (ContextCuda's arena). ContextCuda fills it per call; the drivers keep no
// pointer into it beyond the call.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/dtype.h"

namespace tensafe::model::cuda {

// One decoder layer's weights on the device (layout: model_cuda.h).
struct LayerWeights {
  const uint16_t* qkv = nullptr;      // [q_dim + 2 kv_dim, d]
  const float* qkv_bias = nullptr;    // [q_dim + 2 kv_dim]
  const uint16_t* o = nullptr;        // [d, q_dim]
  const uint16_t* gate_up = nullptr;  // [2 I, d]: gate rows then up rows
  const uint16_t* down = nullptr;     // [d, I]
  const float* ln1 = nullptr;         // [d]
  const float* ln2 = nullptr;         // [d]
};

struct DecoderView {
  // The model (read-only).
  const Qwen2Config* config = nullptr;
  DType wtype = DType::F16;
  const std::vector<LayerWeights>* layers = nullptr;  // host table of device pointers
  const LayerWeights* layers_device = nullptr;        // the same table in device memory
  const uint16_t* embed = nullptr;   // [V, d]
  const float* final_norm = nullptr; // [d]
  const float2* rope = nullptr;      // [max context, head_dim / 2]
  // The context.
  uint16_t* kv_cache = nullptr;      // [layer][k|v][kv_head][context][head_dim]
  int context = 0;
  const int32_t* tokens = nullptr;   // [context]: token of each position
  int* pos = nullptr;                // device: position of the next token
  float* x = nullptr;                // [d] residual stream of the decode step
  float* hidden = nullptr;           // [d] final hidden state (after the final norm)
  // Decode-step scratch: activations, attention splits (room for ceil(context / 128) splits a
  // head), per-head split counters (zero between launches), the megakernel's barrier [2]
  // (zeroed once) and, in timing runs only, its clock stamps (else null).
  float* qkv = nullptr;
  float* attn = nullptr;
  float* act = nullptr;
  float* o_part = nullptr;
  float* m_part = nullptr;
  float* l_part = nullptr;
  int* counters = nullptr;
  unsigned* barrier = nullptr;
  unsigned long long* trace = nullptr;

  size_t cache_layer_elems() const {
    return static_cast<size_t>(config->num_key_value_heads) * context * config->head_dim;
  }
  uint16_t* k_cache(int layer) const { return kv_cache + (2 * static_cast<size_t>(layer)) * cache_layer_elems(); }
  uint16_t* v_cache(int layer) const { return kv_cache + (2 * static_cast<size_t>(layer) + 1) * cache_layer_elems(); }
};

}  // namespace tensafe::model::cuda
