#include "model/cpu_model.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/errors.h"
#include "common/thread_pool.h"

namespace tensafe::model {
namespace {

cpu::MatRef mat(const Tensor& t) {
  return cpu::MatRef{t.data, t.dtype, static_cast<int>(t.shape[0]), static_cast<int>(t.shape[1])};
}

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

double physical_memory() {
  return static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
}

}  // namespace

// Refuses, before anything is allocated, a model whose generated weights plus one context of
// its contextLength the machine cannot hold (an overcommitted allocation would get the process
// killed while it is being filled, instead of a catchable error).
void CpuModel::check_memory(const WeightSource& source, const ModelOptions& options) const {
  const Qwen2Config& c = config_;
  double bytes = static_cast<double>(max_context_) * c.head_dim * sizeof(float) +  // RoPE tables
                 static_cast<double>(CpuContext::bytes_for(c, max_context_));     // one context
  if (!source.host)
    bytes += static_cast<double>(c.parameter_count()) * dtype_size(options.weight_dtype.value_or(DType::BF16));
  else if (options.weight_dtype)
    bytes += static_cast<double>(c.parameter_count()) * dtype_size(*options.weight_dtype);
  const double phys = physical_memory();
  if (phys > 0 && bytes > 0.75 * phys)
    throw OutOfMemoryError("this model (weights to build + a KV cache for contextLength " + std::to_string(max_context_) +
                           ") needs " + std::to_string(bytes / 1e9) + " GB; this machine has " + std::to_string(phys / 1e9) +
                           " GB (use a smaller contextLength or dtype)");
}

CpuModel::CpuModel(const WeightSource& source, const ModelOptions& options)
    : Model(source.host ? source.host->config : source.config, options.context_length, source.host == nullptr,
            source.host ? 0 : source.seed) {
  if (options.device) throw ArgumentRangeError("options.device selects a CUDA device; it does not apply to the cpu backend");
  check_memory(source, options);
  // Weights: generated (bf16 unless asked otherwise: the values are bf16-exact), or the loaded
  // tensors, converted once when a storage dtype is requested.
  if (!source.host) {
    weights_ = make_synthetic_weights(config_, source.seed, options.weight_dtype.value_or(DType::BF16));
    owned_bytes_ = weights_->total_bytes();
  } else if (options.weight_dtype) {
    weights_ = convert_weights(source.host, *options.weight_dtype);
    if (weights_ != source.host) owned_bytes_ = weights_->total_bytes();
  } else {
    weights_ = source.host;
  }
  weights_->validate();
  const HostWeights& w = *weights_;
  dtype_ = w.layers.empty() ? w.embed_tokens.dtype : w.layers[0][LayerTensor::QProjWeight].dtype;

  const Qwen2Config& c = config_;
  auto as_float = [&](const Tensor& t) -> const float* {
    small_.emplace_back(t.numel());
    for (size_t i = 0; i < t.numel(); ++i) small_.back()[i] = t.at(i);
    return small_.back().data();
  };
  small_.reserve(static_cast<size_t>(c.num_hidden_layers) * 3);
  for (const LayerWeights& lw : w.layers) {
    Layer l;
    l.q = mat(lw[LayerTensor::QProjWeight]);
    l.k = mat(lw[LayerTensor::KProjWeight]);
    l.v = mat(lw[LayerTensor::VProjWeight]);
    l.o = mat(lw[LayerTensor::OProjWeight]);
    l.gate = mat(lw[LayerTensor::GateProjWeight]);
    l.up = mat(lw[LayerTensor::UpProjWeight]);
    l.down = mat(lw[LayerTensor::DownProjWeight]);
    l.q_bias = as_float(lw[LayerTensor::QProjBias]);
    l.k_bias = as_float(lw[LayerTensor::KProjBias]);
    l.v_bias = as_float(lw[LayerTensor::VProjBias]);
    l.in_norm = lw[LayerTensor::InputLayernorm].data;
    l.post_norm = lw[LayerTensor::PostAttentionLayernorm].data;
    l.in_norm_dtype = lw[LayerTensor::InputLayernorm].dtype;
    l.post_norm_dtype = lw[LayerTensor::PostAttentionLayernorm].dtype;
    layers_.push_back(l);
  }
  embed_ = mat(w.embed_tokens);
  lm_head_ = mat(w.lm_head);

  // RoPE tables, computed the way transformers does (float32 inverse frequencies and angles),
  // so positions far into the context round alike.
  const size_t D = static_cast<size_t>(c.head_dim), ctx = static_cast<size_t>(max_context_);
  const size_t half = D / 2;
  rope_cos_.resize(ctx * half);
  rope_sin_.resize(ctx * half);
  std::vector<float> inv_freq(half);
  for (size_t i = 0; i < half; ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(D)));
  for (size_t p = 0; p < ctx; ++p)
    for (size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];
      rope_cos_[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      rope_sin_[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
}

uint64_t CpuModel::memory_bytes() const {
  uint64_t b = owned_bytes_ + (rope_cos_.size() + rope_sin_.size()) * sizeof(float);
  for (const auto& v : small_) b += v.size() * sizeof(float);
  return b;
}

uint64_t CpuModel::context_bytes(int context_length) const { return CpuContext::bytes_for(config_, context_length); }

std::unique_ptr<ModelBackend> CpuModel::do_create_context(int context_length) const {
  const double bytes = static_cast<double>(CpuContext::bytes_for(config_, context_length));
  const double phys = physical_memory();
  if (phys > 0 && bytes > 0.75 * phys)
    throw OutOfMemoryError("a context of contextLength " + std::to_string(context_length) + " needs " +
                           std::to_string(bytes / 1e9) + " GB of KV cache; this machine has " + std::to_string(phys / 1e9) +
                           " GB (use a smaller contextLength)");
  return std::make_unique<CpuContext>(std::static_pointer_cast<const CpuModel>(shared_from_this()), context_length);
}

uint64_t CpuContext::bytes_for(const Qwen2Config& c, int context_length) {
  const uint64_t kv = 2ull * c.num_hidden_layers * c.num_key_value_heads * static_cast<uint64_t>(context_length) * c.head_dim;
  const uint64_t d = static_cast<uint64_t>(c.hidden_size);
  const uint64_t scratch = kChunk * (4 * d + c.q_dim() * 2ull + 2ull * c.kv_dim() + 2ull * c.intermediate_size);
  return (kv + scratch + d + static_cast<uint64_t>(c.vocab_size)) * sizeof(float);
}

CpuContext::CpuContext(std::shared_ptr<const CpuModel> model, int context_length)
    : ModelBackend(model, context_length), m_(*model) {
  const Qwen2Config& c = config_;
  const size_t L = static_cast<size_t>(c.num_hidden_layers), kvh = static_cast<size_t>(c.num_key_value_heads);
  const size_t D = static_cast<size_t>(c.head_dim), ctx = static_cast<size_t>(context_length_);
  cache_floats_ = L * kvh * ctx * D;
  k_cache_.reset(new float[cache_floats_]);
  v_cache_.reset(new float[cache_floats_]);

  const size_t d = static_cast<size_t>(c.hidden_size);
  x_.resize(kChunk * d);
  xn_.resize(kChunk * d);
  q_.resize(kChunk * static_cast<size_t>(c.q_dim()));
  k_.resize(kChunk * static_cast<size_t>(c.kv_dim()));
  v_.resize(kChunk * static_cast<size_t>(c.kv_dim()));
  attn_.resize(kChunk * static_cast<size_t>(c.q_dim()));
  gate_.resize(kChunk * static_cast<size_t>(c.intermediate_size));
  up_.resize(kChunk * static_cast<size_t>(c.intermediate_size));
  proj_.resize(kChunk * d);
  hidden_.assign(d, 0.0f);
  logits_.assign(static_cast<size_t>(c.vocab_size), 0.0f);
  adapters_.assign(L * kProjectionCount, {});
  hook_at_.assign(L * kProjectionCount, 0);
}

uint64_t CpuContext::memory_bytes() const { return bytes_for(config_, context_length_); }

void CpuContext::do_forward(const int32_t* tokens, int n) {
  for (int done = 0; done < n; done += kChunk) {
    const int m = std::min(kChunk, n - done);
    forward_chunk(tokens + done, nullptr, m, position_ + done);
  }
}

void CpuContext::do_forward_embeddings(const float* rows, int n) {
  const size_t d = static_cast<size_t>(config_.hidden_size);
  for (int done = 0; done < n; done += kChunk) {
    const int m = std::min(kChunk, n - done);
    forward_chunk(nullptr, rows + static_cast<size_t>(done) * d, m, position_ + done);
  }
}

void CpuContext::do_embed(const int32_t* tokens, int n, float* out) {
  const size_t d = static_cast<size_t>(config_.hidden_size);
  for (int t = 0; t < n; ++t) cpu::embedding_row(m_.embed(), tokens[t], out + static_cast<size_t>(t) * d);
}

void CpuContext::set_hidden(const float* h, MemorySpace space) {
  if (space != MemorySpace::Host) throw ArgumentRangeError("the cpu backend takes a host hidden state");
  if (!h) throw ArgumentTypeError("hidden must not be null");
  std::memcpy(hidden_.data(), h, hidden_.size() * sizeof(float));
}

void CpuContext::after_projection(int layer, Projection p, const float* in, int in_dim, float* out, int out_dim, int n,
                                int pos0) {
  const size_t slot = static_cast<size_t>(layer) * kProjectionCount + static_cast<size_t>(p);
  for (const LoraAdapter& a : adapters_[slot]) {
    std::vector<float> ax(static_cast<size_t>(a.rank));
    for (int t = 0; t < n; ++t) {
      const float* x = in + static_cast<size_t>(t) * in_dim;
      float* y = out + static_cast<size_t>(t) * out_dim;
      for (int r = 0; r < a.rank; ++r) {
        double s = 0.0;
        const float* ar = a.a.data() + static_cast<size_t>(r) * in_dim;
        for (int i = 0; i < in_dim; ++i) s += static_cast<double>(ar[i]) * x[i];
        ax[static_cast<size_t>(r)] = static_cast<float>(s);
      }
      for (int o = 0; o < out_dim; ++o) {
        double s = 0.0;
        const float* br = a.b.data() + static_cast<size_t>(o) * a.rank;
        for (int r = 0; r < a.rank; ++r) s += static_cast<double>(br[r]) * ax[static_cast<size_t>(r)];
        y[o] += a.scaling * static_cast<float>(s);
      }
    }
  }
  if (hook_ && hook_at_[slot]) {
    for (int t = 0; t < n; ++t) {
      ProjectionHookArgs args{layer, p, pos0 + t, in + static_cast<size_t>(t) * in_dim, in_dim,
                              out + static_cast<size_t>(t) * out_dim, out_dim, MemorySpace::Host};
      hook_(args);
    }
  }
}

void CpuContext::attention(int layer, int n, int pos0) {
  const Qwen2Config& c = config_;
  const int H = c.num_attention_heads, G = c.group_size(), D = c.head_dim;
  const size_t ctx = static_cast<size_t>(context_length_);
  const size_t qd = static_cast<size_t>(c.q_dim());
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const size_t layer_base = static_cast<size_t>(layer) * static_cast<size_t>(c.num_key_value_heads) * ctx * D;

  // One task per (token, head): each scans its KV head's cache up to its own position (causal).
  // Short contexts are cheaper than a barrier: keep ~64K multiply-adds per chunk at least.
  const size_t per_job = 2 * static_cast<size_t>(pos0 + n) * static_cast<size_t>(D);
  const size_t min_jobs = std::max<size_t>(1, (size_t{1} << 16) / per_job);
  parallel_for(
      static_cast<size_t>(n) * H,
      [&](size_t begin, size_t end) {
        thread_local std::vector<float> scores;
        scores.resize(ctx);
        for (size_t job = begin; job < end; ++job) {
          const int t = static_cast<int>(job / H), h = static_cast<int>(job % H);
          const int g = h / G;
          const int len = pos0 + t + 1;
          const float* q = q_.data() + static_cast<size_t>(t) * qd + static_cast<size_t>(h) * D;
          const float* kc = k_cache_.get() + layer_base + static_cast<size_t>(g) * ctx * D;
          const float* vc = v_cache_.get() + layer_base + static_cast<size_t>(g) * ctx * D;
          float mx = -INFINITY;
          for (int j = 0; j < len; ++j) {
            const float s = cpu::dot(q, kc + static_cast<size_t>(j) * D, D) * scale;
            scores[static_cast<size_t>(j)] = s;
            mx = std::max(mx, s);
          }
          float sum = 0.0f;
          for (int j = 0; j < len; ++j) {
            float e = std::exp(scores[static_cast<size_t>(j)] - mx);
            scores[static_cast<size_t>(j)] = e;
            sum += e;
          }
          const float inv = 1.0f / sum;
          float* out = attn_.data() + static_cast<size_t>(t) * qd + static_cast<size_t>(h) * D;
          std::fill(out, out + D, 0.0f);
          for (int j = 0; j < len; ++j) {
            const float p = scores[static_cast<size_t>(j)] * inv;
            const float* vj = vc + static_cast<size_t>(j) * D;
            for (int i = 0; i < D; ++i) out[i] += p * vj[i];
          }
        }
      },
      min_jobs);
}

void CpuContext::forward_chunk(const int32_t* tokens, const float* rows, int n, int pos0) {
  const Qwen2Config& c = config_;
  const int d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), f = c.intermediate_size, D = c.head_dim;
  const int half = D / 2;
  const size_t ctx = static_cast<size_t>(context_length_);
  const size_t ud = static_cast<size_t>(d);

  if (rows) std::memcpy(x_.data(), rows, static_cast<size_t>(n) * ud * sizeof(float));
  else
    for (int t = 0; t < n; ++t) cpu::embedding_row(m_.embed(), tokens[t], x_.data() + t * ud);

  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const CpuModel::Layer& L = m_.layers()[static_cast<size_t>(l)];
    const DType nd = L.in_norm_dtype, pd = L.post_norm_dtype;

    // --- self-attention block ---
    for (int t = 0; t < n; ++t) cpu::rms_norm(x_.data() + t * ud, L.in_norm, nd, d, c.rms_norm_eps, xn_.data() + t * ud);
    const cpu::MatJob qkv[3] = {{L.q, q_.data(), L.q_bias}, {L.k, k_.data(), L.k_bias}, {L.v, v_.data(), L.v_bias}};
    cpu::matmul_multi(qkv, 3, xn_.data(), n);
    after_projection(l, Projection::Q, xn_.data(), d, q_.data(), qd, n, pos0);
    after_projection(l, Projection::K, xn_.data(), d, k_.data(), kvd, n, pos0);
    after_projection(l, Projection::V, xn_.data(), d, v_.data(), kvd, n, pos0);

    // RoPE (rotate-half convention of transformers' Qwen2) on q and k, then k/v into the cache.
    for (int t = 0; t < n; ++t) {
      const size_t p = static_cast<size_t>(pos0 + t);
      const float* cs = m_.rope_cos() + p * half;
      const float* sn = m_.rope_sin() + p * half;
      auto rotate = [&](float* v) {
        for (int i = 0; i < half; ++i) {
          const float a = v[i], b = v[i + half];
          v[i] = a * cs[i] - b * sn[i];
          v[i + half] = b * cs[i] + a * sn[i];
        }
      };
      for (int h = 0; h < c.num_attention_heads; ++h) rotate(q_.data() + static_cast<size_t>(t) * qd + static_cast<size_t>(h) * D);
      for (int g = 0; g < c.num_key_value_heads; ++g) {
        float* kh = k_.data() + static_cast<size_t>(t) * kvd + static_cast<size_t>(g) * D;
        rotate(kh);
        const size_t at = ((static_cast<size_t>(l) * c.num_key_value_heads + g) * ctx + p) * D;
        std::memcpy(k_cache_.get() + at, kh, sizeof(float) * D);
        std::memcpy(v_cache_.get() + at, v_.data() + static_cast<size_t>(t) * kvd + static_cast<size_t>(g) * D,
                    sizeof(float) * D);
      }
    }
    attention(l, n, pos0);
    cpu::matmul(L.o, attn_.data(), n, proj_.data());
    after_projection(l, Projection::O, attn_.data(), qd, proj_.data(), d, n, pos0);
    for (size_t i = 0; i < static_cast<size_t>(n) * ud; ++i) x_[i] += proj_[i];

    // --- SwiGLU MLP ---
    for (int t = 0; t < n; ++t) cpu::rms_norm(x_.data() + t * ud, L.post_norm, pd, d, c.rms_norm_eps, xn_.data() + t * ud);
    const cpu::MatJob gate_up[2] = {{L.gate, gate_.data(), nullptr}, {L.up, up_.data(), nullptr}};
    cpu::matmul_multi(gate_up, 2, xn_.data(), n);
    after_projection(l, Projection::Gate, xn_.data(), d, gate_.data(), f, n, pos0);
    after_projection(l, Projection::Up, xn_.data(), d, up_.data(), f, n, pos0);
    for (size_t i = 0; i < static_cast<size_t>(n) * f; ++i) gate_[i] = silu(gate_[i]) * up_[i];
    cpu::matmul(L.down, gate_.data(), n, proj_.data());
    after_projection(l, Projection::Down, gate_.data(), f, proj_.data(), d, n, pos0);
    for (size_t i = 0; i < static_cast<size_t>(n) * ud; ++i) x_[i] += proj_[i];
  }

