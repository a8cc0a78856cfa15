// CkksContextCuda (see context_cuda.h): host orchestration of the CKKS kernels.
#include "ckks/cuda/context_cuda.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <functional>
#include <random>

#include "ckks/cuda/device_state.h"
#include "ckks/cuda/encoder.cuh"
#include "ckks/cuda/ntt.cuh"
#include "ckks/cuda/ntt_tables_cuda.h"
#include "ckks/cuda/rns_ops.cuh"
#include "ckks/cuda/sampling.cuh"
#include "ckks/bench_loop.h"
#include "ckks/sampling.h"
#include "ckks/valcheck.h"
#include "common/device_info.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"
#include "cuda/device_buffer.h"

namespace tensafe::ckks::cuda {

namespace {

void require_gpu() {
  if (!cuda_available()) {
    CudaRuntimeInfo info = cuda_runtime_info();
    throw BackendUnavailableError("CkksContextCuda needs a usable CUDA GPU: " +
                                  (info.unavailable_reason.empty() ? std::string("none found") : info.unavailable_reason));
  }
}

// The special-FFT twiddles exactly as SlotEncoder computes them (encoder.cc).
void fft_twiddles(std::uint64_t n, std::vector<double2>& fwd, std::vector<double2>& inv) {
  const std::uint64_t slots = n / 2, M = 2 * n;
  std::vector<std::uint64_t> rot(slots);
  std::uint64_t g = 1;
  for (std::uint64_t j = 0; j < slots; ++j) {
    rot[j] = g;
    g = (g * 5) % M;
  }
  auto ksi = [&](std::uint64_t k) {
    long double a = 2.0L * 3.141592653589793238462643383279502884L * static_cast<long double>(k) / static_cast<long double>(M);
    return double2{static_cast<double>(std::cos(a)), static_cast<double>(std::sin(a))};
  };
  fwd.assign(slots - 1, double2{0, 0});
  inv.assign(slots - 1, double2{0, 0});
  for (std::uint64_t len = 2; len <= slots; len <<= 1) {
    const std::uint64_t lenh = len >> 1, lenq = len << 2, gap = M / lenq;
    for (std::uint64_t j = 0; j < lenh; ++j) {
      fwd[lenh - 1 + j] = ksi((rot[j] % lenq) * gap);
      inv[lenh - 1 + j] = ksi((lenq - rot[j] % lenq) * gap);
    }
  }
}

template <typename T>
void upload_vec(DeviceBuffer<T>& b, const std::vector<T>& v) {
  b.allocate(v.size());
  ::tensafe::cuda::copy_to_device(b.data(), v.data(), v.size() * sizeof(T));
}

struct Event {
  cudaEvent_t e = nullptr;
  Event() { CUDA_CHECK(cudaEventCreate(&e)); }
  ~Event() {
    if (e) cudaEventDestroy(e);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

float elapsed_us(const Event& a, const Event& b) {
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a.e, b.e));
  return ms * 1000.0f;
}

}  // namespace

DeviceState::DeviceState(const CkksContext& cpu) {
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
  std::uint64_t threshold = ~std::uint64_t{0};  // keep freed blocks cached: a real pool
  CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));

  const std::uint64_t n = cpu.n();
  log_n = static_cast<std::uint32_t>(cpu.tables(0).log_n());
  L = static_cast<std::uint32_t>(cpu.max_limbs());
  K = L + (cpu.params().special ? 1 : 0);
  std::vector<const NttTables*> tabs;
  std::vector<Barrett> brs;
  for (std::uint32_t k = 0; k < K; ++k) {
    tabs.push_back(&cpu.tables(k));
    brs.push_back(cpu.tables(k).barrett());
  }
  ntt = std::make_unique<DeviceNttTables>(tabs);
  upload_vec(barrett, brs);
  std::vector<double2> f, i;
  fft_twiddles(n, f, i);
  upload_vec(fwd_tw, f);
  upload_vec(inv_tw, i);
  std::vector<std::uint64_t> ginv(L * L, 0), ginv_s(L * L, 0);
  std::vector<double> radix(L, 1.0);
  for (std::uint32_t a = 0; a < L; ++a) {
    const std::uint64_t qa = cpu.tables(a).modulus();
    for (std::uint32_t b = 0; b < a; ++b) {
      ginv[a * L + b] = inv_mod_prime(cpu.tables(b).modulus() % qa, qa);
      ginv_s[a * L + b] = shoup_precompute(ginv[a * L + b], qa);
    }
    if (a > 0) radix[a] = radix[a - 1] * static_cast<double>(cpu.tables(a - 1).modulus());
  }
  upload_vec(garner_inv, ginv);
  upload_vec(garner_inv_shoup, ginv_s);
  upload_vec(garner_radix, radix);
  const auto& spec = cpu.params().spec;
  ChaChaKey k = spec.seeded ? key_from_seed(spec.seed) : os_random_key();
  for (int w = 0; w < 8; ++w) key.k[w] = k[w];
  std::fill(k.begin(), k.end(), 0u);
  upload_gaussian_table();
  CUDA_CHECK(cudaMallocHost(&stage_up, n * sizeof(double)));
  CUDA_CHECK(cudaMallocHost(&stage_down, n * sizeof(double)));
  CUDA_CHECK(cudaEventCreateWithFlags(&up_free, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(up_free, stream));
  CUDA_CHECK(cudaEventCreateWithFlags(&pinned_free, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(pinned_free, stream));
}

DeviceState::~DeviceState() {
  if (stream) cudaStreamSynchronize(stream);
  for (auto& t : timed) {
    cudaEventDestroy(t.start);
    cudaEventDestroy(t.stop);
  }
  if (up_free) cudaEventDestroy(up_free);
  if (pinned_free) cudaEventDestroy(pinned_free);
  if (pinned_up.p) cudaFreeHost(pinned_up.p);
  if (pinned_down.p) cudaFreeHost(pinned_down.p);
  if (stage_up) cudaFreeHost(stage_up);
  if (stage_down) cudaFreeHost(stage_down);
  if (pool) cudaMemPoolDestroy(pool);
  if (stream) cudaStreamDestroy(stream);
  std::memset(&key, 0, sizeof key);
}

// ---- DeviceWords ------------------------------------------------------------------------------------

DeviceWords::DeviceWords(std::shared_ptr<DeviceState> owner, std::size_t words)
    : owner_(std::move(owner)), ptr_(owner_->allocate(words)), words_(words) {}
DeviceWords::~DeviceWords() { release(); }
DeviceWords::DeviceWords(DeviceWords&& o) noexcept
    : owner_(std::move(o.owner_)), ptr_(std::exchange(o.ptr_, nullptr)), words_(std::exchange(o.words_, 0)) {}
DeviceWords& DeviceWords::operator=(DeviceWords&& o) noexcept {
  if (this != &o) {
    release();
    owner_ = std::move(o.owner_);
    ptr_ = std::exchange(o.ptr_, nullptr);
    words_ = std::exchange(o.words_, 0);
  }
  return *this;
}
void DeviceWords::release() noexcept {
  if (ptr_ && owner_) owner_->release(ptr_);
  ptr_ = nullptr;
  words_ = 0;
}

// ---- context ------------------------------------------------------------------------------------------

CkksContextCuda::CkksContextCuda(const CkksParamsSpec& spec) {
  cpu_ = std::make_shared<CkksContext>(spec);  // validates the parameters first
  require_gpu();
  dev_ = std::make_shared<DeviceState>(*cpu_);
}

CkksContextCuda::~CkksContextCuda() = default;

void CkksContextCuda::set_poison(bool on) { dev_->poison = on; }
void CkksContextCuda::set_timing(bool on) { dev_->timing = on; }

std::vector<OpEventTime> CkksContextCuda::drain_timings() {
  std::lock_guard<std::mutex> lock(mutex_);
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));
  std::vector<OpEventTime> out;
  for (auto& t : dev_->timed) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, t.start, t.stop));
    out.push_back({t.op, 1000.0 * ms});
    cudaEventDestroy(t.start);
    cudaEventDestroy(t.stop);
  }
  dev_->timed.clear();
  return out;
}

