// BatchedPrefill (batched_prefill.h).
#include "model/cuda/batched_prefill.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "model/cuda/cublas_loader.h"

namespace tensafe::model::cuda {
namespace {

int chunk_from_env() {
  const char* e = std::getenv("TENSAFE_PREFILL_CHUNK");
  if (e == nullptr || *e == '\0') return 1024;
  const int v = std::atoi(e);
  if (v < 1 || v > (1 << 16)) throw ArgumentRangeError("TENSAFE_PREFILL_CHUNK must be in [1, 65536], got " + std::string(e));
  return v;
}

}  // namespace

bool BatchedPrefill::split_inputs(DType wtype) {
  const char* e = std::getenv("TENSAFE_PREFILL_SPLIT");
  const std::string v = e != nullptr ? e : "";
  if (v == "0") return false;
  if (v == "bf16") return wtype == DType::BF16;
  return true;
}

bool batched_prefill_enabled_by_env() {
  const char* e = std::getenv("TENSAFE_PREFILL");
  return !(e != nullptr && std::string(e) == "steps");
}

constexpr size_t kCublasWorkspace = 32ull << 20;  // cuBLAS' default on Hopper

BatchedPrefill::BatchedPrefill(const Qwen2Config& c, DType wtype, int max_context, GemmImpl impl, int chunk)
    : impl_(resolve_gemm_impl(impl == GemmImpl::Auto ? gemm_impl_from_env() : impl)),
      chunk_(std::min(chunk > 0 ? chunk : chunk_from_env(), std::max(1, max_context))),
      split_(split_inputs(wtype)) {
  const size_t r = static_cast<size_t>(chunk_);
  const size_t d = c.hidden_size, qkvw = static_cast<size_t>(c.q_dim()) + 2 * c.kv_dim(), I = c.intermediate_size;
  x_.allocate(r * d);
  qkv_.allocate(r * qkvw);
  gu_.allocate(r * 2 * I);
  xn_.allocate(r * d);
  q_.allocate(r * c.q_dim());
  attn_.allocate(r * c.q_dim());
  act_.allocate(r * I);
  if (split_) {
    xn_lo_.allocate(r * d);
    q_lo_.allocate(r * c.q_dim());
    attn_lo_.allocate(r * c.q_dim());
    act_lo_.allocate(r * I);
  }
  if (impl_ == GemmImpl::Cublas) {
    const bool asked = (impl == GemmImpl::Auto ? gemm_impl_from_env() : impl) == GemmImpl::Cublas;
    try {
      cublas_ = std::make_unique<CublasHandle>();
      cublas_workspace_.allocate(kCublasWorkspace);
      cublas_->set_workspace(cublas_workspace_.data(), cublas_workspace_.bytes());
      (void)cublas_->get(nullptr);  // the handle (and cuBLAS's own state) now, not at a first prefill
    } catch (const CudaError&) {
      // A cuBLAS that loads but cannot start here: our own GEMM, unless cuBLAS was asked for.
      if (asked) throw;
      cublas_.reset();
      cublas_workspace_.reset();
      impl_ = GemmImpl::Own;
    }
  }
}

BatchedPrefill::~BatchedPrefill() = default;

uint64_t BatchedPrefill::memory_bytes() const {
  return x_.bytes() + qkv_.bytes() + gu_.bytes() + xn_.bytes() + q_.bytes() + attn_.bytes() + act_.bytes() +
         xn_lo_.bytes() + q_lo_.bytes() + attn_lo_.bytes() + act_lo_.bytes() + cublas_workspace_.bytes();
}

void BatchedPrefill::run(const DecoderView& v, int p0, int n, cudaStream_t stream) {
  const Qwen2Config& c = *v.config;
  const int d = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), I = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const DType W = v.wtype;
  const bool split = split_;
  uint16_t* xn_lo = split ? xn_lo_.data() : nullptr;
  uint16_t* q_lo = split ? q_lo_.data() : nullptr;
  uint16_t* attn_lo = split ? attn_lo_.data() : nullptr;
  uint16_t* act_lo = split ? act_lo_.data() : nullptr;
  // out (+)= (a + a_lo) . w^T: the rest of a split input is a second product, accumulated.
  auto product = [&](const uint16_t* a, const uint16_t* a_lo, const uint16_t* w, int m, int rows, int k, float* out,
                     bool acc) {
    GemmArgs g;
    g.a = a; g.b = w; g.type = W; g.m = m; g.n = rows; g.k = k; g.c = out; g.ldc = rows; g.accumulate = acc;
    gemm(g, impl_, cublas_.get(), stream);
    if (a_lo != nullptr) {
      g.a = a_lo;
      g.accumulate = true;
      gemm(g, impl_, cublas_.get(), stream);
    }
  };
  int last_rows = 0;
  for (int done = 0; done < n; done += chunk_) {
    const int m = std::min(chunk_, n - done);
    const int p = p0 + done;
    embed_rows(v.embed, W, v.tokens + p, m, d, x_.data(), stream);
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      const LayerWeights& ly = (*v.layers)[static_cast<size_t>(l)];
      rmsnorm_rows(x_.data(), ly.ln1, eps, m, d, W, xn_.data(), xn_lo, stream);
      product(xn_.data(), xn_lo, ly.qkv, m, qd + 2 * kvd, d, qkv_.data(), false);
      QkvRopeArgs qa;
      qa.qkv = qkv_.data(); qa.bias = ly.qkv_bias; qa.rope = v.rope; qa.p0 = p; qa.m = m;
      qa.heads = c.num_attention_heads; qa.kv_heads = c.num_key_value_heads; qa.head_dim = c.head_dim;
      qa.context = v.context; qa.k_cache = v.k_cache(l); qa.v_cache = v.v_cache(l); qa.cache_type = W;
      qa.q_out = q_.data(); qa.q_lo = q_lo;
      qkv_rope_cache(qa, stream);
      PrefillAttentionArgs aa;
      aa.q = q_.data(); aa.q_lo = q_lo; aa.k_cache = v.k_cache(l); aa.v_cache = v.v_cache(l); aa.cache_type = W;
      aa.p0 = p; aa.m = m; aa.heads = c.num_attention_heads; aa.kv_heads = c.num_key_value_heads;
      aa.head_dim = c.head_dim; aa.context = v.context; aa.out = attn_.data(); aa.out_lo = attn_lo;
      attention_prefill(aa, simple_attention_, stream);
      product(attn_.data(), attn_lo, ly.o, m, d, qd, x_.data(), true);
      rmsnorm_rows(x_.data(), ly.ln2, eps, m, d, W, xn_.data(), xn_lo, stream);
      product(xn_.data(), xn_lo, ly.gate_up, m, 2 * I, d, gu_.data(), false);
      swiglu_rows(gu_.data(), m, I, W, act_.data(), act_lo, stream);
      product(act_.data(), act_lo, ly.down, m, d, I, x_.data(), true);
    }
    last_rows = m;
  }
  // The decode step's final norm on the last row; the device position moves past the prompt.
  rmsnorm(x_.data() + static_cast<size_t>(last_rows - 1) * d, v.final_norm, eps, d, v.hidden, nullptr, stream);
  set_device_int(v.pos, p0 + n, stream);
}

}  // namespace tensafe::model::cuda