  // Final norm of the chunk's last token: the hidden state the LM head (and HE-LoRA) consume.
  const Tensor& norm = m_.weights().norm;
  cpu::rms_norm(x_.data() + static_cast<size_t>(n - 1) * ud, norm.data, norm.dtype, d, c.rms_norm_eps, hidden_.data());
}

void CpuContext::add_to_hidden(const float* delta, MemorySpace space) {
  if (space != MemorySpace::Host) throw ArgumentRangeError("the cpu backend takes a host delta");
  if (!delta) throw ArgumentTypeError("delta must not be null");
  for (size_t i = 0; i < hidden_.size(); ++i) hidden_[i] += delta[i];
}

void CpuContext::lm_head() { cpu::matmul(m_.lm_head(), hidden_.data(), 1, logits_.data()); }

void CpuContext::read_hidden(float* out) { std::memcpy(out, hidden_.data(), hidden_.size() * sizeof(float)); }
void CpuContext::read_logits(float* out) { std::memcpy(out, logits_.data(), logits_.size() * sizeof(float)); }

int32_t CpuContext::do_sample(const SamplingOptions& opts, double u) {
  return sample_token(logits_.data(), static_cast<int>(logits_.size()), opts, u);
}

void CpuContext::install_adapters(const std::vector<LoraAdapter>& adapters) {
  for (auto& v : adapters_) v.clear();
  for (const LoraAdapter& a : adapters)
    adapters_[static_cast<size_t>(a.layer) * kProjectionCount + static_cast<size_t>(a.target)].push_back(a);
}

void CpuContext::install_hook(ProjectionHook hook, std::vector<HookSite> sites) {
  std::fill(hook_at_.begin(), hook_at_.end(), 0);
  hook_ = std::move(hook);
  for (const HookSite& s : sites) hook_at_[static_cast<size_t>(s.layer) * kProjectionCount + static_cast<size_t>(s.target)] = 1;
}

std::shared_ptr<Model> load_cpu_model(const WeightSource& source, const ModelOptions& options) {
  return std::make_shared<CpuModel>(source, options);
}

}  // namespace tensafe::model
