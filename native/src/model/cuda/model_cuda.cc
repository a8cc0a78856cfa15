// ModelCuda: weights upload / on-device generation, the captured decode step, the stages after
// it (LM head, sampling). See model_cuda.h for the layout and the stream contract.
#include "model/cuda/model_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/device_info.h"
#include "common/errors.h"
#include "common/thread_pool.h"
#include "cuda/cuda_check.h"
#include "model/synthetic.h"

namespace tensafe::model {

std::unique_ptr<ModelBackend> create_cuda_model(const WeightSource& source, const ModelOptions& options) {
  return std::make_unique<cuda::ModelCuda>(source, options);
}

namespace cuda {
namespace {

size_t align256(size_t v) { return (v + 255) & ~static_cast<size_t>(255); }

// Destination of one checkpoint tensor in the device arena.
struct Placement {
  size_t offset = 0;  // bytes into the arena
  DType type = DType::F16;
};

// Converts `count` elements of a host tensor into `to` (F16, BF16 or F32) in `dst`.
void convert_host(const Tensor& t, size_t count, DType to, void* dst) {
  if (t.dtype == to) {
    std::memcpy(dst, t.data, count * dtype_size(to));
    return;
  }
  parallel_for(
      count,
      [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) {
          const float v = load_as_float(t.data, t.dtype, i);
          if (to == DType::F32) static_cast<float*>(dst)[i] = v;
          else if (to == DType::BF16) static_cast<uint16_t*>(dst)[i] = float_to_bf16(v);
          else static_cast<uint16_t*>(dst)[i] = float_to_f16(v);
        }
      },
      1 << 16);
}

}  // namespace

ModelCuda::ModelCuda(const WeightSource& source, const ModelOptions& options)
    : ModelBackend(source.config, options.context_length) {
  if (!cuda_available()) {
    CudaRuntimeInfo info = cuda_runtime_info();
    throw BackendUnavailableError("the CUDA model backend needs a usable CUDA device: " +
                                  (info.unavailable_reason.empty() ? std::string("none found") : info.unavailable_reason));
  }
  if (config_.head_dim % 2 != 0) throw FormatError("head_dim must be even for rotary embeddings");
  wtype_ = options.weight_dtype == DType::BF16 ? DType::BF16 : DType::F16;
  if (const char* g = std::getenv("TENSAFE_CUDA_GRAPH")) use_graph_ = std::string(g) != "0";
  batched_prefill_ = batched_prefill_enabled_by_env();
  const DecodeKernel decode_kind = decode_kernel_from_env();
  try {
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    const Qwen2Config& c = config_;
    const int d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
    const int ctx = context_length_, D = c.head_dim, H = c.num_attention_heads;

    upload_weights(source);

    kv_cache_.allocate(static_cast<size_t>(2) * c.num_hidden_layers * c.num_key_value_heads * ctx * D);
    // RoPE table in float64 on the host: angle = pos * theta^(-2i / head_dim).
    {
      const int half = D / 2;
      std::vector<float2> table(static_cast<size_t>(ctx) * half);
      for (int i = 0; i < half; ++i) {
        const double inv = std::pow(c.rope_theta, -2.0 * i / D);
        for (int p = 0; p < ctx; ++p) {
          const double a = static_cast<double>(p) * inv;
          table[static_cast<size_t>(p) * half + i] = make_float2(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
        }
      }
      rope_.allocate(table.size());
      CUDA_CHECK(cudaMemcpy(rope_.data(), table.data(), table.size() * sizeof(float2), cudaMemcpyHostToDevice));
    }
    const int splits = attention_splits(ctx);
    x_.allocate(d);
    qkv_.allocate(static_cast<size_t>(qd) + 2 * kvd);
    attn_.allocate(qd);
    act_.allocate(I);
    hidden_.allocate(d);
    logits_.allocate(V);
    delta_.allocate(d);
    xn_.allocate(d);
    proj_.allocate(std::max<size_t>({static_cast<size_t>(d), 2 * static_cast<size_t>(I), static_cast<size_t>(qd) + 2 * kvd}));
    o_part_.allocate(static_cast<size_t>(H) * splits * D);
    m_part_.allocate(static_cast<size_t>(H) * splits);
    l_part_.allocate(static_cast<size_t>(H) * splits);
    attn_counters_.allocate(H);
    CUDA_CHECK(cudaMemset(attn_counters_.data(), 0, attn_counters_.bytes()));
    tokens_.allocate(ctx);
    pos_.allocate(1);
    sampled_.allocate(1);
    sampling_scratch_.allocate(sampling_scratch_bytes(V));
    CUDA_CHECK(cudaMemset(hidden_.data(), 0, hidden_.bytes()));
    CUDA_CHECK(cudaMemset(logits_.data(), 0, logits_.bytes()));
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&h_tokens_), sizeof(int32_t) * ctx));
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&h_sampled_), sizeof(int32_t)));
    set_device_position(0);
    create_megakernel(decode_kind);
  } catch (...) {
    if (stream_) cudaStreamDestroy(stream_);
    if (h_tokens_) cudaFreeHost(h_tokens_);
    if (h_sampled_) cudaFreeHost(h_sampled_);
    stream_ = nullptr;
    h_tokens_ = h_sampled_ = nullptr;
    throw;
  }
}

