// Launchers of the element-wise RNS kernels (rns_ops.cu), the rescale / mod-down kernels
// (rescale.cu) and the key-switching kernels (keyswitch.cu). Every polynomial is limb-major,
// n = 2^log_n words per limb; `br` is the device array of Barrett constants of the key
// moduli (ciphertext primes q_0..q_{L-1}, then the special prime P). The arithmetic is the
// CPU's (ckks/context.cc), step for step where rounding matters, so results are word-equal.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ckks/modarith.h"

namespace tensafe::ckks::cuda {

// Small per-launch arrays passed by value (at most 64 limbs).
struct LimbWords {
  static constexpr uint32_t kMax = 64;
  uint64_t v[kMax];
  uint64_t s[kMax];  // Shoup companions where used
};
struct LimbIndex {
  static constexpr uint32_t kMax = 64;
  uint32_t count;
  uint8_t limb[kMax];
};

// ---- rns_ops.cu --------------------------------------------------------------------------------

// out = a + b (sub: a - b) over `polys` polynomials of `limbs` limbs (limbs 0..limbs-1).
void rns_add(uint64_t* out, const uint64_t* a, const uint64_t* b, const Barrett* br, uint32_t limbs, uint32_t polys,
             uint32_t log_n, bool subtract, cudaStream_t s);
// out0 = a0 + p, out1 = a1 (ciphertext of `limbs` limbs, plaintext first `limbs` limbs).
void rns_add_plain(uint64_t* out, const uint64_t* a, const uint64_t* p, const Barrett* br, uint32_t limbs,
                   uint32_t log_n, cudaStream_t s);
// out_i = a_i * p for the `polys` polynomials of a (each `limbs` limbs); p has >= limbs limbs.
void rns_multiply_plain(uint64_t* out, const uint64_t* a, const uint64_t* p, const Barrett* br, uint32_t limbs,
                        uint32_t polys, uint32_t log_n, cudaStream_t s);
// out_k = a * p_k for `count` plaintexts (one launch): out_k at out + k*out_stride (2*limbs*n).
void rns_multiply_plain_batch(uint64_t* out, uint64_t out_stride, const uint64_t* a, const uint64_t* const* pts,
                              const Barrett* br, uint32_t limbs, uint32_t count, uint32_t log_n, cudaStream_t s);
// m = c0 + c1 * s for `count` ciphertexts at `ct_stride` words apart (each 2*limbs*n),
// m_k at out + k*out_stride (each limbs*n). Secret key: limb k at sk + k*n.
void rns_decrypt_dyadic(uint64_t* out, uint64_t out_stride, const uint64_t* const* cts, const uint64_t* sk,
                        const Barrett* br, uint32_t limbs, uint32_t count, uint32_t log_n, cudaStream_t s);
// Public-key encryption, after u, e0, e1 are in the NTT domain (each `limbs` limbs):
// c0 = e0 + b*u + m, c1 = e1 + a*u (+ m1 when not null) (pk: b then a, each pk_limbs limbs).
void rns_encrypt_pk(uint64_t* c0, uint64_t* c1, const uint64_t* e0, const uint64_t* e1, const uint64_t* u,
                    const uint64_t* pk, uint32_t pk_limbs, const uint64_t* m, const Barrett* br, uint32_t limbs,
                    uint32_t log_n, cudaStream_t s, const uint64_t* m1 = nullptr);
// out[l*count + k] = in[l*n + positions[k]] for l < limbs (positions on the device; count may be 0).
void rns_gather(uint64_t* out, const uint64_t* in, const uint32_t* positions, uint32_t count, uint32_t limbs,
                uint32_t log_n, cudaStream_t s);
// The inverse: out[l*n + positions[k]] = a[l*count + k] (+ b[l*count + k] mod q_l when b is not
// null; 0 when a is null), for l < limbs; positions null: coefficient row0 + k instead.
void rns_scatter(uint64_t* out, const uint64_t* a, const uint64_t* b, const uint32_t* positions, uint32_t row0,
                 uint32_t count, uint32_t limbs, const Barrett* br, uint32_t log_n, cudaStream_t s);
// Secret-key encryption: c0 = (e - c1*s) + m (c0 holds e in the NTT domain on entry).
void rns_encrypt_sk(uint64_t* c0, const uint64_t* c1, const uint64_t* sk, const uint64_t* m, const Barrett* br,
                    uint32_t limbs, uint32_t log_n, cudaStream_t s);

// ---- rescale.cu ----------------------------------------------------------------------------------

// tmp[p][k] = ((last[p] + half) mod q_drop) mod q_k - (half mod q_k), k < out_limbs, for the
// `polys` coefficient-form polynomials `last` (n words each); `drop` indexes br.
void rescale_expand(uint64_t* tmp, const uint64_t* last, const Barrett* br, uint32_t drop, uint32_t out_limbs,
                    uint32_t polys, uint32_t log_n, cudaStream_t s);
// out[p][k] = (x[p][k] - tmp[p][k]) * inv_k  (+ add[p][k] when add != nullptr, p == 0 only),
// x with in_stride words per polynomial, out/tmp with out_limbs*n.
void rescale_finish(uint64_t* out, const uint64_t* x, uint64_t in_stride, const uint64_t* tmp, const LimbWords& inv,
                    const uint64_t* add0, const Barrett* br, uint32_t out_limbs, uint32_t polys, uint32_t log_n,
                    cudaStream_t s);

// ---- keyswitch.cu --------------------------------------------------------------------------------

// out[p][k][j] = in[p][k][perm_g(j)] (the Galois automorphism in the NTT domain).
void apply_galois(uint64_t* out, const uint64_t* in, uint64_t galois, uint32_t limbs, uint32_t polys,
                  uint32_t log_n, cudaStream_t s);
// V[i][t][j] = digits[i][j] mod q_{targets[t]}, for the l coefficient-form digits.
void keyswitch_decompose(uint64_t* v, const uint64_t* digits, const Barrett* br, uint32_t l, const LimbIndex& targets,
                         uint32_t log_n, cudaStream_t s);
// acc0[t] = sum_i V[i][t] * b_i[targets[t]], acc1[t] = sum_i V[i][t] * a_i[targets[t]]; key
// layout [digit i][b|a][K limbs][n].
void keyswitch_inner(uint64_t* acc0, uint64_t* acc1, const uint64_t* v, const uint64_t* key, uint32_t K,
                     const Barrett* br, uint32_t l, const LimbIndex& targets, uint32_t log_n, cudaStream_t s);

}  // namespace tensafe::ckks::cuda
