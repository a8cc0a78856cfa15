// Device copies of the CPU NTT tables (ckks/ntt_tables.h) of several limbs: the CUDA kernels
// use the very words the CPU computed, so both backends transform identically.
#pragma once
#include <cstdint>
#include <vector>

#include "ckks/cuda/ntt.cuh"
#include "ckks/ntt_tables.h"
#include "cuda/device_buffer.h"

namespace tensafe::ckks::cuda {

using ::tensafe::cuda::DeviceBuffer;

class DeviceNttTables {
 public:
  // Uploads the tables (all of the same n, 2^12..2^16) on `stream`; the caller synchronises
  // before the host vectors die only if it frees them (they are copied synchronously here).
  explicit DeviceNttTables(const std::vector<const NttTables*>& tables);

  const NttTablesView& view() const { return view_; }
  uint32_t limbs() const { return view_.limbs; }
  uint32_t log_n() const { return view_.log_n; }
  uint64_t n() const { return uint64_t{1} << view_.log_n; }

 private:
  DeviceBuffer<uint64_t> roots_, roots_shoup_, inv_roots_, inv_roots_shoup_;
  DeviceBuffer<uint64_t> consts_;  // 5 arrays of `limbs` words: q, inv_n, inv_n_shoup, inv_n_w, inv_n_w_shoup
  NttTablesView view_;
};

}  // namespace tensafe::ckks::cuda