ModelCuda::~ModelCuda() {
  if (stream_) cudaStreamSynchronize(stream_);
  if (graph_) cudaGraphExecDestroy(graph_);
  if (stream_) cudaStreamDestroy(stream_);
  if (h_tokens_) cudaFreeHost(h_tokens_);
  if (h_sampled_) cudaFreeHost(h_sampled_);
}

void ModelCuda::upload_weights(const WeightSource& source) {
  const Qwen2Config& c = config_;
  const bool synthetic = source.host == nullptr;
  if (!synthetic) source.host->validate();
  const size_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
  const size_t L = c.num_hidden_layers;
  const size_t ws = 2;  // bytes per weight (f16 / bf16)

  // Plan the arena: every tensor at a 256-byte aligned offset.
  size_t off = 0;
  auto take = [&](size_t bytes) {
    size_t o = off;
    off += align256(bytes);
    return o;
  };
  struct LayerOffsets {
    size_t qkv, bias, o, gu, down, ln1, ln2;
  };
  std::vector<LayerOffsets> lo(L);
  uint64_t per_token = 0;
  for (size_t l = 0; l < L; ++l) {
    lo[l].qkv = take((qd + 2 * kvd) * d * ws);
    lo[l].bias = take((qd + 2 * kvd) * 4);
    lo[l].o = take(d * qd * ws);
    lo[l].gu = take(2 * I * d * ws);
    lo[l].down = take(d * I * ws);
    lo[l].ln1 = take(d * 4);
    lo[l].ln2 = take(d * 4);
    per_token += ((qd + 2 * kvd) * d + d * qd + 3 * I * d) * ws + (qd + 2 * kvd) * 4 + 2 * d * 4;
  }
  const size_t embed_off = take(V * d * ws);
  const size_t lm_off = c.tie_word_embeddings ? embed_off : take(V * d * ws);
  const size_t norm_off = take(d * 4);
  per_token += V * d * ws + d * 4;
  bytes_per_token_ = per_token;
  arena_.allocate(off);
  unsigned char* base = arena_.data();

  // One tensor into the arena at byte offset `dst` (type `to`): generated on the device, or
  // converted on the host and copied.
  std::vector<unsigned char> staging;
  auto put = [&](size_t dst, DType to, const Tensor* host, uint32_t id, synthetic::Scale s, size_t count) {
    if (synthetic) {
      synth_fill(base + dst, to, count, source.seed, id, s.center, s.half_width, stream_);
      CUDA_CHECK_LAUNCH();
      return;
    }
    if (host->numel() != count) throw FormatError("tensor " + host->name + " has the wrong size for the config");
    staging.resize(count * dtype_size(to));
    convert_host(*host, count, to, staging.data());
    CUDA_CHECK(cudaMemcpy(base + dst, staging.data(), staging.size(), cudaMemcpyHostToDevice));
  };
  auto layer_scale = [&](LayerTensor t) {
    return synthetic::layer_scale(static_cast<int>(t), c.hidden_size, c.q_dim(), c.intermediate_size);
  };
  auto ht = [&](size_t l, LayerTensor t) -> const Tensor* {
    return synthetic ? nullptr : &source.host->layers[l][t];
  };
  auto id = [&](size_t l, LayerTensor t) { return synthetic::layer_id(static_cast<int>(l), static_cast<int>(t)); };
  const DType W = wtype_, F = DType::F32;

  layers_.resize(L);
  for (size_t l = 0; l < L; ++l) {
    const LayerOffsets& o = lo[l];
    put(o.qkv, W, ht(l, LayerTensor::QProjWeight), id(l, LayerTensor::QProjWeight), layer_scale(LayerTensor::QProjWeight), qd * d);
    put(o.qkv + qd * d * ws, W, ht(l, LayerTensor::KProjWeight), id(l, LayerTensor::KProjWeight),
        layer_scale(LayerTensor::KProjWeight), kvd * d);
    put(o.qkv + (qd + kvd) * d * ws, W, ht(l, LayerTensor::VProjWeight), id(l, LayerTensor::VProjWeight),
        layer_scale(LayerTensor::VProjWeight), kvd * d);
    put(o.bias, F, ht(l, LayerTensor::QProjBias), id(l, LayerTensor::QProjBias), layer_scale(LayerTensor::QProjBias), qd);
    put(o.bias + qd * 4, F, ht(l, LayerTensor::KProjBias), id(l, LayerTensor::KProjBias), layer_scale(LayerTensor::KProjBias), kvd);
    put(o.bias + (qd + kvd) * 4, F, ht(l, LayerTensor::VProjBias), id(l, LayerTensor::VProjBias),
        layer_scale(LayerTensor::VProjBias), kvd);
    put(o.o, W, ht(l, LayerTensor::OProjWeight), id(l, LayerTensor::OProjWeight), layer_scale(LayerTensor::OProjWeight), d * qd);
    put(o.gu, W, ht(l, LayerTensor::GateProjWeight), id(l, LayerTensor::GateProjWeight),
        layer_scale(LayerTensor::GateProjWeight), I * d);
    put(o.gu + I * d * ws, W, ht(l, LayerTensor::UpProjWeight), id(l, LayerTensor::UpProjWeight),
        layer_scale(LayerTensor::UpProjWeight), I * d);
    put(o.down, W, ht(l, LayerTensor::DownProjWeight), id(l, LayerTensor::DownProjWeight),
        layer_scale(LayerTensor::DownProjWeight), d * I);
    put(o.ln1, F, ht(l, LayerTensor::InputLayernorm), id(l, LayerTensor::InputLayernorm),
        layer_scale(LayerTensor::InputLayernorm), d);
    put(o.ln2, F, ht(l, LayerTensor::PostAttentionLayernorm), id(l, LayerTensor::PostAttentionLayernorm),
        layer_scale(LayerTensor::PostAttentionLayernorm), d);
    Layer& ly = layers_[l];
    ly.qkv = reinterpret_cast<const uint16_t*>(base + o.qkv);
    ly.qkv_bias = reinterpret_cast<const float*>(base + o.bias);
    ly.o = reinterpret_cast<const uint16_t*>(base + o.o);
    ly.gate_up = reinterpret_cast<const uint16_t*>(base + o.gu);
    ly.down = reinterpret_cast<const uint16_t*>(base + o.down);
    ly.ln1 = reinterpret_cast<const float*>(base + o.ln1);
    ly.ln2 = reinterpret_cast<const float*>(base + o.ln2);
  }
  put(embed_off, W, synthetic ? nullptr : &source.host->embed_tokens, synthetic::embed_id(), synthetic::embedding_scale(), V * d);
  if (!c.tie_word_embeddings) {
    put(lm_off, W, synthetic ? nullptr : &source.host->lm_head, synthetic::lm_head_id(c.num_hidden_layers),
        synthetic::embedding_scale(), V * d);
  }
  put(norm_off, F, synthetic ? nullptr : &source.host->norm, synthetic::final_norm_id(c.num_hidden_layers),
      synthetic::norm_scale(), d);
  embed_ = reinterpret_cast<const uint16_t*>(base + embed_off);
  lm_head_ = reinterpret_cast<const uint16_t*>(base + lm_off);
  final_norm_ = reinterpret_cast<const float*>(base + norm_off);
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void ModelCuda::set_device_position(int pos) {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  CUDA_CHECK(cudaMemcpy(pos_.data(), &pos, sizeof(int), cudaMemcpyHostToDevice));
}

void ModelCuda::create_megakernel(DecodeKernel kind) {
  if (kind == DecodeKernel::Graph) return;
  std::string why;
  if (!DecodeMegakernel::supports(config_, context_length_, &why)) {
    if (kind == DecodeKernel::Mega) throw BackendUnavailableError("TENSAFE_DECODE=mega: " + why);
    return;
  }
  mega_ = std::make_unique<DecodeMegakernel>(view());
  // The LM head follows the step: its first rows go into L2 while the last layer finishes.
  const size_t lm_bytes = static_cast<size_t>(config_.vocab_size) * config_.hidden_size * 2;
  mega_->set_tail_prefetch(lm_head_, std::min(lm_bytes, mega_->lookahead() * static_cast<size_t>(mega_->grid())));
}

void ModelCuda::enqueue_step(bool gather) {
  if (mega_) {
    mega_->enqueue(view(), gather, stream_);
    return;
  }
  const Qwen2Config& c = config_;
  const int d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const size_t cache_layer = static_cast<size_t>(c.num_key_value_heads) * context_length_ * c.head_dim;
  if (gather) embed_lookup(embed_, wtype_, tokens_.data(), pos_.data(), d, x_.data(), stream_);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& ly = layers_[l];
    GemvArgs qkv;
    qkv.w = ly.qkv; qkv.wtype = wtype_; qkv.n = qd + 2 * kvd; qkv.k = d; qkv.x = x_.data();
    qkv.norm_w = ly.ln1; qkv.eps = eps; qkv.bias = ly.qkv_bias; qkv.y = qkv_.data();
    qkv.epilogue = GemvEpilogue::Store;
    gemv(qkv, stream_);

    AttentionArgs at;
    at.qkv = qkv_.data();
    at.k_cache = kv_cache_.data() + (2 * l) * cache_layer;
    at.v_cache = kv_cache_.data() + (2 * l + 1) * cache_layer;
    at.cache_type = wtype_;
    at.rope = rope_.data();
    at.pos = pos_.data();
    at.heads = c.num_attention_heads; at.kv_heads = c.num_key_value_heads; at.head_dim = c.head_dim;
    at.context = context_length_;
    at.o_part = o_part_.data(); at.m_part = m_part_.data(); at.l_part = l_part_.data();
    at.counters = attn_counters_.data();
    at.out = attn_.data();
    attention_decode(at, stream_);

    GemvArgs o;
    o.w = ly.o; o.wtype = wtype_; o.n = d; o.k = qd; o.x = attn_.data(); o.y = x_.data();
    o.epilogue = GemvEpilogue::Accumulate;
    gemv(o, stream_);

    GemvArgs gu;
    gu.w = ly.gate_up; gu.wtype = wtype_; gu.n = I; gu.k = d; gu.x = x_.data(); gu.norm_w = ly.ln2; gu.eps = eps;
    gu.y = act_.data(); gu.epilogue = GemvEpilogue::SwiGLU;
    gemv(gu, stream_);

    GemvArgs dn;
    dn.w = ly.down; dn.wtype = wtype_; dn.n = d; dn.k = I; dn.x = act_.data(); dn.y = x_.data();
    dn.epilogue = GemvEpilogue::Accumulate;
    gemv(dn, stream_);
  }
  rmsnorm(x_.data(), final_norm_, eps, d, hidden_.data(), pos_.data(), stream_);
}