DeviceWords CkksContextCuda::alloc(std::size_t words) { return DeviceWords(dev_, words); }

std::shared_ptr<CiphertextCuda> CkksContextCuda::new_ct(std::size_t limbs, double scale) {
  auto ct = std::make_shared<CiphertextCuda>();
  ct->context_id = cpu_->id();
  ct->limbs = limbs;
  ct->scale = scale;
  ct->words = alloc(2 * limbs * n());
  return ct;
}

std::shared_ptr<PlaintextCuda> CkksContextCuda::new_pt(std::size_t limbs, double scale, Encoding enc, bool ntt) {
  auto pt = std::make_shared<PlaintextCuda>();
  pt->context_id = cpu_->id();
  pt->limbs = limbs;
  pt->scale = scale;
  pt->encoding = enc;
  pt->ntt = ntt;
  pt->words = alloc(limbs * n());
  return pt;
}

void CkksContextCuda::check_ct(const CiphertextCuda& ct, const char* what) const { cpu_->check_owner(ct.context_id, what); }
void CkksContextCuda::check_pt(const PlaintextCuda& pt, const char* what) const { cpu_->check_owner(pt.context_id, what); }

std::uint64_t* CkksContextCuda::pinned_up(std::size_t up_words) {
  CUDA_CHECK(cudaEventSynchronize(dev_->pinned_free));  // the previous user's copies are done
  return dev_->pinned_up.get(std::max<std::size_t>(up_words, 1));
}
std::uint64_t* CkksContextCuda::pinned_down(std::size_t down_words) {
  CUDA_CHECK(cudaEventSynchronize(dev_->pinned_free));
  return dev_->pinned_down.get(std::max<std::size_t>(down_words, 1));
}
void CkksContextCuda::finish_pinned() {
  CUDA_CHECK(cudaEventRecord(dev_->pinned_free, dev_->stream));
  CUDA_CHECK(cudaEventSynchronize(dev_->pinned_free));
}

// ---- keys ------------------------------------------------------------------------------------------------

std::shared_ptr<SecretKeyCuda> CkksContextCuda::upload(SecretKey&& sk) {
  std::lock_guard<std::mutex> lock(mutex_);
  cpu_->check_owner(sk.context_id, "secretKey");
  auto out = std::make_shared<SecretKeyCuda>();
  out->words = alloc(sk.ntt.size());
  CUDA_CHECK(cudaMemcpyAsync(out->words.data(), sk.ntt.data(), sk.ntt.size() * 8, cudaMemcpyHostToDevice, dev_->stream));
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));  // the host vector may move right after
  out->host = std::move(sk);
  return out;
}

std::shared_ptr<PublicKeyCuda> CkksContextCuda::upload(PublicKey&& pk) {
  std::lock_guard<std::mutex> lock(mutex_);
  cpu_->check_owner(pk.context_id, "publicKey");
  auto out = std::make_shared<PublicKeyCuda>();
  out->words = alloc(pk.data.size());
  CUDA_CHECK(cudaMemcpyAsync(out->words.data(), pk.data.data(), pk.data.size() * 8, cudaMemcpyHostToDevice, dev_->stream));
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));
  out->host = std::move(pk);
  return out;
}

std::shared_ptr<GaloisKeysCuda> CkksContextCuda::upload(GaloisKeys&& gk) {
  std::lock_guard<std::mutex> lock(mutex_);
  cpu_->check_owner(gk.context_id, "galoisKeys");
  auto out = std::make_shared<GaloisKeysCuda>();
  for (auto& [step, key] : gk.keys) {
    GaloisKeysCuda::Key k;
    k.galois = key.galois;
    k.words = alloc(key.data.size());
    CUDA_CHECK(cudaMemcpyAsync(k.words.data(), key.data.data(), key.data.size() * 8, cudaMemcpyHostToDevice, dev_->stream));
    out->device.emplace(step, std::move(k));
  }
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));
  out->host = std::move(gk);
  return out;
}

std::shared_ptr<SecretKeyCuda> CkksContextCuda::generate_secret_key() { return upload(cpu_->generate_secret_key()); }

std::shared_ptr<PublicKeyCuda> CkksContextCuda::generate_public_key(const SecretKeyCuda& sk) {
  return upload(cpu_->generate_public_key(sk.host));
}

