#include "helora/cuda/he_linear_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "ckks/cuda/context_cuda.h"
#include "cuda/device_buffer.h"
#include "ckks/cuda/ntt.cuh"
#include "ckks/cuda/ntt_tables_cuda.h"
#include "ckks/modarith.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "helora/cuda/extract.cuh"
#include "helora/he_linear_cpu.h"

namespace tensafe::helora {
namespace {

using ckks::cuda::CiphertextCuda;
using ckks::cuda::CkksContextCuda;
using ckks::cuda::PlaintextCuda;

// Shared by the HeLinearCuda of one generator.
struct CudaSession {
  HeParams params;
  std::unique_ptr<CkksContextCuda> ctx;
  std::shared_ptr<ckks::cuda::SecretKeyCuda> sk;
  std::shared_ptr<ckks::cuda::PublicKeyCuda> pk;
  std::shared_ptr<ckks::cuda::GaloisKeysCuda> gk;
  cudaStream_t stream = nullptr;  // our extraction kernel and copies
  bool timers = false;
  // our own events of this token: (stage, start, stop)
  struct Ev {
    int stage;
    cudaEvent_t a, b;
  };
  std::vector<Ev> events;
  helora::cuda::GarnerConsts garner;
  std::unique_ptr<ckks::cuda::DeviceNttTables> ntt;  // inverse NTT of NTT-domain decryptions
  ckks::cuda::DeviceBuffer<uint64_t> scratch;          // their coefficient form

  ~CudaSession() {
    for (auto& e : events) {
      cudaEventDestroy(e.a);
      cudaEventDestroy(e.b);
    }
    if (stream) cudaStreamDestroy(stream);
  }
  // Brackets work enqueued on `stream` between begin() and end() with events when timers are on.
  cudaEvent_t begin() {
    if (!timers) return nullptr;
    cudaEvent_t a;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventRecord(a, stream));
    return a;
  }
  void end(int stage, cudaEvent_t a) {
    if (!timers || !a) return;
    cudaEvent_t b;
    CUDA_CHECK(cudaEventCreate(&b));
    CUDA_CHECK(cudaEventRecord(b, stream));
    events.push_back({stage, a, b});
  }
};

class HeLinearCuda final : public HeLinear {
 public:
  HeLinearCuda(std::shared_ptr<CudaSession> s, const float* a, int rank, int in_dim) : s_(std::move(s)) {
    const HeParams& p = s_->params;
    layout_ = make_layout(p.packing, p.poly_n, in_dim, rank);
    if (layout_.products() > helora::cuda::kMaxExtractPlaintexts)
      throw ArgumentRangeError("the CUDA HE-LoRA step handles at most " + std::to_string(helora::cuda::kMaxExtractPlaintexts) +
                               " products per matrix, this one needs " + std::to_string(layout_.products()));
    std::vector<double> vals(layout_.width());
    for (int c = 0; c < layout_.chunks; ++c)
      for (int q = 0; q < layout_.products_per_chunk; ++q) {
        pack_weights(layout_, a, c, q, vals.data());
        weights_.push_back(p.packing == Packing::Coefficients ? s_->ctx->encode_coefficients(vals.data(), vals.size(), 0, 0)
                                                              : s_->ctx->encode(vals.data(), vals.size(), 0, 0));
      }
    in_buf_.resize(layout_.width());
    dec_buf_.resize(layout_.width());
    // coefficient indices read per product, on the device
    std::vector<uint32_t> idx(layout_.rows_per_pt);
    for (int k = 0; k < layout_.rows_per_pt; ++k) idx[k] = static_cast<uint32_t>(read_index(layout_, k));
    CUDA_CHECK(cudaMalloc(&d_index_, idx.size() * sizeof(uint32_t)));
    ::tensafe::cuda::copy_to_device(d_index_, idx.data(), idx.size() * sizeof(uint32_t));
    CUDA_CHECK(cudaMalloc(&d_out_, static_cast<size_t>(layout_.products()) * layout_.rows_per_pt * sizeof(double)));
    CUDA_CHECK(cudaMallocHost(&h_out_, static_cast<size_t>(layout_.products()) * layout_.rows_per_pt * sizeof(double)));
  }
  ~HeLinearCuda() override {
    cudaFree(d_index_);
    cudaFree(d_out_);
    cudaFreeHost(h_out_);
  }
  const PackingLayout& layout() const override { return layout_; }

