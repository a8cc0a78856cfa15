// The CPU engine's side of the benchmark loops (bench_loop.h): its stages and a steady clock.
#include "ckks/benchmarks.h"

#include <array>
#include <chrono>
#include <random>
#include <vector>

#include "ckks/bench_loop.h"
#include "ckks/parallel.h"

namespace tensafe::ckks {

OpTiming benchmark_op(CkksContext& ctx, const std::string& op, int iterations) {
  SteadyStageClock clock;
  return benchmark_engine_op(ctx, ctx, op, iterations, clock, 1, 1);
}

namespace {
using Clock = std::chrono::steady_clock;

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

// The CPU stages: engine operations on host objects, staged (all products, one batched
// decrypt, all decodes, as the original) or streamed (each core takes whole products).
class CpuHeLoraStages : public HeLoraStages {
 public:
  CpuHeLoraStages(CkksContext& ctx, const HeLoraShape& s, const std::vector<double>& a, bool streamed)
      : ctx_(ctx), s_(s), streamed_(streamed), decoded_(s.products, std::vector<double>(ctx.encoder().slots())), y_(s.r) {
    sk_ = ctx.generate_secret_key();
    pk_ = ctx.generate_public_key(sk_);
    // Pre-encoded LoRA-A plaintexts (once per adapter), with Shoup companions.
    for (int p = 0; p < s.products; ++p) {
      auto v = helora_packed_rows(s, a, p, ctx.encoder().slots());
      apts_.push_back(ctx.encode(v.data(), v.size(), 0, 0));
      ctx.prepare_multiplier(apts_.back());
    }
  }
  void load(const double* h) override {
    h_ = h;
    // The previous token's objects are freed here, outside the timed stages.
    pt_ = Plaintext();
    ct_ = Ciphertext();
    prods_.clear();
    dec_.clear();
  }
  void run(int stage) override {
    switch (stage) {
      case 0: {
        std::vector<double> rep(static_cast<std::size_t>(s_.replicas) * s_.d);
        for (int k = 0; k < s_.replicas; ++k) std::copy(h_, h_ + s_.d, rep.begin() + static_cast<std::ptrdiff_t>(k) * s_.d);
        pt_ = ctx_.encode(rep.data(), rep.size(), 0, 0);
        break;
      }
      case 1: ct_ = ctx_.encrypt(pt_, pk_); break;
      case 2: streamed_ ? run_streamed() : run_products(); break;
      case 3:
        if (!streamed_) {
          std::vector<const Ciphertext*> ptrs;
          for (auto& c : prods_) ptrs.push_back(&c);
          dec_ = ctx_.decrypt_batch(ptrs, sk_);
        }
        break;
      case 4:
        if (!streamed_)
          pfor(static_cast<std::size_t>(s_.products), [&](std::size_t b, std::size_t e) {
            for (std::size_t p = b; p < e; ++p) ctx_.decode(dec_[p], decoded_[p].data());
          });
        break;
      case 5:
        if (!streamed_)
          for (int p = 0; p < s_.products; ++p) segment_sums(p);
        break;
    }
  }
  const double* outputs() override { return y_.data(); }
  bool overlapped_busy_us(double busy[4]) override {
    if (!streamed_) return false;
    for (int k = 0; k < 4; ++k) busy[k] = busy_[k];
    return true;
  }

 private:
  void run_products() {
    prods_.resize(static_cast<std::size_t>(s_.products));
    for (int p = 0; p < s_.products; ++p) prods_[p] = ctx_.multiply_plain(ct_, apts_[p]);
  }
  // Each core takes whole products (multiply -> decrypt -> decode -> sums) so one product's
  // buffers stay in cache; the stages overlap across cores, hence the busy times.
  void run_streamed() {
    std::vector<std::array<double, 4>> per(static_cast<std::size_t>(s_.products));
    pfor(static_cast<std::size_t>(s_.products), [&](std::size_t b, std::size_t e) {
      for (std::size_t p = b; p < e; ++p) {
        auto a0 = Clock::now();
        Ciphertext prod = ctx_.multiply_plain(ct_, apts_[p]);
        auto a1 = Clock::now();
        Plaintext dec = ctx_.decrypt(prod, sk_);
        auto a2 = Clock::now();
        ctx_.decode(dec, decoded_[p].data());
        auto a3 = Clock::now();
        segment_sums(static_cast<int>(p));
        auto a4 = Clock::now();
        per[p] = {us_between(a0, a1), us_between(a1, a2), us_between(a2, a3), us_between(a3, a4)};
      }
    });
    for (int k = 0; k < 4; ++k) busy_[k] = 0;
    for (auto& x : per)
      for (int k = 0; k < 4; ++k) busy_[k] += x[k];
  }
  // y[row] = sum of the d slots of that row's replica.
  void segment_sums(int p) {
    for (int k = 0; k < s_.replicas; ++k) {
      const int row = p * s_.replicas + k;
      if (row >= s_.r) break;
      const double* x = decoded_[p].data() + static_cast<std::size_t>(k) * s_.d;
      double acc = 0;
      for (int i = 0; i < s_.d; ++i) acc += x[i];
      y_[row] = acc;
    }
  }

  CkksContext& ctx_;
  HeLoraShape s_;
  bool streamed_;
  SecretKey sk_;
  PublicKey pk_;
  std::vector<Plaintext> apts_;
  const double* h_ = nullptr;
  Plaintext pt_;
  Ciphertext ct_;
  std::vector<Ciphertext> prods_;
  std::vector<Plaintext> dec_;
  std::vector<std::vector<double>> decoded_;
  std::vector<double> y_;
  double busy_[4] = {0, 0, 0, 0};
};
}  // namespace

HeLoraTiming benchmark_helora(CkksContext& ctx, int d, int r, int iterations, int replicas, bool streamed) {
  const HeLoraShape shape = helora_shape(ctx.encoder().slots(), d, r, replicas);
  std::mt19937_64 rng(11);  // benchmark data only
  const auto a = helora_lora_a(shape, rng);
  CpuHeLoraStages stages(ctx, shape, a, streamed);
  SteadyStageClock clock;
  HeLoraTiming t = run_helora(stages, clock, shape, a, iterations, 1, rng);
  t.streamed = streamed;
  return t;
}

}  // namespace tensafe::ckks