std::shared_ptr<GaloisKeysCuda> CkksContextCuda::generate_galois_keys(const SecretKeyCuda& sk,
                                                                      const std::vector<std::int64_t>& steps) {
  return upload(cpu_->generate_galois_keys(sk.host, steps));
}

// ---- encoding ------------------------------------------------------------------------------------------

void CkksContextCuda::encode_into(std::uint64_t* out, const double* host_values, std::size_t count, std::size_t period,
                                  std::size_t limbs, double scale) {
  DeviceState& d = *dev_;
  valcheck::slots_fit(*cpu_, host_values, count, period, limbs, scale);  // before any device work
  CUDA_CHECK(cudaEventSynchronize(d.up_free));  // previous upload out of the staging buffer
  std::memcpy(d.stage_up, host_values, period * sizeof(double));
  DeviceWords vals = alloc(period);  // doubles, one word each
  CUDA_CHECK(cudaMemcpyAsync(vals.data(), d.stage_up, period * sizeof(double), cudaMemcpyHostToDevice, d.stream));
  CUDA_CHECK(cudaEventRecord(d.up_free, d.stream));
  DeviceWords scratch = alloc(n());  // N/2 double2 = N words
  encode_slots(out, reinterpret_cast<const double*>(vals.data()), static_cast<std::uint32_t>(count),
               static_cast<std::uint32_t>(period), scale, d.br(), static_cast<std::uint32_t>(limbs), d.fft(),
               reinterpret_cast<double2*>(scratch.data()), d.stream);
  ntt_forward(out, d.ntt->view(), LimbMap::range(0, static_cast<std::uint32_t>(limbs)), 1, d.stream);
}

std::shared_ptr<PlaintextCuda> CkksContextCuda::encode(const double* values, std::size_t count, std::size_t limbs,
                                                       double scale) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::encode_args(*cpu_, count, n() / 2, "polyN/2", limbs, scale);
  OpScope scope(*dev_, "encode");
  auto pt = new_pt(limbs, scale, Encoding::Slots, true);
  if (count == 0) {
    static const double zero = 0;
    encode_into(pt->words.data(), &zero, 1, 1, limbs, scale);
  } else {
    encode_into(pt->words.data(), values, count, count, limbs, scale);
  }
  return pt;
}

std::shared_ptr<PlaintextCuda> CkksContextCuda::encode_coefficients(const double* values, std::size_t count,
                                                                    std::size_t limbs, double scale) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::encode_args(*cpu_, count, n(), "polyN", limbs, scale);
  valcheck::coefficients_fit(*cpu_, valcheck::max_abs(values, count, scale), limbs, "reaches");
  DeviceState& d = *dev_;
  OpScope scope(d, "encode_coefficients");
  auto pt = new_pt(limbs, scale, Encoding::Coefficients, true);
  DeviceWords vals = alloc(std::max<std::size_t>(count, 1));
  if (count) {
    CUDA_CHECK(cudaEventSynchronize(d.up_free));
    std::memcpy(d.stage_up, values, count * sizeof(double));
    CUDA_CHECK(cudaMemcpyAsync(vals.data(), d.stage_up, count * sizeof(double), cudaMemcpyHostToDevice, d.stream));
    CUDA_CHECK(cudaEventRecord(d.up_free, d.stream));
  }
  cuda::encode_coefficients(pt->words.data(), reinterpret_cast<const double*>(vals.data()),
                            static_cast<std::uint32_t>(count), scale, d.br(), static_cast<std::uint32_t>(limbs), d.log_n,
                            d.stream);
  ntt_forward(pt->words.data(), d.ntt->view(), LimbMap::range(0, static_cast<std::uint32_t>(limbs)), 1, d.stream);
  return pt;
}

void CkksContextCuda::decode(const PlaintextCuda& pt, double* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_pt(pt, "plaintext");
  DeviceState& d = *dev_;
  OpScope scope(d, "decode");
  const std::uint32_t limbs = static_cast<std::uint32_t>(pt.limbs);
  const std::uint64_t* words = pt.words.data();
  DeviceWords tmp;
  if (pt.ntt) {
    tmp = alloc(pt.limbs * n());
    CUDA_CHECK(cudaMemcpyAsync(tmp.data(), words, pt.limbs * n() * 8, cudaMemcpyDeviceToDevice, d.stream));
    ntt_inverse(tmp.data(), d.ntt->view(), LimbMap::range(0, limbs), 1, d.stream);
    words = tmp.data();
  }
  const std::size_t slots = n() / 2;
  DeviceWords scratch = alloc(n());
  DeviceWords vals = alloc(slots);
  decode_slots(reinterpret_cast<double*>(vals.data()), words, pt.limbs * n(), 1, limbs, 1.0 / pt.scale, d.br(),
               d.garner(), d.fft(), reinterpret_cast<double2*>(scratch.data()), d.stream);
  CUDA_CHECK(cudaMemcpyAsync(d.stage_down, vals.data(), slots * sizeof(double), cudaMemcpyDeviceToHost, d.stream));
  CUDA_CHECK(cudaStreamSynchronize(d.stream));
  std::memcpy(out, d.stage_down, slots * sizeof(double));
}

void CkksContextCuda::decode_coefficients(const PlaintextCuda& pt, double* out) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_pt(pt, "plaintext");
  DeviceState& d = *dev_;
  OpScope scope(d, "decode_coefficients");
  const std::uint32_t limbs = static_cast<std::uint32_t>(pt.limbs);
  const std::uint64_t* words = pt.words.data();
  DeviceWords tmp;
  if (pt.ntt) {
    tmp = alloc(pt.limbs * n());
    CUDA_CHECK(cudaMemcpyAsync(tmp.data(), words, pt.limbs * n() * 8, cudaMemcpyDeviceToDevice, d.stream));
    ntt_inverse(tmp.data(), d.ntt->view(), LimbMap::range(0, limbs), 1, d.stream);
    words = tmp.data();
  }
  DeviceWords vals = alloc(n());
  cuda::decode_coefficients(reinterpret_cast<double*>(vals.data()), words, limbs, 1.0 / pt.scale, d.br(), d.garner(),
                            d.log_n, d.stream);
  CUDA_CHECK(cudaMemcpyAsync(d.stage_down, vals.data(), n() * sizeof(double), cudaMemcpyDeviceToHost, d.stream));
  CUDA_CHECK(cudaStreamSynchronize(d.stream));
  std::memcpy(out, d.stage_down, n() * sizeof(double));
}