DecoderView ModelCuda::view() {
  DecoderView v;
  v.config = &config_;
  v.wtype = wtype_;
  v.layers = &layers_;
  v.embed = embed_;
  v.final_norm = final_norm_;
  v.rope = rope_.data();
  v.kv_cache = kv_cache_.data();
  v.context = context_length_;
  v.tokens = tokens_.data();
  v.pos = pos_.data();
  v.x = x_.data();
  v.hidden = hidden_.data();
  return v;
}

void ModelCuda::do_forward(const int32_t* tokens, int n) {
  std::memcpy(h_tokens_ + position_, tokens, sizeof(int32_t) * n);
  CUDA_CHECK(cudaMemcpyAsync(tokens_.data() + position_, h_tokens_ + position_, sizeof(int32_t) * n,
                             cudaMemcpyHostToDevice, stream_));
  const bool instrumented = hook_ || !adapters_.empty();
  if (n > 1 && batched_prefill_ && !instrumented) {
    if (!prefill_) prefill_ = std::make_unique<BatchedPrefill>();
    prefill_->run(view(), position_, n, stream_);
    return;
  }
  forward_steps(n);
}

// Captures one decode step into graph_; on failure leaves graph_ null, the stream usable and
// the reason in *why.
bool ModelCuda::capture_step(std::string* why) {
  cudaGraph_t g = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue_step();
  } catch (const std::exception& e) {
    *why = e.what();
  }
  cudaError_t err = cudaStreamEndCapture(stream_, &g);
  if (why->empty() && err != cudaSuccess) *why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(err);
  if (why->empty()) {
    err = cudaGraphInstantiate(&graph_, g, 0);
    if (err != cudaSuccess) {
      graph_ = nullptr;
      *why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(err);
    }
  }
  if (g) cudaGraphDestroy(g);
  if (!why->empty()) (void)cudaGetLastError();
  return why->empty();
}

