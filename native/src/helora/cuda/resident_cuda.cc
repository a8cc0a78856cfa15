// The device-resident HE-LoRA step on CUDA (coefficients packing, batched decryption): every
// stage is a kernel on the model's stream, built from the CKKS engine's launchers (NTT, RNS
// ops, samplers, coefficient encoding) and our own (input preparation with DP noise,
// extraction, LoRA-B). Keys and the LoRA-A plaintexts are made once on the host by a CPU
// CkksContext with the same parameters (so every word matches the CPU backend's conventions)
// and uploaded.
//
// Encryption is secret-key (symmetric): the server holds the key in this mode anyway (see
// docs/threat-model.md), and it saves the public-key path's two extra NTTs and products.
#include "helora/cuda/resident_cuda.h"

#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "ckks/chacha20.h"
#include "timing/nvtx.h"
#include "ckks/context.h"
#include "ckks/cuda/encoder.cuh"
#include "ckks/cuda/ntt.cuh"
#include "ckks/cuda/ntt_tables_cuda.h"
#include "ckks/cuda/rns_ops.cuh"
#include "ckks/cuda/sampling.cuh"
#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"
#include "helora/cuda/extract.cuh"
#include "helora/cuda/resident_kernels.cuh"
#include "helora/he_linear_cpu.h"
#include "model/cuda/context_cuda.h"
#include "model/cuda/kernels.h"

