// The native per-token HE-LoRA step over any ModelBackend: one call runs
//   forward -> [DP noise -> encode -> encrypt -> ct x pt -> decrypt -> extract] -> LoRA-B -> add
//   -> LM head -> sampling
// and returns the token id with the stage timings. TypeScript does not orchestrate stages.
//
// Modes: base (no adapter), lora (the adapter in plaintext: on the final hidden state, float64
// on the host or, on a device model, the resident device step; the model's own adapters for
// `layers`), he-lora (A x under CKKS). Placements:
// final-hidden (one square pair applied to the final hidden state before the LM head: the
// original's design, here with the alpha/r scaling) and layers (the adapter's own pairs in
// their layers; the pairs flagged under_he run through a projection hook under CKKS, the rest
// as plaintext adapters inside the model).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "helora/dp_noise.h"
#include "helora/he_linear.h"
#include "helora/resident.h"
#include "helora/stages.h"
#include "model/backend.h"

namespace tensafe::helora {

enum class Mode { Base = 0, Lora = 1, HeLora = 2 };
enum class Placement { FinalHidden = 0, Layers = 1 };
enum class LmHead { Backend = 0, CpuF32SingleThread = 1 };

struct PairSpec {
  int layer = 0;
  model::Projection target = model::Projection::Q;
  int rank = 0;
  int in_dim = 0;
  int out_dim = 0;
  std::vector<float> a;  // [rank, in_dim]
  std::vector<float> b;  // [out_dim, rank]
  bool under_he = true;  // layers placement only
};

struct GeneratorConfig {
  Mode mode = Mode::HeLora;
  Placement placement = Placement::FinalHidden;
  HeParams he;
  float scaling = 1.0f;
  PairSpec final_pair;            // final-hidden: in = out = hidden size
  std::vector<PairSpec> pairs;    // layers
  bool dp = false;
  double clip_norm = 1.0;
  double sigma = 0.0;
  bool timers = true;
  // Test hook (DP tests): keep a host copy of the last HE input before and after clip + noise
  // (one d-long vector each; the resident step copies its device input back, a synchronisation).
  bool record_he_input = false;
  LmHead lm_head = LmHead::Backend;
  // Makes the HE backend (CPU when empty). The binding passes the CUDA one for a CUDA model.
  std::function<std::shared_ptr<HeBackend>(const HeParams&, const std::vector<int64_t>&)> he_factory;
  // Makes the device-resident step (CUDA model, final-hidden, coefficients, batched); used
  // instead of he_factory when set and applicable.
  std::function<std::unique_ptr<ResidentStep>(model::ModelBackend&, const ResidentSpec&)> resident_factory;
  // Makes the plaintext LoRA step on the device (mode lora, final-hidden, device model): the
  // host float64 path is used when unset (CPU models).
  std::function<std::unique_ptr<DeviceLoraStep>(model::ModelBackend&, const ResidentSpec&)> lora_factory;
};

struct StepResult {
  int32_t token = -1;
  StageTimes stages;
};

class Generator {
 public:
  // Runs on `model`, a context (model/backend.h), which must outlive the generator (the binding
  // keeps the context alive and runs the generator's calls on the context's queue). The
  // split-selftest LM head takes host float32 weights from the context's model: its host
  // tensors (CPU) or, for synthetic weights kept only on a device, regenerated from the seed.
  Generator(model::ModelBackend& model, GeneratorConfig config);
  ~Generator();

  // Resets the cache, installs this generator's adapters/hooks, sets the sampling seed, runs the
  // prompt and the post-forward stages; returns the first generated token.
  StepResult start(const int32_t* prompt, int n, const model::SamplingOptions& sampling, uint64_t seed);
  // Appends `token` and returns the next one.
  StepResult next(int32_t token);
  // Removes this generator's adapters and hooks from the model.
  void detach();

  // y = A x of the final pair (or pairs[index] for layers) under HE, no DP: the test hook.
  std::vector<double> he_apply(const double* x, int in_dim, int pair_index);
  const PackingLayout* layout(int pair_index) const;
  // DP releases (HE inputs) since start(): one per token for final-hidden, one per hooked row for layers.
  uint64_t releases() const { return releases_; }
  // The last release's input before clip + noise and the HE input itself (record_he_input only;
  // empty before the first release).
  struct HeInputRecord {
    std::vector<double> hidden, input;
  };
  const HeInputRecord& last_he_input() const { return he_input_record_; }
  const GeneratorConfig& config() const { return cfg_; }
  int he_sites() const;
  const char* he_backend_name() const { return resident_ ? "cuda-resident" : he_ ? he_->name() : "none"; }
  // Where the plaintext LoRA runs: final-hidden mode lora: "cuda-resident" (device step) or
  // "host" (float64 on the host); layers: the model's path for the plaintext pairs as of the
  // last start() (ModelBackend::layer_adapter_path); "none" when there are none.
  const char* lora_backend_name() const;

 private:
  StepResult post_forward(StageClock& clock, StageTimes& st);
  void apply_final(StageClock& clock);
  void install();
  void hook(const model::ProjectionHookArgs& args);
  void lm_head_cpu_single_thread();

  model::ModelBackend& model_;
  GeneratorConfig cfg_;
  std::shared_ptr<HeBackend> he_;                 // the CKKS context and keys (CPU or CUDA)
  std::unique_ptr<HeLinear> final_he_;
  std::unique_ptr<ResidentStep> resident_;
  std::unique_ptr<DeviceLoraStep> lora_dev_;         // mode lora, final-hidden, device model
  const char* layer_lora_path_ = "none";             // set by install()
  std::vector<std::unique_ptr<HeLinear>> pair_he_;   // parallel to cfg_.pairs (null = plaintext)
  std::vector<int> site_pair_;                       // layer * kProjectionCount + proj -> pair index or -1
  DpNoise noise_;
  model::SamplingOptions sampling_;
  uint64_t cpu_seed_ = 0;   // draws of the split-selftest LM head's sampler
  uint64_t cpu_draws_ = 0;
  StageClock* clock_ = nullptr;                      // the running step's clock (for the hook)
  uint64_t releases_ = 0;
  HeInputRecord he_input_record_;
  bool installed_ = false;
  std::vector<double> x_, y_;
  std::vector<float> delta_, hidden_host_;
  std::vector<float> lm_weight_f32_;                 // split-selftest LM head (host float32)
  std::vector<float> logits_host_;
};

}  // namespace tensafe::helora