void ModelCuda::forward_steps(int n) {
  if (use_graph_ && graph_ == nullptr) {
    std::string why;
    if (!capture_step(&why)) {
      // A runtime that cannot capture a cooperative launch: capture a plain one (the grid is
      // sized to be co-resident; the launch attribute only made that a checked guarantee).
      std::string again;
      if (!(mega_ && mega_->cooperative())) throw CudaError("capturing the decode step failed: " + why);
      mega_->set_cooperative(false);
      if (!capture_step(&again)) throw CudaError("capturing the decode step failed: " + why + "; without the cooperative attribute: " + again);
    }
  }
  const bool instrumented = hook_ || !adapters_.empty();
  for (int i = 0; i < n; ++i) {
    if (instrumented) run_instrumented_step(position_ + i);
    else if (use_graph_) CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
    else enqueue_step();
  }
}

void ModelCuda::install_adapters(const std::vector<LoraAdapter>& adapters) {
  synchronize();
  adapters_ = adapters;
  adapted_.assign(static_cast<size_t>(config_.num_hidden_layers) * kProjectionCount, 0);
  for (const auto& a : adapters_) adapted_[static_cast<size_t>(a.layer) * kProjectionCount + static_cast<int>(a.target)] = 1;
}

void ModelCuda::install_hook(ProjectionHook hook, std::vector<HookSite> sites) {
  synchronize();
  hook_site_.assign(static_cast<size_t>(config_.num_hidden_layers) * kProjectionCount, 0);
  if (!hook || sites.empty()) {
    hook_ = nullptr;
    return;
  }
  hook_ = std::move(hook);
  for (const auto& s : sites) hook_site_[static_cast<size_t>(s.layer) * kProjectionCount + static_cast<int>(s.target)] = 1;
}

