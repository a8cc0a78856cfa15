// Native benchmarks of the CPU CKKS backend, timed with a steady clock inside C++ so that the
// numbers do not include N-API or JavaScript overheads (the CUDA backend times with events).
// The loops themselves are shared with the CUDA engine (bench_loop.h).
#pragma once
#include <cstdint>
#include <string>

#include "ckks/context.h"

namespace tensafe::ckks {

struct OpTiming {
  double median_us = 0, min_us = 0, max_us = 0;
  int runs = 0;
};

// op: encode, decode, encode_coefficients, encrypt, encrypt_symmetric, decrypt, add, sub,
// multiply_plain, rescale, mod_switch, rotate (at the top level, random data).
OpTiming benchmark_op(CkksContext& ctx, const std::string& op, int iterations);

struct HeLoraTiming {
  double encode = 0, encrypt = 0, ct_pt_multiply = 0, decrypt = 0, decode = 0, extract_sum = 0, total = 0;  // us
  int runs = 0, replicas = 0, products = 0;
  double max_abs_error = 0;
  bool graphs = false;    // CUDA: stages replayed as CUDA graphs (false on the CPU)
  bool streamed = false;  // the stages ran overlapped (streamed) rather than in order
  std::string note;       // why the run differs from what was asked (e.g. streamed not available)
};

// The per-token HE-LoRA crypto of the original: h (d values) replicated `replicas` times in the
// slots, encrypted once, multiplied by ceil(r / replicas) plaintexts each holding `replicas`
// LoRA-A rows (pre-encoded once, outside the timing), decrypted (batched), decoded, and each
// d-long segment summed into one of the r outputs. replicas 0 = min(floor(slots / d), r).
// streamed = false runs stage after stage (batched decrypt, as the original); true gives each
// core whole products (multiply, decrypt, decode, sums) for cache locality.
HeLoraTiming benchmark_helora(CkksContext& ctx, int d, int r, int iterations, int replicas, bool streamed);

}  // namespace tensafe::ckks
