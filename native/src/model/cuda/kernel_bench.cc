// Device timings of the decoder's kernels (kernel_bench.h).
#include "model/cuda/kernel_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "common/device_info.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/scoped_stream.h"
#include "model/cuda/cublas_loader.h"
#include "model/cuda/kernels.h"
#include "model/cuda/context_cuda.h"
#include "model/cuda/model_cuda.h"
#include "model/model.h"

namespace tensafe::model::cuda::kernel_bench {
namespace {

using ::tensafe::cuda::DeviceBuffer;

using Stream = ::tensafe::cuda::ScopedStream;
void require_gpu() { ::tensafe::cuda::require_device("the kernel benchmarks"); }

struct Events {
  cudaEvent_t a = nullptr, b = nullptr;
  Events() {
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
  }
  ~Events() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  float ms() {
    CUDA_CHECK(cudaEventSynchronize(b));
    float v = 0;
    CUDA_CHECK(cudaEventElapsedTime(&v, a, b));
    return v;
  }
};

Timing summarize(std::vector<double> us, double bytes, double flops) {
  std::sort(us.begin(), us.end());
  Timing t;
  t.runs = static_cast<int>(us.size());
  if (!us.empty()) {
    const size_t n = us.size();
    t.median_us = n % 2 ? us[n / 2] : 0.5 * (us[n / 2 - 1] + us[n / 2]);
    t.min_us = us.front();
    t.max_us = us.back();
  }
  t.bytes = bytes;
  t.flops = flops;
  return t;
}

// `batch` launches per timed region, captured once into a graph and replayed `reps` times after
// warm-up; per-launch time = region / batch.
Timing time_graph(const std::function<void(int)>& launch, int batch, int reps, cudaStream_t s, double bytes, double flops) {
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    for (int i = 0; i < batch; ++i) launch(i);
  } catch (...) {
    cudaStreamEndCapture(s, &g);
    if (g) cudaGraphDestroy(g);
    (void)cudaGetLastError();
    throw;
  }
  CUDA_CHECK(cudaStreamEndCapture(s, &g));
  const cudaError_t err = cudaGraphInstantiate(&exec, g, 0);
  cudaGraphDestroy(g);
  if (err != cudaSuccess) ::tensafe::cuda::throw_cuda_error(err, "cudaGraphInstantiate", __FILE__, __LINE__);
  Events ev;
  std::vector<double> us;
  try {
    for (int w = 0; w < 2; ++w) CUDA_CHECK(cudaGraphLaunch(exec, s));
    for (int r = 0; r < reps; ++r) {
      CUDA_CHECK(cudaEventRecord(ev.a, s));
      CUDA_CHECK(cudaGraphLaunch(exec, s));
      CUDA_CHECK(cudaEventRecord(ev.b, s));
      us.push_back(1000.0 * ev.ms() / batch);
    }
  } catch (...) {
    cudaGraphExecDestroy(exec);
    throw;
  }
  cudaGraphExecDestroy(exec);
  return summarize(us, bytes, flops);
}

// Random contents (the synthetic generator: uniform values, never all zeros).
void fill(void* p, DType t, size_t count, uint32_t id, float center, float half, cudaStream_t s) {
  synth_fill(p, t, count, 0x5eed1234ull, id, center, half, s);
}

// Copies of a buffer so that one pass over all of them is at least `min_total` bytes.
int copies_for(size_t bytes, size_t min_total) {
  return static_cast<int>(std::max<size_t>(2, (min_total + bytes - 1) / bytes));
}

constexpr size_t kColdBytes = 256ull << 20;  // > 4 x the H200's 60 MB L2

Qwen2Config preset_config(const std::string& preset) { return Qwen2Config::preset(preset); }

// The engine's switches are read when a model is built; the bench sets them around construction.
struct ScopedEnv {
  std::vector<std::pair<std::string, std::string>> saved;
  std::vector<std::string> unset_after;
  void set(const std::string& k, const std::string& v) {
    const char* old = std::getenv(k.c_str());
    if (old != nullptr) saved.emplace_back(k, old);
    else unset_after.push_back(k);
    setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto& [k, v] : saved) setenv(k.c_str(), v.c_str(), 1);
    for (auto& k : unset_after) unsetenv(k.c_str());
  }
};