bool ModelCuda::has_site(int layer, Projection p) const {
  const size_t i = static_cast<size_t>(layer) * kProjectionCount + static_cast<int>(p);
  return (i < adapted_.size() && adapted_[i]) || (hook_ && i < hook_site_.size() && hook_site_[i]);
}

void ModelCuda::apply_host(int layer, Projection p, int position, const float* in, int in_dim, float* out, int out_dim) {
  for (const auto& a : adapters_) {
    if (a.layer != layer || a.target != p) continue;
    std::vector<double> ax(static_cast<size_t>(a.rank), 0.0);
    for (int r = 0; r < a.rank; ++r) {
      const float* row = a.a.data() + static_cast<size_t>(r) * in_dim;
      double s = 0.0;
      for (int j = 0; j < in_dim; ++j) s += static_cast<double>(row[j]) * in[j];
      ax[static_cast<size_t>(r)] = s;
    }
    for (int o = 0; o < out_dim; ++o) {
      const float* row = a.b.data() + static_cast<size_t>(o) * a.rank;
      double s = 0.0;
      for (int r = 0; r < a.rank; ++r) s += static_cast<double>(row[r]) * ax[static_cast<size_t>(r)];
      out[o] += static_cast<float>(static_cast<double>(a.scaling) * s);
    }
  }
  const size_t i = static_cast<size_t>(layer) * kProjectionCount + static_cast<int>(p);
  if (hook_ && i < hook_site_.size() && hook_site_[i]) {
    ProjectionHookArgs args{layer, p, position, in, in_dim, out, out_dim, MemorySpace::Host};
    hook_(args);
  }
}

