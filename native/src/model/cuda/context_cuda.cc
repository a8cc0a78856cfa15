// ContextCuda: one sequence on a ModelCuda: its arena (KV cache + scratch), the captured decode
// step, the instrumented path for adapters (resident on the device) and hooks, split mode, the stages after the forward
// (LM head, sampling). See context_cuda.h for the layout and the stream contract.
#include "model/cuda/context_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#include "common/errors.h"
#include "cuda/device_buffer.h"
#include "cuda/cuda_check.h"
#include "model/cuda/batched_prefill.h"
#include "model/cuda/decode_step.h"

namespace tensafe::model::cuda {
namespace {

size_t align256(size_t v) { return (v + 255) & ~static_cast<size_t>(255); }

// Offsets of every buffer of a context's arena, for `context_length` positions.
struct ArenaPlan {
  size_t off = 0;
  template <typename T>
  void take(DeviceSpan<T>& span, size_t count) {
    span.count = count;
    span.offset = off;
    off += align256(count * sizeof(T));
  }
};

}  // namespace

size_t ContextCuda::plan_arena() {
  const Qwen2Config& c = config_;
  const size_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
  const size_t ctx = context_length_, D = c.head_dim, H = c.num_attention_heads;
  const size_t splits = attention_splits(context_length_);
  ArenaPlan p;
  p.take(kv_cache_, 2 * static_cast<size_t>(c.num_hidden_layers) * c.num_key_value_heads * ctx * D);
  p.take(x_, d);
  p.take(qkv_, qd + 2 * kvd);
  p.take(attn_, qd);
  p.take(act_, I);
  p.take(hidden_, d);
  p.take(logits_, V);
  p.take(delta_, d);
  p.take(xn_, d);
  p.take(proj_, std::max<size_t>({d, 2 * I, qd + 2 * kvd}));
  p.take(o_part_, H * splits * D);
  p.take(m_part_, H * splits);
  p.take(l_part_, H * splits);
  p.take(attn_counters_, H);
  p.take(tokens_, ctx);
  p.take(pos_, 1);
  p.take(sampled_, 1);
  p.take(barrier_, 2);
  return p.off;
}

uint64_t ContextCuda::bytes_for(const Qwen2Config& c, int context_length) {
  // The same plan as a context's, without allocating: a throwaway view of the arithmetic.
  const size_t d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate_size, V = c.vocab_size;
  const size_t ctx = context_length, D = c.head_dim, H = c.num_attention_heads;
  const size_t splits = attention_splits(context_length);
  const size_t counts[][2] = {
      {2 * static_cast<size_t>(c.num_hidden_layers) * c.num_key_value_heads * ctx * D, 2},
      {d, 4}, {qd + 2 * kvd, 4}, {qd, 4}, {I, 4}, {d, 4}, {V, 4}, {d, 4}, {d, 4},
      {std::max<size_t>({d, 2 * I, qd + 2 * kvd}), 4}, {H * splits * D, 4}, {H * splits, 4}, {H * splits, 4},
      {H, 4}, {ctx, 4}, {1, 4}, {1, 4}, {2, 4},
  };
  uint64_t total = 0;
  for (const auto& e : counts) total += align256(e[0] * e[1]);
  return total;
}

ContextCuda::ContextCuda(std::shared_ptr<const ModelCuda> model, int context_length)
    : ModelBackend(model, context_length),
      m_(*model),
      wtype_(model->weight_dtype()),
      layers_(model->layers()),
      embed_(model->embed()),
      lm_head_(model->lm_head()),
      final_norm_(model->final_norm()),
      rope_(model->rope()) {
  if (const char* g = std::getenv("TENSAFE_CUDA_GRAPH")) use_graph_ = std::string(g) != "0";
  m_.bind_thread();
  try {
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    arena_.allocate(plan_arena());
    unsigned char* base = arena_.data();
    auto bind = [base](auto& span) { span.ptr = reinterpret_cast<decltype(span.ptr)>(base + span.offset); };
    bind(kv_cache_); bind(x_); bind(qkv_); bind(attn_); bind(act_); bind(hidden_); bind(logits_); bind(delta_);
    bind(xn_); bind(proj_); bind(o_part_); bind(m_part_); bind(l_part_); bind(attn_counters_); bind(tokens_);
    bind(pos_); bind(sampled_); bind(barrier_);
    CUDA_CHECK(cudaMemsetAsync(attn_counters_.data(), 0, attn_counters_.bytes(), stream_));
    CUDA_CHECK(cudaMemsetAsync(barrier_.data(), 0, barrier_.bytes(), stream_));
    CUDA_CHECK(cudaMemsetAsync(hidden_.data(), 0, hidden_.bytes(), stream_));
    CUDA_CHECK(cudaMemsetAsync(logits_.data(), 0, logits_.bytes(), stream_));
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&h_tokens_), sizeof(int32_t) * context_length_));
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&h_sampled_), sizeof(int32_t)));
    set_device_position(0);
  } catch (...) {
    if (stream_) cudaStreamDestroy(stream_);
    if (h_tokens_) cudaFreeHost(h_tokens_);
    if (h_sampled_) cudaFreeHost(h_sampled_);
    stream_ = nullptr;
    h_tokens_ = h_sampled_ = nullptr;
    throw;
  }
}

