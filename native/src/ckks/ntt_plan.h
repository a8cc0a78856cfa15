// A batch of negacyclic NTTs over several RNS primes (one NttTables per limb), the engine
// object behind the JS class NttPlanCpu. Data is limb-major: limb l occupies words
// [l*n, (l+1)*n). Limbs are transformed in parallel on the CPU threads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ckks/ntt_tables.h"

namespace tensafe::ckks {

struct NttTiming {
  double median_us = 0, min_us = 0, max_us = 0;
  int runs = 0;
};

class NttPlan {
 public:
  // Throws ArgumentRangeError naming the bad modulus (moduli[i]) or n.
  NttPlan(std::uint64_t n, const std::vector<std::uint64_t>& moduli);

  std::uint64_t n() const { return n_; }
  std::size_t limbs() const { return tables_.size(); }
  const NttTables& tables(std::size_t limb) const { return *tables_[limb]; }
  std::vector<std::uint64_t> moduli() const;

  // Checks length == limbs*n and every word < its limb's modulus; the message names `what`.
  void validate(const std::uint64_t* data, std::size_t length, const std::string& what) const;

  void forward(std::uint64_t* data) const;
  void inverse(std::uint64_t* data) const;

  // Times `iterations` transforms of all limbs (after one warm-up) with a steady clock.
  NttTiming benchmark(bool forward, int iterations) const;

 private:
  std::uint64_t n_;
  std::vector<std::shared_ptr<const NttTables>> tables_;
};

}  // namespace tensafe::ckks