// A synthetic preset on the GPU and one context of `context` positions over it.
struct Built {
  std::shared_ptr<Model> model;
  std::unique_ptr<ModelBackend> ctx;
  const ModelCuda& weights() const { return static_cast<const ModelCuda&>(*model); }
  ContextCuda& context() const { return static_cast<ContextCuda&>(*ctx); }
};

Built build_model(const std::string& preset, DType type, int context) {
  WeightSource src;
  src.config = preset_config(preset);
  src.seed = 1;
  ModelOptions o;
  o.context_length = context;
  o.weight_dtype = type;
  Built b;
  b.model = load_cuda_model(src, o);
  b.ctx = b.model->create_context(context);
  return b;
}

std::vector<int32_t> prompt_ids(int n, int vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = (1000 + 7919 * i) % std::min(vocab, 151643);
  return t;
}

double median_of(std::vector<double> v) { return summarize(std::move(v), 0, 0).median_us; }

}  // namespace

Timing copy(size_t bytes, int reps) {
  require_gpu();
  Stream st;
  DeviceBuffer<unsigned char> a(bytes), b(bytes);
  fill(a.data(), DType::F16, bytes / 2, 1, 0.0f, 1.0f, st.s);
  Events ev;
  std::vector<double> us;
  for (int r = 0; r < reps + 2; ++r) {
    CUDA_CHECK(cudaEventRecord(ev.a, st.s));
    CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, st.s));
    CUDA_CHECK(cudaEventRecord(ev.b, st.s));
    const double t = 1000.0 * ev.ms();
    if (r >= 2) us.push_back(t);
  }
  return summarize(us, 2.0 * static_cast<double>(bytes), 0);
}

Timing gemv(int n, int k, int epilogue, DType type, bool norm, int reps) {
  require_gpu();
  Stream st;
  const bool glu = epilogue == static_cast<int>(GemvEpilogue::SwiGLU);
  const size_t rows = static_cast<size_t>(glu ? 2 * n : n);
  const size_t wbytes = rows * k * 2;
  const int copies = copies_for(wbytes, kColdBytes);
  DeviceBuffer<uint16_t> w(rows * k * copies);
  DeviceBuffer<float> x(k), nw(k), bias(n), y(n);
  fill(w.data(), type, w.size(), 2, 0.0f, 1.0f / std::sqrt(static_cast<float>(k)), st.s);
  fill(x.data(), DType::F32, k, 3, 0.0f, 1.0f, st.s);
  fill(nw.data(), DType::F32, k, 4, 1.0f, 0.2f, st.s);
  fill(bias.data(), DType::F32, n, 5, 0.0f, 0.1f, st.s);
  fill(y.data(), DType::F32, n, 6, 0.0f, 1.0f, st.s);
  auto launch = [&](int i) {
    GemvArgs a;
    a.w = w.data() + (static_cast<size_t>(i % copies)) * rows * k;
    a.wtype = type; a.n = n; a.k = k; a.x = x.data(); a.norm_w = norm ? nw.data() : nullptr;
    a.bias = epilogue == 0 ? bias.data() : nullptr; a.y = y.data(); a.epilogue = static_cast<GemvEpilogue>(epilogue);
    gemv(a, st.s);
  };
  const double bytes = static_cast<double>(wbytes) + 4.0 * k + 4.0 * n * (epilogue == 1 ? 2 : 1);
  return time_graph(launch, std::max(copies, 8), reps, st.s, bytes, 2.0 * static_cast<double>(rows) * k);
}

