// The CUDA HE backend of the HE-LoRA step, over ckks::cuda::CkksContextCuda (one context and
// key set per generator). Plain C++ header so that the binding can include it.
//
// Per call (x on the host): encode + encrypt + ct x pt (+ rotate-and-sum) + decrypt run on the
// GPU, asynchronously on the context's stream. Extraction:
//  - coefficients, batched: one kernel (extract.cu) reads the R needed coefficients of every
//    product by Garner composition on the device, then ONE copy of P x R doubles to the host;
//  - coefficients, sequential: one host copy per product (the original's baseline), then the
//    same composition on the host;
//  - slot packings: the context's device decode of each product, copied to the host, then
//    segment sums (replicated-slots) or the rotated sums' slots (rotations) on the host.
// Stage times come from CUDA events (the context's per-op events and ours), drained once per
// token while timers are on.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "helora/he_linear.h"

namespace tensafe::helora {

std::shared_ptr<HeBackend> make_cuda_he_backend(const HeParams& params, const std::vector<int64_t>& rotation_steps);

}  // namespace tensafe::helora
