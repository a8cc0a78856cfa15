#include "ckks/bench_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/errors.h"

namespace tensafe::ckks {

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}
}  // namespace

void SteadyStageClock::mark(int i) {
  if (static_cast<std::size_t>(i) >= ns_.size()) ns_.resize(static_cast<std::size_t>(i) + 1);
  ns_[static_cast<std::size_t>(i)] =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double SteadyStageClock::us(int a, int b) {
  return 1e-3 * static_cast<double>(ns_[static_cast<std::size_t>(b)] - ns_[static_cast<std::size_t>(a)]);
}

std::vector<double> bench_values(std::size_t count, std::mt19937_64& rng, double amplitude) {
  std::uniform_real_distribution<double> u(-amplitude, amplitude);
  std::vector<double> v(count);
  for (auto& x : v) x = u(rng);
  return v;
}

const std::vector<std::string>& benchmark_op_names() {
  static const std::vector<std::string> names = {"encode", "decode", "encode_coefficients", "encrypt",
                                                 "encrypt_symmetric", "decrypt", "add", "sub",
                                                 "multiply_plain", "rescale", "mod_switch", "rotate"};
  return names;
}

OpTiming time_op(const std::function<void()>& fn, StageClock& clock, int iterations, int batch, int warmup) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> us;
  for (int i = 0; i < iterations; ++i) {
    clock.mark(0);
    for (int k = 0; k < batch; ++k) fn();
    clock.mark(1);
    clock.sync(1);
    us.push_back(clock.us(0, 1) / batch);
  }
  OpTiming t;
  t.runs = iterations;
  t.median_us = median(us);
  t.min_us = *std::min_element(us.begin(), us.end());
  t.max_us = *std::max_element(us.begin(), us.end());
  return t;
}

HeLoraShape helora_shape(std::size_t slots, int d, int r, int replicas) {
  if (d < 1 || static_cast<std::size_t>(d) > slots)
    throw ArgumentRangeError("options.d must be in [1, polyN/2 = " + std::to_string(slots) + "], got " + std::to_string(d));
  if (r < 1 || r > 4096) throw ArgumentRangeError("options.r must be in [1, 4096], got " + std::to_string(r));
  const int max_rep = static_cast<int>(std::min<std::size_t>(slots / static_cast<std::size_t>(d), static_cast<std::size_t>(r)));
  if (replicas == 0) replicas = max_rep;
  if (replicas < 1 || replicas > max_rep)
    throw ArgumentRangeError("options.replicas must be in [1, " + std::to_string(max_rep) + "], got " +
                             std::to_string(replicas));
  HeLoraShape s{d, r, replicas, (r + replicas - 1) / replicas};
  // Each product keeps a pre-encoded plaintext and a ciphertext alive: bound the memory.
  if (s.products > 256)
    throw ArgumentRangeError("options: ceil(r / replicas) = " + std::to_string(s.products) +
                             " ciphertext products per token is above the limit of 256");
  return s;
}

std::vector<double> helora_lora_a(const HeLoraShape& s, std::mt19937_64& rng) {
  return bench_values(static_cast<std::size_t>(s.r) * s.d, rng, 1.0 / std::sqrt(static_cast<double>(s.d)));
}

std::vector<double> helora_packed_rows(const HeLoraShape& s, const std::vector<double>& a, int product,
                                       std::size_t slots) {
  std::vector<double> v(slots, 0.0);
  for (int k = 0; k < s.replicas; ++k) {
    const int row = product * s.replicas + k;
    if (row >= s.r) break;
    std::copy(a.begin() + static_cast<std::ptrdiff_t>(row) * s.d, a.begin() + static_cast<std::ptrdiff_t>(row + 1) * s.d,
              v.begin() + static_cast<std::ptrdiff_t>(k) * s.d);
  }
  return v;
}

HeLoraTiming run_helora(HeLoraStages& stages, StageClock& clock, const HeLoraShape& shape,
                        const std::vector<double>& lora_a, int iterations, int warmup, std::mt19937_64& rng) {
  constexpr int kStages = 6;
  std::vector<double> t[kStages + 1];  // per stage, then the whole token
  HeLoraTiming out;
  out.replicas = shape.replicas;
  out.products = shape.products;
  for (int it = -warmup; it < iterations; ++it) {
    auto h = bench_values(static_cast<std::size_t>(shape.d), rng, 1.0);
    stages.load(h.data());
    clock.mark(0);
    for (int s = 0; s < kStages; ++s) {
      stages.run(s);
      clock.mark(s + 1);
    }
    clock.sync(kStages);
    const double* y = stages.outputs();
    if (it < 0) continue;
    double stage_us[kStages];
    for (int s = 0; s < kStages; ++s) stage_us[s] = clock.us(s, s + 1);
    double busy[4];
    if (stages.overlapped_busy_us(busy)) {
      // Stages 2..5 overlapped across workers: each gets its share of the phase's wall time.
      const double wall = clock.us(2, kStages), total = busy[0] + busy[1] + busy[2] + busy[3];
      for (int k = 0; k < 4; ++k) stage_us[2 + k] = total > 0 ? wall * busy[k] / total : 0;
    }
    for (int s = 0; s < kStages; ++s) t[s].push_back(stage_us[s]);
    t[kStages].push_back(clock.us(0, kStages));
    if (it == iterations - 1) {
      double err = 0;
      for (int row = 0; row < shape.r; ++row) {
        double ref = 0;
        for (int i = 0; i < shape.d; ++i) ref += lora_a[static_cast<std::size_t>(row) * shape.d + i] * h[i];
        err = std::max(err, std::fabs(ref - y[row]));
      }
      out.max_abs_error = err;
    }
  }
  out.runs = iterations;
  out.encode = median(t[0]);
  out.encrypt = median(t[1]);
  out.ct_pt_multiply = median(t[2]);
  out.decrypt = median(t[3]);
  out.decode = median(t[4]);
  out.extract_sum = median(t[5]);
  out.total = median(t[6]);
  return out;
}

}  // namespace tensafe::ckks