void ModelCuda::run_instrumented_step(int position, bool gather) {
  const Qwen2Config& c = config_;
  const int d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const size_t cache_layer = static_cast<size_t>(c.num_key_value_heads) * context_length_ * c.head_dim;
  // Copies device -> host (count floats), after everything queued so far.
  auto fetch = [&](std::vector<float>& host, const float* dev, size_t count) {
    host.resize(count);
    CUDA_CHECK(cudaMemcpyAsync(host.data(), dev, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  };
  auto put_back = [&](float* dev, const std::vector<float>& host, size_t count) {
    CUDA_CHECK(cudaMemcpyAsync(dev, host.data(), count * sizeof(float), cudaMemcpyHostToDevice, stream_));
    synchronize();  // host buffers are reused by the next site
  };
  auto plain_gemv = [&](const uint16_t* w, int n, int k, const float* x, const float* bias, float* y) {
    GemvArgs a;
    a.w = w; a.wtype = wtype_; a.n = n; a.k = k; a.x = x; a.bias = bias; a.y = y; a.epilogue = GemvEpilogue::Store;
    gemv(a, stream_);
  };

  if (gather) embed_lookup(embed_, wtype_, tokens_.data(), pos_.data(), d, x_.data(), stream_);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& ly = layers_[static_cast<size_t>(l)];
    // q / k / v
    if (has_site(l, Projection::Q) || has_site(l, Projection::K) || has_site(l, Projection::V)) {
      rmsnorm(x_.data(), ly.ln1, eps, d, xn_.data(), nullptr, stream_);
      plain_gemv(ly.qkv, qd + 2 * kvd, d, xn_.data(), ly.qkv_bias, qkv_.data());
      fetch(h_in_, xn_.data(), d);
      fetch(h_out_, qkv_.data(), static_cast<size_t>(qd) + 2 * kvd);
      synchronize();
      apply_host(l, Projection::Q, position, h_in_.data(), d, h_out_.data(), qd);
      apply_host(l, Projection::K, position, h_in_.data(), d, h_out_.data() + qd, kvd);
      apply_host(l, Projection::V, position, h_in_.data(), d, h_out_.data() + qd + kvd, kvd);
      put_back(qkv_.data(), h_out_, static_cast<size_t>(qd) + 2 * kvd);
    } else {
      GemvArgs a;
      a.w = ly.qkv; a.wtype = wtype_; a.n = qd + 2 * kvd; a.k = d; a.x = x_.data(); a.norm_w = ly.ln1; a.eps = eps;
      a.bias = ly.qkv_bias; a.y = qkv_.data(); a.epilogue = GemvEpilogue::Store;
      gemv(a, stream_);
    }
    AttentionArgs at;
    at.qkv = qkv_.data();
    at.k_cache = kv_cache_.data() + (2 * static_cast<size_t>(l)) * cache_layer;
    at.v_cache = kv_cache_.data() + (2 * static_cast<size_t>(l) + 1) * cache_layer;
    at.cache_type = wtype_; at.rope = rope_.data(); at.pos = pos_.data();
    at.heads = c.num_attention_heads; at.kv_heads = c.num_key_value_heads; at.head_dim = c.head_dim;
    at.context = context_length_;
    at.o_part = o_part_.data(); at.m_part = m_part_.data(); at.l_part = l_part_.data();
    at.counters = attn_counters_.data(); at.out = attn_.data();
    attention_decode(at, stream_);
    // o
    if (has_site(l, Projection::O)) {
      plain_gemv(ly.o, d, qd, attn_.data(), nullptr, proj_.data());
      fetch(h_in_, attn_.data(), qd);
      fetch(h_out_, proj_.data(), d);
      synchronize();
      apply_host(l, Projection::O, position, h_in_.data(), qd, h_out_.data(), d);
      put_back(proj_.data(), h_out_, d);
      add_inplace(x_.data(), proj_.data(), d, stream_);
    } else {
      GemvArgs a;
      a.w = ly.o; a.wtype = wtype_; a.n = d; a.k = qd; a.x = attn_.data(); a.y = x_.data();
      a.epilogue = GemvEpilogue::Accumulate;
      gemv(a, stream_);
    }
    // gate / up
    if (has_site(l, Projection::Gate) || has_site(l, Projection::Up)) {
      rmsnorm(x_.data(), ly.ln2, eps, d, xn_.data(), nullptr, stream_);
      plain_gemv(ly.gate_up, 2 * I, d, xn_.data(), nullptr, proj_.data());
      fetch(h_in_, xn_.data(), d);
      fetch(h_out_, proj_.data(), 2 * static_cast<size_t>(I));
      synchronize();
      apply_host(l, Projection::Gate, position, h_in_.data(), d, h_out_.data(), I);
      apply_host(l, Projection::Up, position, h_in_.data(), d, h_out_.data() + I, I);
      put_back(proj_.data(), h_out_, 2 * static_cast<size_t>(I));
      swiglu(proj_.data(), I, act_.data(), stream_);
    } else {
      GemvArgs a;
      a.w = ly.gate_up; a.wtype = wtype_; a.n = I; a.k = d; a.x = x_.data(); a.norm_w = ly.ln2; a.eps = eps;
      a.y = act_.data(); a.epilogue = GemvEpilogue::SwiGLU;
      gemv(a, stream_);
    }
    // down
    if (has_site(l, Projection::Down)) {
      plain_gemv(ly.down, d, I, act_.data(), nullptr, proj_.data());
      fetch(h_in_, act_.data(), I);
      fetch(h_out_, proj_.data(), d);
      synchronize();
      apply_host(l, Projection::Down, position, h_in_.data(), I, h_out_.data(), d);
      put_back(proj_.data(), h_out_, d);
      add_inplace(x_.data(), proj_.data(), d, stream_);
    } else {
      GemvArgs a;
      a.w = ly.down; a.wtype = wtype_; a.n = d; a.k = I; a.x = act_.data(); a.y = x_.data();
      a.epilogue = GemvEpilogue::Accumulate;
      gemv(a, stream_);
    }
  }
  rmsnorm(x_.data(), final_norm_, eps, d, hidden_.data(), pos_.data(), stream_);
}

void ModelCuda::do_embed(const int32_t* tokens, int n, float* host_out) {
  // Tokens were validated by ModelBackend::embed. Each row is the embedding table's row
  // converted to float32 (exact, as embed_lookup does), staged through proj_ (>= d floats).
  const size_t d = static_cast<size_t>(config_.hidden_size);
  const int per_chunk = static_cast<int>(std::max<size_t>(1, proj_.size() / d));
  for (int done = 0; done < n; done += per_chunk) {
    const int m = std::min(per_chunk, n - done);
    for (int i = 0; i < m; ++i)
      to_float(embed_ + static_cast<size_t>(tokens[done + i]) * d, wtype_, d, proj_.data() + static_cast<size_t>(i) * d,
               stream_);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaMemcpyAsync(host_out + static_cast<size_t>(done) * d, proj_.data(), sizeof(float) * d * m,
                               cudaMemcpyDeviceToHost, stream_));
    synchronize();  // proj_ is reused by the next chunk; host_out is pageable
  }
}