ContextCuda::~ContextCuda() {
  cudaSetDevice(m_.device());
  if (stream_) cudaStreamSynchronize(stream_);
  if (graph_) cudaGraphExecDestroy(graph_);
  if (stream_) cudaStreamDestroy(stream_);
  if (h_tokens_) cudaFreeHost(h_tokens_);
  if (h_sampled_) cudaFreeHost(h_sampled_);
}

void ContextCuda::on_abort() noexcept {
  // A step that threw (a hook, a device error) may have advanced the device position for the
  // positions it completed: bring it back to the host's, which the base did not advance.
  try {
    set_device_position(position_);
  } catch (...) {
  }
}

void ContextCuda::set_device_position(int pos) {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  ::tensafe::cuda::copy_to_device(pos_.data(), &pos, sizeof(int));
}

DecoderView ContextCuda::view() const {
  DecoderView v;
  v.config = &config_;
  v.wtype = wtype_;
  v.layers = &layers_;
  v.layers_device = m_.layers_device();
  v.embed = embed_;
  v.final_norm = final_norm_;
  v.rope = rope_;
  v.kv_cache = kv_cache_.data();
  v.context = context_length_;
  v.tokens = tokens_.data();
  v.pos = pos_.data();
  v.x = x_.data();
  v.hidden = hidden_.data();
  v.qkv = qkv_.data();
  v.attn = attn_.data();
  v.act = act_.data();
  v.o_part = o_part_.data();
  v.m_part = m_part_.data();
  v.l_part = l_part_.data();
  v.counters = attn_counters_.data();
  v.barrier = barrier_.data();
  v.trace = trace_;
  return v;
}

