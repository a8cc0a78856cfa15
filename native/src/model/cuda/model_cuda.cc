// ModelCuda: the weights on the device (upload or on-device generation), the RoPE table, the
// device choice. See model_cuda.h for the layout; the forward lives in context_cuda.cc.
#include "model/cuda/model_cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/device_info.h"
#include "common/errors.h"
#include "cuda/device_buffer.h"
#include "common/thread_pool.h"
#include "cuda/cuda_check.h"
#include "model/cuda/context_cuda.h"
#include "model/cuda/kernels.h"
#include "model/synthetic.h"

namespace tensafe::model {

std::shared_ptr<Model> load_cuda_model(const WeightSource& source, const ModelOptions& options) {
  return std::make_shared<cuda::ModelCuda>(source, options);
}

namespace cuda {
namespace {

size_t align256(size_t v) { return (v + 255) & ~static_cast<size_t>(255); }

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
    : Model(source.host ? source.host->config : source.config, options.context_length, source.host == nullptr,
            source.host ? 0 : source.seed) {
  device_ = options.device.value_or(0);
  use_cuda_device(device_, "options.device");  // checks the index against the visible devices
  if (config_.head_dim % 2 != 0) throw FormatError("head_dim must be even for rotary embeddings");
  wtype_ = options.weight_dtype == DType::BF16 ? DType::BF16 : DType::F16;
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  try {
    upload_weights(source, stream);
    // RoPE table in float64 on the host: angle = pos * theta^(-2i / head_dim).
    const Qwen2Config& c = config_;
    const int D = c.head_dim, ctx = max_context_, half = D / 2;
    std::vector<float2> table(static_cast<size_t>(ctx) * half);
    for (int i = 0; i < half; ++i) {
      const double inv = std::pow(c.rope_theta, -2.0 * i / D);
      for (int p = 0; p < ctx; ++p) {
        const double a = static_cast<double>(p) * inv;
        table[static_cast<size_t>(p) * half + i] = make_float2(static_cast<float>(std::cos(a)), static_cast<float>(std::sin(a)));
      }
    }
    rope_.allocate(table.size());
    ::tensafe::cuda::copy_to_device(rope_.data(), table.data(), table.size() * sizeof(float2));
    sampling_scratch_.allocate(sampling_scratch_bytes(c.vocab_size));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    create_step_drivers();
  } catch (...) {
    cudaStreamDestroy(stream);
    throw;
  }
  cudaStreamDestroy(stream);
}

void ModelCuda::create_step_drivers() {
  layers_device_.allocate(layers_.size());
  ::tensafe::cuda::copy_to_device(layers_device_.data(), layers_.data(), layers_device_.bytes());
  const DecodeKernel kind = decode_kernel_from_env();
  std::string why;
  if (kind != DecodeKernel::Graph) {
    if (DecodeMegakernel::supports(config_, &why)) {
      mega_ = std::make_unique<DecodeMegakernel>(config_, wtype_);
      // The LM head follows the step: its first rows go into L2 while the last layer finishes.
      const size_t lm_bytes = static_cast<size_t>(config_.vocab_size) * config_.hidden_size * 2;
      mega_->set_tail_prefetch(lm_head_, std::min(lm_bytes, mega_->lookahead() * static_cast<size_t>(mega_->grid())));
    } else if (kind == DecodeKernel::Mega) {
      throw BackendUnavailableError("TENSAFE_DECODE=mega: " + why);
    }
  }
  if (batched_prefill_enabled_by_env()) prefill_ = std::make_unique<BatchedPrefill>(config_, wtype_, max_context_);
}

void ModelCuda::bind_thread() const { CUDA_CHECK(cudaSetDevice(device_)); }

uint64_t ModelCuda::context_bytes(int context_length) const { return ContextCuda::bytes_for(config_, context_length); }

std::unique_ptr<ModelBackend> ModelCuda::do_create_context(int context_length) const {
  return std::make_unique<ContextCuda>(std::static_pointer_cast<const ModelCuda>(shared_from_this()), context_length);
}

void ModelCuda::upload_weights(const WeightSource& source, cudaStream_t stream) {
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
      synth_fill(base + dst, to, count, source.seed, id, s.center, s.half_width, stream);
      CUDA_CHECK_LAUNCH();
      return;
    }
    if (host->numel() != count) throw FormatError("tensor " + host->name + " has the wrong size for the config");
    staging.resize(count * dtype_size(to));
    convert_host(*host, count, to, staging.data());
    ::tensafe::cuda::copy_to_device(base + dst, staging.data(), staging.size());
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
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace cuda
}  // namespace tensafe::model
