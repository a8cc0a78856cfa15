// The device state of a CkksContextCuda (one per context: stream, pool, uploaded tables,
// staging buffers) and the per-operation event scope, shared by the files of the engine
// (context_cuda.cc: the operations; context_cuda_private.cc: the private protocols' fused ones).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ckks/context.h"
#include "ckks/cuda/encoder.cuh"
#include "ckks/cuda/ntt.cuh"
#include "ckks/cuda/ntt_tables_cuda.h"
#include "ckks/cuda/sampling.cuh"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"

namespace tensafe::ckks::cuda {

using ::tensafe::cuda::DeviceBuffer;

// ---- device state ---------------------------------------------------------------------------------

class DeviceState {
 public:
  explicit DeviceState(const CkksContext& cpu);
  ~DeviceState();

  std::uint64_t* allocate(std::size_t words) {
    void* p = nullptr;
    const std::size_t bytes = words * sizeof(std::uint64_t);
    cudaError_t err = cudaMallocFromPoolAsync(&p, bytes, pool, stream);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      ::tensafe::cuda::throw_cuda_error(err, "cudaMallocFromPoolAsync", __FILE__, __LINE__);
    }
    if (poison) CUDA_CHECK(cudaMemsetAsync(p, 0xA5, bytes, stream));
    return static_cast<std::uint64_t*>(p);
  }
  void release(std::uint64_t* p) noexcept {
    if (p) cudaFreeAsync(p, stream);
  }

  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  bool poison = false;
  bool timing = false;
  std::uint32_t log_n = 0;
  std::uint32_t L = 0, K = 0;
  std::unique_ptr<DeviceNttTables> ntt;
  DeviceBuffer<Barrett> barrett;  // K key moduli
  DeviceBuffer<double2> fwd_tw, inv_tw;
  DeviceBuffer<std::uint64_t> garner_inv, garner_inv_shoup;
  DeviceBuffer<double> garner_radix;
  DeviceChaChaKey key{};
  // Pinned staging for host values in and decoded values out; each event marks the end of the
  // last copy that used its buffer.
  double* stage_up = nullptr;
  double* stage_down = nullptr;
  cudaEvent_t up_free = nullptr;
  // Grow-only pinned buffers of the fused operations (context_cuda.h); pinned_free marks the
  // end of the last copy that used them.
  struct Pinned {
    std::uint64_t* p = nullptr;
    std::size_t words = 0;
    std::uint64_t* get(std::size_t want) {
      if (want > words) {
        if (p) CUDA_CHECK(cudaFreeHost(p));
        p = nullptr;
        words = 0;
        CUDA_CHECK(cudaMallocHost(&p, want * sizeof(std::uint64_t)));
        words = want;
      }
      return p;
    }
  } pinned_up, pinned_down;
  cudaEvent_t pinned_free = nullptr;
  struct Timed {
    std::string op;
    cudaEvent_t start, stop;
  };
  std::vector<Timed> timed;

  FftView fft() const { return {fwd_tw.data(), inv_tw.data(), log_n}; }
  ComposeView garner() const { return {garner_inv.data(), garner_inv_shoup.data(), garner_radix.data(), L}; }
  const Barrett* br() const { return barrett.data(); }
};

// ---- per-op event scope ------------------------------------------------------------------------------

class OpScope {
 public:
  OpScope(DeviceState& d, const char* op) : d_(d) {
    if (!d_.timing) return;
    t_.op = op;
    CUDA_CHECK(cudaEventCreate(&t_.start));
    CUDA_CHECK(cudaEventCreate(&t_.stop));
    CUDA_CHECK(cudaEventRecord(t_.start, d_.stream));
  }
  ~OpScope() {
    if (!d_.timing || !t_.start) return;
    if (cudaEventRecord(t_.stop, d_.stream) == cudaSuccess) d_.timed.push_back(t_);
  }

 private:
  DeviceState& d_;
  DeviceState::Timed t_{"", nullptr, nullptr};
};

}  // namespace tensafe::ckks::cuda
