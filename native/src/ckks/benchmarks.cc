#include "ckks/benchmarks.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "common/errors.h"
#include "ckks/parallel.h"

namespace tensafe::ckks {

namespace {
using Clock = std::chrono::steady_clock;

double us_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::vector<double> random_values(std::size_t count, std::mt19937_64& rng, double amplitude) {
  std::uniform_real_distribution<double> u(-amplitude, amplitude);
  std::vector<double> v(count);
  for (auto& x : v) x = u(rng);
  return v;
}
}  // namespace

OpTiming benchmark_op(CkksContext& ctx, const std::string& op, int iterations) {
  std::mt19937_64 rng(7);  // benchmark data only
  const std::size_t slots = ctx.encoder().slots();
  auto values = random_values(slots, rng, 1.0);
  auto sk = ctx.generate_secret_key();
  auto pk = ctx.generate_public_key(sk);
  auto pt = ctx.encode(values.data(), values.size(), 0, 0);
  auto ct = ctx.encrypt(pt, pk);
  auto ct2 = ctx.encrypt(pt, pk);
  auto dec = ctx.decrypt(ct, sk);
  GaloisKeys gk;
  if (op == "rotate") gk = ctx.generate_galois_keys(sk, {1});
  if ((op == "rescale" || op == "mod_switch") && ctx.max_limbs() < 2)
    throw ArgumentRangeError(op + " needs at least two ciphertext primes");
  std::vector<double> out(ctx.n());
  std::function<void()> fn;
  if (op == "encode") fn = [&] { ctx.encode(values.data(), values.size(), 0, 0); };
  else if (op == "encode_coefficients") fn = [&] { ctx.encode_coefficients(values.data(), values.size(), 0, 0); };
  else if (op == "decode") fn = [&] { ctx.decode(dec, out.data()); };
  else if (op == "encrypt") fn = [&] { ctx.encrypt(pt, pk); };
  else if (op == "encrypt_symmetric") fn = [&] { ctx.encrypt_symmetric(pt, sk); };
  else if (op == "decrypt") fn = [&] { ctx.decrypt(ct, sk); };
  else if (op == "add") fn = [&] { ctx.add(ct, ct2); };
  else if (op == "sub") fn = [&] { ctx.sub(ct, ct2); };
  else if (op == "multiply_plain") fn = [&] { ctx.multiply_plain(ct, pt); };
  else if (op == "rescale") fn = [&] { ctx.rescale(ct); };
  else if (op == "mod_switch") fn = [&] { ctx.mod_switch(ct); };
  else if (op == "rotate") fn = [&] { ctx.rotate(ct, 1, gk); };
  else throw ArgumentRangeError("options.op: unknown operation '" + op + "'");
  fn();  // warm-up
  std::vector<double> us;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    fn();
    us.push_back(us_since(t0));
  }
  OpTiming t;
  t.runs = iterations;
  t.median_us = median(us);
  t.min_us = *std::min_element(us.begin(), us.end());
  t.max_us = *std::max_element(us.begin(), us.end());
  return t;
}

