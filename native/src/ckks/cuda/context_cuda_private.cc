// CkksContextCuda: the fused operations of the private protocols (ckks/private_ops.h), word for
// word the CPU engine's. Each holds the context lock once, enqueues everything on the context
// stream (host words in through one pinned upload, results out through one pinned download)
// and synchronises once, when the bytes are copied out. The masks and the flooding noise are
// sampled on the device from the CPU's streams (the same words, sampling.cuh); the host parts
// (reply format, stream ids) are the CPU context's own functions.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "ckks/cuda/context_cuda.h"
#include "ckks/cuda/device_state.h"
#include "ckks/cuda/ntt.cuh"
#include "ckks/cuda/rns_ops.cuh"
#include "ckks/cuda/sampling.cuh"
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

CkksContextCuda::DeviceReplies CkksContextCuda::c1s_at_positions(const std::vector<ReplyParts>& parts,
                                                                 const SecretKeyCuda& sk) {
  // One upload: every reply's c1, then every reply's c0 at its positions, then the positions.
  DeviceState& d = *dev_;
  const std::uint64_t n = this->n();
  const std::size_t R = parts.size();
  DeviceReplies out;
  out.at_off.assign(R + 1, 0);
  std::vector<std::size_t> c1_off(R + 1, 0), pos_off(R + 1, 0);
  bool uniform = true;
  for (std::size_t i = 0; i < R; ++i) {
    const auto& r = parts[i];
    uniform = uniform && r.limbs == parts[0].limbs;
    c1_off[i + 1] = c1_off[i] + r.limbs * n;
    out.at_off[i + 1] = out.at_off[i] + r.limbs * r.positions.size();
    pos_off[i + 1] = pos_off[i] + r.positions.size();
  }
  const std::size_t c1_words = c1_off[R], at_words = out.at_off[R], pos_words = position_words(pos_off[R]);
  const std::size_t up_words = c1_words + at_words + pos_words;
  std::uint64_t* up = pinned_up(up_words);
  for (std::size_t i = 0; i < R; ++i) {
    std::memcpy(up + c1_off[i], parts[i].c1.data(), parts[i].c1.size() * 8);
    if (!parts[i].c0.empty()) std::memcpy(up + c1_words + out.at_off[i], parts[i].c0.data(), parts[i].c0.size() * 8);
    if (!parts[i].positions.empty())
      std::memcpy(reinterpret_cast<std::uint32_t*>(up + c1_words + at_words) + pos_off[i], parts[i].positions.data(),
                  parts[i].positions.size() * sizeof(std::uint32_t));
  }
  out.in = alloc(std::max<std::size_t>(up_words, 1));
  CUDA_CHECK(cudaMemcpyAsync(out.in.data(), up, up_words * 8, cudaMemcpyHostToDevice, d.stream));
  const auto* pos_dev = reinterpret_cast<const std::uint32_t*>(out.in.data() + c1_words + at_words);
  // c1 * s in the NTT domain (the key's first limbs), back to coefficients: one launch each when
  // every reply has the same primes (the usual case), else per reply.
  DeviceWords c1s = alloc(std::max<std::size_t>(c1_words, 1));
  if (uniform) {
    const std::uint32_t l = static_cast<std::uint32_t>(parts[0].limbs);
    rns_multiply_plain(c1s.data(), out.in.data(), sk.words.data(), d.br(), l, static_cast<std::uint32_t>(R), d.log_n, d.stream);
    ntt_inverse(c1s.data(), d.ntt->view(), LimbMap::range(0, l), static_cast<std::uint32_t>(R), d.stream);
  } else {
    for (std::size_t i = 0; i < R; ++i) {
      const std::uint32_t l = static_cast<std::uint32_t>(parts[i].limbs);
      rns_multiply_plain(c1s.data() + c1_off[i], out.in.data() + c1_off[i], sk.words.data(), d.br(), l, 1, d.log_n, d.stream);
      ntt_inverse(c1s.data() + c1_off[i], d.ntt->view(), LimbMap::range(0, l), 1, d.stream);
    }
  }
  out.at = alloc(std::max<std::size_t>(at_words, 1));
  for (std::size_t i = 0; i < R; ++i) {
    rns_gather(out.at.data() + out.at_off[i], c1s.data() + c1_off[i], pos_dev + pos_off[i],
               static_cast<std::uint32_t>(parts[i].positions.size()), static_cast<std::uint32_t>(parts[i].limbs), d.log_n,
               d.stream);
    out.c0_at.push_back(out.in.data() + c1_words + out.at_off[i]);
  }
  return out;
}

