#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/errors.h"

namespace tensafe::model {

void SamplingOptions::validate() const {
  if (!(temperature >= 0.0f && temperature <= 100.0f))
    throw ArgumentRangeError("temperature must be in [0, 100], got " + std::to_string(temperature));
  if (top_k < 0) throw ArgumentRangeError("topK must be >= 0 (0 disables it), got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f))
    throw ArgumentRangeError("topP must be in (0, 1] (1 disables it), got " + std::to_string(top_p));
}

int32_t argmax(const float* logits, int n) {
  int32_t best = 0;
  float v = logits[0];
  for (int i = 1; i < n; ++i)
    if (logits[i] > v) { v = logits[i]; best = i; }
  return best;
}

int32_t sample_token(const float* logits, int n, const SamplingOptions& opts, double u) {
  if (n <= 0) throw ArgumentRangeError("cannot sample from an empty distribution");
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(logits[i])) throw ArgumentRangeError("logits hold a non-finite value at index " + std::to_string(i));
  if (opts.greedy()) return argmax(logits, n);

  // Candidates ordered by logit descending, lower id first on ties (temperature > 0 keeps the
  // order, so the raw logits are compared: no ties made by rounding the division).
  auto before = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::vector<int32_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  const int k = opts.top_k > 0 ? std::min(opts.top_k, n) : n;
  if (k < n) std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), before);

  const double inv_t = 1.0 / static_cast<double>(opts.temperature);
  const double zmax = static_cast<double>(logits[argmax(logits, n)]) * inv_t;
  auto weight = [&](int32_t id) { return std::exp(static_cast<double>(logits[id]) * inv_t - zmax); };
  double total = 0.0;
  for (int i = 0; i < k; ++i) total += weight(order[static_cast<size_t>(i)]);

  // Sort a growing prefix of the top-k set only as far as the walk needs (usually a few dozen).
  int sorted = 0;
  auto ensure_sorted = [&](int upto) {
    if (upto <= sorted) return;
    int m = std::min(k, std::max(upto, std::max(64, sorted * 4)));
    std::partial_sort(order.begin() + sorted, order.begin() + m, order.begin() + k, before);
    sorted = m;
  };

  // Top-p: shortest prefix whose mass reaches top_p (at least one token).
  int kept = k;
  double kept_mass = total;
  if (opts.top_p < 1.0f) {
    const double target = static_cast<double>(opts.top_p) * total;
    double cum = 0.0;
    for (int i = 0; i < k; ++i) {
      ensure_sorted(i + 1);
      cum += weight(order[static_cast<size_t>(i)]);
      if (cum >= target) { kept = i + 1; kept_mass = cum; break; }
    }
  }

  // Inverse CDF over the kept prefix.
  const double target = u * kept_mass;
  double cum = 0.0;
  for (int i = 0; i < kept; ++i) {
    ensure_sorted(i + 1);
    cum += weight(order[static_cast<size_t>(i)]);
    if (cum > target) return order[static_cast<size_t>(i)];
  }
  ensure_sorted(kept);
  return order[static_cast<size_t>(kept - 1)];  // u * mass rounded up to the full mass
}

}  // namespace tensafe::model
