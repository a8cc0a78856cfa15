// Runs single decoder kernels on host data for the GPU tests (see kernel_tests.h).
#include "model/cuda/kernel_tests.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/device_info.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "cuda/scoped_stream.h"
#include "model/cuda/cublas_loader.h"
#include "model/cuda/kernels.h"

namespace tensafe::model::cuda::kernel_tests {
namespace {

using ::tensafe::cuda::DeviceBuffer;

using Stream = ::tensafe::cuda::ScopedStream;
void require_gpu() { ::tensafe::cuda::require_device("the model kernels"); }

uint16_t round_bits(float v, DType t) { return t == DType::BF16 ? float_to_bf16(v) : float_to_f16(v); }
float from_bits(uint16_t b, DType t) { return t == DType::BF16 ? bf16_to_float(b) : f16_to_float(b); }

// Rounds v in place to t and returns the bit patterns.
std::vector<uint16_t> round_in_place(std::vector<float>& v, DType t) {
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    bits[i] = round_bits(v[i], t);
    v[i] = from_bits(bits[i], t);
  }
  return bits;
}

template <typename T>
DeviceBuffer<T> upload(const std::vector<T>& v) {
  DeviceBuffer<T> b(v.size());
  if (!v.empty()) ::tensafe::cuda::copy_to_device(b.data(), v.data(), v.size() * sizeof(T));
  return b;
}

template <typename T>
std::vector<T> download(const DeviceBuffer<T>& b) {
  std::vector<T> v(b.size());
  if (!v.empty()) CUDA_CHECK(cudaMemcpy(v.data(), b.data(), v.size() * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

DeviceBuffer<float> poisoned(size_t n) {
  return upload(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
}

// 16-bit buffers poisoned with NaN bit patterns (0x7e00 is a NaN in f16; 0x7fc0 in bf16).
DeviceBuffer<uint16_t> poisoned16(size_t n, DType t) {
  return upload(std::vector<uint16_t>(n, t == DType::BF16 ? 0x7fc0 : 0x7e00));
}

std::vector<float> to_floats(const std::vector<uint16_t>& bits, DType t) {
  std::vector<float> v(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) v[i] = from_bits(bits[i], t);
  return v;
}

// A kernel's 16-bit output, or hi + lo (as floats, summed in float64) when it was split.
std::vector<float> read_split(const DeviceBuffer<uint16_t>& hi, const DeviceBuffer<uint16_t>* lo, DType t) {
  std::vector<float> v = to_floats(download(hi), t);
  if (lo != nullptr) {
    const std::vector<float> r = to_floats(download(*lo), t);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(static_cast<double>(v[i]) + r[i]);
  }
  return v;
}

// The decode step's RoPE table (model_cuda.cc builds the same in float64): [context, hd/2]
// (cos, sin); `flat` gets it as floats for the tests' references.
std::vector<float2> rope_table(double theta, int head_dim, int context, std::vector<float>* flat) {
  const int half = head_dim / 2;
  std::vector<float2> table(static_cast<size_t>(context) * half);
  flat->assign(table.size() * 2, 0.0f);
  for (int i = 0; i < half; ++i) {
    const double inv = std::pow(theta, -2.0 * i / head_dim);
    for (int p = 0; p < context; ++p) {
      const double ang = p * inv;
      const size_t at = static_cast<size_t>(p) * half + i;
      table[at] = make_float2(static_cast<float>(std::cos(ang)), static_cast<float>(std::sin(ang)));
      (*flat)[2 * at] = table[at].x;
      (*flat)[2 * at + 1] = table[at].y;
    }
  }
  return table;
}

}  // namespace

void run_gemv(GemvCase& c) {
  require_gpu();
  Stream st;
  const bool swiglu = c.epilogue == static_cast<int>(GemvEpilogue::SwiGLU);
  const size_t rows = static_cast<size_t>(swiglu ? 2 * c.n : c.n);
  if (c.w.size() != rows * c.k || c.x.size() != static_cast<size_t>(c.k))
    throw ArgumentRangeError("gemv test: w must be rows*k and x k long");
  auto wd = upload(round_in_place(c.w, c.wtype));
  auto xd = upload(c.x);
  auto nd = upload(c.norm_w);
  auto bd = upload(c.bias);
  const bool acc = c.epilogue == static_cast<int>(GemvEpilogue::Accumulate);
  if (acc && c.y.size() != static_cast<size_t>(c.n)) throw ArgumentRangeError("gemv test: y0 must be n long");
  DeviceBuffer<float> yd = acc ? upload(c.y) : poisoned(c.n);
  GemvArgs a;
  a.w = wd.data(); a.wtype = c.wtype; a.n = c.n; a.k = c.k; a.x = xd.data();
  a.norm_w = c.norm_w.empty() ? nullptr : nd.data();
  a.eps = c.eps;
  a.bias = c.bias.empty() ? nullptr : bd.data();
  a.y = yd.data();
  a.epilogue = static_cast<GemvEpilogue>(c.epilogue);
  gemv(a, st.s);
  st.sync();
  c.y = download(yd);
}

void run_attention(AttentionCase& c) {
  require_gpu();
  Stream st;
  const size_t cache = static_cast<size_t>(c.kv_heads) * c.context * c.head_dim;
  if (c.k_cache.size() != cache || c.v_cache.size() != cache) throw ArgumentRangeError("attention test: cache size");
  if (c.qkv.size() != static_cast<size_t>(c.heads + 2 * c.kv_heads) * c.head_dim)
    throw ArgumentRangeError("attention test: qkv size");
  if (c.pos < 0 || c.pos >= c.context) throw ArgumentRangeError("attention test: pos outside the context");
  auto kd = upload(round_in_place(c.k_cache, c.cache_type));
  auto vd = upload(round_in_place(c.v_cache, c.cache_type));
  auto rd = upload(rope_table(c.rope_theta, c.head_dim, c.context, &c.rope));
  auto qd = upload(c.qkv);
  auto pd = upload(std::vector<int>{c.pos});
  const int splits = attention_splits(c.context);
  DeviceBuffer<float> o_part(static_cast<size_t>(c.heads) * splits * c.head_dim), m_part(c.heads * splits),
      l_part(c.heads * splits);
  auto counters = upload(std::vector<int>(static_cast<size_t>(c.heads), 0));
  DeviceBuffer<float> out = poisoned(static_cast<size_t>(c.heads) * c.head_dim);
  AttentionArgs a;
  a.qkv = qd.data(); a.k_cache = kd.data(); a.v_cache = vd.data(); a.cache_type = c.cache_type; a.rope = rd.data();
  a.pos = pd.data(); a.heads = c.heads; a.kv_heads = c.kv_heads; a.head_dim = c.head_dim; a.context = c.context;
  a.o_part = o_part.data(); a.m_part = m_part.data(); a.l_part = l_part.data(); a.counters = counters.data();
  a.out = out.data();
  attention_decode(a, st.s);
  st.sync();
  // Every launch must leave the per-head counters at zero for the next one.
  for (int v : download(counters))
    if (v != 0) throw CudaError("attention test: a split counter was left at " + std::to_string(v));
  c.out = download(out);
  auto kb = download(kd), vb = download(vd);
  for (size_t i = 0; i < cache; ++i) {
    c.k_cache[i] = from_bits(kb[i], c.cache_type);
    c.v_cache[i] = from_bits(vb[i], c.cache_type);
  }
}

std::vector<float> run_rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps) {
  require_gpu();
  if (x.size() != w.size() || x.empty()) throw ArgumentRangeError("rmsnorm test: x and w must have one length");
  Stream st;
  auto xd = upload(x), wd = upload(w);
  DeviceBuffer<float> out = poisoned(x.size());
  rmsnorm(xd.data(), wd.data(), eps, static_cast<int>(x.size()), out.data(), nullptr, st.s);
  st.sync();
  return download(out);
}

void run_lora(LoraCase& c) {
  require_gpu();
  auto sized = [](const std::vector<float>& v, int64_t n, const char* name) {
    if (n < 0 || static_cast<int64_t>(v.size()) != n)
      throw ArgumentRangeError(std::string("lora test: ") + name + " must hold " + std::to_string(n) + " values, got " +
                               std::to_string(v.size()));
  };
  sized(c.a, static_cast<int64_t>(c.rank) * c.in_dim, "a");
  sized(c.b, static_cast<int64_t>(c.out_dim) * c.rank, "b");
  sized(c.x, c.in_dim, "x");
  if (c.accumulate) sized(c.y, c.out_dim, "y");
  Stream st;
  // Empty vectors (a zero shape, rejected by the kernel) still get a valid device pointer.
  auto up = [](const std::vector<float>& v) { return upload(v.empty() ? std::vector<float>(1, 0.0f) : v); };
  auto ad = up(c.a), bd = up(c.b), xd = up(c.x);
  DeviceBuffer<float> yd = c.accumulate ? up(c.y) : poisoned(std::max(c.out_dim, 1));
  DeviceBuffer<double> ax = upload(std::vector<double>(std::max(c.rank, 1), std::numeric_limits<double>::quiet_NaN()));
  LoraArgs p;
  p.a = ad.data(); p.b = bd.data(); p.x = xd.data(); p.y = yd.data(); p.ax = ax.data();
  p.rank = c.rank; p.in_dim = c.in_dim; p.out_dim = c.out_dim; p.scaling = c.scaling; p.accumulate = c.accumulate;
  lora_apply(p, st.s);
  st.sync();
  c.y = download(yd);
}

std::vector<float> run_embed(std::vector<float>& embed, DType wtype, int d, const std::vector<int32_t>& tokens, int pos) {
  require_gpu();
  if (d <= 0 || embed.size() % d != 0) throw ArgumentRangeError("embed test: table must be rows x d");
  if (pos < 0 || pos >= static_cast<int>(tokens.size())) throw ArgumentRangeError("embed test: pos");
  Stream st;
  auto ed = upload(round_in_place(embed, wtype));
  auto td = upload(tokens);
  auto pd = upload(std::vector<int>{pos});
  DeviceBuffer<float> out = poisoned(d);
  embed_lookup(ed.data(), wtype, td.data(), pd.data(), d, out.data(), st.s);
  st.sync();
  return download(out);
}

namespace {
int32_t run_sampler(const std::vector<float>& logits, bool greedy, float temperature, int top_k, float top_p, double u) {
  require_gpu();
  if (logits.empty()) throw ArgumentRangeError("sampling test: empty logits");
  Stream st;
  const int n = static_cast<int>(logits.size());
  auto ld = upload(logits);
  DeviceBuffer<unsigned char> scratch(sampling_scratch_bytes(n));
  auto out = upload(std::vector<int32_t>{-1});
  SamplingScratch s{scratch.data(), scratch.bytes()};
  if (greedy) argmax(ld.data(), n, out.data(), s, st.s);
  else sample(ld.data(), n, temperature, top_k, top_p, u, out.data(), s, st.s);
  st.sync();
  return download(out)[0];
}
}  // namespace

int32_t run_argmax(const std::vector<float>& logits) { return run_sampler(logits, true, 0, 0, 1, 0); }

int32_t run_sample(const std::vector<float>& logits, float temperature, int top_k, float top_p, double u) {
  return run_sampler(logits, false, temperature, top_k, top_p, u);
}

// ---- batched prefill kernels ----

bool cublas_loadable(std::string* reason) {
  const bool ok = cublas_api() != nullptr;
  if (reason) *reason = ok ? cublas_api()->path : cublas_unavailable_reason();
  return ok;
}

void run_gemm(GemmCase& c) {
  require_gpu();
  if (c.a.size() != static_cast<size_t>(c.m) * c.k || c.b.size() != static_cast<size_t>(c.n) * c.k)
    throw ArgumentRangeError("gemm test: a must be m*k and b n*k long");
  if (c.accumulate && c.c.size() != static_cast<size_t>(c.m) * c.n) throw ArgumentRangeError("gemm test: c0 must be m*n long");
  Stream st;
  auto ad = upload(round_in_place(c.a, c.type));
  auto bd = upload(round_in_place(c.b, c.type));
  DeviceBuffer<float> cd = c.accumulate ? upload(c.c) : poisoned(static_cast<size_t>(c.m) * c.n);
  const GemmImpl impl = resolve_gemm_impl(static_cast<GemmImpl>(c.impl));
  CublasHandle handle;
  GemmArgs g;
  g.a = ad.data(); g.b = bd.data(); g.type = c.type; g.m = c.m; g.n = c.n; g.k = c.k; g.c = cd.data(); g.ldc = c.n;
  g.accumulate = c.accumulate;
  gemm(g, impl, &handle, st.s);
  st.sync();
  c.c = download(cd);
  c.impl = static_cast<int>(impl);
}

void run_prefill_attention(PrefillAttentionCase& c) {
  require_gpu();
  const size_t cache = static_cast<size_t>(c.kv_heads) * c.context * c.head_dim;
  if (c.k_cache.size() != cache || c.v_cache.size() != cache) throw ArgumentRangeError("prefill attention test: cache size");
  if (c.q.size() != static_cast<size_t>(c.m) * c.heads * c.head_dim) throw ArgumentRangeError("prefill attention test: q size");
  if (c.p0 < 0 || c.m < 1 || c.p0 + c.m > c.context) throw ArgumentRangeError("prefill attention test: p0 + m > context");
  Stream st;
  // Split: q as hi + lo (what qkv_rope_cache writes); c.q becomes the value the kernel sees.
  std::vector<float> rest = c.q;
  auto qd = upload(round_in_place(c.q, c.type));
  for (size_t i = 0; i < rest.size(); ++i) rest[i] -= c.q[i];
  auto qlo = upload(c.split ? round_in_place(rest, c.type) : std::vector<uint16_t>());
  if (c.split)
    for (size_t i = 0; i < rest.size(); ++i) c.q[i] = static_cast<float>(static_cast<double>(c.q[i]) + rest[i]);
  std::vector<uint16_t> kbits = round_in_place(c.k_cache, c.type), vbits = round_in_place(c.v_cache, c.type);
  if (c.poison_from >= 0) {
    if (c.poison_from < c.p0 + c.m) throw ArgumentRangeError("prefill attention test: poisonFrom must be >= p0 + m");
    // 0x7FFF is a quiet NaN in both f16 (exponent 31) and bf16 (exponent 255).
    for (int g = 0; g < c.kv_heads; ++g)
      for (int p = c.poison_from; p < c.context; ++p)
        for (int d = 0; d < c.head_dim; ++d) {
          const size_t i = (static_cast<size_t>(g) * c.context + p) * c.head_dim + d;
          kbits[i] = vbits[i] = 0x7FFF;
          c.k_cache[i] = c.v_cache[i] = std::numeric_limits<float>::quiet_NaN();
        }
  }
  auto kd = upload(kbits);
  auto vd = upload(vbits);
  auto od = poisoned16(static_cast<size_t>(c.m) * c.heads * c.head_dim, c.type);
  auto lo = poisoned16(c.split ? od.size() : 0, c.type);
  PrefillAttentionArgs a;
  a.q = qd.data(); a.k_cache = kd.data(); a.v_cache = vd.data(); a.cache_type = c.type; a.p0 = c.p0; a.m = c.m;
  a.heads = c.heads; a.kv_heads = c.kv_heads; a.head_dim = c.head_dim; a.context = c.context; a.out = od.data();
  a.out_lo = c.split ? lo.data() : nullptr;
  a.q_lo = c.split ? qlo.data() : nullptr;
  attention_prefill(a, c.simple, st.s);
  st.sync();
  c.out = read_split(od, c.split ? &lo : nullptr, c.type);
}

void run_qkv_rope(QkvRopeCase& c) {
  require_gpu();
  const int width = (c.heads + 2 * c.kv_heads) * c.head_dim;
  const size_t cache = static_cast<size_t>(c.kv_heads) * c.context * c.head_dim;
  if (c.qkv.size() != static_cast<size_t>(c.m) * width) throw ArgumentRangeError("qkv rope test: qkv size");
  if (!c.bias.empty() && c.bias.size() != static_cast<size_t>(width)) throw ArgumentRangeError("qkv rope test: bias size");
  if (c.k_cache.size() != cache || c.v_cache.size() != cache) throw ArgumentRangeError("qkv rope test: cache size");
  if (c.p0 < 0 || c.m < 1 || c.p0 + c.m > c.context) throw ArgumentRangeError("qkv rope test: p0 + m > context");
  Stream st;
  auto rd = upload(rope_table(c.rope_theta, c.head_dim, c.context, &c.rope));
  auto xd = upload(c.qkv);
  auto bd = upload(c.bias);
  auto kd = upload(round_in_place(c.k_cache, c.type));
  auto vd = upload(round_in_place(c.v_cache, c.type));
  auto qd = poisoned16(static_cast<size_t>(c.m) * c.heads * c.head_dim, c.type);
  auto qlo = poisoned16(c.split ? qd.size() : 0, c.type);
  QkvRopeArgs a;
  a.qkv = xd.data(); a.bias = c.bias.empty() ? nullptr : bd.data(); a.rope = rd.data(); a.p0 = c.p0; a.m = c.m;
  a.heads = c.heads; a.kv_heads = c.kv_heads; a.head_dim = c.head_dim; a.context = c.context;
  a.k_cache = kd.data(); a.v_cache = vd.data(); a.cache_type = c.type; a.q_out = qd.data();
  a.q_lo = c.split ? qlo.data() : nullptr;
  qkv_rope_cache(a, st.s);
  st.sync();
  c.q = read_split(qd, c.split ? &qlo : nullptr, c.type);
  c.k_cache = to_floats(download(kd), c.type);
  c.v_cache = to_floats(download(vd), c.type);
}

std::vector<float> run_rmsnorm_rows(const std::vector<float>& x, const std::vector<float>& w, int m, float eps, DType type,
                                    bool split) {
  require_gpu();
  if (m < 1 || w.empty() || x.size() != static_cast<size_t>(m) * w.size())
    throw ArgumentRangeError("rmsnorm rows test: x must be m * w.length long");
  Stream st;
  auto xd = upload(x), wd = upload(w);
  auto od = poisoned16(x.size(), type);
  auto lo = poisoned16(split ? x.size() : 0, type);
  rmsnorm_rows(xd.data(), wd.data(), eps, m, static_cast<int>(w.size()), type, od.data(), split ? lo.data() : nullptr, st.s);
  st.sync();
  return read_split(od, split ? &lo : nullptr, type);
}

std::vector<float> run_swiglu_rows(const std::vector<float>& gu, int m, int n, DType type, bool split) {
  require_gpu();
  if (m < 1 || n < 1 || gu.size() != static_cast<size_t>(m) * 2 * n) throw ArgumentRangeError("swiglu rows test: gu must be m*2n long");
  Stream st;
  auto gd = upload(gu);
  auto od = poisoned16(static_cast<size_t>(m) * n, type);
  auto lo = poisoned16(split ? od.size() : 0, type);
  swiglu_rows(gd.data(), m, n, type, od.data(), split ? lo.data() : nullptr, st.s);
  st.sync();
  return read_split(od, split ? &lo : nullptr, type);
}

std::vector<float> run_synth(DType wtype, size_t count, uint64_t seed, uint32_t tensor_id, float center,
                             float half_width) {
  require_gpu();
  Stream st;
  const size_t bytes = count * dtype_size(wtype);
  DeviceBuffer<unsigned char> raw(bytes);
  synth_fill(raw.data(), wtype, count, seed, tensor_id, center, half_width, st.s);
  DeviceBuffer<float> out = poisoned(count);
  to_float(raw.data(), wtype, count, out.data(), st.s);
  st.sync();
  return download(out);
}

}  // namespace tensafe::model::cuda::kernel_tests
