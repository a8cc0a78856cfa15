#include "helora/generator.h"

#include <cmath>
#include <cstring>

#include "common/errors.h"
#include "model/model.h"
#include "model/sampling.h"
#include "model/synthetic.h"

namespace tensafe::helora {

using model::MemorySpace;
using model::Projection;

static void check_pair(const PairSpec& p, const char* where) {
  if (p.rank < 1) throw ArgumentRangeError(std::string(where) + ".rank must be >= 1");
  if (p.a.size() != static_cast<size_t>(p.rank) * p.in_dim)
    throw ArgumentRangeError(std::string(where) + ".a must hold rank x in = " + std::to_string(p.rank * p.in_dim) + " values");
  if (p.b.size() != static_cast<size_t>(p.out_dim) * p.rank)
    throw ArgumentRangeError(std::string(where) + ".b must hold out x rank = " + std::to_string(p.out_dim * p.rank) + " values");
}

Generator::Generator(model::ModelBackend& model, GeneratorConfig config) : model_(model), cfg_(std::move(config)) {
  const auto& mc = model_.config();
  const int d = mc.hidden_size;
  if (cfg_.mode != Mode::Base) {
    if (cfg_.placement == Placement::FinalHidden) {
      check_pair(cfg_.final_pair, "finalPair");
      if (cfg_.final_pair.in_dim != d || cfg_.final_pair.out_dim != d)
        throw ArgumentRangeError("finalPair must be " + std::to_string(d) + " x " + std::to_string(d) +
                                 " (the final hidden state), got in " + std::to_string(cfg_.final_pair.in_dim) + ", out " +
                                 std::to_string(cfg_.final_pair.out_dim));
    } else {
      if (cfg_.pairs.empty()) throw ArgumentRangeError("pairs must not be empty for the 'layers' placement");
      for (size_t i = 0; i < cfg_.pairs.size(); ++i) {
        const auto& p = cfg_.pairs[i];
        const std::string w = "pairs[" + std::to_string(i) + "]";
        check_pair(p, w.c_str());
        if (p.layer < 0 || p.layer >= mc.num_hidden_layers) throw ArgumentRangeError(w + ".layer is outside the model");
        if (p.in_dim != model::projection_in_dim(mc, p.target) || p.out_dim != model::projection_out_dim(mc, p.target))
          throw ArgumentRangeError(w + " shape does not match " + model::projection_name(p.target) + " of this model");
      }
    }
  }
  if (cfg_.dp && !(cfg_.clip_norm > 0 && std::isfinite(cfg_.clip_norm)))
    throw ArgumentRangeError("dp.clipNorm must be a finite number > 0");
  if (cfg_.dp && !(cfg_.sigma >= 0 && std::isfinite(cfg_.sigma))) throw ArgumentRangeError("dp.sigma must be a finite number >= 0");

  const bool resident_ok = cfg_.mode == Mode::HeLora && cfg_.placement == Placement::FinalHidden &&
                           cfg_.resident_factory && cfg_.he.packing == Packing::Coefficients && cfg_.he.batched_decrypt &&
                           cfg_.he.symmetric;
  const bool lora_dev_ok = cfg_.mode == Mode::Lora && cfg_.placement == Placement::FinalHidden && cfg_.lora_factory;
  auto final_spec = [&] {
    ResidentSpec spec;
    spec.he = cfg_.he;
    spec.in_dim = spec.out_dim = d;
    spec.rank = cfg_.final_pair.rank;
    spec.a = cfg_.final_pair.a;
    spec.b = cfg_.final_pair.b;
    spec.scaling = cfg_.scaling;
    spec.dp = cfg_.dp;
    spec.clip_norm = cfg_.clip_norm;
    spec.sigma = cfg_.sigma;
    return spec;
  };
  if (lora_dev_ok) {
    lora_dev_ = cfg_.lora_factory(model_, final_spec());
  } else if (resident_ok) {
    resident_ = cfg_.resident_factory(model_, final_spec());
  } else if (cfg_.mode == Mode::HeLora) {
    // One CKKS session for every matrix; rotation keys cover the largest segment needed.
    std::vector<const PairSpec*> he_pairs;
    if (cfg_.placement == Placement::FinalHidden) he_pairs.push_back(&cfg_.final_pair);
    else
      for (auto& p : cfg_.pairs)
        if (p.under_he) he_pairs.push_back(&p);
    std::vector<int64_t> steps;
    for (auto* p : he_pairs) {
      auto r = make_layout(cfg_.he.packing, cfg_.he.poly_n, p->in_dim, p->rank).rotations();
      if (r.size() > steps.size()) steps = r;
    }
    he_ = cfg_.he_factory ? cfg_.he_factory(cfg_.he, steps) : make_cpu_he_backend(cfg_.he, steps);
    if (cfg_.placement == Placement::FinalHidden) {
      final_he_ = he_->make(cfg_.final_pair.a.data(), cfg_.final_pair.rank, d);
    } else {
      for (auto& p : cfg_.pairs) pair_he_.push_back(p.under_he ? he_->make(p.a.data(), p.rank, p.in_dim) : nullptr);
    }
  }
  site_pair_.assign(static_cast<size_t>(mc.num_hidden_layers) * model::kProjectionCount, -1);
  for (size_t i = 0; i < cfg_.pairs.size(); ++i)
    site_pair_[static_cast<size_t>(cfg_.pairs[i].layer) * model::kProjectionCount + static_cast<int>(cfg_.pairs[i].target)] =
        static_cast<int>(i);
}

Generator::~Generator() {
  try {
    detach();
  } catch (...) {
  }
}

const char* Generator::lora_backend_name() const {
  if (cfg_.mode == Mode::Base) return "none";
  if (cfg_.placement == Placement::FinalHidden) return cfg_.mode != Mode::Lora ? "none" : lora_dev_ ? "cuda-resident" : "host";
  return layer_lora_path_;
}

int Generator::he_sites() const {
  if (cfg_.mode != Mode::HeLora) return 0;
  if (cfg_.placement == Placement::FinalHidden) return 1;
  int n = 0;
  for (auto& p : cfg_.pairs) n += p.under_he ? 1 : 0;
  return n;
}

void Generator::detach() {
  if (!installed_) return;
  model_.set_projection_hook(nullptr, {});
  model_.set_layer_adapters({});
  installed_ = false;
}

void Generator::install() {
  // The model is shared (notebooks, other generators): install our adapters/hooks each run.
  std::vector<model::LoraAdapter> plain;
  std::vector<model::HookSite> sites;
  if (cfg_.placement == Placement::Layers && cfg_.mode != Mode::Base) {
    for (auto& p : cfg_.pairs) {
      if (cfg_.mode == Mode::HeLora && p.under_he) {
        sites.push_back({p.layer, p.target});
      } else {
        model::LoraAdapter a;
        a.layer = p.layer;
        a.target = p.target;
        a.rank = p.rank;
        a.scaling = cfg_.scaling;
        a.a = p.a;
        a.b = p.b;
        plain.push_back(std::move(a));
      }
    }
  }
  const bool any_plain = !plain.empty();
  model_.set_layer_adapters(std::move(plain));
  if (sites.empty()) model_.set_projection_hook(nullptr, {});
  else model_.set_projection_hook([this](const model::ProjectionHookArgs& a) { hook(a); }, std::move(sites));
  layer_lora_path_ = any_plain ? model_.layer_adapter_path() : "none";
  installed_ = true;
}

void Generator::hook(const model::ProjectionHookArgs& args) {
  const int idx = site_pair_[static_cast<size_t>(args.layer) * model::kProjectionCount + static_cast<int>(args.target)];
  if (idx < 0 || !pair_he_[idx]) return;
  if (args.space != MemorySpace::Host)
    throw BackendUnavailableError("HE-LoRA in layers on a device-resident model needs the CUDA HE-LoRA step");
  StageClock dummy(false, nullptr);
  StageClock& clock = clock_ ? *clock_ : dummy;
  clock.mark(kForward);  // the forward up to here
  const PairSpec& p = cfg_.pairs[idx];
  x_.assign(args.input, args.input + args.in_dim);
  if (cfg_.record_he_input) he_input_record_.hidden = x_;
  if (cfg_.dp) {
    noise_.apply(x_.data(), args.in_dim, cfg_.clip_norm, cfg_.sigma);
    clock.mark(kDpNoise);
  }
  if (cfg_.record_he_input) he_input_record_.input = x_;
  ++releases_;
  y_.assign(p.rank, 0.0);
  pair_he_[idx]->apply(x_.data(), y_.data(), clock);
  for (int o = 0; o < p.out_dim; ++o) {
    double s = 0;
    const float* br = p.b.data() + static_cast<size_t>(o) * p.rank;
    for (int r = 0; r < p.rank; ++r) s += static_cast<double>(br[r]) * y_[r];
    args.output[o] += static_cast<float>(cfg_.scaling * s);
  }
  clock.mark(kLoraB);
}

void Generator::apply_final(StageClock& clock) {
  const int d = model_.config().hidden_size;
  const PairSpec& p = cfg_.final_pair;
  model::FloatSpan h = model_.hidden();
  if (resident_) {
    // Everything on the device, on the model's stream: no host copy of h, y or the delta.
    if (h.space != MemorySpace::Device) throw BackendUnavailableError("the resident HE-LoRA step needs a device model");
    if (cfg_.record_he_input && cfg_.mode == Mode::HeLora) {
      std::vector<float> hf(d);
      model_.read_hidden(hf.data());
      he_input_record_.hidden.assign(hf.begin(), hf.end());
    }
    resident_->enqueue(h.data, clock.enabled());
    if (cfg_.record_he_input && cfg_.mode == Mode::HeLora) he_input_record_.input = resident_->input_host();
    ++releases_;
    model_.add_to_hidden(resident_->delta(), MemorySpace::Device);
    if (clock.enabled()) model_.synchronize();  // so lm_head's time is its own (timers only)
    clock.restart();                            // the HE stages come from CUDA events
    return;
  }
  if (lora_dev_) {
    // Plaintext LoRA on the device, on the model's stream, as the resident HE step does.
    if (h.space != MemorySpace::Device) throw BackendUnavailableError("the device LoRA step needs a device model");
    lora_dev_->enqueue(h.data);
    model_.add_to_hidden(lora_dev_->delta(), MemorySpace::Device);
    if (clock.enabled()) model_.synchronize();  // so lm_head's time is its own (timers only)
    clock.mark(kLoraB);
    return;
  }
  const float* hp = h.data;
  if (h.space != MemorySpace::Host) {
    hidden_host_.resize(d);
    model_.read_hidden(hidden_host_.data());
    hp = hidden_host_.data();
    clock.mark(kTransfer);
  }
  x_.assign(hp, hp + d);
  y_.assign(p.rank, 0.0);
  if (cfg_.mode == Mode::HeLora) {
    if (cfg_.record_he_input) he_input_record_.hidden = x_;
    if (cfg_.dp) {
      noise_.apply(x_.data(), d, cfg_.clip_norm, cfg_.sigma);
      clock.mark(kDpNoise);
    }
    if (cfg_.record_he_input) he_input_record_.input = x_;
    ++releases_;
    final_he_->apply(x_.data(), y_.data(), clock);
  } else {
    for (int r = 0; r < p.rank; ++r) {
      double s = 0;
      const float* ar = p.a.data() + static_cast<size_t>(r) * d;
      for (int j = 0; j < d; ++j) s += static_cast<double>(ar[j]) * x_[j];
      y_[r] = s;
    }
  }
  delta_.resize(d);
  for (int o = 0; o < d; ++o) {
    double s = 0;
    const float* br = p.b.data() + static_cast<size_t>(o) * p.rank;
    for (int r = 0; r < p.rank; ++r) s += static_cast<double>(br[r]) * y_[r];
    delta_[o] = static_cast<float>(cfg_.scaling * s);
  }
  model_.add_to_hidden(delta_.data(), MemorySpace::Host);
  clock.mark(kLoraB);
}

void Generator::lm_head_cpu_single_thread() {
  // The original's split selftest: a float32 matrix-vector product on one thread, no SIMD
  // blocking beyond what the compiler does: the 650 ms bottleneck of its analysis.
  const auto& mc = model_.config();
  const int d = mc.hidden_size, V = mc.vocab_size;
  if (lm_weight_f32_.empty()) {
    lm_weight_f32_.resize(static_cast<size_t>(V) * d);
    const model::Model& m = model_.model();
    if (const model::HostWeights* w = m.host_weights()) {
      const model::Tensor& t = w->lm_head;
      for (size_t i = 0; i < lm_weight_f32_.size(); ++i) lm_weight_f32_[i] = t.at(i);
    } else if (m.synthetic()) {
      const uint32_t id = mc.tie_word_embeddings ? model::synthetic::embed_id() : model::synthetic::lm_head_id(mc.num_hidden_layers);
      const auto sc = model::synthetic::embedding_scale();
      for (size_t i = 0; i < lm_weight_f32_.size(); ++i)
        lm_weight_f32_[i] = model::synthetic::value(m.synthetic_seed(), id, i, sc);
    } else {
      throw BackendUnavailableError("lmHead 'cpu-f32-single-thread' needs host weights (CPU model or synthetic weights)");
    }
  }
  hidden_host_.resize(d);
  model_.read_hidden(hidden_host_.data());
  logits_host_.resize(V);
  for (int v = 0; v < V; ++v) {
    const float* w = lm_weight_f32_.data() + static_cast<size_t>(v) * d;
    float s = 0;
    for (int j = 0; j < d; ++j) s += w[j] * hidden_host_[j];
    logits_host_[v] = s;
  }
}

StepResult Generator::post_forward(StageClock& clock, StageTimes& st) {
  // A device model runs asynchronously: with timers on, wait for the forward so its time is
  // charged to `forward` (timers off: no extra synchronisation).
  if (clock.enabled()) model_.synchronize();
  clock.mark(kForward);
  if (cfg_.mode != Mode::Base && cfg_.placement == Placement::FinalHidden) apply_final(clock);
  StepResult r;
  if (cfg_.lm_head == LmHead::CpuF32SingleThread) {
    lm_head_cpu_single_thread();
    clock.mark(kLmHead);
    r.token = model::sample_token(logits_host_.data(), static_cast<int>(logits_host_.size()), sampling_,
                                  sampling_.greedy() ? 0.0 : model::sampling_uniform01(cpu_seed_, cpu_draws_++));
  } else {
    model_.lm_head();
    if (clock.enabled()) model_.synchronize();
    clock.mark(kLmHead);
    r.token = model_.sample(sampling_);
  }
  clock.mark(kSampling);
  if (he_) he_->end_token(st);
  if (resident_ && cfg_.placement == Placement::FinalHidden && cfg_.mode == Mode::HeLora) resident_->collect(st);
  r.stages = st;
  return r;
}

StepResult Generator::start(const int32_t* prompt, int n, const model::SamplingOptions& sampling, uint64_t seed) {
  sampling.validate();
  if (n < 1) throw ArgumentRangeError("prompt must hold at least one token");
  sampling_ = sampling;
  install();
  model_.reset();
  model_.set_sampling_seed(seed);
  cpu_seed_ = seed;
  cpu_draws_ = 0;
  releases_ = 0;
  he_input_record_ = {};
  StageTimes st;
  if (he_) he_->begin_token(cfg_.timers);
  StageClock clock(cfg_.timers, &st);
  clock_ = &clock;
  try {
    model_.prefill(prompt, n);
    StepResult r = post_forward(clock, st);
    clock_ = nullptr;
    r.stages = st;
    return r;
  } catch (...) {
    clock_ = nullptr;
    throw;
  }
}

StepResult Generator::next(int32_t token) {
  if (!installed_) throw ArgumentRangeError("next() before start()");
  StageTimes st;
  if (he_) he_->begin_token(cfg_.timers);
  StageClock clock(cfg_.timers, &st);
  clock_ = &clock;
  try {
    model_.decode_step(token);
    StepResult r = post_forward(clock, st);
    clock_ = nullptr;
    r.stages = st;
    return r;
  } catch (...) {
    clock_ = nullptr;
    throw;
  }
}

std::vector<double> Generator::he_apply(const double* x, int in_dim, int pair_index) {
  HeLinear* he = nullptr;
  int rank = 0;
  if (cfg_.mode != Mode::HeLora) throw ArgumentRangeError("heApply needs mode 'he-lora'");
  if (resident_) {
    if (in_dim != resident_->layout().in_dim)
      throw ArgumentRangeError("x must hold " + std::to_string(resident_->layout().in_dim) + " values, got " + std::to_string(in_dim));
    return resident_->apply_host(x);
  }
  if (cfg_.placement == Placement::FinalHidden) {
    he = final_he_.get();
    rank = cfg_.final_pair.rank;
  } else {
    if (pair_index < 0 || pair_index >= static_cast<int>(pair_he_.size()) || !pair_he_[pair_index])
      throw ArgumentRangeError("pairIndex does not name a pair under HE");
    he = pair_he_[pair_index].get();
    rank = cfg_.pairs[pair_index].rank;
  }
  if (in_dim != he->layout().in_dim)
    throw ArgumentRangeError("x must hold " + std::to_string(he->layout().in_dim) + " values, got " + std::to_string(in_dim));
  std::vector<double> y(rank);
  StageClock clock(false, nullptr);
  he->apply(x, y.data(), clock);
  return y;
}

const PackingLayout* Generator::layout(int pair_index) const {
  if (cfg_.mode != Mode::HeLora) return nullptr;
  if (resident_) return &resident_->layout();
  if (cfg_.placement == Placement::FinalHidden) return &final_he_->layout();
  if (pair_index < 0 || pair_index >= static_cast<int>(pair_he_.size()) || !pair_he_[pair_index]) return nullptr;
  return &pair_he_[pair_index]->layout();
}

}  // namespace tensafe::helora
