// Model: a loaded Qwen2 decoder, its weights held once on one device and shared, read-only, by
// every context created from it (model/backend.h is the context's contract). The llama.cpp /
// node-llama-cpp shape: load the weights once per process, make one context per conversation.
//
//   CPU  (model/cpu_model.h): the host tensors (memory-mapped checkpoint, generated or
//        converted weights), biases converted to float32, RoPE tables.
//   CUDA (model/cuda/model_cuda.h): the device arena of all weights, the layer pointers into
//        it, embed / lm_head / final norm, RoPE tables, on the device chosen at load.
//
// Contexts hold a shared_ptr to their Model: a Model outlives its last context whatever the
// order in which callers drop them (the binding refuses to dispose a model that still has live
// contexts, so memory is released when the caller asks for it, not at some later GC).
// Thread safety: every method is const and safe to call from any thread.
#pragma once
#include <cstdint>
#include <memory>

#include "model/backend.h"

namespace tensafe::model {

class Model : public std::enable_shared_from_this<Model> {
 public:
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  virtual const char* backend_name() const = 0;  // "cpu" | "cuda"
  const Qwen2Config& config() const { return config_; }
  // Longest context of a context of this model (RoPE tables), and its default contextLength.
  int max_context_length() const { return max_context_; }
  virtual DType weight_dtype() const = 0;
  // Weight bytes one decode step reads (bandwidth floor numerator).
  virtual uint64_t weight_bytes_per_token() const = 0;
  // Bytes the weights (and the tables shared by the contexts) occupy in the backend's memory.
  virtual uint64_t memory_bytes() const = 0;
  // Bytes a context of `context_length` positions will hold (KV cache + scratch).
  virtual uint64_t context_bytes(int context_length) const = 0;
  // CUDA device index the weights live on; -1 on the CPU.
  virtual int device() const { return -1; }
  // The host tensors, when the backend computes from them (CPU); null otherwise.
  virtual const HostWeights* host_weights() const { return nullptr; }
  // Synthetic weights: generated from this seed per synthetic.h (so host copies can be remade).
  bool synthetic() const { return synthetic_; }
  uint64_t synthetic_seed() const { return synthetic_seed_; }
  // Makes the calling thread use the model's device (CUDA: cudaSetDevice).
  virtual void bind_thread() const {}

  // A new context of `context_length` positions (0: max_context_length()); ArgumentRangeError
  // when outside [1, max_context_length()], OutOfMemoryError when it does not fit.
  std::unique_ptr<ModelBackend> create_context(int context_length = 0) const;

 protected:
  Model(const Qwen2Config& config, int max_context, bool synthetic, uint64_t seed);
  virtual std::unique_ptr<ModelBackend> do_create_context(int context_length) const = 0;

  Qwen2Config config_;
  int max_context_;
  bool synthetic_;
  uint64_t synthetic_seed_;
};

// Loads the weights. The CPU one is always built; load_cuda_model exists when TENSAFE_WITH_CUDA
// is defined (model/cuda/). Long (reads / generates / uploads every weight): call off the JS
// thread.
std::shared_ptr<Model> load_cpu_model(const WeightSource& source, const ModelOptions& options);
#if defined(TENSAFE_WITH_CUDA)
std::shared_ptr<Model> load_cuda_model(const WeightSource& source, const ModelOptions& options);
#endif

}  // namespace tensafe::model