std::vector<DecryptedReply> CkksContextCuda::decrypt_replies(const std::vector<ByteSpan>& replies, const SecretKeyCuda& sk,
                                                             PhaseTimings* timings) {
  PhaseClock clock(timings);
  cpu_->check_owner(sk.host.context_id, "secretKey");
  std::vector<ReplyParts> parts;
  for (const auto& b : replies) parts.push_back(cpu_->parse_reply(b.data, b.size));  // the format, checked on the host
  clock.mark("parse");
  std::vector<DecryptedReply> out;
  if (parts.empty()) return out;
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& d = *dev_;
  OpScope scope(d, "decrypt_replies");
  PinnedGuard guard(d);
  const DeviceReplies dr = c1s_at_positions(parts, sk);
  const std::size_t at_words = dr.at_off.back();
  std::uint64_t* down = pinned_down(at_words);
  CUDA_CHECK(cudaMemcpyAsync(down, dr.at.data(), at_words * 8, cudaMemcpyDeviceToHost, d.stream));
  finish_pinned();
  clock.mark("device");
  for (std::size_t i = 0; i < parts.size(); ++i) out.push_back(cpu_->finish_reply(parts[i], down + dr.at_off[i]));
  clock.mark("finish");
  return out;
}

std::vector<std::uint8_t> CkksContextCuda::reencrypt_replies(const std::vector<ByteSpan>& replies, const SecretKeyCuda& sk,
                                                             const std::vector<std::vector<std::uint32_t>>& expect,
                                                             std::size_t limbs_wanted, PhaseTimings* timings) {
  PhaseClock clock(timings);
  cpu_->check_owner(sk.host.context_id, "secretKey");
  std::vector<ReplyParts> parts;
  for (const auto& b : replies) parts.push_back(cpu_->parse_reply(b.data, b.size));
  std::vector<std::size_t> limbs;
  std::vector<const std::vector<std::uint32_t>*> positions;
  for (const auto& r : parts) {
    limbs.push_back(r.limbs);
    positions.push_back(&r.positions);
  }
  cpu_->check_share_replies(limbs, positions, expect, limbs_wanted);  // before any device work or stream id
  clock.mark("parse");
  std::lock_guard<std::mutex> lock(mutex_);
  DeviceState& d = *dev_;
  OpScope scope(d, "reencrypt_replies");
  PinnedGuard guard(d);
  const std::uint64_t n = this->n();
  const std::size_t l = parts[0].limbs;
  const DeviceReplies dr = c1s_at_positions(parts, sk);
  // U: coefficient k = the k-th decrypted word (c0 + c1*s at the read positions), 0 elsewhere.
  DeviceWords u = alloc(l * n);
  CUDA_CHECK(cudaMemsetAsync(u.data(), 0, l * n * 8, d.stream));
  std::uint32_t row = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto count = static_cast<std::uint32_t>(parts[i].positions.size());
    rns_scatter(u.data(), dr.at.data() + dr.at_off[i], dr.c0_at[i], nullptr, row, count, static_cast<std::uint32_t>(l), d.br(),
                d.log_n, d.stream);
    row += count;
  }
  ntt_forward(u.data(), d.ntt->view(), LimbMap::range(0, static_cast<std::uint32_t>(l)), 1, d.stream);  // as plaintext_from_words
  DeviceWords ct = alloc(2 * l * n);
  const auto seed = encrypt_symmetric_into(ct.data(), ct.data() + l * n, u.data(), l, sk, true);
  std::uint64_t* down = pinned_down(l * n);  // a compact ciphertext serialises c0 and the seed only
  CUDA_CHECK(cudaMemcpyAsync(down, ct.data(), l * n * 8, cudaMemcpyDeviceToHost, d.stream));
  finish_pinned();
  clock.mark("device");
  auto bytes = cpu_->serialize_compact_parts(l, 1.0, *seed, down);
  clock.mark("serialize");
  return bytes;
}

