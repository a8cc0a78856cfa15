// CkksContextCuda: the fused operations of the private protocols (ckks/private_ops.h), word for
// word the CPU engine's. Each holds the context lock once, enqueues everything on the context
// stream (host words in through one pinned upload, results out through one pinned download)
// and synchronises once, when the bytes are copied out. The host parts (reply format, masks,
// stream ids) are the CPU context's own functions.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "ckks/cuda/context_cuda.h"
#include "ckks/cuda/device_state.h"
#include "ckks/cuda/ntt.cuh"
#include "ckks/cuda/rns_ops.cuh"
#include "ckks/valcheck.h"
#include "common/errors.h"
#include "cuda/cuda_check.h"

namespace tensafe::ckks::cuda {

namespace {
// Marks the pinned staging free after whatever was enqueued, also when an operation throws
// half-way (finish_pinned does it, and waits, on success).
class PinnedGuard {
 public:
  explicit PinnedGuard(DeviceState& d) : d_(d) {}
  ~PinnedGuard() { (void)cudaEventRecord(d_.pinned_free, d_.stream); }

 private:
  DeviceState& d_;
};

// Words needed to carry `count` u32 positions.
std::size_t position_words(std::size_t count) { return (count + 1) / 2; }
}  // namespace

std::vector<std::uint8_t> CkksContextCuda::serialize_reply(const CiphertextCuda& ct, const std::uint32_t* positions,
                                                           std::size_t count) {
  check_ct(ct, "ciphertext");
  valcheck::positions(*cpu_, positions, count, "positions");
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& d = *dev_;
  OpScope scope(d, "serialize_reply");
  PinnedGuard guard(d);
  const std::uint64_t n = this->n();
  const std::size_t l = ct.limbs;
  const std::uint32_t L32 = static_cast<std::uint32_t>(l);
  const std::vector<std::uint32_t> pos(positions, positions + count);
  std::uint64_t* up = pinned_up(position_words(count));
  if (count) std::memcpy(up, positions, count * sizeof(std::uint32_t));
  DeviceWords pos_d = alloc(std::max<std::size_t>(position_words(count), 1));
  CUDA_CHECK(cudaMemcpyAsync(pos_d.data(), up, position_words(count) * 8, cudaMemcpyHostToDevice, d.stream));
  DeviceWords c0 = alloc(l * n);
  CUDA_CHECK(cudaMemcpyAsync(c0.data(), ct.words.data(), l * n * 8, cudaMemcpyDeviceToDevice, d.stream));
  ntt_inverse(c0.data(), d.ntt->view(), LimbMap::range(0, L32), 1, d.stream);
  DeviceWords at = alloc(std::max<std::size_t>(l * count, 1));
  rns_gather(at.data(), c0.data(), reinterpret_cast<const std::uint32_t*>(pos_d.data()), static_cast<std::uint32_t>(count),
             L32, d.log_n, d.stream);
  std::uint64_t* down = pinned_down(l * count + l * n);
  CUDA_CHECK(cudaMemcpyAsync(down, at.data(), l * count * 8, cudaMemcpyDeviceToHost, d.stream));
  CUDA_CHECK(cudaMemcpyAsync(down + l * count, ct.words.data() + l * n, l * n * 8, cudaMemcpyDeviceToHost, d.stream));
  finish_pinned();
  return cpu_->serialize_reply_parts(l, ct.scale, pos, down, down + l * count);
}

DecryptedReply CkksContextCuda::decrypt_reply(const std::uint8_t* p, std::size_t len, const SecretKeyCuda& sk) {
  const ReplyParts r = cpu_->parse_reply(p, len);  // the format, checked on the host
  cpu_->check_owner(sk.host.context_id, "secretKey");
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& d = *dev_;
  OpScope scope(d, "decrypt_reply");
  PinnedGuard guard(d);
  const std::uint64_t n = this->n();
  const std::size_t l = r.limbs, count = r.positions.size();
  const std::uint32_t L32 = static_cast<std::uint32_t>(l);
  std::uint64_t* up = pinned_up(l * n + position_words(count));
  std::memcpy(up, r.c1.data(), l * n * 8);
  if (count) std::memcpy(up + l * n, r.positions.data(), count * sizeof(std::uint32_t));
  DeviceWords in = alloc(l * n + std::max<std::size_t>(position_words(count), 1));
  CUDA_CHECK(cudaMemcpyAsync(in.data(), up, (l * n + position_words(count)) * 8, cudaMemcpyHostToDevice, d.stream));
  // c1 * s in the NTT domain (the key's first l limbs), back to coefficients, picked.
  DeviceWords c1s = alloc(l * n);
  rns_multiply_plain(c1s.data(), in.data(), sk.words.data(), d.br(), L32, 1, d.log_n, d.stream);
  ntt_inverse(c1s.data(), d.ntt->view(), LimbMap::range(0, L32), 1, d.stream);
  DeviceWords at = alloc(std::max<std::size_t>(l * count, 1));
  rns_gather(at.data(), c1s.data(), reinterpret_cast<const std::uint32_t*>(in.data() + l * n),
             static_cast<std::uint32_t>(count), L32, d.log_n, d.stream);
  std::uint64_t* down = pinned_down(l * count);
  CUDA_CHECK(cudaMemcpyAsync(down, at.data(), l * count * 8, cudaMemcpyDeviceToHost, d.stream));
  finish_pinned();
  return cpu_->finish_reply(r, down);
}

SanitizeResult CkksContextCuda::sanitize_products(const CiphertextCuda& ct, const std::vector<const PlaintextCuda*>& pts,
                                                  const PublicKeyCuda& pk, const SanitizeOptions& o) {
  valcheck::sanitize(*cpu_, ct, pts, o);
  cpu_->check_owner(pk.host.context_id, "publicKey");
  std::lock_guard<std::mutex> lock(mutex_);  // also keeps the stream ids in the CPU's order
  DeviceState& d = *dev_;
  OpScope scope(d, "sanitize_products");
  PinnedGuard guard(d);
  const std::uint64_t n = this->n();
  const std::size_t P = pts.size(), l = ct.limbs, w = l * n;
  const std::uint32_t L32 = static_cast<std::uint32_t>(l);
  const auto ids = cpu_->reserve_sanitize_streams(P, !o.read.empty() && o.flood_bits > 0);
  SanitizeResult out;
  out.replies.resize(P);
  if (!o.mask_at.empty()) out.masks.resize(P);

  // Host: the masks (the CPU's samplers and streams) and the reply positions, packed into one upload.
  std::vector<std::size_t> pos_at(P + 1, 0);  // first position of each product's reply
  if (o.partial)
    for (std::size_t p = 0; p < P; ++p) pos_at[p + 1] = pos_at[p] + o.reply_positions(p).size();
  const std::size_t total_pos = pos_at[P];
  std::uint64_t* up = pinned_up(P * w + position_words(total_pos));
  for (std::size_t p = 0; p < P; ++p) {
    const auto mask = cpu_->sanitize_mask(ids[p], l, o, p);
    if (!o.mask_at.empty()) out.masks[p] = gather_words(mask.data(), l, n, o.mask_at[p]);
    std::memcpy(up + p * w, mask.data(), w * 8);
  }
  auto* pos_host = reinterpret_cast<std::uint32_t*>(up + P * w);
  if (o.partial)
    for (std::size_t p = 0; p < P; ++p) {
      const auto& pos = o.reply_positions(p);
      if (!pos.empty()) std::memcpy(pos_host + pos_at[p], pos.data(), pos.size() * sizeof(std::uint32_t));
    }
  DeviceWords in = alloc(P * w + std::max<std::size_t>(position_words(total_pos), 1));
  CUDA_CHECK(cudaMemcpyAsync(in.data(), up, (P * w + position_words(total_pos)) * 8, cudaMemcpyHostToDevice, d.stream));
  const auto* pos_dev = reinterpret_cast<const std::uint32_t*>(in.data() + P * w);

  // Device: masks to the NTT domain, all products in one launch, then per product
  // (product + mask) + Enc_pk(0) with its own stream id.
  ntt_forward(in.data(), d.ntt->view(), LimbMap::range(0, L32), static_cast<std::uint32_t>(P), d.stream);
  DeviceWords prods = alloc(P * 2 * w);
  std::vector<const std::uint64_t*> pt_ptrs;
  for (const auto* pt : pts) pt_ptrs.push_back(pt->words.data());
  rns_multiply_plain_batch(prods.data(), 2 * w, ct.words.data(), pt_ptrs.data(), d.br(), L32, static_cast<std::uint32_t>(P),
                           d.log_n, d.stream);
  DeviceWords masked0 = alloc(P * w);
  DeviceWords cur = alloc(P * 2 * w);
  for (std::size_t p = 0; p < P; ++p) {
    std::uint64_t* prod = prods.data() + p * 2 * w;
    rns_add(masked0.data() + p * w, prod, in.data() + p * w, d.br(), L32, 1, d.log_n, false, d.stream);
    encrypt_into(cur.data() + p * 2 * w, masked0.data() + p * w, prod + w, l, pk, ids[p].rerandomize);
  }
  // Rescales: every polynomial of every product at once.
  std::size_t limbs = l;
  std::vector<double> scale(P);
  for (std::size_t p = 0; p < P; ++p) scale[p] = ct.scale * pts[p]->scale;
  for (std::size_t r = 0; r < o.rescales; ++r, --limbs) {
    DeviceWords next = alloc(P * 2 * (limbs - 1) * n);
    drop_last_limb(next.data(), cur.data(), limbs, static_cast<std::uint32_t>(2 * P), static_cast<std::uint32_t>(limbs - 1),
                   nullptr);
    cur = std::move(next);
    for (auto& s : scale) s = s / static_cast<double>(cpu_->tables(limbs - 1).modulus());  // as rescale()
  }
  const std::size_t lw = limbs * n;
  std::uint64_t* down;
  if (o.partial) {
    // c0 of every product to coefficients (one launch), gathered at the reply positions;
    // c1 stays in the NTT domain.
    DeviceWords c0s = alloc(P * lw);
    CUDA_CHECK(cudaMemcpy2DAsync(c0s.data(), lw * 8, cur.data(), 2 * lw * 8, lw * 8, P, cudaMemcpyDeviceToDevice, d.stream));
    ntt_inverse(c0s.data(), d.ntt->view(), LimbMap::range(0, static_cast<std::uint32_t>(limbs)), static_cast<std::uint32_t>(P),
                d.stream);
    DeviceWords at = alloc(std::max<std::size_t>(limbs * total_pos, 1));
    for (std::size_t p = 0; p < P; ++p)
      rns_gather(at.data() + limbs * pos_at[p], c0s.data() + p * lw, pos_dev + pos_at[p],
                 static_cast<std::uint32_t>(pos_at[p + 1] - pos_at[p]), static_cast<std::uint32_t>(limbs), d.log_n, d.stream);
    down = pinned_down(limbs * total_pos + P * lw);
    CUDA_CHECK(cudaMemcpyAsync(down, at.data(), limbs * total_pos * 8, cudaMemcpyDeviceToHost, d.stream));
    CUDA_CHECK(cudaMemcpy2DAsync(down + limbs * total_pos, lw * 8, cur.data() + lw, 2 * lw * 8, lw * 8, P,
                                 cudaMemcpyDeviceToHost, d.stream));
  } else {
    down = pinned_down(P * 2 * lw);
    CUDA_CHECK(cudaMemcpyAsync(down, cur.data(), P * 2 * lw * 8, cudaMemcpyDeviceToHost, d.stream));
  }
  finish_pinned();  // the one host synchronisation

  for (std::size_t p = 0; p < P; ++p) {
    if (o.partial) {
      out.replies[p] = cpu_->serialize_reply_parts(limbs, scale[p], o.reply_positions(p), down + limbs * pos_at[p],
                                                   down + limbs * total_pos + p * lw);
    } else {
      Ciphertext h;
      h.context_id = cpu_->id();
      h.limbs = limbs;
      h.scale = scale[p];
      h.data.assign(down + p * 2 * lw, down + (p + 1) * 2 * lw);
      out.replies[p] = cpu_->serialize(h);
    }
  }
  return out;
}

void CkksContextCuda::check_trace(const std::vector<std::int64_t>& steps, const GaloisKeysCuda& gk) const {
  cpu_->check_owner(gk.host.context_id, "galoisKeys");
  valcheck::trace_steps(*cpu_, steps, gk.device);
}

std::shared_ptr<CiphertextCuda> CkksContextCuda::trace_rotations(const CiphertextCuda& ct,
                                                                 const std::vector<std::int64_t>& steps,
                                                                 const GaloisKeysCuda& gk) {
  check_ct(ct, "ciphertext");
  check_trace(steps, gk);
  std::lock_guard<std::mutex> lock(mutex_);
  OpScope scope(*dev_, "trace_rotations");
  std::shared_ptr<CiphertextCuda> c = new_ct(ct.limbs, ct.scale);
  CUDA_CHECK(cudaMemcpyAsync(c->words.data(), ct.words.data(), ct.words.size() * 8, cudaMemcpyDeviceToDevice, dev_->stream));
  for (auto s : steps) c = add_unlocked(*c, *rotate_unlocked(*c, s, gk));
  return c;
}

}  // namespace tensafe::ckks::cuda