Timing attention(int heads, int kv_heads, int head_dim, int context, int pos, DType type, int reps) {
  require_gpu();
  if (pos < 0 || pos >= context) throw ArgumentRangeError("attention bench: pos must be in [0, context)");
  Stream st;
  const size_t cache = static_cast<size_t>(kv_heads) * context * head_dim;
  DeviceBuffer<uint16_t> kc(cache), vc(cache);
  fill(kc.data(), type, cache, 7, 0.0f, 1.0f, st.s);
  fill(vc.data(), type, cache, 8, 0.0f, 1.0f, st.s);
  const size_t width = static_cast<size_t>(heads + 2 * kv_heads) * head_dim;
  DeviceBuffer<float> qkv(width), out(static_cast<size_t>(heads) * head_dim);
  fill(qkv.data(), DType::F32, width, 9, 0.0f, 1.0f, st.s);
  std::vector<float2> table(static_cast<size_t>(context) * head_dim / 2, make_float2(1.0f, 0.0f));
  DeviceBuffer<float2> rope(table.size());
  ::tensafe::cuda::copy_to_device(rope.data(), table.data(), table.size() * sizeof(float2));
  DeviceBuffer<int> posd(1);
  ::tensafe::cuda::copy_to_device(posd.data(), &pos, sizeof(int));
  const int splits = attention_splits(context);
  DeviceBuffer<float> o_part(static_cast<size_t>(heads) * splits * head_dim), m_part(static_cast<size_t>(heads) * splits),
      l_part(static_cast<size_t>(heads) * splits);
  DeviceBuffer<int> counters(heads);
  CUDA_CHECK(cudaMemset(counters.data(), 0, counters.bytes()));
  auto launch = [&](int) {
    AttentionArgs a;
    a.qkv = qkv.data(); a.k_cache = kc.data(); a.v_cache = vc.data(); a.cache_type = type; a.rope = rope.data();
    a.pos = posd.data(); a.heads = heads; a.kv_heads = kv_heads; a.head_dim = head_dim; a.context = context;
    a.o_part = o_part.data(); a.m_part = m_part.data(); a.l_part = l_part.data(); a.counters = counters.data();
    a.out = out.data();
    attention_decode(a, st.s);
  };
  const double bytes = 2.0 * 2.0 * kv_heads * (pos + 1.0) * head_dim;
  return time_graph(launch, 16, reps, st.s, bytes, 4.0 * heads * (pos + 1.0) * head_dim);
}

Timing gemm(int m, int n, int k, DType type, int impl, int reps) {
  require_gpu();
  Stream st;
  const GemmImpl which = resolve_gemm_impl(static_cast<GemmImpl>(impl));
  DeviceBuffer<uint16_t> a(static_cast<size_t>(m) * k), b(static_cast<size_t>(n) * k);
  DeviceBuffer<float> c(static_cast<size_t>(m) * n);
  fill(a.data(), type, a.size(), 10, 0.0f, 1.0f, st.s);
  fill(b.data(), type, b.size(), 11, 0.0f, 0.05f, st.s);
  CublasHandle handle;
  auto launch = [&](int) {
    GemmArgs g;
    g.a = a.data(); g.b = b.data(); g.type = type; g.m = m; g.n = n; g.k = k; g.c = c.data(); g.ldc = n;
    gemm(g, which, &handle, st.s);
  };
  launch(0);  // cuBLAS picks its kernel (and allocates its workspace) outside the capture
  CUDA_CHECK(cudaStreamSynchronize(st.s));
  const double bytes = 2.0 * (static_cast<double>(m) * k + static_cast<double>(n) * k) + 4.0 * m * n;
  return time_graph(launch, 4, reps, st.s, bytes, 2.0 * m * static_cast<double>(n) * k);
}