  void apply(const double* x, double* y, StageClock& clock) override {
    auto& ctx = *s_->ctx;
    const HeParams& p = s_->params;
    const int P = layout_.products_per_chunk;
    std::vector<std::shared_ptr<CiphertextCuda>> prods;
    for (int c = 0; c < layout_.chunks; ++c) {
      pack_input(layout_, x, c, in_buf_.data());
      auto pt = p.packing == Packing::Coefficients ? ctx.encode_coefficients(in_buf_.data(), in_buf_.size(), 0, 0)
                                                   : ctx.encode(in_buf_.data(), in_buf_.size(), 0, 0);
      auto ct = p.symmetric ? ctx.encrypt_symmetric(*pt, *s_->sk) : ctx.encrypt(*pt, *s_->pk);
      for (int q = 0; q < P; ++q) {
        auto prod = ctx.multiply_plain(*ct, *weights_[static_cast<size_t>(c) * P + q]);
        if (p.packing == Packing::Rotations)
          for (int64_t st : layout_.rotations()) prod = ctx.add(*prod, *ctx.rotate(*prod, st, *s_->gk));
        prods.push_back(std::move(prod));
      }
    }
    // The GPU stages are timed by events (end_token); host time so far is launch overhead.
    clock.restart();
    std::fill(y, y + layout_.rank, 0.0);
    if (p.packing == Packing::Coefficients && p.batched_decrypt) {
      std::vector<const CiphertextCuda*> ptrs;
      for (auto& c : prods) ptrs.push_back(c.get());
      auto pts = ctx.decrypt_batch(ptrs, *s_->sk);
      helora::cuda::PlaintextPtrs list{};
      // The context works on its own stream: wait for the decryptions before our kernels.
      CUDA_CHECK(cudaDeviceSynchronize());
      const size_t Ln = pts.empty() ? 0 : pts[0]->limbs * static_cast<size_t>(layout_.n);
      if (s_->scratch.size() < pts.size() * Ln) s_->scratch.allocate(pts.size() * Ln);
      for (size_t i = 0; i < pts.size(); ++i) {
        list.p[i] = pts[i]->words.data();
        list.inv_scale[i] = 1.0 / pts[i]->scale;
        if (pts[i]->ntt) {  // decryption left m in the NTT domain: to coefficients on our stream
          CUDA_CHECK(cudaMemcpyAsync(s_->scratch.data() + i * Ln, pts[i]->words.data(), Ln * 8, cudaMemcpyDeviceToDevice, s_->stream));
          ckks::cuda::ntt_inverse(s_->scratch.data() + i * Ln, s_->ntt->view(),
                                  ckks::cuda::LimbMap::range(0, static_cast<uint32_t>(pts[i]->limbs)), 1, s_->stream);
          list.p[i] = s_->scratch.data() + i * Ln;
        }
      }
      const uint32_t count = static_cast<uint32_t>(pts.size()), per = static_cast<uint32_t>(layout_.rows_per_pt);
      cudaEvent_t e = s_->begin();
      helora::cuda::extract_coefficients(d_out_, list, count, static_cast<uint32_t>(layout_.n), d_index_, per, s_->garner, s_->stream);
      CUDA_CHECK_LAUNCH();
      s_->end(kExtractSum, e);
      e = s_->begin();
      CUDA_CHECK(cudaMemcpyAsync(h_out_, d_out_, static_cast<size_t>(count) * per * sizeof(double), cudaMemcpyDeviceToHost, s_->stream));
      s_->end(kTransfer, e);
      CUDA_CHECK(cudaStreamSynchronize(s_->stream));
      for (uint32_t i = 0; i < count; ++i)
        for (uint32_t k = 0; k < per; ++k) {
          const int row = static_cast<int>((i % P) * per + k);
          if (row < layout_.rank) y[row] += h_out_[i * per + k];
        }
      clock.restart();
      return;
    }
    // Slot packings, or sequential decryption: one product at a time through the host.
    std::vector<std::shared_ptr<PlaintextCuda>> pts;
    if (p.batched_decrypt) {
      std::vector<const CiphertextCuda*> ptrs;
      for (auto& c : prods) ptrs.push_back(c.get());
      pts = ctx.decrypt_batch(ptrs, *s_->sk);
    }
    for (size_t i = 0; i < prods.size(); ++i) {
      auto m = p.batched_decrypt ? pts[i] : ctx.decrypt(*prods[i], *s_->sk);
      const int product = static_cast<int>(i % P);
      if (p.packing == Packing::Coefficients) {
        clock.restart();
        ckks::Plaintext host = ctx.download(*m);  // the original's per-ciphertext host copy
        clock.mark(kTransfer);
        if (host.ntt) {
          ctx.cpu().ntt_inverse(host.data.data(), host.limbs);
          host.ntt = false;
        }
        const auto& q = ctx.cpu().params().moduli;
        for (int k = 0; k < layout_.rows_per_pt; ++k) {
          const int row = product * layout_.rows_per_pt + k;
          if (row >= layout_.rank) break;
          y[row] += compose_host(host, q, static_cast<size_t>(read_index(layout_, k)));
        }
        clock.mark(kExtractSum);
      } else {
        ctx.decode(*m, dec_buf_.data());  // device decode + copy to the host (timed by events)
        clock.restart();
        extract(layout_, dec_buf_.data(), product, y);
        clock.mark(kExtractSum);
      }
    }
  }