// ---- raw residues and samples ------------------------------------------------------------------------------

std::shared_ptr<PlaintextCuda> CkksContextCuda::plaintext_from_words(const std::uint64_t* words, std::size_t count,
                                                                     std::size_t limbs, double scale, Encoding encoding) {
  valcheck::words_args(*cpu_, words, count, limbs, scale);
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& d = *dev_;
  OpScope scope(d, "plaintext_from_words");
  auto pt = new_pt(limbs, scale, encoding, true);
  CUDA_CHECK(cudaMemcpyAsync(pt->words.data(), words, count * 8, cudaMemcpyHostToDevice, d.stream));
  ntt_forward(pt->words.data(), d.ntt->view(), LimbMap::range(0, static_cast<std::uint32_t>(limbs)), 1, d.stream);
  CUDA_CHECK(cudaStreamSynchronize(d.stream));  // the caller's words may go away on return
  return pt;
}

std::vector<std::uint64_t> CkksContextCuda::plaintext_words(const PlaintextCuda& pt) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_pt(pt, "plaintext");
  DeviceState& d = *dev_;
  OpScope scope(d, "plaintext_words");
  const std::size_t words = pt.limbs * n();
  DeviceWords tmp = alloc(words);
  CUDA_CHECK(cudaMemcpyAsync(tmp.data(), pt.words.data(), words * 8, cudaMemcpyDeviceToDevice, d.stream));
  if (pt.ntt) ntt_inverse(tmp.data(), d.ntt->view(), LimbMap::range(0, static_cast<std::uint32_t>(pt.limbs)), 1, d.stream);
  std::vector<std::uint64_t> out(words);
  CUDA_CHECK(cudaMemcpyAsync(out.data(), tmp.data(), words * 8, cudaMemcpyDeviceToHost, d.stream));
  CUDA_CHECK(cudaStreamSynchronize(d.stream));
  return out;
}

std::vector<std::uint64_t> CkksContextCuda::sample_words(std::size_t limbs, std::size_t count, SampleDistribution dist,
                                                         int bits) {
  std::lock_guard<std::mutex> lock(mutex_);  // keeps the stream counter in call order
  return cpu_->sample_words(limbs, count, dist, bits);
}

// ---- encryption ------------------------------------------------------------------------------------------

void CkksContextCuda::encrypt_into(std::uint64_t* c, const std::uint64_t* m, const std::uint64_t* m1, std::size_t limbs,
                                   const PublicKeyCuda& pk, std::uint64_t sid) {
  DeviceState& d = *dev_;
  const std::uint64_t n = this->n();
  const std::uint32_t l = static_cast<std::uint32_t>(limbs);
  DeviceWords tmp = alloc(3 * limbs * n);  // e0 | e1 | u
  std::uint64_t* e0 = tmp.data();
  std::uint64_t* e1 = e0 + limbs * n;
  std::uint64_t* u = e1 + limbs * n;
  sample_encryption_noise(u, e0, e1, d.br(), l, d.log_n, d.key, sid, d.stream);
  ntt_forward(tmp.data(), d.ntt->view(), LimbMap::range(0, l), 3, d.stream);
  rns_encrypt_pk(c, c + limbs * n, e0, e1, u, pk.words.data(), d.L, m, d.br(), l, d.log_n, d.stream, m1);
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::encrypt(const PlaintextCuda& pt, const PublicKeyCuda& pk) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::operand_plaintext(*cpu_, pt, "encode a new one to encrypt");
  cpu_->check_owner(pk.host.context_id, "publicKey");
  OpScope scope(*dev_, "encrypt");
  auto ct = new_ct(pt.limbs, pt.scale);
  encrypt_into(ct->words.data(), pt.words.data(), nullptr, pt.limbs, pk, cpu_->next_stream());  // the CPU's stream id
  return ct;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::rerandomize(const CiphertextCuda& in, const PublicKeyCuda& pk) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_ct(in, "ciphertext");
  cpu_->check_owner(pk.host.context_id, "publicKey");
  OpScope scope(*dev_, "rerandomize");
  const std::uint64_t n = this->n();
  const std::size_t w = in.limbs * n;
  auto ct = new_ct(in.limbs, in.scale);  // c1 changes: no seed carried
  // Enc_pk(0) + (c0, c1) in one pass.
  encrypt_into(ct->words.data(), in.words.data(), in.words.data() + w, in.limbs, pk, cpu_->next_stream());
  return ct;
}

std::optional<ChaChaKey> CkksContextCuda::encrypt_symmetric_into(std::uint64_t* c0, std::uint64_t* c1,
                                                                 const std::uint64_t* m, std::size_t limbs,
                                                                 const SecretKeyCuda& sk, bool compact) {
  DeviceState& d = *dev_;
  const std::uint64_t n = this->n();
  const std::uint32_t l = static_cast<std::uint32_t>(limbs);
  const std::uint64_t sid = cpu_->next_stream();
  std::optional<ChaChaKey> seed;
  if (compact) {
    // The seed comes from the host context's key (the same as the device key when seeded);
    // c1 is its expansion (key = seed, stream 0), sampled on the device.
    seed = cpu_->derive_seed(sid);
    DeviceChaChaKey seed_key{};
    for (int w = 0; w < 8; ++w) seed_key.k[w] = (*seed)[w];
    sample_uniform(c1, d.br(), l, d.log_n, seed_key, 0, 0, d.stream);
  } else {
    sample_uniform(c1, d.br(), l, d.log_n, d.key, sid, 0, d.stream);
  }
  sample_small_rns(c0, d.br(), l, d.log_n, d.key, sid, 2ull * l * n, SmallDistribution::Gaussian, d.stream);
  ntt_forward(c0, d.ntt->view(), LimbMap::range(0, l), 1, d.stream);
  rns_encrypt_sk(c0, c1, sk.words.data(), m, d.br(), l, d.log_n, d.stream);
  return seed;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::encrypt_symmetric(const PlaintextCuda& pt, const SecretKeyCuda& sk,
                                                                   bool compact) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::operand_plaintext(*cpu_, pt, "encode a new one to encrypt");
  cpu_->check_owner(sk.host.context_id, "secretKey");
  OpScope scope(*dev_, "encrypt_symmetric");
  auto ct = new_ct(pt.limbs, pt.scale);
  std::uint64_t* c0 = ct->words.data();
  ct->c1_seed = encrypt_symmetric_into(c0, c0 + pt.limbs * n(), pt.words.data(), pt.limbs, sk, compact);
  return ct;
}

