// RAII device memory. A DeviceBuffer owns one allocation and frees it in its destructor;
// engine objects hold them so that dispose() (which destroys the object) releases GPU memory
// deterministically, never the JS garbage collector.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "cuda/cuda_check.h"

namespace tensafe::cuda {

// Bytes currently held by DeviceBuffers, all devices together (our own allocation counter, for
// memory measurements beside cudaMemGetInfo, which also counts the CUDA context and others).
inline std::atomic<int64_t>& device_bytes_allocated() {
  static std::atomic<int64_t> bytes{0};
  return bytes;
}

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) { allocate(count); }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }

  void allocate(std::size_t count) {
    reset();
    if (count == 0) return;
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, count * sizeof(T));
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky-free allocation error
      throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
    }
    ptr_ = static_cast<T*>(p);
    count_ = count;
    device_bytes_allocated() += static_cast<int64_t>(count * sizeof(T));
  }
  void reset() noexcept {
    if (ptr_) {
      cudaFree(ptr_);
      device_bytes_allocated() -= static_cast<int64_t>(count_ * sizeof(T));
    }
    ptr_ = nullptr;
    count_ = 0;
  }
  void upload(const T* host, std::size_t count, cudaStream_t stream = nullptr) {
    CUDA_CHECK(cudaMemcpyAsync(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
  }
  void download(T* host, std::size_t count, cudaStream_t stream = nullptr) const {
    CUDA_CHECK(cudaMemcpyAsync(host, ptr_, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
  }

  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }
  bool empty() const { return ptr_ == nullptr; }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

// Host -> device copy that has landed when it returns. A plain cudaMemcpy from pageable memory
// may return once the bytes are staged, before the DMA reaches device memory (CUDA runtime,
// "API synchronization behavior"); a kernel on a non-blocking stream could then read the old
// contents (seen: a poisoned test buffer overwriting a kernel's output). Waiting on the default
// stream, where the copy ran, closes that window.
inline void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

}  // namespace tensafe::cuda
