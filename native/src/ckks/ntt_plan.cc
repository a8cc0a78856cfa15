#include "ckks/ntt_plan.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "common/errors.h"
#include "ckks/parallel.h"

namespace tensafe::ckks {

NttPlan::NttPlan(std::uint64_t n, const std::vector<std::uint64_t>& moduli) : n_(n) {
  if (moduli.empty()) throw ArgumentRangeError("moduli must hold at least one modulus");
  for (std::size_t i = 0; i < moduli.size(); ++i) {
    try {
      tables_.push_back(std::make_shared<const NttTables>(n, moduli[i]));
    } catch (const ArgumentRangeError& e) {
      throw ArgumentRangeError("moduli[" + std::to_string(i) + "]: " + e.what());
    }
  }
}

std::vector<std::uint64_t> NttPlan::moduli() const {
  std::vector<std::uint64_t> out;
  for (auto& t : tables_) out.push_back(t->modulus());
  return out;
}

void NttPlan::validate(const std::uint64_t* data, std::size_t length, const std::string& what) const {
  const std::size_t want = limbs() * n_;
  if (length != want)
    throw ArgumentRangeError(what + " must have limbs*n = " + std::to_string(limbs()) + "*" + std::to_string(n_) + " = " +
                             std::to_string(want) + " words, got " + std::to_string(length));
  for (std::size_t l = 0; l < limbs(); ++l) {
    const std::uint64_t q = tables_[l]->modulus();
    const std::uint64_t* p = data + l * n_;
    for (std::uint64_t j = 0; j < n_; ++j)
      if (p[j] >= q)
        throw ArgumentRangeError(what + "[" + std::to_string(l * n_ + j) + "] = " + std::to_string(p[j]) +
                                 " is not reduced: it must be < its limb's modulus " + std::to_string(q));
  }
}

void NttPlan::forward(std::uint64_t* data) const {
  pfor(limbs(), [&](std::size_t b, std::size_t e) {
    for (std::size_t l = b; l < e; ++l) tables_[l]->forward(data + l * n_);
  });
}

void NttPlan::inverse(std::uint64_t* data) const {
  pfor(limbs(), [&](std::size_t b, std::size_t e) {
    for (std::size_t l = b; l < e; ++l) tables_[l]->inverse(data + l * n_);
  });
}

NttTiming NttPlan::benchmark(bool fwd, int iterations) const {
  std::vector<std::uint64_t> data(limbs() * n_);
  std::mt19937_64 rng(12345);  // timing input only, not cryptographic
  for (std::size_t l = 0; l < limbs(); ++l)
    for (std::uint64_t j = 0; j < n_; ++j) data[l * n_ + j] = rng() % tables_[l]->modulus();
  auto run = [&] { fwd ? forward(data.data()) : inverse(data.data()); };
  run();  // warm-up
  std::vector<double> us;
  us.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    auto t1 = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  NttTiming t;
  t.runs = iterations;
  t.min_us = us.front();
  t.max_us = us.back();
  t.median_us = (iterations % 2) ? us[iterations / 2] : 0.5 * (us[iterations / 2 - 1] + us[iterations / 2]);
  return t;
}

}  // namespace tensafe::ckks