Timing prefill_attention(int heads, int kv_heads, int head_dim, int m, DType type, bool simple, int reps) {
  require_gpu();
  Stream st;
  const size_t cache = static_cast<size_t>(kv_heads) * m * head_dim;
  DeviceBuffer<uint16_t> kc(cache), vc(cache), q(static_cast<size_t>(m) * heads * head_dim), out(q.size());
  fill(kc.data(), type, cache, 12, 0.0f, 1.0f, st.s);
  fill(vc.data(), type, cache, 13, 0.0f, 1.0f, st.s);
  fill(q.data(), type, q.size(), 14, 0.0f, 1.0f, st.s);
  auto launch = [&](int) {
    PrefillAttentionArgs a;
    a.q = q.data(); a.k_cache = kc.data(); a.v_cache = vc.data(); a.cache_type = type; a.p0 = 0; a.m = m;
    a.heads = heads; a.kv_heads = kv_heads; a.head_dim = head_dim; a.context = m; a.out = out.data();
    attention_prefill(a, simple, st.s);
  };
  // Causal: about half of the m x m scores, two products each.
  const double flops = 4.0 * heads * head_dim * 0.5 * m * (m + 1.0);
  const double bytes = 2.0 * (2.0 * cache + 2.0 * q.size());
  return time_graph(launch, 4, reps, st.s, bytes, flops);
}