void CkksContextCuda::decrypt_into(std::uint64_t* out, const std::vector<const std::uint64_t*>& cts, std::size_t limbs,
                                   const SecretKeyCuda& sk) {
  DeviceState& d = *dev_;
  const std::uint32_t l = static_cast<std::uint32_t>(limbs);
  // Left in the NTT domain, as the CPU backend does (decode runs the inverse NTT).
  rns_decrypt_dyadic(out, limbs * n(), cts.data(), sk.words.data(), d.br(), l, static_cast<std::uint32_t>(cts.size()),
                     d.log_n, d.stream);
}

std::shared_ptr<PlaintextCuda> CkksContextCuda::decrypt(const CiphertextCuda& ct, const SecretKeyCuda& sk) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_ct(ct, "ciphertext");
  cpu_->check_owner(sk.host.context_id, "secretKey");
  OpScope scope(*dev_, "decrypt");
  auto pt = new_pt(ct.limbs, ct.scale, Encoding::Slots, true);
  decrypt_into(pt->words.data(), {ct.words.data()}, ct.limbs, sk);
  return pt;
}

std::vector<std::shared_ptr<PlaintextCuda>> CkksContextCuda::decrypt_batch(const std::vector<const CiphertextCuda*>& cts,
                                                                           const SecretKeyCuda& sk) {
  std::lock_guard<std::mutex> lock(mutex_);
  cpu_->check_owner(sk.host.context_id, "secretKey");
  for (auto* ct : cts) check_ct(*ct, "ciphertexts[i]");
  std::vector<std::shared_ptr<PlaintextCuda>> out;
  if (cts.empty()) return out;
  DeviceState& d = *dev_;
  OpScope scope(d, "decrypt_batch");
  // Same-level runs are decrypted together (one dyadic and one inverse-NTT launch), then copied
  // into their own plaintexts.
  std::size_t i = 0;
  while (i < cts.size()) {
    std::size_t j = i;
    while (j < cts.size() && cts[j]->limbs == cts[i]->limbs) ++j;
    const std::size_t limbs = cts[i]->limbs, words = limbs * n();
    DeviceWords all = alloc((j - i) * words);
    std::vector<const std::uint64_t*> ptrs;
    for (std::size_t k = i; k < j; ++k) ptrs.push_back(cts[k]->words.data());
    decrypt_into(all.data(), ptrs, limbs, sk);
    for (std::size_t k = i; k < j; ++k) {
      auto pt = new_pt(limbs, cts[k]->scale, Encoding::Slots, true);
      CUDA_CHECK(cudaMemcpyAsync(pt->words.data(), all.data() + (k - i) * words, words * 8, cudaMemcpyDeviceToDevice,
                                 d.stream));
      out.push_back(std::move(pt));
    }
    i = j;
  }
  return out;
}

// ---- evaluator -------------------------------------------------------------------------------------------


