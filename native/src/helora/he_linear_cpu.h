// The CPU implementation of HeLinear over ckks::CkksContext (one context and key set per
// HeSessionCpu, shared by every matrix of a generator).
//
// Decrypt modes on the CPU: `sequential` decrypts, decodes and extracts one product at a time
// (the original's loop); `batched` decrypts every product at once (in parallel across
// ciphertexts), then decodes and extracts. There is no device, so `transfer` does not run.
#pragma once
#include <memory>
#include <vector>

#include "ckks/context.h"
#include "helora/he_linear.h"

namespace tensafe::helora {

class HeSessionCpu {
 public:
  // Makes the context and the keys (secret, public, and Galois keys for `rotation_steps`).
  HeSessionCpu(const HeParams& params, const std::vector<int64_t>& rotation_steps);
  ckks::CkksContext& ctx() { return *ctx_; }
  const HeParams& params() const { return params_; }
  const ckks::SecretKey& secret_key() const { return sk_; }
  const ckks::PublicKey& public_key() const { return pk_; }
  const ckks::GaloisKeys* galois_keys() const { return has_gk_ ? &gk_ : nullptr; }

 private:
  HeParams params_;
  std::unique_ptr<ckks::CkksContext> ctx_;
  ckks::SecretKey sk_;
  ckks::PublicKey pk_;
  ckks::GaloisKeys gk_;
  bool has_gk_ = false;
};

// Parameters of the context a packing needs (the special prime only for rotations).
ckks::CkksParamsSpec he_spec(const HeParams& p);

class HeLinearCpu final : public HeLinear {
 public:
  // a: [rank, in_dim] row-major (copied into plaintexts now; not kept).
  HeLinearCpu(std::shared_ptr<HeSessionCpu> session, const float* a, int rank, int in_dim);
  const PackingLayout& layout() const override { return layout_; }
  void apply(const double* x, double* y, StageClock& clock) override;

 private:
  void read_out(const ckks::Plaintext& pt, int product, double* y, std::vector<double>& buf);
  void read_coefficients(const ckks::Plaintext& pt, int product, double* y) const;

  std::shared_ptr<HeSessionCpu> session_;
  PackingLayout layout_;
  std::vector<ckks::Plaintext> weights_;  // [chunk][product]
  std::vector<double> in_buf_, dec_buf_;
  std::vector<std::uint64_t> coeff_buf_;
};

}  // namespace tensafe::helora