DecodeTiming decode(const std::string& preset, DType type, const std::string& variant, int lookahead_kb, int start_pos,
                    int steps) {
  require_gpu();
  if (variant != "graph" && variant != "mega") throw ArgumentRangeError("decode bench: variant must be graph or mega");
  const int context = start_pos + steps + 16;
  Built b;
  {
    ScopedEnv env;
    env.set("TENSAFE_DECODE", variant);
    if (lookahead_kb >= 0) env.set("TENSAFE_MEGA_LOOKAHEAD_KB", std::to_string(lookahead_kb));
    b = build_model(preset, type, context);
  }
  ModelBackend* m = b.ctx.get();
  const Qwen2Config& c = m->config();
  DecodeTiming out;
  out.weight_bytes = static_cast<double>(b.model->weight_bytes_per_token());
  DeviceBuffer<unsigned long long> trace;
  const DecodeMegakernel* mk = b.weights().megakernel();
  const size_t stamps = 5 * static_cast<size_t>(c.num_hidden_layers) + 2;
  if (mk != nullptr) {
    trace.allocate(stamps);
    b.context().set_mega_trace(trace.data());
    std::string cfgs;
    for (int i = 0; i < 4; ++i)
      cfgs += (i ? "," : "") + std::to_string(mk->stage_cfg(i).maxj) + "x" + std::to_string(mk->stage_cfg(i).groups);
    out.detail = "grid " + std::to_string(mk->grid()) + ", lookahead " + std::to_string(mk->lookahead() / 1024) +
                 " KB, stages (chunks x subgroups) " + cfgs + (mk->cooperative() ? ", cooperative" : ", plain launch");
  } else {
    out.detail = "layer kernels in a CUDA graph";
  }
  const std::vector<int32_t> prompt = prompt_ids(std::max(start_pos, 1), c.vocab_size);
  cudaStream_t s = b.context().cuda_stream();
  Events e_step, e_head;
  std::vector<double> step_us, head_us, arg_us, token_us;
  std::vector<std::vector<double>> stage_samples(6);
  std::vector<unsigned long long> h(stamps);
  SamplingOptions greedy;
  greedy.temperature = 0.0f;
  for (int pass = 0; pass < 2; ++pass) {  // pass 0: warm-up (graph capture, caches)
    m->reset();
    m->prefill(prompt.data(), static_cast<int>(prompt.size()));
    int32_t tok = 1000;
    const int n = pass == 0 ? std::min(steps, 8) : steps;
    for (int i = 0; i < n; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      CUDA_CHECK(cudaEventRecord(e_step.a, s));
      m->decode_step(tok);
      CUDA_CHECK(cudaEventRecord(e_step.b, s));
      CUDA_CHECK(cudaEventRecord(e_head.a, s));
      m->lm_head();
      CUDA_CHECK(cudaEventRecord(e_head.b, s));
      const auto t1 = std::chrono::steady_clock::now();
      tok = m->sample(greedy);  // argmax, copy of the id, synchronise
      const auto t2 = std::chrono::steady_clock::now();
      if (pass == 0) continue;
      step_us.push_back(1000.0 * e_step.ms());
      head_us.push_back(1000.0 * e_head.ms());
      arg_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
      token_us.push_back(std::chrono::duration<double, std::micro>(t2 - t0).count());
      if (mk != nullptr) {
        CUDA_CHECK(cudaMemcpy(h.data(), trace.data(), stamps * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
        // Stamps: [0] start, [5l + 1 .. 5l + 4] before attention, o, gate/up, down of layer l,
        // [5l + 5] before the q/k/v of layer l + 1 (the final norm after the last), [5L + 1] end.
        double st[6] = {0, 0, 0, 0, 0, 0};
        for (int l = 0; l < c.num_hidden_layers; ++l) {
          const size_t b = 5 * static_cast<size_t>(l);
          st[0] += static_cast<double>(h[b + 1] - h[b]);      // A: norm + q/k/v (from the previous barrier)
          st[1] += static_cast<double>(h[b + 2] - h[b + 1]);  // B: attention
          st[2] += static_cast<double>(h[b + 3] - h[b + 2]);  // C: o
          st[3] += static_cast<double>(h[b + 4] - h[b + 3]);  // D: norm + gate/up + SwiGLU
          st[4] += static_cast<double>(h[b + 5] - h[b + 4]);  // E: down
        }
        st[5] = static_cast<double>(h[stamps - 1] - h[stamps - 2]);  // final norm
        for (int i2 = 0; i2 < 6; ++i2) stage_samples[static_cast<size_t>(i2)].push_back(st[i2] / 1000.0);
      }
    }
  }
  out.step = summarize(step_us, out.weight_bytes - 2.0 * c.vocab_size * c.hidden_size, 0);
  out.lm_head = summarize(head_us, 2.0 * c.vocab_size * c.hidden_size, 0);
  out.argmax = summarize(arg_us, 4.0 * c.vocab_size, 0);
  out.token = summarize(token_us, out.weight_bytes, 0);
  if (mk != nullptr)
    for (auto& v : stage_samples) out.stage_us.push_back(median_of(v));
  return out;
}

PrefillTiming prefill(const std::string& preset, DType type, int n, int impl, bool split, int reps) {
  require_gpu();
  Built b;
  {
    ScopedEnv env;
    env.set("TENSAFE_GEMM", impl == 2 ? "own" : impl == 1 ? "cublas" : "auto");
    env.set("TENSAFE_PREFILL", "batched");
    env.set("TENSAFE_PREFILL_SPLIT", split ? "1" : "0");
    b = build_model(preset, type, n + 8);
  }
  ModelBackend* m = b.ctx.get();
  const Qwen2Config& c = m->config();
  const std::vector<int32_t> prompt = prompt_ids(n, c.vocab_size);
  cudaStream_t s = b.context().cuda_stream();
  Events ev;
  std::vector<double> us;
  for (int r = 0; r < reps + 1; ++r) {
    m->reset();
    CUDA_CHECK(cudaEventRecord(ev.a, s));
    m->prefill(prompt.data(), n);
    CUDA_CHECK(cudaEventRecord(ev.b, s));
    const double t = 1000.0 * ev.ms();
    if (r > 0) us.push_back(t);  // the first run allocates the scratch and picks cuBLAS kernels
  }
  // Two flops per weight and token for the layers' products, plus causal attention.
  const double layer_params = static_cast<double>(b.model->weight_bytes_per_token() / 2) - static_cast<double>(c.vocab_size) * c.hidden_size;
  const double attn = 4.0 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * 0.5 * n * (n + 1.0);
  PrefillTiming out;
  out.prefill = summarize(us, static_cast<double>(b.model->weight_bytes_per_token()), 2.0 * layer_params * n + attn);
  out.detail = std::string(impl == 2 ? "own GEMM" : "cuBLAS") + (split ? ", split inputs" : ", plain 16-bit inputs") + ", attention " +
               (attention_prefill_has_mma(c.head_dim) ? "tensor-core" : "simple");
  return out;
}

}  // namespace tensafe::model::cuda::kernel_bench
