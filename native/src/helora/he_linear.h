// y = A x under CKKS for one LoRA-A matrix: the encrypted half of a LoRA pair. A backend
// implementation owns the pre-encoded plaintexts of A (encoded once, at load) and runs, per
// call: encode x -> encrypt -> ct x pt (+ rotate-and-sum) -> decrypt -> decode/extract.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "helora/packing.h"
#include "helora/stages.h"

namespace tensafe::helora {

struct HeParams {
  int poly_n = 16384;
  Packing packing = Packing::ReplicatedSlots;
  bool batched_decrypt = true;
  bool allow_insecure = false;
  // Ciphertext primes (q_0 first) and scale: a ct x pt product at scale 2^80 decrypts exactly
  // with ~100 bits of Q and no rescale (field-notes section 3).
  std::vector<int> prime_bits{60, 40};
  int scale_bits = 40;
  int special_bits = 60;  // used only by the rotations packing (key switching)
  // Secret-key (symmetric) encryption: the key holder encrypts (the server in keyOwner
  // 'server' mode holds the key anyway); cheaper than public-key encryption.
  bool symmetric = true;
};

class HeLinear {
 public:
  virtual ~HeLinear() = default;
  virtual const PackingLayout& layout() const = 0;
  // x: in_dim doubles on the host; y: rank doubles on the host (overwritten).
  virtual void apply(const double* x, double* y, StageClock& clock) = 0;
};

// One CKKS context and key set (CPU or CUDA) making the HeLinear of every matrix of a generator.
class HeBackend {
 public:
  virtual ~HeBackend() = default;
  virtual const char* name() const = 0;  // "cpu" | "cuda"
  virtual std::unique_ptr<HeLinear> make(const float* a, int rank, int in_dim) = 0;
  // Around each token: a device backend records CUDA events while timers are on and adds the
  // measured stage times at the end (one synchronisation, timers on only).
  virtual void begin_token(bool /*timers*/) {}
  virtual void end_token(StageTimes& /*times*/) {}
};

// Makes the CPU backend (he_linear_cpu.cc). The CUDA one is made by the binding when built.
std::shared_ptr<HeBackend> make_cpu_he_backend(const HeParams& params, const std::vector<int64_t>& rotation_steps);

}  // namespace tensafe::helora
