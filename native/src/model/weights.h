// The host weight set of a Qwen2 decoder: one Tensor per checkpoint tensor, each a view
// (name, dtype, shape, pointer) into memory kept alive by the set itself: a memory-mapped
// safetensors file (nothing is copied when the dtype is kept) or an owned buffer (generated
// weights, converted tensors). Backends read from here: the CPU backend computes straight from
// these pointers, the CUDA backend uploads them once.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/dtype.h"

namespace tensafe::model {

struct Tensor {
  std::string name;              // checkpoint name, e.g. "model.layers.3.self_attn.q_proj.weight"
  DType dtype = DType::F32;
  std::vector<int64_t> shape;    // row-major; a Linear weight is [out, in]
  const void* data = nullptr;    // host memory, owned by the HostWeights that holds this view

  bool present() const { return data != nullptr; }
  size_t numel() const {
    size_t n = 1;
    for (int64_t s : shape) n *= static_cast<size_t>(s);
    return n;
  }
  size_t nbytes() const { return numel() * dtype_size(dtype); }
  float at(size_t i) const { return load_as_float(data, dtype, i); }  // slow path (tests, tools)
};

// The tensors of one decoder layer, in a fixed order. The order is part of the synthetic
// weight format (synthetic.h derives tensor ids from it): never reorder, only append.
enum class LayerTensor : int {
  QProjWeight = 0,   // [q_dim, d]
  QProjBias,         // [q_dim]
  KProjWeight,       // [kv_dim, d]
  KProjBias,         // [kv_dim]
  VProjWeight,       // [kv_dim, d]
  VProjBias,         // [kv_dim]
  OProjWeight,       // [d, q_dim]
  GateProjWeight,    // [intermediate, d]
  UpProjWeight,      // [intermediate, d]
  DownProjWeight,    // [d, intermediate]
  InputLayernorm,    // [d]
  PostAttentionLayernorm,  // [d]
  Count
};
constexpr int kLayerTensorCount = static_cast<int>(LayerTensor::Count);

// "self_attn.q_proj.weight", ... (the part after "model.layers.{i}.").
const char* layer_tensor_suffix(LayerTensor t);
// Expected shape of a layer tensor under a config.
std::vector<int64_t> layer_tensor_shape(const Qwen2Config& c, LayerTensor t);
// Full checkpoint name of a layer tensor.
std::string layer_tensor_name(int layer, LayerTensor t);

struct LayerWeights {
  std::array<Tensor, kLayerTensorCount> tensors;
  const Tensor& operator[](LayerTensor t) const { return tensors[static_cast<int>(t)]; }
  Tensor& operator[](LayerTensor t) { return tensors[static_cast<int>(t)]; }
};

class HostWeights {
 public:
  Qwen2Config config;
  Tensor embed_tokens;               // [vocab, d]
  std::vector<LayerWeights> layers;  // num_hidden_layers
  Tensor norm;                       // [d], final RMSNorm
  Tensor lm_head;                    // [vocab, d]; when tied, a second view of embed_tokens' memory
  std::string source;                // folder path, or "synthetic seed=<n>"
  bool synthetic = false;
  uint64_t seed = 0;                 // synthetic only

  // Bytes of weights one decode step reads (embedding row excluded, lm_head counted once
  // even when tied): the numerator of the bandwidth floor.
  uint64_t bytes_per_token() const;
  // Total bytes held (tied lm_head counted once).
  uint64_t total_bytes() const;

  // Keeps mmapped files and owned buffers alive as long as any view may be used.
  void keep_alive(std::shared_ptr<const void> storage) { storage_.push_back(std::move(storage)); }

  // Checks every tensor's presence, dtype and shape against `config`; FormatError names the tensor.
  void validate() const;

 private:
  std::vector<std::shared_ptr<const void>> storage_;
};

// Loads a Hugging Face folder: config.json plus model.safetensors, or the shards listed by
// model.safetensors.index.json. Files are memory-mapped read-only. `convert_to` (when set)
// converts every tensor to that dtype into owned memory (e.g. bf16 checkpoint -> f32 for the CPU);
// otherwise tensors keep the file's dtype. Never downloads anything.
std::shared_ptr<HostWeights> load_pretrained(const std::string& dir, const DType* convert_to = nullptr);

// A copy of `w` with every tensor stored as `dtype` (tensors already of that dtype are shared,
// not copied; the source stays alive through the copy).
std::shared_ptr<HostWeights> convert_weights(const std::shared_ptr<const HostWeights>& w, DType dtype);

// Deterministic random weights of `config`'s shape (see synthetic.h for the generator),
// stored as `dtype` (values are bf16-representable whatever the storage type).
std::shared_ptr<HostWeights> make_synthetic_weights(const Qwen2Config& config, uint64_t seed, DType dtype);

}  // namespace tensafe::model