std::shared_ptr<CiphertextCuda> CkksContextCuda::add(const CiphertextCuda& a, const CiphertextCuda& b) {
  std::lock_guard<std::mutex> lock(mutex_);
  OpScope scope(*dev_, "add");
  return add_unlocked(a, b);
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::add_unlocked(const CiphertextCuda& a, const CiphertextCuda& b) {
  valcheck::same_level(*cpu_, a, b);
  auto r = new_ct(a.limbs, a.scale);
  rns_add(r->words.data(), a.words.data(), b.words.data(), dev_->br(), static_cast<std::uint32_t>(a.limbs), 2,
          dev_->log_n, false, dev_->stream);
  return r;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::sub(const CiphertextCuda& a, const CiphertextCuda& b) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::same_level(*cpu_, a, b);
  OpScope scope(*dev_, "sub");
  auto r = new_ct(a.limbs, a.scale);
  rns_add(r->words.data(), a.words.data(), b.words.data(), dev_->br(), static_cast<std::uint32_t>(a.limbs), 2,
          dev_->log_n, true, dev_->stream);
  return r;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::add_plain(const CiphertextCuda& a, const PlaintextCuda& b) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::add_plain(*cpu_, a, b);
  OpScope scope(*dev_, "add_plain");
  auto r = new_ct(a.limbs, a.scale);
  r->c1_seed = a.c1_seed;  // c1 unchanged
  rns_add_plain(r->words.data(), a.words.data(), b.words.data(), dev_->br(), static_cast<std::uint32_t>(a.limbs),
                dev_->log_n, dev_->stream);
  return r;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::multiply_plain(const CiphertextCuda& a, const PlaintextCuda& b) {
  std::lock_guard<std::mutex> lock(mutex_);
  const double scale = valcheck::multiply_plain(*cpu_, a, b);
  OpScope scope(*dev_, "multiply_plain");
  auto r = new_ct(a.limbs, scale);
  rns_multiply_plain(r->words.data(), a.words.data(), b.words.data(), dev_->br(), static_cast<std::uint32_t>(a.limbs), 2,
                     dev_->log_n, dev_->stream);
  return r;
}

void CkksContextCuda::drop_last_limb(std::uint64_t* out, const std::uint64_t* in, std::size_t in_limbs,
                                     std::uint32_t polys, std::uint32_t drop_index, const std::uint64_t* add0) {
  DeviceState& d = *dev_;
  const std::uint64_t n = this->n();
  const std::uint32_t out_limbs = static_cast<std::uint32_t>(in_limbs - 1);
  DeviceWords last = alloc(polys * n);
  CUDA_CHECK(cudaMemcpy2DAsync(last.data(), n * 8, in + (in_limbs - 1) * n, in_limbs * n * 8, n * 8, polys,
                               cudaMemcpyDeviceToDevice, d.stream));
  LimbMap one;
  one.count = 1;
  one.limb[0] = static_cast<std::uint8_t>(drop_index);
  ntt_inverse(last.data(), d.ntt->view(), one, polys, d.stream);
  DeviceWords tmp = alloc(static_cast<std::size_t>(polys) * out_limbs * n);
  rescale_expand(tmp.data(), last.data(), d.br(), drop_index, out_limbs, polys, d.log_n, d.stream);
  ntt_forward(tmp.data(), d.ntt->view(), LimbMap::range(0, out_limbs), polys, d.stream);
  LimbWords inv{};
  const std::uint64_t qd = cpu_->tables(drop_index).modulus();
  for (std::uint32_t k = 0; k < out_limbs; ++k) {
    const std::uint64_t q = cpu_->tables(k).modulus();
    inv.v[k] = inv_mod_prime(qd % q, q);
    inv.s[k] = shoup_precompute(inv.v[k], q);
  }
  rescale_finish(out, in, in_limbs * n, tmp.data(), inv, add0, d.br(), out_limbs, polys, d.log_n, d.stream);
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::rescale(const CiphertextCuda& a) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::drop_prime(*cpu_, a, "rescaled");
  OpScope scope(*dev_, "rescale");
  auto r = new_ct(a.limbs - 1, a.scale / static_cast<double>(cpu_->tables(a.limbs - 1).modulus()));
  drop_last_limb(r->words.data(), a.words.data(), a.limbs, 2, static_cast<std::uint32_t>(a.limbs - 1), nullptr);
  return r;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::mod_switch(const CiphertextCuda& a) {
  std::lock_guard<std::mutex> lock(mutex_);
  valcheck::drop_prime(*cpu_, a, "switched down");
  OpScope scope(*dev_, "mod_switch");
  auto r = new_ct(a.limbs - 1, a.scale);
  r->c1_seed = a.c1_seed;  // a prefix of the seed's expansion is the expansion at fewer limbs
  const std::uint64_t n = this->n();
  const std::size_t w = r->limbs * n;
  CUDA_CHECK(cudaMemcpy2DAsync(r->words.data(), w * 8, a.words.data(), a.limbs * n * 8, w * 8, 2,
                               cudaMemcpyDeviceToDevice, dev_->stream));
  return r;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::rotate(const CiphertextCuda& a, std::int64_t steps,
                                                        const GaloisKeysCuda& gk) {
  std::lock_guard<std::mutex> lock(mutex_);
  OpScope scope(*dev_, "rotate");
  return rotate_unlocked(a, steps, gk);
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::rotate_unlocked(const CiphertextCuda& a, std::int64_t steps,
                                                                 const GaloisKeysCuda& gk) {
  check_ct(a, "ciphertext");
  cpu_->check_owner(gk.host.context_id, "galoisKeys");
  DeviceState& d = *dev_;
  const std::int64_t norm = valcheck::rotation_step(*cpu_, steps);
  const std::uint64_t n = this->n();
  const std::uint32_t l = static_cast<std::uint32_t>(a.limbs);
  auto r = new_ct(a.limbs, a.scale);
  if (norm == 0) {  // the identity: a copy (c1 unchanged, so a compact seed stays valid)
    CUDA_CHECK(cudaMemcpyAsync(r->words.data(), a.words.data(), 2 * a.limbs * n * 8, cudaMemcpyDeviceToDevice, d.stream));
    r->c1_seed = a.c1_seed;
    return r;
  }
  auto it = gk.device.find(norm);
  if (it == gk.device.end()) valcheck::missing_rotation_key(steps);
  const std::uint32_t T = l + 1;
  LimbMap targets_map;
  LimbIndex targets{};
  targets_map.count = T;
  targets.count = T;
  for (std::uint32_t t = 0; t < l; ++t) targets_map.limb[t] = targets.limb[t] = static_cast<std::uint8_t>(t);
  targets_map.limb[l] = targets.limb[l] = static_cast<std::uint8_t>(d.L);
  DeviceWords perm = alloc(2 * a.limbs * n);
  apply_galois(perm.data(), a.words.data(), it->second.galois, l, 2, d.log_n, d.stream);
  DeviceWords digits = alloc(a.limbs * n);
  CUDA_CHECK(cudaMemcpyAsync(digits.data(), perm.data() + a.limbs * n, a.limbs * n * 8, cudaMemcpyDeviceToDevice, d.stream));
  ntt_inverse(digits.data(), d.ntt->view(), LimbMap::range(0, l), 1, d.stream);
  DeviceWords v = alloc(static_cast<std::size_t>(l) * T * n);
  keyswitch_decompose(v.data(), digits.data(), d.br(), l, targets, d.log_n, d.stream);
  ntt_forward(v.data(), d.ntt->view(), targets_map, l, d.stream);
  DeviceWords acc = alloc(2ull * T * n);
  keyswitch_inner(acc.data(), acc.data() + T * n, v.data(), it->second.words.data(), d.K, d.br(), l, targets, d.log_n,
                  d.stream);
  drop_last_limb(r->words.data(), acc.data(), T, 2, d.L, perm.data());
  return r;
}

void CkksContextCuda::prepare_multiplier(PlaintextCuda& pt) const {
  valcheck::operand_plaintext(*cpu_, pt, "encode a plaintext to compute with");
}

// ---- serialisation ----------------------------------------------------------------------------------------

std::vector<std::uint8_t> CkksContextCuda::serialize(const CiphertextCuda& ct) { return cpu_->serialize(download(ct)); }
std::vector<std::uint8_t> CkksContextCuda::serialize(const PlaintextCuda& pt) { return cpu_->serialize(download(pt)); }
std::vector<std::uint8_t> CkksContextCuda::serialize(const PublicKeyCuda& pk) const { return cpu_->serialize(pk.host); }
std::vector<std::uint8_t> CkksContextCuda::serialize(const GaloisKeysCuda& gk) const { return cpu_->serialize(gk.host); }
std::vector<std::uint8_t> CkksContextCuda::serialize_secret_key(const SecretKeyCuda& sk) const {
  return cpu_->serialize_secret_key(sk.host);
}
std::shared_ptr<CiphertextCuda> CkksContextCuda::deserialize_ciphertext(const std::uint8_t* p, std::size_t len) {
  return upload(cpu_->deserialize_ciphertext(p, len));
}
std::shared_ptr<PlaintextCuda> CkksContextCuda::deserialize_plaintext(const std::uint8_t* p, std::size_t len) {
  return upload(cpu_->deserialize_plaintext(p, len));
}
std::shared_ptr<PublicKeyCuda> CkksContextCuda::deserialize_public_key(const std::uint8_t* p, std::size_t len) {
  return upload(cpu_->deserialize_public_key(p, len));
}
std::shared_ptr<GaloisKeysCuda> CkksContextCuda::deserialize_galois_keys(const std::uint8_t* p, std::size_t len) {
  return upload(cpu_->deserialize_galois_keys(p, len));
}
std::shared_ptr<SecretKeyCuda> CkksContextCuda::deserialize_secret_key(const std::uint8_t* p, std::size_t len) {
  return upload(cpu_->deserialize_secret_key(p, len));
}
std::vector<std::uint64_t> CkksContextCuda::ciphertext_words(const CiphertextCuda& ct) { return download(ct).data; }

// ---- host copies ------------------------------------------------------------------------------------------

Ciphertext CkksContextCuda::download(const CiphertextCuda& ct) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_ct(ct, "ciphertext");
  Ciphertext out;
  out.context_id = ct.context_id;
  out.limbs = ct.limbs;
  out.scale = ct.scale;
  out.c1_seed = ct.c1_seed;
  out.data.resize(ct.words.size());
  CUDA_CHECK(cudaMemcpyAsync(out.data.data(), ct.words.data(), out.data.size() * 8, cudaMemcpyDeviceToHost, dev_->stream));
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));
  return out;
}

Plaintext CkksContextCuda::download(const PlaintextCuda& pt) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_pt(pt, "plaintext");
  Plaintext out;
  out.context_id = pt.context_id;
  out.limbs = pt.limbs;
  out.scale = pt.scale;
  out.encoding = pt.encoding;
  out.ntt = pt.ntt;
  out.data.resize(pt.words.size());
  CUDA_CHECK(cudaMemcpyAsync(out.data.data(), pt.words.data(), out.data.size() * 8, cudaMemcpyDeviceToHost, dev_->stream));
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));
  return out;
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::upload(const Ciphertext& ct) {
  std::lock_guard<std::mutex> lock(mutex_);
  cpu_->check_owner(ct.context_id, "ciphertext");
  auto r = new_ct(ct.limbs, ct.scale);
  r->c1_seed = ct.c1_seed;
  CUDA_CHECK(cudaMemcpyAsync(r->words.data(), ct.data.data(), ct.data.size() * 8, cudaMemcpyHostToDevice, dev_->stream));
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));
  return r;
}