 private:
  double compose_host(const ckks::Plaintext& pt, const std::vector<uint64_t>& q, size_t j) const {
    const size_t l = pt.limbs, n = static_cast<size_t>(layout_.n);
    uint64_t a[8];
    for (size_t i = 0; i < l; ++i) {
      uint64_t t = pt.data[i * n + j];
      for (size_t k = 0; k < i; ++k) {
        t = ckks::sub_mod(t, a[k] % q[i], q[i]);
        t = ckks::mul_mod_slow(t, ckks::inv_mod_prime(q[k] % q[i], q[i]), q[i]);
      }
      a[i] = t;
    }
    const bool neg = a[l - 1] > (q[l - 1] >> 1);
    double v = 0, radix = 1;
    for (size_t i = 0; i < l; ++i) {
      v += (neg ? static_cast<double>(a[i]) - static_cast<double>(q[i] - 1) : static_cast<double>(a[i])) * radix;
      radix *= static_cast<double>(q[i]);
    }
    if (neg) v -= 1;
    return v / pt.scale;
  }

  std::shared_ptr<CudaSession> s_;
  PackingLayout layout_;
  std::vector<std::shared_ptr<PlaintextCuda>> weights_;
  std::vector<double> in_buf_, dec_buf_;
  uint32_t* d_index_ = nullptr;
  double* d_out_ = nullptr;
  double* h_out_ = nullptr;
};

int stage_of_op(const std::string& op) {
  if (op == "encode" || op == "encode_coefficients") return kEncode;
  if (op == "encrypt" || op == "encrypt_symmetric") return kEncrypt;
  if (op == "multiply_plain" || op == "rotate" || op == "add") return kCtPtMultiply;
  if (op == "decrypt" || op == "decrypt_batch") return kDecrypt;
  if (op == "decode" || op == "decode_coefficients") return kExtractSum;
  return -1;
}

class HeBackendCuda final : public HeBackend {
 public:
  HeBackendCuda(const HeParams& p, const std::vector<int64_t>& steps) : s_(std::make_shared<CudaSession>()) {
    s_->params = p;
    s_->ctx = std::make_unique<CkksContextCuda>(he_spec(p));
    s_->sk = s_->ctx->generate_secret_key();
    s_->pk = s_->ctx->generate_public_key(*s_->sk);
    if (!steps.empty()) s_->gk = s_->ctx->generate_galois_keys(*s_->sk, steps);
    CUDA_CHECK(cudaStreamCreateWithFlags(&s_->stream, cudaStreamNonBlocking));
    {
      std::vector<const ckks::NttTables*> tabs;
      for (size_t k = 0; k < s_->ctx->cpu().max_limbs(); ++k) tabs.push_back(&s_->ctx->cpu().tables(k));
      s_->ntt = std::make_unique<ckks::cuda::DeviceNttTables>(tabs);
    }
    const auto& q = s_->ctx->cpu().params().moduli;
    if (q.size() > static_cast<size_t>(helora::cuda::kMaxGarnerLimbs))
      throw ArgumentRangeError("the CUDA HE-LoRA extraction handles at most 4 primes");
    auto& g = s_->garner;
    g.limbs = static_cast<uint32_t>(q.size());
    double radix = 1;
    for (size_t i = 0; i < q.size(); ++i) {
      g.br[i] = ckks::Barrett(q[i]);
      g.radix[i] = radix;
      radix *= static_cast<double>(q[i]);
      for (size_t k = 0; k < i; ++k) g.inv[i][k] = ckks::inv_mod_prime(q[k] % q[i], q[i]);
    }
  }
  const char* name() const override { return "cuda"; }
  std::unique_ptr<HeLinear> make(const float* a, int rank, int in_dim) override {
    return std::make_unique<HeLinearCuda>(s_, a, rank, in_dim);
  }
  void begin_token(bool timers) override {
    s_->timers = timers;
    s_->ctx->set_timing(timers);
  }
  void end_token(StageTimes& t) override {
    if (!s_->timers) return;
    for (const auto& e : s_->ctx->drain_timings()) {
      const int st = stage_of_op(e.op);
      if (st >= 0) t.add(st, e.us / 1000.0);
    }
    CUDA_CHECK(cudaStreamSynchronize(s_->stream));
    for (auto& e : s_->events) {
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, e.a, e.b));
      t.add(e.stage, ms);
      cudaEventDestroy(e.a);
      cudaEventDestroy(e.b);
    }
    s_->events.clear();
  }

 private:
  std::shared_ptr<CudaSession> s_;
};

}  // namespace

std::shared_ptr<HeBackend> make_cuda_he_backend(const HeParams& params, const std::vector<int64_t>& rotation_steps) {
  return std::make_shared<HeBackendCuda>(params, rotation_steps);
}

}  // namespace tensafe::helora