void ContextCuda::enqueue_step(bool gather) {
  if (const DecodeMegakernel* mk = m_.megakernel()) {
    mk->enqueue(view(), gather, stream_);
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
    at.rope = rope_;
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

bool ContextCuda::capture_step(std::string* why) {
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

void ContextCuda::prefill_batched(int n) {
  BatchedPrefill* bp = m_.batched_prefill();
  std::lock_guard<std::mutex> lock(m_.prefill_mutex());
  bp->run(view(), position_, n, stream_);
  synchronize();  // the scratch is the model's: free for the next context once this is done
}

void ContextCuda::do_forward(const int32_t* tokens, int n) {
  std::memcpy(h_tokens_ + position_, tokens, sizeof(int32_t) * n);
  CUDA_CHECK(cudaMemcpyAsync(tokens_.data() + position_, h_tokens_ + position_, sizeof(int32_t) * n,
                             cudaMemcpyHostToDevice, stream_));
  const bool instrumented = hook_ || !adapters_.empty();
  if (n > 1 && !instrumented && m_.batched_prefill() != nullptr) {
    prefill_batched(n);
    return;
  }
  if (use_graph_ && graph_ == nullptr) {
    std::string why;
    if (!capture_step(&why)) {
      // A runtime that cannot capture a cooperative launch: capture a plain one (the grid is
      // sized to be co-resident; the attribute only made that a checked guarantee).
      const DecodeMegakernel* mk = m_.megakernel();
      if (!(mk && mk->cooperative())) throw CudaError("capturing the decode step failed: " + why);
      mk->set_cooperative(false);
      std::string again;
      if (!capture_step(&again))
        throw CudaError("capturing the decode step failed: " + why + "; without the cooperative attribute: " + again);
    }
  }
  for (int i = 0; i < n; ++i) {
    if (instrumented) run_instrumented_step(position_ + i);
    else if (use_graph_) CUDA_CHECK(cudaGraphLaunch(graph_, stream_));
    else enqueue_step();
  }
}

void ContextCuda::install_adapters(const std::vector<LoraAdapter>& adapters) {
  synchronize();  // no step in flight reads the old buffers
  // Resident copies first (an allocation failure leaves the installed set as it was).
  std::vector<DeviceAdapter> dev(adapters.size());
  DeviceBuffer<double> ax;
  uint64_t bytes = 0;
  int max_rank = 0;
  for (size_t i = 0; i < adapters.size(); ++i) {
    const LoraAdapter& a = adapters[i];
    dev[i].a.allocate(a.a.size());
    dev[i].b.allocate(a.b.size());
    dev[i].a.upload(a.a.data(), a.a.size(), stream_);
    dev[i].b.upload(a.b.data(), a.b.size(), stream_);
    bytes += dev[i].a.bytes() + dev[i].b.bytes();
    max_rank = std::max(max_rank, a.rank);
  }
  if (max_rank > 0) ax.allocate(static_cast<size_t>(max_rank));
  synchronize();  // the host vectors may go once this returns
  adapters_ = adapters;
  dev_adapters_ = std::move(dev);
  lora_ax_ = std::move(ax);
  adapter_bytes_ = bytes + lora_ax_.bytes();
  adapted_.assign(static_cast<size_t>(config_.num_hidden_layers) * kProjectionCount, 0);
  for (const auto& a : adapters_) adapted_[static_cast<size_t>(a.layer) * kProjectionCount + static_cast<int>(a.target)] = 1;
}

const char* ContextCuda::layer_adapter_path() const {
  size_t at_hook = 0;
  for (const auto& a : adapters_) at_hook += hooked(a.layer, a.target) ? 1 : 0;
  if (adapters_.empty()) return "none";
  return at_hook == 0 ? "cuda-resident" : at_hook == adapters_.size() ? "host" : "mixed";
}

void ContextCuda::install_hook(ProjectionHook hook, std::vector<HookSite> sites) {
  synchronize();
  hook_site_.assign(static_cast<size_t>(config_.num_hidden_layers) * kProjectionCount, 0);
  if (!hook || sites.empty()) {
    hook_ = nullptr;
    return;
  }
  hook_ = std::move(hook);
  for (const auto& s : sites) hook_site_[static_cast<size_t>(s.layer) * kProjectionCount + static_cast<int>(s.target)] = 1;
}

bool ContextCuda::has_site(int layer, Projection p) const {
  const size_t i = static_cast<size_t>(layer) * kProjectionCount + static_cast<int>(p);
  return (i < adapted_.size() && adapted_[i]) || (hook_ && i < hook_site_.size() && hook_site_[i]);
}

bool ContextCuda::hooked(int layer, Projection p) const {
  const size_t i = static_cast<size_t>(layer) * kProjectionCount + static_cast<int>(p);
  return hook_ && i < hook_site_.size() && hook_site_[i];
}

void ContextCuda::apply_device(int layer, Projection p, const float* in, int in_dim, float* out, int out_dim) {
  if (hooked(layer, p)) return;  // apply_host adds them, before the hook
  for (size_t k = 0; k < adapters_.size(); ++k) {
    const LoraAdapter& a = adapters_[k];
    if (a.layer != layer || a.target != p) continue;
    LoraArgs args;
    args.a = dev_adapters_[k].a.data();
    args.b = dev_adapters_[k].b.data();
    args.rank = a.rank;
    args.in_dim = in_dim;
    args.out_dim = out_dim;
    args.scaling = a.scaling;
    args.x = in;
    args.y = out;
    args.ax = lora_ax_.data();
    lora_apply(args, stream_);
  }
}

void ContextCuda::apply_host(int layer, Projection p, int position, const float* in, int in_dim, float* out, int out_dim) {
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
  if (hooked(layer, p)) {
    ProjectionHookArgs args{layer, p, position, in, in_dim, out, out_dim, MemorySpace::Host};
    hook_(args);
  }
}

void ContextCuda::run_instrumented_step(int position, bool gather) {
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
  // The adapted projections of one fused product: out holds their outputs side by side (slice
  // offset, dim), all computed from `in`. Adapters at unhooked slices run on the device; if any
  // slice is hooked, in and out make one host round trip, where the hooked slices get their
  // adapters (float64) and the hook.
  struct Slice {
    Projection p;
    int offset, dim;
  };
  auto adapt = [&](int l, const float* in, int in_dim, float* out, std::initializer_list<Slice> slices) {
    bool any_hooked = false;
    size_t total = 0;
    for (const Slice& s : slices) {
      apply_device(l, s.p, in, in_dim, out + s.offset, s.dim);
      any_hooked = any_hooked || hooked(l, s.p);
      total = std::max(total, static_cast<size_t>(s.offset) + static_cast<size_t>(s.dim));
    }
    if (!any_hooked) return;
    fetch(h_in_, in, static_cast<size_t>(in_dim));
    fetch(h_out_, out, total);
    synchronize();
    for (const Slice& s : slices)
      if (hooked(l, s.p)) apply_host(l, s.p, position, h_in_.data(), in_dim, h_out_.data() + s.offset, s.dim);
    put_back(out, h_out_, total);
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
      adapt(l, xn_.data(), d, qkv_.data(), {{Projection::Q, 0, qd}, {Projection::K, qd, kvd}, {Projection::V, qd + kvd, kvd}});
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
    at.cache_type = wtype_; at.rope = rope_; at.pos = pos_.data();
    at.heads = c.num_attention_heads; at.kv_heads = c.num_key_value_heads; at.head_dim = c.head_dim;
    at.context = context_length_;
    at.o_part = o_part_.data(); at.m_part = m_part_.data(); at.l_part = l_part_.data();
    at.counters = attn_counters_.data(); at.out = attn_.data();
    attention_decode(at, stream_);
    // o
    if (has_site(l, Projection::O)) {
      plain_gemv(ly.o, d, qd, attn_.data(), nullptr, proj_.data());
      adapt(l, attn_.data(), qd, proj_.data(), {{Projection::O, 0, d}});
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
      adapt(l, xn_.data(), d, proj_.data(), {{Projection::Gate, 0, I}, {Projection::Up, I, I}});
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
      adapt(l, act_.data(), I, proj_.data(), {{Projection::Down, 0, d}});
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

void ContextCuda::do_embed(const int32_t* tokens, int n, float* host_out) {
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

void ContextCuda::do_forward_embeddings(const float* rows, int n) {
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

void ContextCuda::set_hidden(const float* h, MemorySpace space) {
  if (h == nullptr) throw ArgumentTypeError("hidden must not be null");
  const cudaMemcpyKind kind = space == MemorySpace::Host ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpyAsync(hidden_.data(), h, hidden_.bytes(), kind, stream_));
  // A pageable host source is staged before cudaMemcpyAsync returns; syncing here also lets
  // the caller free or reuse a device source at once.
  synchronize();
}

void ContextCuda::on_reset() { set_device_position(0); }
void ContextCuda::on_trim(int n) { set_device_position(n); }

FloatSpan ContextCuda::hidden() {
  synchronize();
  return FloatSpan{hidden_.data(), static_cast<size_t>(config_.hidden_size), MemorySpace::Device};
}

FloatSpan ContextCuda::logits() {
  synchronize();
  return FloatSpan{logits_.data(), static_cast<size_t>(config_.vocab_size), MemorySpace::Device};
}

void ContextCuda::add_to_hidden(const float* delta, MemorySpace space) {
  if (delta == nullptr) throw ArgumentTypeError("delta must not be null");
  const int d = config_.hidden_size;
  if (space == MemorySpace::Host) {
    CUDA_CHECK(cudaMemcpyAsync(delta_.data(), delta, sizeof(float) * d, cudaMemcpyHostToDevice, stream_));
    add_inplace(hidden_.data(), delta_.data(), d, stream_);
  } else {
    add_inplace(hidden_.data(), delta, d, stream_);
  }
}

void ContextCuda::lm_head() {
  GemvArgs a;
  a.w = lm_head_; a.wtype = wtype_; a.n = config_.vocab_size; a.k = config_.hidden_size;
  a.x = hidden_.data(); a.y = logits_.data(); a.epilogue = GemvEpilogue::Store;
  gemv(a, stream_);
}

void ContextCuda::read_hidden(float* host_out) {
  CUDA_CHECK(cudaMemcpyAsync(host_out, hidden_.data(), hidden_.bytes(), cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

void ContextCuda::read_logits(float* host_out) {
  CUDA_CHECK(cudaMemcpyAsync(host_out, logits_.data(), logits_.bytes(), cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

void ContextCuda::synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

int32_t ContextCuda::do_sample(const SamplingOptions& opts, double u) {
  // The sort scratch (~4 MB at V = 151936, 7 % of a 2048-position KV cache) is the model's,
  // shared by its contexts: held from the launch until this stream has finished with it.
  std::lock_guard<std::mutex> lock(m_.sampling_mutex());
  SamplingScratch scratch = m_.sampling_scratch();
  const int V = config_.vocab_size;
  if (opts.greedy()) cuda::argmax(logits_.data(), V, sampled_.data(), scratch, stream_);
  else cuda::sample(logits_.data(), V, opts.temperature, opts.top_k, opts.top_p, u, sampled_.data(), scratch, stream_);
  CUDA_CHECK(cudaMemcpyAsync(h_sampled_, sampled_.data(), sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  synchronize();
  return *h_sampled_;
}

}  // namespace tensafe::model::cuda