void ModelCuda::do_forward_embeddings(const float* rows, int n) {
  // Validated by ModelBackend::prefill_embeddings (count, context, finite). All rows go up in
  // one copy; each position then copies its row into the residual stream x_ and runs the
  // decode step's kernels without the gather. The final RMSNorm advances the device position
  // exactly as a token step does, so token and row positions mix freely in one cache.
  const size_t d = static_cast<size_t>(config_.hidden_size);
  DeviceBuffer<float> dev_rows(static_cast<size_t>(n) * d);
  CUDA_CHECK(cudaMemcpyAsync(dev_rows.data(), rows, dev_rows.bytes(), cudaMemcpyHostToDevice, stream_));
  const bool instrumented = hook_ || !adapters_.empty();
  try {
    for (int i = 0; i < n; ++i) {
      CUDA_CHECK(cudaMemcpyAsync(x_.data(), dev_rows.data() + static_cast<size_t>(i) * d, sizeof(float) * d,
                                 cudaMemcpyDeviceToDevice, stream_));
      if (instrumented) run_instrumented_step(position_ + i, false);
      else enqueue_step(false);
    }
    synchronize();  // dev_rows is freed on return
  } catch (...) {
    cudaStreamSynchronize(stream_);
    throw;
  }
}

void ModelCuda::set_hidden(const float* h, MemorySpace space) {
  if (h == nullptr) throw ArgumentTypeError("hidden must not be null");
  const cudaMemcpyKind kind = space == MemorySpace::Host ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpyAsync(hidden_.data(), h, hidden_.bytes(), kind, stream_));
  // A pageable host source is staged before cudaMemcpyAsync returns; syncing here also lets
  // the caller free or reuse a device source at once.
  synchronize();
}