HeLoraTiming benchmark_helora(CkksContext& ctx, int d, int r, int iterations, int replicas, bool streamed) {
  const std::size_t slots = ctx.encoder().slots();
  if (d < 1 || static_cast<std::size_t>(d) > slots)
    throw ArgumentRangeError("options.d must be in [1, polyN/2 = " + std::to_string(slots) + "], got " + std::to_string(d));
  if (r < 1 || r > 4096) throw ArgumentRangeError("options.r must be in [1, 4096], got " + std::to_string(r));
  const int max_rep = static_cast<int>(std::min<std::size_t>(slots / d, r));
  if (replicas == 0) replicas = max_rep;
  if (replicas < 1 || replicas > max_rep)
    throw ArgumentRangeError("options.replicas must be in [1, " + std::to_string(max_rep) + "], got " + std::to_string(replicas));
  const int products = (r + replicas - 1) / replicas;
  // Each product keeps a pre-encoded plaintext and a ciphertext alive: bound the memory.
  if (products > 256)
    throw ArgumentRangeError("options: ceil(r / replicas) = " + std::to_string(products) +
                             " ciphertext products per token is above the limit of 256");

  std::mt19937_64 rng(11);  // benchmark data only
  auto A = random_values(static_cast<std::size_t>(r) * d, rng, 1.0 / std::sqrt(static_cast<double>(d)));
  auto sk = ctx.generate_secret_key();
  auto pk = ctx.generate_public_key(sk);
  // Pre-encoded LoRA-A plaintexts (once per adapter), NTT domain.
  std::vector<Plaintext> apts;
  for (int p = 0; p < products; ++p) {
    std::vector<double> v(slots, 0.0);
    for (int k = 0; k < replicas; ++k) {
      const int row = p * replicas + k;
      if (row >= r) break;
      std::copy(A.begin() + static_cast<std::size_t>(row) * d, A.begin() + static_cast<std::size_t>(row + 1) * d,
                v.begin() + static_cast<std::size_t>(k) * d);
    }
    apts.push_back(ctx.encode(v.data(), v.size(), 0, 0));
    ctx.prepare_multiplier(apts.back());  // once per adapter, like the encoding itself
  }

  std::vector<double> t_enc, t_encrypt, t_mul, t_dec, t_decode, t_sum, t_total;
  HeLoraTiming out;
  out.replicas = replicas;
  out.products = products;
  std::vector<std::vector<double>> decoded(products, std::vector<double>(slots));
  std::vector<double> y(r);
  // y[row] = sum of the d slots of that row's replica.
  auto segment_sums = [&](int p, const double* slots_p) {
    for (int k = 0; k < replicas; ++k) {
      const int row = p * replicas + k;
      if (row >= r) break;
      const double* s = slots_p + static_cast<std::size_t>(k) * d;
      double acc = 0;
      for (int i = 0; i < d; ++i) acc += s[i];
      y[row] = acc;
    }
  };
  for (int it = -1; it < iterations; ++it) {  // it = -1 is the warm-up token
    auto h = random_values(d, rng, 1.0);
    auto t0 = Clock::now();
    std::vector<double> rep(static_cast<std::size_t>(replicas) * d);
    for (int k = 0; k < replicas; ++k) std::copy(h.begin(), h.end(), rep.begin() + static_cast<std::size_t>(k) * d);
    Plaintext pt = ctx.encode(rep.data(), rep.size(), 0, 0);
    auto t1 = Clock::now();
    Ciphertext ct = ctx.encrypt(pt, pk);
    auto t2 = Clock::now();
    Clock::time_point t3, t4, t5, t6;
    double share[4] = {0, 0, 0, 0};  // streamed mode: per-stage thread time (us)
    if (!streamed) {
      // Staged, as the original: all products, then one batched decrypt, then all decodes.
      std::vector<Ciphertext> prods(products);
      for (int p = 0; p < products; ++p) prods[p] = ctx.multiply_plain(ct, apts[p]);
      t3 = Clock::now();
      std::vector<const Ciphertext*> ptrs;
      for (auto& c : prods) ptrs.push_back(&c);
      std::vector<Plaintext> dec = ctx.decrypt_batch(ptrs, sk);
      t4 = Clock::now();
      pfor(static_cast<std::size_t>(products), [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p) ctx.decode(dec[p], decoded[p].data());
      });
      t5 = Clock::now();
      for (int p = 0; p < products; ++p) segment_sums(p, decoded[p].data());
      t6 = Clock::now();
    } else {
      // Streamed: each core takes whole products (multiply -> decrypt -> decode -> sums) so
      // one product's buffers stay in cache. Stages overlap across cores, so each stage is
      // reported as its share of this phase's wall time, in proportion to the thread time
      // spent in it; the total is exact.
      std::vector<std::array<double, 4>> per(products);
      pfor(static_cast<std::size_t>(products), [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p) {
          auto a0 = Clock::now();
          Ciphertext prod = ctx.multiply_plain(ct, apts[p]);
          auto a1 = Clock::now();
          Plaintext dec = ctx.decrypt(prod, sk);
          auto a2 = Clock::now();
          ctx.decode(dec, decoded[p].data());
          auto a3 = Clock::now();
          segment_sums(static_cast<int>(p), decoded[p].data());
          auto a4 = Clock::now();
          per[p] = {us_between(a0, a1), us_between(a1, a2), us_between(a2, a3), us_between(a3, a4)};
        }
      });
      t6 = Clock::now();
      for (auto& x : per)
        for (int i = 0; i < 4; ++i) share[i] += x[i];
      const double wall = us_between(t2, t6), busy = share[0] + share[1] + share[2] + share[3];
      const double f = busy > 0 ? wall / busy : 0;
      auto at = [&](double us) { return t2 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::micro>(us)); };
      t3 = at(share[0] * f);
      t4 = at((share[0] + share[1]) * f);
      t5 = at((share[0] + share[1] + share[2]) * f);
    }
    if (it < 0) continue;
    auto d_us = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); };
    t_enc.push_back(d_us(t0, t1));
    t_encrypt.push_back(d_us(t1, t2));
    t_mul.push_back(d_us(t2, t3));
    t_dec.push_back(d_us(t3, t4));
    t_decode.push_back(d_us(t4, t5));
    t_sum.push_back(d_us(t5, t6));
    t_total.push_back(d_us(t0, t6));
    if (it == iterations - 1) {
      double err = 0;
      for (int row = 0; row < r; ++row) {
        double ref = 0;
        for (int i = 0; i < d; ++i) ref += A[static_cast<std::size_t>(row) * d + i] * h[i];
        err = std::max(err, std::fabs(ref - y[row]));
      }
      out.max_abs_error = err;
    }
  }
  out.runs = iterations;
  out.encode = median(t_enc);
  out.encrypt = median(t_encrypt);
  out.ct_pt_multiply = median(t_mul);
  out.decrypt = median(t_dec);
  out.decode = median(t_decode);
  out.extract_sum = median(t_sum);
  out.total = median(t_total);
  return out;
}

}  // namespace tensafe::ckks
