// Deterministic synthetic weights: every element is a pure function of (seed, tensor id,
// element index), so any backend can generate the same model without files and without a
// sequential RNG (the CUDA backend generates on the GPU, one thread per element, and gets
// bit-identical values to the CPU).
//
// Generator (documented so the notebooks can state what "random weights" means):
//   h = mix64(mix64(seed ^ 0x7e5a5afe) + (tensor_id << 40) + index)      (splitmix64 finaliser)
//   u = (h >> 40) * 2^-23 - 1                                            uniform in [-1, 1), 24 bits
//   w = bf16_round(fmaf(half_width, u, center))                           (float32, one rounding)
// Scales keep activations of order one through any depth (uniform with the given std):
//   embed_tokens, lm_head     std 0.02 (transformers' initializer_range)
//   q/k/v/o/gate/up/down      std 1/sqrt(fan_in) (fan_in = input width of the Linear)
//   q/k/v biases              std 0.02
//   RMSNorm weights           1 +- 0.1 (uniform)
// Every value is representable in bfloat16, so f32, bf16 (and, up to f16 rounding of tiny
// values, f16) storage hold the same model.
//
// Tensor ids: embed_tokens 0; layer i tensor t (weights.h LayerTensor order) 1 + 16 i + t;
// final norm 1 + 16 L; lm_head (untied only) 2 + 16 L.
#pragma once
#include <cmath>
#include <cstdint>

#include "model/dtype.h"

namespace tensafe::model::synthetic {

constexpr uint64_t kSeedSalt = 0x7e5a5afeULL;

TENSAFE_HD inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The per-tensor part of the hash, hoisted out of element loops (same values as uniform()).
TENSAFE_HD inline uint64_t tensor_base(uint64_t seed, uint32_t tensor_id) {
  return mix64(seed ^ kSeedSalt) + (static_cast<uint64_t>(tensor_id) << 40);
}
TENSAFE_HD inline float uniform_at(uint64_t base, uint64_t index) {
  return static_cast<float>(mix64(base + index) >> 40) * (1.0f / 8388608.0f) - 1.0f;
}
TENSAFE_HD inline float uniform(uint64_t seed, uint32_t tensor_id, uint64_t index) {
  return uniform_at(tensor_base(seed, tensor_id), index);
}

TENSAFE_HD inline uint32_t embed_id() { return 0; }
TENSAFE_HD inline uint32_t layer_id(int layer, int layer_tensor) {
  return 1u + 16u * static_cast<uint32_t>(layer) + static_cast<uint32_t>(layer_tensor);
}
TENSAFE_HD inline uint32_t final_norm_id(int num_layers) { return 1u + 16u * static_cast<uint32_t>(num_layers); }
TENSAFE_HD inline uint32_t lm_head_id(int num_layers) { return 2u + 16u * static_cast<uint32_t>(num_layers); }

// center + half_width * u, then rounded to bf16.
struct Scale {
  float center;
  float half_width;
};

// sqrt(3) * std gives a uniform distribution of that std.
TENSAFE_HD inline Scale std_scale(float std_dev) { return Scale{0.0f, 1.7320508075688772f * std_dev}; }
TENSAFE_HD inline Scale embedding_scale() { return std_scale(0.02f); }
TENSAFE_HD inline Scale linear_scale(int fan_in) { return std_scale(1.0f / sqrtf(static_cast<float>(fan_in))); }
TENSAFE_HD inline Scale bias_scale() { return std_scale(0.02f); }
TENSAFE_HD inline Scale norm_scale() { return Scale{1.0f, 0.1f}; }

// Scale of layer tensor `layer_tensor` (weights.h LayerTensor order): fan_in is d for
// q/k/v/gate/up, q_dim (heads * head_dim) for o_proj, intermediate for down_proj.
TENSAFE_HD inline Scale layer_scale(int layer_tensor, int hidden, int q_dim, int intermediate) {
  switch (layer_tensor) {
    case 0: case 2: case 4: case 7: case 8: return linear_scale(hidden);  // q, k, v, gate, up
    case 1: case 3: case 5: return bias_scale();                           // q/k/v bias
    case 6: return linear_scale(q_dim);                                    // o_proj
    case 9: return linear_scale(intermediate);                             // down_proj
    default: return norm_scale();                                          // layernorms
  }
}

// The bf16 bit pattern of element `index` of the tensor whose tensor_base() is `base`.
TENSAFE_HD inline uint16_t value_bf16_at(uint64_t base, uint64_t index, Scale s) {
  return float_to_bf16(fmaf(s.half_width, uniform_at(base, index), s.center));
}

// The bf16 bit pattern of one element; storage in f32/f16 converts from it.
// fmaf: one rounding, the same on the host and the GPU whatever the compilers' contraction rules.
TENSAFE_HD inline uint16_t value_bf16(uint64_t seed, uint32_t tensor_id, uint64_t index, Scale s) {
  return value_bf16_at(tensor_base(seed, tensor_id), index, s);
}
TENSAFE_HD inline float value(uint64_t seed, uint32_t tensor_id, uint64_t index, Scale s) {
  return bf16_to_float(value_bf16(seed, tensor_id, index, s));
}

}  // namespace tensafe::model::synthetic
