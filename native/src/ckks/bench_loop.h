// The benchmark loops of the CKKS engines, written once and parameterised by the engine's
// clock (a steady clock on the CPU, CUDA events on the GPU) and by how the engine runs a
// token's stages. Both engines time the same workload the same way; only the stage bodies and
// the clock differ.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "ckks/benchmarks.h"
#include "ckks/context.h"
#include "common/errors.h"

namespace tensafe::ckks {

// Marks on an engine's timeline: mark(i) records point i (at the engine's current position in
// its queue of work), sync(i) waits until point i is reached, us(a, b) is the time between
// two points in microseconds (valid after sync of the later one).
class StageClock {
 public:
  virtual ~StageClock() = default;
  virtual void mark(int i) = 0;
  virtual void sync(int i) = 0;
  virtual double us(int a, int b) = 0;
};

// The CPU clock: marks are steady-clock readings taken when the work before them is done.
class SteadyStageClock : public StageClock {
 public:
  void mark(int i) override;
  void sync(int) override {}
  double us(int a, int b) override;

 private:
  std::vector<std::int64_t> ns_;
};

// Engine results as shared pointers: the CPU engine returns objects, the CUDA one shared
// pointers; generic code (the benchmarks, the JS binding) handles both alike.
template <typename T>
struct IsSharedPtr : std::false_type {};
template <typename T>
struct IsSharedPtr<std::shared_ptr<T>> : std::true_type {};
template <typename T>
auto as_shared(T&& v) {
  using D = std::decay_t<T>;
  if constexpr (IsSharedPtr<D>::value) return D(std::forward<T>(v));
  else return std::make_shared<D>(std::forward<T>(v));
}

// Benchmark inputs (never secrets): uniform in [-amplitude, amplitude].
std::vector<double> bench_values(std::size_t count, std::mt19937_64& rng, double amplitude);

// ---- ops -----------------------------------------------------------------------------------

// The operations benchmarkOp times (at the top level, on random data).
const std::vector<std::string>& benchmark_op_names();

// `iterations` samples of `batch` back-to-back calls of fn between two marks, after `warmup`
// calls; each sample is divided by batch.
OpTiming time_op(const std::function<void()>& fn, StageClock& clock, int iterations, int batch, int warmup);

// benchmarkOp of either engine: keys, a plaintext and two ciphertexts at the top level, then
// `op` timed by time_op. `host` is the engine's parameter set.
template <typename Engine>
OpTiming benchmark_engine_op(Engine& ctx, const CkksContext& host, const std::string& op, int iterations,
                             StageClock& clock, int batch, int warmup) {
  if (op == "rotate" && !host.params().special)
    throw ArgumentRangeError("options.op: rotate needs a context with specialPrimeBits");
  if ((op == "rescale" || op == "mod_switch") && host.max_limbs() < 2)
    throw ArgumentRangeError("options.op: " + op + " needs at least two ciphertext primes");
  std::mt19937_64 rng(7);
  auto values = bench_values(host.n() / 2, rng, 1.0);
  auto sk = as_shared(ctx.generate_secret_key());
  auto pk = as_shared(ctx.generate_public_key(*sk));
  auto pt = as_shared(ctx.encode(values.data(), values.size(), 0, 0));
  auto ct = as_shared(ctx.encrypt(*pt, *pk));
  auto ct2 = as_shared(ctx.encrypt(*pt, *pk));
  auto dec = as_shared(ctx.decrypt(*ct, *sk));
  decltype(as_shared(ctx.generate_galois_keys(*sk, {1}))) gk;
  if (op == "rotate") gk = as_shared(ctx.generate_galois_keys(*sk, {1}));
  std::vector<double> out(host.n());
  std::function<void()> fn;
  if (op == "encode") fn = [&] { ctx.encode(values.data(), values.size(), 0, 0); };
  else if (op == "encode_coefficients") fn = [&] { ctx.encode_coefficients(values.data(), values.size(), 0, 0); };
  else if (op == "decode") fn = [&] { ctx.decode(*dec, out.data()); };
  else if (op == "encrypt") fn = [&] { ctx.encrypt(*pt, *pk); };
  else if (op == "encrypt_symmetric") fn = [&] { ctx.encrypt_symmetric(*pt, *sk); };
  else if (op == "decrypt") fn = [&] { ctx.decrypt(*ct, *sk); };
  else if (op == "add") fn = [&] { ctx.add(*ct, *ct2); };
  else if (op == "sub") fn = [&] { ctx.sub(*ct, *ct2); };
  else if (op == "multiply_plain") fn = [&] { ctx.multiply_plain(*ct, *pt); };
  else if (op == "rescale") fn = [&] { ctx.rescale(*ct); };
  else if (op == "mod_switch") fn = [&] { ctx.mod_switch(*ct); };
  else if (op == "rotate") fn = [&] { ctx.rotate(*ct, 1, *gk); };
  else throw ArgumentRangeError("options.op: unknown operation '" + op + "'");
  return time_op(fn, clock, iterations, batch, warmup);
}

// ---- the per-token HE-LoRA workload ----------------------------------------------------------

// h (d values) replicated `replicas` times in the slots, ceil(r / replicas) products.
struct HeLoraShape {
  int d = 0, r = 0, replicas = 0, products = 0;
};
// Checks d, r and replicas (0 = min(floor(slots / d), r)) against the ring (RangeErrors naming them).
HeLoraShape helora_shape(std::size_t slots, int d, int r, int replicas);

// LoRA-A (r x d, entries of size 1/sqrt(d)) and, per product, its rows packed one per replica.
std::vector<double> helora_lora_a(const HeLoraShape& s, std::mt19937_64& rng);
std::vector<double> helora_packed_rows(const HeLoraShape& s, const std::vector<double>& a, int product, std::size_t slots);

// The six stages of the original's breakdown, as an engine runs them: 0 encode, 1 encrypt,
// 2 ct x pt, 3 decrypt, 4 decode, 5 extract (segment sums).
class HeLoraStages {
 public:
  virtual ~HeLoraStages() = default;
  // Stages the next token's input (not timed).
  virtual void load(const double* h) = 0;
  virtual void run(int stage) = 0;
  // The r outputs of the token, read after the clock synchronised on the last mark.
  virtual const double* outputs() = 0;
  // Engines that run stages 2..5 as one overlapped phase (in run(2); run(3..5) then do
  // nothing) report the busy time of each of the four stages here, and the loop splits the
  // phase's wall time in proportion (the total stays exact). False: stages ran in order.
  virtual bool overlapped_busy_us(double busy[4]) {
    (void)busy;
    return false;
  }
};

// Stages given as functions (an engine whose stages are closures over its buffers).
class FunctionStages : public HeLoraStages {
 public:
  FunctionStages(std::function<void(const double*)> load, std::function<void(int)> run,
                 std::function<const double*()> outputs)
      : load_(std::move(load)), run_(std::move(run)), outputs_(std::move(outputs)) {}
  void load(const double* h) override { load_(h); }
  void run(int stage) override { run_(stage); }
  const double* outputs() override { return outputs_(); }

 private:
  std::function<void(const double*)> load_;
  std::function<void(int)> run_;
  std::function<const double*()> outputs_;
};

// Times `iterations` tokens after `warmup` ones: the medians of each stage and of the whole
// token, and max |(A h)_i - output_i| over the last token against float64. Fresh h per token.
HeLoraTiming run_helora(HeLoraStages& stages, StageClock& clock, const HeLoraShape& shape,
                        const std::vector<double>& lora_a, int iterations, int warmup, std::mt19937_64& rng);

}  // namespace tensafe::ckks