std::shared_ptr<PlaintextCuda> CkksContextCuda::upload(const Plaintext& pt) {
  std::lock_guard<std::mutex> lock(mutex_);
  cpu_->check_owner(pt.context_id, "plaintext");
  auto r = new_pt(pt.limbs, pt.scale, pt.encoding, pt.ntt);
  CUDA_CHECK(cudaMemcpyAsync(r->words.data(), pt.data.data(), pt.data.size() * 8, cudaMemcpyHostToDevice, dev_->stream));
  CUDA_CHECK(cudaStreamSynchronize(dev_->stream));
  return r;
}

// ---- benchmarks ----------------------------------------------------------------------------------------------

namespace {
// The GPU's StageClock: a CUDA event per mark, recorded on the context stream.
class EventStageClock : public StageClock {
 public:
  explicit EventStageClock(cudaStream_t stream) : stream_(stream) {}
  void mark(int i) override { CUDA_CHECK(cudaEventRecord(event(i), stream_)); }
  void sync(int i) override { CUDA_CHECK(cudaEventSynchronize(event(i))); }
  double us(int a, int b) override { return elapsed_us(*events_[a], *events_[b]); }

 private:
  cudaEvent_t event(int i) {
    while (static_cast<int>(events_.size()) <= i) events_.push_back(std::make_unique<Event>());
    return events_[i]->e;
  }
  cudaStream_t stream_;
  std::vector<std::unique_ptr<Event>> events_;
};
}  // namespace

OpTiming CkksContextCuda::benchmark_op(const std::string& op, int iterations) {
  EventStageClock clock(dev_->stream);
  // kOpBatch back-to-back operations per sample, after two warm-ups (module load, pool growth).
  return benchmark_engine_op(*this, *cpu_, op, iterations, clock, kOpBatch, 2);
}

