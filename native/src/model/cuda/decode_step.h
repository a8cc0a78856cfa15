// DecodeMegakernel: the whole batch-1 decode step (embedding, every layer, final norm) as ONE
// persistent cooperative kernel (decode_step.cu), instead of 6 kernels a layer.
//
// Why: at batch 1 every weight byte is read once per token, so the step is bound by memory
// bandwidth, but each kernel boundary drains the memory pipe (ramp, tail, launch) and the small
// stages (norms, q/k/v, attention, o) are latency bound. Here one block per SM runs all stages;
// stages are separated by a grid-wide barrier (5 per layer), and the weights never wait for a
// barrier: (1) each gemv stage issues its first 16-byte weight loads before it waits for its
// inputs, and (2) one thread per block streams the block's upcoming weights into L2 with bulk
// prefetches (cp.async.bulk.prefetch.L2, sm_90), `lookahead` bytes ahead of what the block has
// consumed, across stage and layer boundaries. After the last layer the blocks prefetch the
// first part of the LM head for the kernel that follows.
//
// Work split: every gemv stage gives block b the contiguous outputs [n b / B, n (b+1) / B); a
// block's 256 threads form G subgroups of 256/G threads, each subgroup reducing its own rows
// (G and the 16-byte chunks per thread chosen per k, StageCfg). Attention: (head, split of 256
// positions) items over the blocks, the body shared with the standalone kernel
// (attention_block.cuh). Numerics are the layer kernels' (float32 activations and accumulation,
// the same fused RMSNorm / bias / SwiGLU / residual epilogues); the summation order of the
// reductions differs, so the two paths agree to float32 rounding, not bit for bit.
//
// The barrier is a counter that only grows (one arrival per block per barrier, release/acquire
// at GPU scope) plus an epoch the kernel advances at its end, so consecutive launches and graph
// replays need no reset. A block that waits more than 2 s at a barrier traps (an error, never
// a hang). Launch: cooperative (all blocks co-resident) with grid = SMs x occupancy.
// Timing runs pass clock-stamp storage in the view (DecoderView::trace: 5 L + 2 u64, block 0's
// %globaltimer at the start, after each barrier and at the end).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include <atomic>

#include "model/cuda/decoder_view.h"

namespace tensafe::model::cuda {

// Per gemv stage: 16-byte chunks per thread and subgroups per block.
struct StageCfg {
  int maxj = 1;
  int groups = 1;
};

class DecodeMegakernel {
 public:
  static constexpr int kThreads = 256;
  // Whether this model shape can run the megakernel here (why not, when it cannot).
  static bool supports(const Qwen2Config& c, std::string* why);

  // The launch configuration for a model (no memory of its own: every buffer is the context's,
  // passed in the view at each step, so the model's contexts share one megakernel).
  DecodeMegakernel(const Qwen2Config& c, DType wtype);

  // One decode step of the context in `v`: reads the token at *pos (gather) or the row already
  // in v.x (no gather), writes the K/V of position *pos, leaves the final hidden state in
  // v.hidden and advances *pos. Asynchronous on `stream` and capturable into a CUDA graph.
  void enqueue(const DecoderView& v, bool gather, cudaStream_t stream) const;

  int grid() const { return grid_; }
  // L2 prefetch distance per block, bytes (0: no prefetch). TENSAFE_MEGA_LOOKAHEAD_KB, default 96.
  size_t lookahead() const { return lookahead_; }
  // Bytes at `p` (the LM head) prefetched into L2 at the end of the step, split over the blocks.
  void set_tail_prefetch(const void* p, size_t bytes) { tail_ = p; tail_bytes_ = bytes; }
  // Cooperative launch attribute (on unless TENSAFE_MEGA_COOP=0 or a graph capture refused it).
  bool cooperative() const { return cooperative_.load(); }
  void set_cooperative(bool on) const { cooperative_.store(on); }
  StageCfg stage_cfg(int i) const { return cfg_[i]; }  // 0 qkv, 1 o, 2 gate_up, 3 down

 private:
  DType wtype_;
  int grid_ = 0;
  size_t lookahead_ = 0;
  const void* tail_ = nullptr;
  size_t tail_bytes_ = 0;
  mutable std::atomic<bool> cooperative_{true};
  StageCfg cfg_[4];
};

// TENSAFE_DECODE: unset / "graph" (the 6-kernels-a-layer step, the default: faster on the H200),
// "mega" (the megakernel; an error if the shape or device cannot run it), "auto" (the megakernel
// where it is supported).
enum class DecodeKernel { Auto, Graph, Mega };
DecodeKernel decode_kernel_from_env();

}  // namespace tensafe::model::cuda