namespace tensafe::helora {
namespace {

using ::tensafe::cuda::DeviceBuffer;
namespace kc = ::tensafe::ckks::cuda;

class ResidentCuda final : public ResidentStep {
 public:
  ResidentCuda(const ResidentSpec& spec, cudaStream_t stream) : spec_(spec), stream_(stream) {
    const HeParams& p = spec.he;
    if (p.packing != Packing::Coefficients) throw ArgumentRangeError("the resident CUDA step supports the coefficients packing");
    layout_ = make_layout(p.packing, p.poly_n, spec.in_dim, spec.rank);
    cpu_ = std::make_unique<ckks::CkksContext>(he_spec(p));
    n_ = cpu_->n();
    L_ = static_cast<uint32_t>(cpu_->max_limbs());
    log_n_ = 0;
    while ((uint64_t{1} << log_n_) < n_) ++log_n_;
    const size_t Ln = L_ * n_;
    const int P = layout_.products();
    if (P > kc::LimbMap::kMax || P > helora::cuda::kMaxExtractPlaintexts)
      throw ArgumentRangeError("too many products for the resident CUDA step");
    if (L_ > static_cast<uint32_t>(helora::cuda::kMaxGarnerLimbs)) throw ArgumentRangeError("the resident step handles at most 4 primes");

    std::vector<const ckks::NttTables*> tabs;
    for (uint32_t k = 0; k < L_; ++k) tabs.push_back(&cpu_->tables(k));
    ntt_ = std::make_unique<kc::DeviceNttTables>(tabs);
    std::vector<ckks::Barrett> br;
    for (uint32_t k = 0; k < L_; ++k) br.emplace_back(cpu_->params().moduli[k]);
    br_.allocate(L_);
    br_.upload(br.data(), L_, stream_);
    kc::upload_gaussian_table();

    ckks::SecretKey sk = cpu_->generate_secret_key();
    sk_.allocate(Ln);
    sk_.upload(sk.ntt.data(), Ln, stream_);  // first L limbs (no special prime here)

    // LoRA-A plaintexts (NTT domain, scale 2^scale_bits), encoded by the CPU context.
    w_.allocate(static_cast<size_t>(P) * Ln);
    std::vector<double> vals(layout_.width());
    for (int c = 0; c < layout_.chunks; ++c)
      for (int q = 0; q < layout_.products_per_chunk; ++q) {
        pack_weights(layout_, spec.a.data(), c, q, vals.data());
        ckks::Plaintext pt = cpu_->encode_coefficients(vals.data(), vals.size(), 0, 0);
        const size_t idx = static_cast<size_t>(c) * layout_.products_per_chunk + q;
        ::tensafe::cuda::copy_to_device(w_.data() + idx * Ln, pt.data.data(), Ln * 8);
        w_scale_ = pt.scale;
      }
    b_.allocate(spec.b.size());
    ::tensafe::cuda::copy_to_device(b_.data(), spec.b.data(), spec.b.size() * sizeof(float));

    key_ = ckks::os_random_key();
    x_.allocate(static_cast<size_t>(layout_.chunks) * layout_.chunk + layout_.in_dim);
    m_.allocate(Ln);
    ct_.allocate(2 * Ln);
    prod_.allocate(static_cast<size_t>(P) * 2 * Ln);
    dec_.allocate(static_cast<size_t>(P) * Ln);
    y_.allocate(static_cast<size_t>(P) * layout_.rows_per_pt);
    delta_.allocate(spec.out_dim);
    std::vector<uint32_t> idx(layout_.rows_per_pt);
    for (int k = 0; k < layout_.rows_per_pt; ++k) idx[k] = static_cast<uint32_t>(read_index(layout_, k));
    idx_.allocate(idx.size());
    ::tensafe::cuda::copy_to_device(idx_.data(), idx.data(), idx.size() * 4);
    auto& g = garner_;
    g.limbs = L_;
    double radix = 1;
    for (uint32_t i = 0; i < L_; ++i) {
      const uint64_t qi = cpu_->params().moduli[i];
      g.br[i] = ckks::Barrett(qi);
      g.radix[i] = radix;
      radix *= static_cast<double>(qi);
      for (uint32_t k = 0; k < i; ++k) g.inv[i][k] = ckks::inv_mod_prime(cpu_->params().moduli[k] % qi, qi);
    }
    for (int s = 0; s < kEvents; ++s) CUDA_CHECK(cudaEventCreate(&ev_[s]));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  ~ResidentCuda() override {
    for (int s = 0; s < kEvents; ++s)
      if (ev_[s]) cudaEventDestroy(ev_[s]);
  }

  const PackingLayout& layout() const override { return layout_; }
  const float* delta() const override { return delta_.data(); }

  void enqueue(const float* hidden, bool timers) override {
    timed_ = timers;
    rec(0);
    helora::cuda::prepare_input(x_.data(), hidden, layout_.in_dim, spec_.dp, spec_.clip_norm, spec_.sigma, key_.data(),
                                noise_stream_++, stream_);
    CUDA_CHECK_LAUNCH();
    rec(1);
    run_he();
    helora::cuda::lora_b(delta_.data(), y_.data(), b_.data(), spec_.out_dim, layout_.rank, layout_.products(),
                         layout_.rows_per_pt, spec_.scaling, stream_);
    CUDA_CHECK_LAUNCH();
    rec(7);
  }

  void collect(StageTimes& t) override {
    if (!timed_) return;
    static const int stage_of[kEvents - 1] = {kDpNoise, kEncode, kEncrypt, kCtPtMultiply, kDecrypt, kExtractSum, kLoraB};
    for (int s = 0; s + 1 < kEvents; ++s) {
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, ev_[s], ev_[s + 1]));
      if (s == 0 && !spec_.dp) continue;  // the float->double copy alone is not DP noise
      t.add(stage_of[s], ms);
    }
    timed_ = false;
  }