HeLoraTiming CkksContextCuda::benchmark_helora(int d, int r, int iterations, int replicas_asked, bool streamed) {
  const std::size_t slots = n() / 2;
  const HeLoraShape shape = helora_shape(slots, d, r, replicas_asked);
  const int replicas = shape.replicas, products = shape.products;
  std::mt19937_64 rng(11);  // benchmark data only
  const auto A = helora_lora_a(shape, rng);
  auto sk = generate_secret_key();
  auto pk = generate_public_key(*sk);
  std::vector<std::shared_ptr<PlaintextCuda>> apts;
  for (int p = 0; p < products; ++p) {
    auto v = helora_packed_rows(shape, A, p, slots);
    apts.push_back(encode(v.data(), v.size(), 0, 0));
  }

  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& dv = *dev_;
  cudaStream_t st = dv.stream;
  const std::uint64_t n = this->n();
  const std::size_t L = cpu_->max_limbs();
  const std::uint32_t l = static_cast<std::uint32_t>(L);
  const double scale = cpu_->default_scale();
  const double out_scale = scale * scale;
  // Every buffer of the token is allocated once, so that the token's work can be captured in
  // CUDA graphs (one per stage) and replayed: the whole token is then ~7 graph launches instead
  // of ~30 separate API calls, and the GPU no longer waits on the host between kernels.
  DeviceWords in = alloc(1 + static_cast<std::size_t>(d));  // [stream id | h]
  DeviceWords pt = alloc(L * n);
  DeviceWords ct = alloc(2 * L * n);
  DeviceWords noise = alloc(3 * L * n);  // e0 | e1 | u
  DeviceWords prods = alloc(static_cast<std::size_t>(products) * 2 * L * n);
  DeviceWords decs = alloc(static_cast<std::size_t>(products) * L * n);
  DeviceWords scratch = alloc(static_cast<std::size_t>(products) * n);  // products * N/2 double2
  DeviceWords slotvals = alloc(static_cast<std::size_t>(products) * slots);
  DeviceWords sums = alloc(static_cast<std::size_t>(products) * replicas);
  std::vector<const std::uint64_t*> prod_ptrs, apt_ptrs;
  for (int p = 0; p < products; ++p) {
    prod_ptrs.push_back(prods.data() + static_cast<std::size_t>(p) * 2 * L * n);
    apt_ptrs.push_back(apts[p]->words.data());
  }
  struct Pinned {
    std::uint64_t* p = nullptr;
    ~Pinned() {
      if (p) cudaFreeHost(p);
    }
  } host_in, host_out;
  CUDA_CHECK(cudaMallocHost(&host_in.p, (1 + static_cast<std::size_t>(d)) * sizeof(std::uint64_t)));
  CUDA_CHECK(cudaMallocHost(&host_out.p, static_cast<std::size_t>(products) * replicas * sizeof(double)));
  const std::uint64_t* sid = in.data();
  const double* h_dev = reinterpret_cast<const double*>(in.data() + 1);
  std::uint64_t* e0 = noise.data();
  std::uint64_t* e1 = e0 + L * n;
  std::uint64_t* u = e1 + L * n;

  // The six stages of the original's breakdown.
  std::vector<std::function<void()>> stage = {
      [&] {  // encode: h in, replicated special IFFT, rounding, forward NTT
        CUDA_CHECK(cudaMemcpyAsync(in.data(), host_in.p, (1 + static_cast<std::size_t>(d)) * 8, cudaMemcpyHostToDevice, st));
        encode_slots(pt.data(), h_dev, static_cast<std::uint32_t>(replicas) * d, static_cast<std::uint32_t>(d), scale,
                     dv.br(), l, dv.fft(), reinterpret_cast<double2*>(scratch.data()), st);
        ntt_forward(pt.data(), dv.ntt->view(), LimbMap::range(0, l), 1, st);
      },
      [&] {  // encrypt (public key), stream id read on the device
        sample_encryption_noise(u, e0, e1, dv.br(), l, dv.log_n, dv.key, 0, st, sid);
        ntt_forward(noise.data(), dv.ntt->view(), LimbMap::range(0, l), 3, st);
        rns_encrypt_pk(ct.data(), ct.data() + L * n, e0, e1, u, pk->words.data(), dv.L, pt.data(), dv.br(), l, dv.log_n, st);
      },
      [&] {  // ct x pt: all products in one launch
        rns_multiply_plain_batch(prods.data(), 2 * L * n, ct.data(), apt_ptrs.data(), dv.br(), l,
                                 static_cast<std::uint32_t>(products), dv.log_n, st);
      },
      [&] { decrypt_into(decs.data(), prod_ptrs, L, *sk); },  // batched, NTT domain
      [&] {  // decode: inverse NTT, Garner, special FFT of every product at once
        ntt_inverse(decs.data(), dv.ntt->view(), LimbMap::range(0, l), static_cast<std::uint32_t>(products), st);
        decode_slots(reinterpret_cast<double*>(slotvals.data()), decs.data(), L * n, static_cast<std::uint32_t>(products), l,
                     1.0 / out_scale, dv.br(), dv.garner(), dv.fft(), reinterpret_cast<double2*>(scratch.data()), st);
      },
      [&] {  // extract: segment sums, r values to the host
        segment_sums(reinterpret_cast<double*>(sums.data()), reinterpret_cast<const double*>(slotvals.data()),
                     static_cast<std::uint32_t>(products), static_cast<std::uint32_t>(replicas),
                     static_cast<std::uint32_t>(d), dv.log_n, st);
        CUDA_CHECK(cudaMemcpyAsync(host_out.p, sums.data(), static_cast<std::size_t>(products) * replicas * sizeof(double),
                                   cudaMemcpyDeviceToHost, st));
      }};
  const std::size_t S = stage.size();

  // Capture each stage once; on any capture failure run the stages directly instead.
  struct Exec {
    Exec() = default;
    Exec(const Exec&) = delete;
    Exec& operator=(const Exec&) = delete;
    cudaGraph_t g = nullptr;
    cudaGraphExec_t e = nullptr;
    ~Exec() {
      if (e) cudaGraphExecDestroy(e);
      if (g) cudaGraphDestroy(g);
    }
  };
  std::vector<Exec> graphs(S);
  bool use_graphs = true;
  CUDA_CHECK(cudaStreamSynchronize(st));
  for (std::size_t i = 0; i < S && use_graphs; ++i) {
    if (cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
      use_graphs = false;
      break;
    }
    bool ok = true;
    try {
      stage[i]();
    } catch (...) {
      ok = false;
    }
    cudaGraph_t g = nullptr;
    if (cudaStreamEndCapture(st, &g) != cudaSuccess || !ok || !g ||
        cudaGraphInstantiate(&graphs[i].e, g, 0) != cudaSuccess) {
      if (g) cudaGraphDestroy(g);
      use_graphs = false;
    } else {
      graphs[i].g = g;
    }
  }
  (void)cudaGetLastError();  // a failed capture leaves nothing behind that later calls would see
  if (!use_graphs) graphs.clear();

  FunctionStages stages(
      [&](const double* h) {
        host_in.p[0] = cpu_->next_stream();  // a fresh ChaCha20 stream id per encryption
        std::memcpy(host_in.p + 1, h, static_cast<std::size_t>(d) * sizeof(double));
      },
      [&](int i) {
        if (use_graphs)
          CUDA_CHECK(cudaGraphLaunch(graphs[i].e, st));
        else
          stage[i]();
      },
      [&] { return reinterpret_cast<const double*>(host_out.p); });
  EventStageClock clock(st);
  HeLoraTiming out = run_helora(stages, clock, shape, A, iterations, 3, rng);  // three warm-up tokens
  out.graphs = use_graphs;
  out.streamed = false;
  if (streamed)
    out.note = "CkksContextCuda does not stream the stages: they ran in order, each a captured CUDA graph "
               "(all products of a stage are already one launch)";
  return out;
}

}  // namespace tensafe::ckks::cuda