void ModelCuda::on_reset() { set_device_position(0); }
void ModelCuda::on_trim(int n) { set_device_position(n); }

FloatSpan ModelCuda::hidden() {
  synchronize();
  return FloatSpan{hidden_.data(), static_cast<size_t>(config_.hidden_size), MemorySpace::Device};
}

FloatSpan ModelCuda::logits() {
  synchronize();
  return FloatSpan{logits_.data(), static_cast<size_t>(config_.vocab_size), MemorySpace::Device};
}

void ModelCuda::add_to_hidden(const float* delta, MemorySpace space) {
  if (delta == nullptr) throw ArgumentTypeError("delta must not be null");
  const int d = config_.hidden_size;
  if (space == MemorySpace::Host) {
    CUDA_CHECK(cudaMemcpyAsync(delta_.data(), delta, sizeof(float) * d, cudaMemcpyHostToDevice, stream_));
    add_inplace(hidden_.data(), delta_.data(), d, stream_);
  } else {
    add_inplace(hidden_.data(), delta, d, stream_);
  }
}

void ModelCuda::lm_head() {
  GemvArgs a;
  a.w = lm_head_; a.wtype = wtype_; a.n = config_.vocab_size; a.k = config_.hidden_size;
  a.x = hidden_.data(); a.y = logits_.data(); a.epilogue = GemvEpilogue::Store;
  gemv(a, stream_);
}

void ModelCuda::read_hidden(float* host_out) {
  CUDA_CHECK(cudaMemcpyAsync(host_out, hidden_.data(), hidden_.bytes(), cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

void ModelCuda::read_logits(float* host_out) {
  CUDA_CHECK(cudaMemcpyAsync(host_out, logits_.data(), logits_.bytes(), cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

void ModelCuda::synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

int32_t ModelCuda::do_sample(const SamplingOptions& opts, double u) {
  SamplingScratch scratch{sampling_scratch_.data(), sampling_scratch_.bytes()};
  const int V = config_.vocab_size;
  if (opts.greedy()) cuda::argmax(logits_.data(), V, sampled_.data(), scratch, stream_);
  else cuda::sample(logits_.data(), V, opts.temperature, opts.top_k, opts.top_p, u, sampled_.data(), scratch, stream_);
  CUDA_CHECK(cudaMemcpyAsync(h_sampled_, sampled_.data(), sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  synchronize();
  return *h_sampled_;
}

}  // namespace cuda
}  // namespace tensafe::model