  std::vector<double> input_host() override {
    std::vector<double> x(static_cast<size_t>(layout_.in_dim));
    CUDA_CHECK(cudaMemcpyAsync(x.data(), x_.data(), x.size() * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return x;
  }

  std::vector<double> apply_host(const double* x) override {
    CUDA_CHECK(cudaMemcpyAsync(x_.data(), x, layout_.in_dim * sizeof(double), cudaMemcpyHostToDevice, stream_));
    timed_ = false;
    run_he();
    std::vector<double> raw(static_cast<size_t>(layout_.products()) * layout_.rows_per_pt);
    CUDA_CHECK(cudaMemcpyAsync(raw.data(), y_.data(), raw.size() * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    nvtx_.close();
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::vector<double> y(layout_.rank, 0.0);
    for (int p = 0; p < layout_.products(); ++p)
      for (int k = 0; k < layout_.rows_per_pt; ++k) {
        const int row = (p % layout_.products_per_chunk) * layout_.rows_per_pt + k;
        if (row < layout_.rank) y[row] += raw[static_cast<size_t>(p) * layout_.rows_per_pt + k];
      }
    return y;
  }

 private:
  static constexpr int kEvents = 8;

  // Event i closes stage i-1 and opens stage i (CUDA events when timed; NVTX ranges always,
  // so Nsight tools see each stage; without a tool attached NVTX calls do nothing).
  void rec(int i) {
    if (timed_) CUDA_CHECK(cudaEventRecord(ev_[i], stream_));
    static const int stage_at[kEvents - 1] = {kDpNoise, kEncode, kEncrypt, kCtPtMultiply, kDecrypt, kExtractSum, kLoraB};
    if (i + 1 < kEvents) nvtx_.next(stage_name(stage_at[i]));
    else nvtx_.close();
  }
  timing::NvtxChain nvtx_;

  // x_ (device doubles) -> y_ (device doubles, products x rows_per_pt): encode, encrypt,
  // multiply, decrypt, extract. Events 1..6 bracket the stages when timed.
  void run_he() {
    const size_t Ln = L_ * n_;
    const int P = layout_.products(), PC = layout_.products_per_chunk;
    const auto map = kc::LimbMap::range(0, L_);
    const double scale = std::ldexp(1.0, spec_.he.scale_bits);
    helora::cuda::PlaintextPtrs list{};
    for (int c = 0; c < layout_.chunks; ++c) {
      // encode: coefficients of chunk c, then to the NTT domain
      const int len = std::max(0, std::min(layout_.chunk, layout_.in_dim - c * layout_.chunk));
      kc::encode_coefficients(m_.data(), x_.data() + static_cast<size_t>(c) * layout_.chunk, static_cast<uint32_t>(len), scale,
                              br_.data(), L_, log_n_, stream_);
      kc::ntt_forward(m_.data(), ntt_->view(), map, 1, stream_);
      if (c == 0) rec(2);
      // encrypt (secret key): c1 uniform (NTT domain), c0 = e - c1 s + m
      const uint64_t sid = enc_stream_++;
      uint64_t* c0 = ct_.data();
      uint64_t* c1 = c0 + Ln;
      kc::sample_uniform(c1, br_.data(), L_, log_n_, dkey(), sid, 0, stream_);
      kc::sample_small_rns(c0, br_.data(), L_, log_n_, dkey(), sid, 2ull * Ln, kc::SmallDistribution::Gaussian, stream_);
      kc::ntt_forward(c0, ntt_->view(), map, 1, stream_);
      kc::rns_encrypt_sk(c0, c1, sk_.data(), m_.data(), br_.data(), L_, log_n_, stream_);
      if (c == 0) rec(3);
      // ct x pt for the chunk's products, one launch
      const uint64_t* wp[kc::LimbMap::kMax];
      for (int q = 0; q < PC; ++q) wp[q] = w_.data() + (static_cast<size_t>(c) * PC + q) * Ln;
      kc::rns_multiply_plain_batch(prod_.data() + static_cast<size_t>(c) * PC * 2 * Ln, 2 * Ln, ct_.data(), wp, br_.data(), L_,
                                   static_cast<uint32_t>(PC), log_n_, stream_);
    }
    rec(4);
    std::vector<const uint64_t*> cts(P);
    for (int i = 0; i < P; ++i) cts[i] = prod_.data() + static_cast<size_t>(i) * 2 * Ln;
    kc::rns_decrypt_dyadic(dec_.data(), Ln, cts.data(), sk_.data(), br_.data(), L_, static_cast<uint32_t>(P), log_n_, stream_);
    kc::ntt_inverse(dec_.data(), ntt_->view(), map, static_cast<uint32_t>(P), stream_);
    rec(5);
    for (int i = 0; i < P; ++i) {
      list.p[i] = dec_.data() + static_cast<size_t>(i) * Ln;
      list.inv_scale[i] = 1.0 / (scale * w_scale_);
    }
    helora::cuda::extract_coefficients(y_.data(), list, static_cast<uint32_t>(P), static_cast<uint32_t>(n_), idx_.data(),
                                       static_cast<uint32_t>(layout_.rows_per_pt), garner_, stream_);
    CUDA_CHECK_LAUNCH();
    rec(6);
  }

  kc::DeviceChaChaKey dkey() const {
    kc::DeviceChaChaKey k{};
    for (int i = 0; i < 8; ++i) k.k[i] = key_[i];
    return k;
  }

  ResidentSpec spec_;
  cudaStream_t stream_;
  PackingLayout layout_;
  std::unique_ptr<ckks::CkksContext> cpu_;
  uint64_t n_ = 0;
  uint32_t L_ = 0, log_n_ = 0;
  std::unique_ptr<kc::DeviceNttTables> ntt_;
  DeviceBuffer<ckks::Barrett> br_;
  DeviceBuffer<uint64_t> sk_, w_, m_, ct_, prod_, dec_;
  DeviceBuffer<double> x_, y_;
  DeviceBuffer<float> b_, delta_;
  DeviceBuffer<uint32_t> idx_;
  helora::cuda::GarnerConsts garner_;
  double w_scale_ = 1;
  ckks::ChaChaKey key_{};
  // Stream ids of our ChaCha20 key: encryption and DP noise never share one (odd / even).
  uint64_t enc_stream_ = 1ull << 62, noise_stream_ = 1;
  cudaEvent_t ev_[kEvents] = {};
  bool timed_ = false;
};

// Plaintext LoRA, resident: A, B, the A x scratch and the delta in device memory.
class LoraCuda final : public DeviceLoraStep {
 public:
  LoraCuda(const ResidentSpec& spec, cudaStream_t stream) : spec_(spec), stream_(stream) {
    a_.allocate(spec.a.size());
    b_.allocate(spec.b.size());
    ax_.allocate(static_cast<size_t>(spec.rank));
    delta_.allocate(static_cast<size_t>(spec.out_dim));
    ::tensafe::cuda::copy_to_device(a_.data(), spec.a.data(), a_.bytes());
    ::tensafe::cuda::copy_to_device(b_.data(), spec.b.data(), b_.bytes());
  }
  void enqueue(const float* hidden) override {
    model::cuda::LoraArgs p;
    p.a = a_.data();
    p.b = b_.data();
    p.rank = spec_.rank;
    p.in_dim = spec_.in_dim;
    p.out_dim = spec_.out_dim;
    p.scaling = spec_.scaling;
    p.x = hidden;
    p.y = delta_.data();
    p.ax = ax_.data();
    p.accumulate = false;  // delta = scaling * B (A h)
    model::cuda::lora_apply(p, stream_);
  }
  const float* delta() const override { return delta_.data(); }

 private:
  ResidentSpec spec_;
  cudaStream_t stream_;
  DeviceBuffer<float> a_, b_, delta_;
  DeviceBuffer<double> ax_;
};

model::cuda::ContextCuda& cuda_context(model::ModelBackend& model, const char* what) {
  auto* m = dynamic_cast<model::cuda::ContextCuda*>(&model);
  if (!m) throw ArgumentRangeError(std::string(what) + " needs a context of a CUDA model");
  return *m;
}

}  // namespace

std::unique_ptr<ResidentStep> make_cuda_resident_step(model::ModelBackend& model, const ResidentSpec& spec) {
  return std::make_unique<ResidentCuda>(spec, cuda_context(model, "the resident CUDA HE-LoRA step").cuda_stream());
}

std::unique_ptr<DeviceLoraStep> make_cuda_lora_step(model::ModelBackend& model, const ResidentSpec& spec) {
  return std::make_unique<LoraCuda>(spec, cuda_context(model, "the CUDA LoRA step").cuda_stream());
}

}  // namespace tensafe::helora
