#include "helora/he_linear_cpu.h"

#include <cmath>

#include "ckks/modarith.h"
#include "common/errors.h"

namespace tensafe::helora {

ckks::CkksParamsSpec he_spec(const HeParams& p) {
  ckks::CkksParamsSpec spec;
  spec.n = static_cast<std::uint64_t>(p.poly_n);
  spec.prime_bits = p.prime_bits;
  spec.special_bits = p.packing == Packing::Rotations ? p.special_bits : 0;
  spec.scale_bits = p.scale_bits;
  spec.allow_insecure = p.allow_insecure;
  return spec;
}

HeSessionCpu::HeSessionCpu(const HeParams& params, const std::vector<int64_t>& rotation_steps) : params_(params) {
  ctx_ = std::make_unique<ckks::CkksContext>(he_spec(params));
  sk_ = ctx_->generate_secret_key();
  pk_ = ctx_->generate_public_key(sk_);
  if (!rotation_steps.empty()) {
    gk_ = ctx_->generate_galois_keys(sk_, rotation_steps);
    has_gk_ = true;
  }
}

HeLinearCpu::HeLinearCpu(std::shared_ptr<HeSessionCpu> session, const float* a, int rank, int in_dim)
    : session_(std::move(session)) {
  const HeParams& p = session_->params();
  layout_ = make_layout(p.packing, p.poly_n, in_dim, rank);
  if (p.packing == Packing::Rotations && !session_->galois_keys())
    throw ArgumentRangeError("packing 'rotations' needs Galois keys in the session");
  std::vector<double> vals(layout_.width());
  auto& ctx = session_->ctx();
  weights_.reserve(layout_.products());
  for (int c = 0; c < layout_.chunks; ++c) {
    for (int q = 0; q < layout_.products_per_chunk; ++q) {
      pack_weights(layout_, a, c, q, vals.data());
      weights_.push_back(p.packing == Packing::Coefficients ? ctx.encode_coefficients(vals.data(), vals.size(), 0, 0)
                                                            : ctx.encode(vals.data(), vals.size(), 0, 0));
    }
  }
  in_buf_.resize(layout_.width());
  dec_buf_.resize(layout_.width());
}

// Centred value of coefficient j of a coefficient-form plaintext, by Garner over its limbs,
// divided by the scale: the coefficients packing reads only R of the N coefficients.
static double compose_one(const ckks::Plaintext& pt, const std::vector<std::uint64_t>& q, std::uint64_t n, std::size_t j) {
  const std::size_t l = pt.limbs;
  std::uint64_t a[8];
  double radix = 1, v = 0;
  for (std::size_t i = 0; i < l; ++i) {
    std::uint64_t t = pt.data[i * n + j];
    for (std::size_t k = 0; k < i; ++k) {
      t = ckks::sub_mod(t, a[k] % q[i], q[i]);
      t = ckks::mul_mod_slow(t, ckks::inv_mod_prime(q[k] % q[i], q[i]), q[i]);
    }
    a[i] = t;
  }
  const bool negative = a[l - 1] > (q[l - 1] >> 1);
  for (std::size_t i = 0; i < l; ++i) {
    v += (negative ? static_cast<double>(a[i]) - static_cast<double>(q[i] - 1) : static_cast<double>(a[i])) * radix;
    radix *= static_cast<double>(q[i]);
  }
  if (negative) v -= 1;
  return v / pt.scale;
}

void HeLinearCpu::read_out(const ckks::Plaintext& pt, int product, double* y, std::vector<double>& buf) {
  auto& ctx = session_->ctx();
  if (layout_.packing == Packing::Coefficients) {
    // Decryption may leave m in the NTT domain (as SEAL does): back to coefficients first.
    if (pt.ntt) {
      coeff_buf_.assign(pt.data.begin(), pt.data.end());
      ctx.ntt_inverse(coeff_buf_.data(), pt.limbs);
      ckks::Plaintext c;
      c.limbs = pt.limbs;
      c.scale = pt.scale;
      c.ntt = false;
      c.data.swap(coeff_buf_);
      read_coefficients(c, product, y);
      coeff_buf_.swap(c.data);
      return;
    }
    read_coefficients(pt, product, y);
    return;
  }
  ctx.decode(pt, buf.data());
  extract(layout_, buf.data(), product, y);
}

void HeLinearCpu::read_coefficients(const ckks::Plaintext& pt, int product, double* y) const {
  auto& ctx = session_->ctx();
  {
    const auto& q = ctx.params().moduli;
    for (int k = 0; k < layout_.rows_per_pt; ++k) {
      const int row = product * layout_.rows_per_pt + k;
      if (row >= layout_.rank) break;
      y[row] += compose_one(pt, q, ctx.n(), static_cast<std::size_t>(read_index(layout_, k)));
    }
  }
}

void HeLinearCpu::apply(const double* x, double* y, StageClock& clock) {
  auto& ctx = session_->ctx();
  const HeParams& p = session_->params();
  const int P = layout_.products_per_chunk;
  std::vector<ckks::Ciphertext> prods;
  prods.reserve(layout_.products());
  for (int c = 0; c < layout_.chunks; ++c) {
    pack_input(layout_, x, c, in_buf_.data());
    ckks::Plaintext pt = p.packing == Packing::Coefficients ? ctx.encode_coefficients(in_buf_.data(), in_buf_.size(), 0, 0)
                                                            : ctx.encode(in_buf_.data(), in_buf_.size(), 0, 0);
    clock.mark(kEncode);
    ckks::Ciphertext ct = p.symmetric ? ctx.encrypt_symmetric(pt, session_->secret_key()) : ctx.encrypt(pt, session_->public_key());
    clock.mark(kEncrypt);
    for (int q = 0; q < P; ++q) {
      ckks::Ciphertext prod = ctx.multiply_plain(ct, weights_[static_cast<size_t>(c) * P + q]);
      if (p.packing == Packing::Rotations) {
        // rotate-and-sum inside each D-long segment (counted in ct_pt_multiply: evaluator work)
        for (int64_t s : layout_.rotations()) prod = ctx.add(prod, ctx.rotate(prod, s, *session_->galois_keys()));
      }
      prods.push_back(std::move(prod));
    }
    clock.mark(kCtPtMultiply);
  }
  std::fill(y, y + layout_.rank, 0.0);
  if (!p.batched_decrypt) {
    for (size_t i = 0; i < prods.size(); ++i) {
      ckks::Plaintext m = ctx.decrypt(prods[i], session_->secret_key());
      clock.mark(kDecrypt);
      read_out(m, static_cast<int>(i % P), y, dec_buf_);
      clock.mark(kExtractSum);
    }
    return;
  }
  std::vector<const ckks::Ciphertext*> ptrs;
  for (auto& c : prods) ptrs.push_back(&c);
  std::vector<ckks::Plaintext> ms = ctx.decrypt_batch(ptrs, session_->secret_key());
  clock.mark(kDecrypt);
  for (size_t i = 0; i < ms.size(); ++i) read_out(ms[i], static_cast<int>(i % P), y, dec_buf_);
  clock.mark(kExtractSum);
}

namespace {
class HeBackendCpu final : public HeBackend {
 public:
  HeBackendCpu(const HeParams& p, const std::vector<int64_t>& steps) : session_(std::make_shared<HeSessionCpu>(p, steps)) {}
  const char* name() const override { return "cpu"; }
  std::unique_ptr<HeLinear> make(const float* a, int rank, int in_dim) override {
    return std::make_unique<HeLinearCpu>(session_, a, rank, in_dim);
  }

 private:
  std::shared_ptr<HeSessionCpu> session_;
};
}  // namespace

std::shared_ptr<HeBackend> make_cpu_he_backend(const HeParams& params, const std::vector<int64_t>& rotation_steps) {
  return std::make_shared<HeBackendCpu>(params, rotation_steps);
}

}  // namespace tensafe::helora