SanitizeResult CkksContextCuda::sanitize_products(const CiphertextCuda& ct, const std::vector<const PlaintextCuda*>& pts,
                                                  const PublicKeyCuda& pk, const SanitizeOptions& o) {
  valcheck::sanitize(*cpu_, ct, pts, o);
  cpu_->check_owner(pk.host.context_id, "publicKey");
  SanitizeResult out;
  PhaseClock clock(o.timings ? &out.timings : nullptr);
  std::lock_guard<std::mutex> lock(mutex_);  // also keeps the stream ids in the CPU's order
  DeviceState& d = *dev_;
  OpScope scope(d, "sanitize_products");
  PinnedGuard guard(d);
  const std::uint64_t n = this->n();
  const std::size_t P = pts.size(), l = ct.limbs, w = l * n;
  const std::uint32_t L32 = static_cast<std::uint32_t>(l);
  const bool flood = !o.read.empty() && o.flood_bits > 0;
  const auto ids = cpu_->reserve_sanitize_streams(P, flood);
  out.replies.resize(P);
  if (!o.mask_at.empty()) out.masks.resize(P);

  // Host: one upload of the sampling jobs (stream ids) and every position list the device needs.
  // The masks themselves are sampled on the device from the same streams as the CPU's
  // sanitize_mask (sampling.h: 'uniform' everywhere, then 'centered' or 0 at the read positions).
  const auto offsets = [&](const std::vector<std::vector<std::uint32_t>>& lists) {
    std::vector<std::size_t> at(P + 1, 0);
    if (!lists.empty())
      for (std::size_t p = 0; p < P; ++p) at[p + 1] = at[p] + lists[p].size();
    return at;
  };
  static const std::vector<std::vector<std::uint32_t>> kNone;
  const auto& reply_lists = o.partial ? (o.keep.empty() ? o.read : o.keep) : kNone;
  const auto pos_at = offsets(reply_lists), read_at = offsets(o.read), mask_at = offsets(o.mask_at);
  const std::size_t total_pos = pos_at[P], total_read = read_at[P], total_mask_at = mask_at[P];
  const std::size_t job_words = 3 * P * (flood ? 2 : 1);
  const std::size_t pos_words = position_words(total_pos) + position_words(total_read) + position_words(total_mask_at);
  const std::size_t up_words = job_words + pos_words;
  std::uint64_t* up = pinned_up(up_words);
  auto* jobs = reinterpret_cast<SampleJob*>(up);
  for (std::size_t p = 0; p < P; ++p) {
    jobs[p] = {ids[p].mask, p * w, n};
    if (flood) jobs[P + p] = {ids[p].flood, l * read_at[p], o.read[p].size()};
  }
  auto* pos_host = reinterpret_cast<std::uint32_t*>(up + job_words);
  auto* read_host = reinterpret_cast<std::uint32_t*>(up + job_words + position_words(total_pos));
  auto* mask_at_host = reinterpret_cast<std::uint32_t*>(up + job_words + position_words(total_pos) + position_words(total_read));
  const auto pack = [&](const std::vector<std::vector<std::uint32_t>>& lists, const std::vector<std::size_t>& at,
                        std::uint32_t* dst) {
    if (lists.empty()) return;
    for (std::size_t p = 0; p < P; ++p)
      if (!lists[p].empty()) std::memcpy(dst + at[p], lists[p].data(), lists[p].size() * sizeof(std::uint32_t));
  };
  pack(reply_lists, pos_at, pos_host);
  pack(o.read, read_at, read_host);
  pack(o.mask_at, mask_at, mask_at_host);
  DeviceWords in = alloc(std::max<std::size_t>(up_words, 1));
  CUDA_CHECK(cudaMemcpyAsync(in.data(), up, up_words * 8, cudaMemcpyHostToDevice, d.stream));
  const auto* jobs_dev = reinterpret_cast<const SampleJob*>(in.data());
  const auto* pos_dev = reinterpret_cast<const std::uint32_t*>(in.data() + job_words);
  const auto* read_dev = reinterpret_cast<const std::uint32_t*>(in.data() + job_words + position_words(total_pos));
  const auto* mask_at_dev = reinterpret_cast<const std::uint32_t*>(in.data() + job_words + position_words(total_pos) +
                                                                   position_words(total_read));
  clock.mark("host_prepare");

  // Device: the masks (coefficient form), flooding or zeros at the read positions, the shares at
  // mask_at; then to the NTT domain, all products in one launch, and per product
  // (product + mask) + Enc_pk(0) with its own stream id.
  const std::vector<std::uint64_t> moduli(cpu_->params().moduli.begin(), cpu_->params().moduli.begin() + l);
  DeviceWords masks = alloc(P * w);
  sample_uniform_exact(masks.data(), jobs_dev, static_cast<std::uint32_t>(P), d.br(), uniform_exact_limits(moduli), L32,
                       static_cast<std::uint32_t>(n), d.key, d.stream);
  if (!o.read.empty()) {
    DeviceWords noise;
    if (flood) {
      noise = alloc(std::max<std::size_t>(l * total_read, 1));
      sample_centered(noise.data(), jobs_dev + P, static_cast<std::uint32_t>(P), d.br(), L32, centered_bounds(o.flood_bits),
                      d.key, d.stream);
    }
    for (std::size_t p = 0; p < P; ++p)
      rns_scatter(masks.data() + p * w, flood ? noise.data() + l * read_at[p] : nullptr, nullptr, read_dev + read_at[p], 0,
                  static_cast<std::uint32_t>(o.read[p].size()), L32, d.br(), d.log_n, d.stream);
  }
  DeviceWords shares;
  if (!o.mask_at.empty()) {
    shares = alloc(std::max<std::size_t>(l * total_mask_at, 1));
    for (std::size_t p = 0; p < P; ++p)
      rns_gather(shares.data() + l * mask_at[p], masks.data() + p * w, mask_at_dev + mask_at[p],
                 static_cast<std::uint32_t>(o.mask_at[p].size()), L32, d.log_n, d.stream);
  }
  ntt_forward(masks.data(), d.ntt->view(), LimbMap::range(0, L32), static_cast<std::uint32_t>(P), d.stream);
  DeviceWords prods = alloc(P * 2 * w);
  std::vector<const std::uint64_t*> pt_ptrs;
  for (const auto* pt : pts) pt_ptrs.push_back(pt->words.data());
  rns_multiply_plain_batch(prods.data(), 2 * w, ct.words.data(), pt_ptrs.data(), d.br(), L32, static_cast<std::uint32_t>(P),
                           d.log_n, d.stream);
  DeviceWords masked0 = alloc(P * w);
  DeviceWords cur = alloc(P * 2 * w);
  for (std::size_t p = 0; p < P; ++p) {
    std::uint64_t* prod = prods.data() + p * 2 * w;
    rns_add(masked0.data() + p * w, prod, masks.data() + p * w, d.br(), L32, 1, d.log_n, false, d.stream);
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
  const std::size_t share_words = o.mask_at.empty() ? 0 : l * total_mask_at;
  std::uint64_t* down;
  std::size_t body_words;
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
    body_words = limbs * total_pos + P * lw;
    down = pinned_down(body_words + share_words);
    CUDA_CHECK(cudaMemcpyAsync(down, at.data(), limbs * total_pos * 8, cudaMemcpyDeviceToHost, d.stream));
    CUDA_CHECK(cudaMemcpy2DAsync(down + limbs * total_pos, lw * 8, cur.data() + lw, 2 * lw * 8, lw * 8, P,
                                 cudaMemcpyDeviceToHost, d.stream));
  } else {
    body_words = P * 2 * lw;
    down = pinned_down(body_words + share_words);
    CUDA_CHECK(cudaMemcpyAsync(down, cur.data(), P * 2 * lw * 8, cudaMemcpyDeviceToHost, d.stream));
  }
  if (share_words)
    CUDA_CHECK(cudaMemcpyAsync(down + body_words, shares.data(), share_words * 8, cudaMemcpyDeviceToHost, d.stream));
  clock.mark("host_enqueue");
  finish_pinned();  // the one host synchronisation
  clock.mark("device");

  for (std::size_t p = 0; p < P; ++p) {
    if (!o.mask_at.empty()) {
      const std::size_t c = o.mask_at[p].size();
      out.masks[p].assign(down + body_words + l * mask_at[p], down + body_words + l * mask_at[p] + l * c);
    }
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
  clock.mark("serialize");
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
