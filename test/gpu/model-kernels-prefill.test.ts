/**
 * The batched-prefill kernels, one by one, against float64 references on fresh random inputs
 * (the seed is printed): the tensor-core GEMM (ours and cuBLAS, each against the reference and
 * against each other), the causal prefill attention (tensor-core and simple kernels), the q/k/v
 * bias + RoPE + cache write, and the row kernels. Outputs are poisoned (NaN) before each run by
 * the native side, so an element the kernel fails to write fails the comparison.
 * TENSAFE_REQUIRE_CUBLAS=1 (the device harness) makes a missing cuBLAS a failure.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../../src/engine/native';
import { noGpu } from '../helpers/gpu';
import { freshSeed, maxRelErr, rng, uniformSampler } from '../helpers/numeric';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const K = (): any => native().modelCudaKernels;

const rand = rng(freshSeed('model-kernels-prefill'));
const randn = uniformSampler(rand);

/** Half an ulp of the 16-bit type, relative (round to nearest). */
const halfUlp = (dtype: 'f16' | 'bf16'): number => (dtype === 'f16' ? 2 ** -11 : 2 ** -8);

const cublas = (): { available: boolean; detail: string } => K().cublas();
const impls = (): Array<'own' | 'cublas'> => (cublas().available ? ['own', 'cublas'] : ['own']);

function gemmReference(a: Float32Array, b: Float32Array, m: number, n: number, k: number, c0?: Float32Array): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t] * b[j * k + t];
      c[i * n + j] = (c0 ? c0[i * n + j] : 0) + s;
    }
  }
  return c;
}

