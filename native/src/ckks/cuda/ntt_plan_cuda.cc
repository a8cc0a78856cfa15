#include "ckks/cuda/ntt_plan_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <random>

#include "ckks/cuda/ntt.cuh"
#include "ckks/cuda/ntt_tables_cuda.h"
#include "common/device_info.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"

namespace tensafe::ckks::cuda {

using ::tensafe::cuda::DeviceBuffer;

namespace {

// RAII stream and events (destroyed before the buffers they touch are freed).
struct Stream {
  cudaStream_t s = nullptr;
  Stream() { CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~Stream() {
    if (s) cudaStreamDestroy(s);
  }
};
struct Event {
  cudaEvent_t e = nullptr;
  Event() { CUDA_CHECK(cudaEventCreate(&e)); }
  ~Event() {
    if (e) cudaEventDestroy(e);
  }
};
struct Graph {
  cudaGraph_t g = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec) cudaGraphExecDestroy(exec);
    if (g) cudaGraphDestroy(g);
  }
};

std::vector<const NttTables*> tables_of(const NttPlan& plan) {
  std::vector<const NttTables*> out;
  for (std::size_t l = 0; l < plan.limbs(); ++l) out.push_back(&plan.tables(l));
  return out;
}

NttTiming summarize(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  NttTiming t;
  t.runs = static_cast<int>(us.size());
  t.min_us = us.front();
  t.max_us = us.back();
  std::size_t k = us.size();
  t.median_us = (k % 2) ? us[k / 2] : 0.5 * (us[k / 2 - 1] + us[k / 2]);
  return t;
}

void require_gpu(const char* what) {
  if (!cuda_available()) {
    CudaRuntimeInfo info = cuda_runtime_info();
    throw BackendUnavailableError(std::string(what) + " needs a usable CUDA GPU: " +
                                  (info.unavailable_reason.empty() ? "none found" : info.unavailable_reason));
  }
}

}  // namespace

struct NttPlanCuda::Impl {
  Stream stream;
  DeviceNttTables tables;
  DeviceBuffer<uint64_t> work;
  explicit Impl(const NttPlan& plan) : tables(tables_of(plan)), work(plan.limbs() * plan.n()) {}
};

NttPlanCuda::NttPlanCuda(std::shared_ptr<const NttPlan> cpu_plan) : cpu_(std::move(cpu_plan)) {
  require_gpu("NttPlanCuda");
  if (cpu_->n() < 4096 || cpu_->n() > 65536) throw ArgumentRangeError("NttPlanCuda: n must be in [2^12, 2^16]");
  impl_ = std::make_unique<Impl>(*cpu_);
}

NttPlanCuda::~NttPlanCuda() {
  if (impl_) cudaStreamSynchronize(impl_->stream.s);
}

void NttPlanCuda::forward(std::uint64_t* host_words) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::size_t words = impl_->work.size();
  impl_->work.upload(host_words, words, impl_->stream.s);
  ntt_forward(impl_->work.data(), impl_->tables.view(), LimbMap::range(0, impl_->tables.limbs()), 1, impl_->stream.s);
  impl_->work.download(host_words, words, impl_->stream.s);
  CUDA_CHECK(cudaStreamSynchronize(impl_->stream.s));
}

void NttPlanCuda::inverse(std::uint64_t* host_words) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::size_t words = impl_->work.size();
  impl_->work.upload(host_words, words, impl_->stream.s);
  ntt_inverse(impl_->work.data(), impl_->tables.view(), LimbMap::range(0, impl_->tables.limbs()), 1, impl_->stream.s);
  impl_->work.download(host_words, words, impl_->stream.s);
  CUDA_CHECK(cudaStreamSynchronize(impl_->stream.s));
}

NttTiming NttPlanCuda::benchmark(bool fwd, int iterations) {
  std::lock_guard<std::mutex> lock(mutex_);
  const NttPlan& plan = *cpu_;
  const std::size_t n = plan.n(), limbs = plan.limbs();
  std::vector<uint64_t> host(limbs * n);
  std::mt19937_64 rng(std::random_device{}());  // timing input only
  for (std::size_t l = 0; l < limbs; ++l)
    for (std::size_t j = 0; j < n; ++j) host[l * n + j] = rng() % plan.tables(l).modulus();
  cudaStream_t s = impl_->stream.s;
  impl_->work.upload(host.data(), host.size(), s);
  auto once = [&] {
    if (fwd)
      ntt_forward(impl_->work.data(), impl_->tables.view(), LimbMap::range(0, static_cast<uint32_t>(limbs)), 1, s);
    else
      ntt_inverse(impl_->work.data(), impl_->tables.view(), LimbMap::range(0, static_cast<uint32_t>(limbs)), 1, s);
  };
  once();  // warm-up (module load)
  Graph graph;
  CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    for (int i = 0; i < kGraphRepeats; ++i) once();
  } catch (...) {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(s, &g);
    if (g) cudaGraphDestroy(g);
    throw;
  }
  CUDA_CHECK(cudaStreamEndCapture(s, &graph.g));
  CUDA_CHECK(cudaGraphInstantiate(&graph.exec, graph.g, 0));
  CUDA_CHECK(cudaGraphLaunch(graph.exec, s));  // warm-up replay
  Event start, stop;
  std::vector<double> us;
  us.reserve(iterations);
  for (int i = 0; i < iterations; ++i) {
    CUDA_CHECK(cudaEventRecord(start.e, s));
    CUDA_CHECK(cudaGraphLaunch(graph.exec, s));
    CUDA_CHECK(cudaEventRecord(stop.e, s));
    CUDA_CHECK(cudaEventSynchronize(stop.e));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, stop.e));
    us.push_back(1000.0 * ms / kGraphRepeats);
  }
  return summarize(std::move(us));
}

double NttPlanCuda::measure_copy_bandwidth() {
  require_gpu("NttPlanCuda.measureCopyBandwidth");
  const std::size_t bytes = std::size_t{256} << 20;
  DeviceBuffer<uint8_t> a(bytes), b(bytes);
  Stream stream;
  CUDA_CHECK(cudaMemsetAsync(a.data(), 1, bytes, stream.s));
  CUDA_CHECK(cudaMemcpyAsync(b.data(), a.data(), bytes, cudaMemcpyDeviceToDevice, stream.s));  // warm-up
  Event start, stop;
  std::vector<double> rates;
  for (int i = 0; i < 9; ++i) {
    CUDA_CHECK(cudaEventRecord(start.e, stream.s));
    CUDA_CHECK(cudaMemcpyAsync(i % 2 ? a.data() : b.data(), i % 2 ? b.data() : a.data(), bytes,
                               cudaMemcpyDeviceToDevice, stream.s));
    CUDA_CHECK(cudaEventRecord(stop.e, stream.s));
    CUDA_CHECK(cudaEventSynchronize(stop.e));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, stop.e));
    rates.push_back(2.0 * static_cast<double>(bytes) / (ms * 1e-3));
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

}  // namespace tensafe::ckks::cuda
