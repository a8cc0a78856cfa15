#include "model/weights.h"

#include "common/errors.h"

namespace tensafe::model {

const char* layer_tensor_suffix(LayerTensor t) {
  switch (t) {
    case LayerTensor::QProjWeight: return "self_attn.q_proj.weight";
    case LayerTensor::QProjBias: return "self_attn.q_proj.bias";
    case LayerTensor::KProjWeight: return "self_attn.k_proj.weight";
    case LayerTensor::KProjBias: return "self_attn.k_proj.bias";
    case LayerTensor::VProjWeight: return "self_attn.v_proj.weight";
    case LayerTensor::VProjBias: return "self_attn.v_proj.bias";
    case LayerTensor::OProjWeight: return "self_attn.o_proj.weight";
    case LayerTensor::GateProjWeight: return "mlp.gate_proj.weight";
    case LayerTensor::UpProjWeight: return "mlp.up_proj.weight";
    case LayerTensor::DownProjWeight: return "mlp.down_proj.weight";
    case LayerTensor::InputLayernorm: return "input_layernorm.weight";
    case LayerTensor::PostAttentionLayernorm: return "post_attention_layernorm.weight";
    default: return "?";
  }
}

std::string layer_tensor_name(int layer, LayerTensor t) {
  return "model.layers." + std::to_string(layer) + "." + layer_tensor_suffix(t);
}

std::vector<int64_t> layer_tensor_shape(const Qwen2Config& c, LayerTensor t) {
  const int64_t d = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), f = c.intermediate_size;
  switch (t) {
    case LayerTensor::QProjWeight: return {q, d};
    case LayerTensor::QProjBias: return {q};
    case LayerTensor::KProjWeight:
    case LayerTensor::VProjWeight: return {kv, d};
    case LayerTensor::KProjBias:
    case LayerTensor::VProjBias: return {kv};
    case LayerTensor::OProjWeight: return {d, q};
    case LayerTensor::GateProjWeight:
    case LayerTensor::UpProjWeight: return {f, d};
    case LayerTensor::DownProjWeight: return {d, f};
    default: return {d};
  }
}

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
void check_tensor(const Tensor& t, const std::string& name, const std::vector<int64_t>& shape) {
  if (!t.present()) throw FormatError("missing tensor \"" + name + "\"");
  if (t.shape != shape)
    throw FormatError("tensor \"" + name + "\" has shape " + shape_str(t.shape) + ", the config needs " + shape_str(shape));
}
}  // namespace

void HostWeights::validate() const {
  const Qwen2Config& c = config;
  const int64_t d = c.hidden_size, v = c.vocab_size;
  check_tensor(embed_tokens, "model.embed_tokens.weight", {v, d});
  if (static_cast<int>(layers.size()) != c.num_hidden_layers)
    throw FormatError("the weights hold " + std::to_string(layers.size()) + " layers, the config " +
                      std::to_string(c.num_hidden_layers));
  for (int i = 0; i < c.num_hidden_layers; ++i)
    for (int t = 0; t < kLayerTensorCount; ++t)
      check_tensor(layers[static_cast<size_t>(i)].tensors[static_cast<size_t>(t)],
                   layer_tensor_name(i, static_cast<LayerTensor>(t)), layer_tensor_shape(c, static_cast<LayerTensor>(t)));
  check_tensor(norm, "model.norm.weight", {d});
  check_tensor(lm_head, c.tie_word_embeddings ? "model.embed_tokens.weight (tied lm_head)" : "lm_head.weight", {v, d});
}

uint64_t HostWeights::total_bytes() const {
  uint64_t n = embed_tokens.nbytes() + norm.nbytes();
  for (const auto& l : layers)
    for (const auto& t : l.tensors) n += t.nbytes();
  if (!config.tie_word_embeddings) n += lm_head.nbytes();
  return n;
}

uint64_t HostWeights::bytes_per_token() const {
  uint64_t n = norm.nbytes() + lm_head.nbytes();
  for (const auto& l : layers)
    for (const auto& t : l.tensors) n += t.nbytes();
  return n;
}

}  // namespace tensafe::model
