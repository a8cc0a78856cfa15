#include "ckks/cuda/ntt_tables_cuda.h"

#include "common/errors.h"
#include "cuda/device_buffer.h"

namespace tensafe::ckks::cuda {

DeviceNttTables::DeviceNttTables(const std::vector<const NttTables*>& tables) {
  if (tables.empty()) throw ArgumentRangeError("DeviceNttTables: no limbs");
  const uint64_t n = tables[0]->n();
  const uint32_t limbs = static_cast<uint32_t>(tables.size());
  std::vector<uint64_t> r(limbs * n), rs(limbs * n), ir(limbs * n), irs(limbs * n), c(5 * limbs);
  for (uint32_t l = 0; l < limbs; ++l) {
    const NttTables& t = *tables[l];
    if (t.n() != n) throw ArgumentRangeError("DeviceNttTables: limbs of different n");
    std::copy(t.root_powers().begin(), t.root_powers().end(), r.begin() + l * n);
    std::copy(t.root_powers_shoup().begin(), t.root_powers_shoup().end(), rs.begin() + l * n);
    std::copy(t.inv_root_powers().begin(), t.inv_root_powers().end(), ir.begin() + l * n);
    std::copy(t.inv_root_powers_shoup().begin(), t.inv_root_powers_shoup().end(), irs.begin() + l * n);
    c[0 * limbs + l] = t.modulus();
    c[1 * limbs + l] = t.inv_n();
    c[2 * limbs + l] = t.inv_n_shoup();
    c[3 * limbs + l] = t.inv_n_w();
    c[4 * limbs + l] = t.inv_n_w_shoup();
  }
  auto up = [](DeviceBuffer<uint64_t>& b, const std::vector<uint64_t>& v) {
    b.allocate(v.size());
    ::tensafe::cuda::copy_to_device(b.data(), v.data(), v.size() * sizeof(uint64_t));
  };
  up(roots_, r);
  up(roots_shoup_, rs);
  up(inv_roots_, ir);
  up(inv_roots_shoup_, irs);
  up(consts_, c);
  view_.root_powers = roots_.data();
  view_.root_powers_shoup = roots_shoup_.data();
  view_.inv_root_powers = inv_roots_.data();
  view_.inv_root_powers_shoup = inv_roots_shoup_.data();
  view_.modulus = consts_.data();
  view_.inv_n = consts_.data() + limbs;
  view_.inv_n_shoup = consts_.data() + 2 * limbs;
  view_.inv_n_w = consts_.data() + 3 * limbs;
  view_.inv_n_w_shoup = consts_.data() + 4 * limbs;
  view_.log_n = static_cast<uint32_t>(tables[0]->log_n());
  view_.limbs = limbs;
}

}  // namespace tensafe::ckks::cuda