describe.skipIf(noGpu)('batched prefill kernels vs float64 references', () => {
  it('cuBLAS is found where the harness requires it', () => {
    const c = cublas();
    // eslint-disable-next-line no-console
    console.log(`[model-kernels-prefill] cuBLAS: ${c.available ? 'loaded from ' : 'not available: '}${c.detail}`);
    if (process.env.TENSAFE_REQUIRE_CUBLAS === '1') expect(c.available, c.detail).toBe(true);
    expect(typeof c.detail).toBe('string');
  });

  const gemmShapes: Array<[number, number, number, string]> = [
    [37, 300, 1536, 'rows and columns off the 128 tile'],
    [128, 256, 64, 'whole tiles'],
    [200, 136, 8960, 'down_proj depth'],
    [130, 129, 40, 'k not a multiple of the 32-deep slice'],
    [1, 17, 24, 'one token'],
    [5, 7, 20, 'k % 8 != 0 (simple kernel)'],
  ];
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const [m, n, k, what] of gemmShapes) {
      for (const acc of [false, true]) {
        it(`gemm ${dtype} ${m}x${n}x${k}${acc ? ' accumulate' : ''} (${what}), every implementation`, () => {
          const a = randn(m * k);
          const b = randn(n * k, 1 / Math.sqrt(k));
          const c0 = acc ? randn(m * n) : undefined;
          for (const impl of impls()) {
            const r = K().gemm({ a, b, dtype, m, n, k, c0, impl });
            expect(r.impl).toBe(impl);
            const ref = gemmReference(r.a, r.b, m, n, k, c0);
            expect(maxRelErr(r.c, ref), impl).toBeLessThan(2e-5);
          }
        });
      }
    }
  }

  it('gemm: our kernel and cuBLAS agree on the 1.5B shapes at 1024 tokens', () => {
    if (!cublas().available) {
      // eslint-disable-next-line no-console
      console.log('[model-kernels-prefill] cuBLAS not available: own-vs-cuBLAS comparison skipped');
      return;
    }
    for (const [n, k] of [[2048, 1536], [1536, 8960]]) {
      const m = 1024;
      const a = randn(m * k);
      const b = randn(n * k, 1 / Math.sqrt(k));
      for (const dtype of ['f16', 'bf16'] as const) {
        const own = K().gemm({ a, b, dtype, m, n, k, impl: 'own' });
        const cub = K().gemm({ a, b, dtype, m, n, k, impl: 'cublas' });
        expect(maxRelErr(own.c, cub.c), `${dtype} ${n}x${k}`).toBeLessThan(2e-5);
      }
    }
  });

  function attentionReference(
    q: Float32Array, kc: Float32Array, vc: Float32Array, p0: number, m: number, heads: number, kv: number, hd: number, ctx: number,
  ): Float64Array {
    const out = new Float64Array(m * heads * hd);
    const group = heads / kv;
    for (let r = 0; r < m; r++) {
      const qp = p0 + r;
      for (let h = 0; h < heads; h++) {
        const g = Math.floor(h / group);
        const scores = new Float64Array(qp + 1);
        let mx = -Infinity;
        for (let p = 0; p <= qp; p++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[(r * heads + h) * hd + d] * kc[(g * ctx + p) * hd + d];
          scores[p] = s / Math.sqrt(hd);
          mx = Math.max(mx, scores[p]);
        }
        let l = 0;
        for (let p = 0; p <= qp; p++) {
          scores[p] = Math.exp(scores[p] - mx);
          l += scores[p];
        }
        for (let d = 0; d < hd; d++) {
          let acc = 0;
          for (let p = 0; p <= qp; p++) acc += scores[p] * vc[(g * ctx + p) * hd + d];
          out[(r * heads + h) * hd + d] = acc / l;
        }
      }
    }
    return out;
  }

  // heads, kv heads, head dim, context, p0, m
  const attnCases: Array<[number, number, number, number, number, number]> = [
    [12, 2, 128, 300, 0, 200],
    [12, 2, 128, 300, 37, 150],
    [14, 2, 64, 140, 0, 140],
    [4, 2, 16, 100, 10, 73],
    [4, 4, 32, 64, 0, 64],
    [2, 1, 6, 20, 3, 9],
  ];
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const [heads, kv, hd, ctx, p0, m] of attnCases) {
      for (const simple of [false, true]) {
        if (simple && hd === 6) continue;  // hd 6 always takes the simple kernel
        const kernel = simple || hd % 16 !== 0 ? 'simple' : 'tensor-core';
        it(`prefill attention ${dtype} ${kernel} heads ${heads}/${kv} head_dim ${hd} positions ${p0}..${p0 + m - 1}`, () => {
          // Positions past p0 + m are garbage the kernel must never read: the test binding sets
          // them to a 16-bit NaN on the device (poisonFrom; the binding refuses NaN inputs), so a
          // stray read shows in the output.
          const kCache = randn(kv * ctx * hd, 1.5);
          const vCache = randn(kv * ctx * hd);
          const poisonFrom = p0 + m;
          const q = randn(m * heads * hd, 1.5);
          const r = K().prefillAttention({ q, kCache, vCache, dtype, p0, m, heads, kvHeads: kv, headDim: hd, context: ctx, simple, poisonFrom });
          if (poisonFrom < ctx) expect(Number.isNaN(r.kCache[poisonFrom * hd])).toBe(true);
          const ref = attentionReference(r.q, r.kCache, r.vCache, p0, m, heads, kv, hd, ctx);
          // Output rounding (half an ulp) plus, in the tensor-core kernel, P rounded to 16 bits.
          const tol = (kernel === 'simple' ? 2.5 : 8) * halfUlp(dtype);
          expect(maxRelErr(r.out, ref)).toBeLessThan(tol);
          // Split q and output (hi + lo, the batched prefill's default): only P's rounding is
          // left in the tensor-core kernel, float32 rounding in the simple one.
          const rs = K().prefillAttention({ q, kCache, vCache, dtype, p0, m, heads, kvHeads: kv, headDim: hd, context: ctx, simple, split: true, poisonFrom });
          const refSplit = attentionReference(rs.q, rs.kCache, rs.vCache, p0, m, heads, kv, hd, ctx);
          expect(maxRelErr(rs.out, refSplit)).toBeLessThan(kernel === 'simple' ? 2e-5 : 6 * halfUlp(dtype));
        });
      }
    }
  }

  for (const dtype of ['f16', 'bf16'] as const) {
    it(`q/k/v bias + RoPE + cache write at positions p0.. (${dtype})`, () => {
      const heads = 12, kv = 2, hd = 128, ctx = 96, p0 = 17, m = 40;
      const width = (heads + 2 * kv) * hd;
      const qkv = randn(m * width, 2);
      const bias = randn(width, 0.3);
      const kCache = randn(kv * ctx * hd);
      const vCache = randn(kv * ctx * hd);
      const r = K().qkvRope({ qkv, bias, dtype, ropeTheta: 1e6, p0, m, heads, kvHeads: kv, headDim: hd, context: ctx, kCache, vCache });
      const half = hd / 2;
      const tol = 2 * halfUlp(dtype);
      const close = (got: number, want: number, scale: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(tol * scale + 1e-7);
      for (let row = 0; row < m; row++) {
        const pos = p0 + row;
        const val = (i: number) => qkv[row * width + i] + bias[i];
        for (let hh = 0; hh < heads + kv; hh++) {
          for (let i = 0; i < half; i++) {
            const c = r.rope[2 * (pos * half + i)], s = r.rope[2 * (pos * half + i) + 1];
            const a = val(hh * hd + i), b = val(hh * hd + i + half);
            const scale = Math.abs(a) + Math.abs(b);
            const [g0, g1] = hh < heads
              ? [r.q[(row * heads + hh) * hd + i], r.q[(row * heads + hh) * hd + i + half]]
              : [r.kCache[((hh - heads) * ctx + pos) * hd + i], r.kCache[((hh - heads) * ctx + pos) * hd + i + half]];
            close(g0, a * c - b * s, scale);
            close(g1, b * c + a * s, scale);
          }
        }
        for (let g = 0; g < kv; g++) {
          for (let i = 0; i < hd; i++) {
            const v = val((heads + kv + g) * hd + i);
            close(r.vCache[(g * ctx + pos) * hd + i], v, Math.abs(v));
          }
        }
      }
      // Split q (hi + lo): about 16 significant bits.
      const rs = K().qkvRope({ qkv, bias, dtype, ropeTheta: 1e6, p0, m, heads, kvHeads: kv, headDim: hd, context: ctx, kCache, vCache, split: true });
      const splitTol = dtype === 'bf16' ? 2 ** -15 : 2 ** -20;
      for (let row = 0; row < m; row++) {
        const pos = p0 + row;
        for (let hh = 0; hh < heads; hh++) {
          for (let i = 0; i < half; i++) {
            const c = rs.rope[2 * (pos * half + i)], sn = rs.rope[2 * (pos * half + i) + 1];
            const a = qkv[row * width + hh * hd + i] + bias[hh * hd + i];
            const b = qkv[row * width + hh * hd + i + half] + bias[hh * hd + i + half];
            const scale = Math.abs(a) + Math.abs(b);
            expect(Math.abs(rs.q[(row * heads + hh) * hd + i] - (a * c - b * sn))).toBeLessThanOrEqual((splitTol + 1e-6) * scale + 1e-7);
            expect(Math.abs(rs.q[(row * heads + hh) * hd + i + half] - (b * c + a * sn))).toBeLessThanOrEqual((splitTol + 1e-6) * scale + 1e-7);
          }
        }
      }
      // Positions outside p0 .. p0+m-1 keep their (rounded) inputs.
      for (let g = 0; g < kv; g++) {
        for (const pos of [0, p0 - 1, p0 + m, ctx - 1]) {
          for (let i = 0; i < hd; i++) {
            const at = (g * ctx + pos) * hd + i;
            close(r.kCache[at], kCache[at], Math.abs(kCache[at]));
            close(r.vCache[at], vCache[at], Math.abs(vCache[at]));
          }
        }
      }
    });

    it(`rmsnorm rows and SwiGLU rows into 16 bits (${dtype})`, () => {
      const m = 33, d = 1536;
      const x = randn(m * d, 3);
      const w = randn(d, 0.2).map((v) => 1 + v);
      const y = K().rmsnormRows({ x, w, m, eps: 1e-6, dtype });
      const ref = new Float64Array(m * d);
      for (let r = 0; r < m; r++) {
        let ss = 0;
        for (let i = 0; i < d; i++) ss += x[r * d + i] ** 2;
        const inv = 1 / Math.sqrt(ss / d + 1e-6);
        for (let i = 0; i < d; i++) ref[r * d + i] = x[r * d + i] * inv * w[i];
      }
      // Split into hi + lo: about 16 significant bits (2^-16 relative for bf16, fp32-level for f16).
      const ys = K().rmsnormRows({ x, w, m, eps: 1e-6, dtype, split: true });
      const splitUlp = dtype === 'bf16' ? 2 ** -16 : 2 ** -21;
      for (let i = 0; i < ref.length; i++) {
        expect(Math.abs(y[i] - ref[i])).toBeLessThanOrEqual(1.01 * halfUlp(dtype) * Math.abs(ref[i]) + 1e-6);
        expect(Math.abs(ys[i] - ref[i])).toBeLessThanOrEqual((splitUlp + 2e-7) * Math.abs(ref[i]) + 1e-7);
      }
      const n = 700;
      const gu = randn(m * 2 * n, 3);
      const act = K().swigluRows({ gu, m, n, dtype });
      const actSplit = K().swigluRows({ gu, m, n, dtype, split: true });
      expect(act).toHaveLength(m * n);
      // f16 has an absolute floor: its smallest subnormal step is 2^-24, so a tiny output (or
      // the lo half of a split one) is off by up to 2^-25 whatever its relative size.
      const floor16 = dtype === 'f16' ? 2 ** -25 : 0;
      for (let r = 0; r < m; r++) {
        for (let i = 0; i < n; i++) {
          const g = gu[r * 2 * n + i], u = gu[r * 2 * n + n + i];
          const want = (g / (1 + Math.exp(-g))) * u;
          expect(Math.abs(act[r * n + i] - want)).toBeLessThanOrEqual(1.01 * halfUlp(dtype) * Math.abs(want) + 1e-5 * Math.abs(u) + floor16);
          expect(Math.abs(actSplit[r * n + i] - want)).toBeLessThanOrEqual((splitUlp + 2e-7) * Math.abs(want) + 1e-5 * Math.abs(u) + floor16);
        }
      }
    });
  }
});
