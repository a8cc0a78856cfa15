// A device-resident HE-LoRA step (final-hidden placement): the backend-neutral interface the
// generator drives. The CUDA implementation (helora/cuda/resident_cuda.cc) enqueues DP noise,
// encode, encrypt, ct x pt, decrypt, extraction and LoRA-B on the model's own stream, reading
// the hidden state and writing the delta in device memory: nothing crosses to the host, so the
// token costs the model's own synchronisations only.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "helora/he_linear.h"
#include "helora/packing.h"
#include "helora/stages.h"

namespace tensafe::helora {

// What the resident step computes: delta = scaling * B (A x), x = clip(h) + N(0, sigma^2) when dp.
struct ResidentSpec {
  HeParams he;
  int in_dim = 0;
  int out_dim = 0;
  int rank = 0;
  std::vector<float> a;  // [rank, in_dim]
  std::vector<float> b;  // [out_dim, rank]
  float scaling = 1.0f;
  bool dp = false;
  double clip_norm = 1.0;
  double sigma = 0.0;
};

class ResidentStep {
 public:
  virtual ~ResidentStep() = default;
  virtual const PackingLayout& layout() const = 0;
  // Enqueues the whole step on the model's stream: hidden (device, d floats) -> delta() (device).
  virtual void enqueue(const float* hidden, bool timers) = 0;
  virtual const float* delta() const = 0;
  // Adds the stage times of the last enqueue (after the caller synchronised the model stream).
  virtual void collect(StageTimes& t) = 0;
  // A x for a host x without DP, synchronously (the 1e-4 test).
  virtual std::vector<double> apply_host(const double* x) = 0;
  // The last enqueue's HE input (clip(h) + noise), copied to the host after the step (DP tests).
  virtual std::vector<double> input_host() = 0;
};

// Plaintext LoRA on the device (mode lora, final-hidden, a device model): A and B uploaded once,
// delta = scaling * B (A h) enqueued on the model's stream, h and delta in device memory (the
// like-for-like baseline of the resident HE step: same stream, no host copy). Uses in_dim,
// out_dim, rank, a, b and scaling of the spec.
class DeviceLoraStep {
 public:
  virtual ~DeviceLoraStep() = default;
  // Enqueues delta() = scaling * B (A hidden) (hidden: device, in_dim floats).
  virtual void enqueue(const float* hidden) = 0;
  virtual const float* delta() const = 0;
};

}  // namespace tensafe::helora
