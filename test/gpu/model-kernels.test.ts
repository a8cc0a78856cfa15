/**
 * The CUDA decoder kernels, one by one, against float64 references on fresh random inputs
 * (the seed is printed so a failure can be replayed). Outputs are poisoned with NaN before each
 * run by the native side, so an unwritten element fails the comparison.
 */
import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/engine/native';
import { noGpu } from '../helpers/gpu';
import { freshSeed, maxRelErr, rng, uniformSampler } from '../helpers/numeric';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const K = (): any => native().modelCudaKernels;

const rand = rng(freshSeed('model-kernels'));
const randn = uniformSampler(rand);

type Epilogue = 'store' | 'accumulate' | 'swiglu';
function gemvReference(
  w: Float32Array, n: number, k: number, x: Float32Array, epi: Epilogue,
  normW?: Float32Array, eps = 1e-6, bias?: Float32Array, y0?: Float32Array,
): Float64Array {
  const xs = new Float64Array(k);
  let r = 1;
  if (normW) {
    let ss = 0;
    for (let i = 0; i < k; i++) ss += x[i] * x[i];
    r = 1 / Math.sqrt(ss / k + eps);
  }
  for (let i = 0; i < k; i++) xs[i] = normW ? x[i] * r * normW[i] : x[i];
  const dot = (row: number) => {
    let s = 0;
    for (let i = 0; i < k; i++) s += w[row * k + i] * xs[i];
    return s;
  };
  const y = new Float64Array(n);
  for (let o = 0; o < n; o++) {
    if (epi === 'swiglu') {
      const g = dot(o);
      y[o] = (g / (1 + Math.exp(-g))) * dot(n + o);
    } else if (epi === 'accumulate') {
      y[o] = y0![o] + dot(o);
    } else {
      y[o] = dot(o) + (bias ? bias[o] : 0);
    }
  }
  return y;
}

describe.skipIf(noGpu)('CUDA model kernels vs float64 references', () => {
  const gemvShapes: Array<[number, number, string]> = [
    [2048, 1536, 'qkv of the 1.5B shape'],
    [1536, 8960, 'down_proj of the 1.5B shape'],
    [896, 4864, 'down_proj of the 0.5B shape'],
    [301, 1536, 'rows not a multiple of the group'],
    [64, 64, 'tiny'],
    [37, 20, 'k % 8 != 0 (generic kernel)'],
    [9, 17000, 'k beyond the vectorised kernel (generic kernel)'],
  ];
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const [n, k, what] of gemvShapes) {
      for (const epi of ['store', 'accumulate', 'swiglu'] as const) {
        it(`gemv ${dtype} ${epi} ${n}x${k} (${what})`, () => {
          const rows = epi === 'swiglu' ? 2 * n : n;
          const w = randn(rows * k, 1 / Math.sqrt(k));
          const x = randn(k);
          const useNorm = epi !== 'accumulate';
          const normW = useNorm ? randn(k, 0.3).map((v) => 1 + v) : undefined;
          const bias = epi === 'store' ? randn(n, 0.1) : undefined;
          const y0 = epi === 'accumulate' ? randn(n) : undefined;
          const r = K().gemv({ w, dtype, n, k, x, normW, eps: 1e-6, bias, y0, epilogue: epi });
          expect(r.y).toHaveLength(n);
          const ref = gemvReference(r.w, n, k, x, epi, normW, 1e-6, bias, y0);
          expect(maxRelErr(r.y, ref)).toBeLessThan(2e-5);
        });
      }
    }
  }

  function attentionReference(
    r: { kCache: Float32Array; vCache: Float32Array; rope: Float32Array },
    qkv: Float32Array, pos: number, heads: number, kv: number, hd: number, ctx: number,
  ): Float64Array {
    const half = hd / 2;
    const out = new Float64Array(heads * hd);
    const group = heads / kv;
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const q = new Float64Array(hd);
      for (let i = 0; i < half; i++) {
        const c = r.rope[2 * (pos * half + i)], s = r.rope[2 * (pos * half + i) + 1];
        const q0 = qkv[h * hd + i], q1 = qkv[h * hd + i + half];
        q[i] = q0 * c - q1 * s;
        q[i + half] = q1 * c + q0 * s;
      }
      const scores = new Float64Array(pos + 1);
      let m = -Infinity;
      for (let p = 0; p <= pos; p++) {
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[d] * r.kCache[(g * ctx + p) * hd + d];
        scores[p] = s / Math.sqrt(hd);
        m = Math.max(m, scores[p]);
      }
      let l = 0;
      for (let p = 0; p <= pos; p++) {
        scores[p] = Math.exp(scores[p] - m);
        l += scores[p];
      }
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let p = 0; p <= pos; p++) acc += scores[p] * r.vCache[(g * ctx + p) * hd + d];
        out[h * hd + d] = acc / l;
      }
    }
    return out;
  }

  const attnShapes: Array<[number, number, number, number, number[]]> = [
    [12, 2, 128, 600, [0, 5, 127, 128, 200, 255, 256, 299, 511, 512, 599]],
    [14, 2, 64, 140, [0, 63, 139]],
    [4, 4, 16, 40, [0, 17, 39]],
    [2, 1, 6, 9, [8]],
  ];
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const [heads, kv, hd, ctx, positions] of attnShapes) {
      it(`attention ${dtype} heads ${heads}/${kv} head_dim ${hd} context ${ctx} at ${positions.join(',')}`, () => {
        for (const pos of positions) {
          const qkv = randn((heads + 2 * kv) * hd, 2);
          const kCache = randn(kv * ctx * hd, 2);
          const vCache = randn(kv * ctx * hd);
          const r = K().attention({ qkv, kCache, vCache, dtype, ropeTheta: 10000, pos, heads, kvHeads: kv, headDim: hd, context: ctx });
          // The new k/v landed at pos (rotated, rounded); every other slot is untouched.
          const half = hd / 2;
          const tol = dtype === 'f16' ? 2e-3 : 1.6e-2;
          for (let g = 0; g < kv; g++) {
            for (let i = 0; i < half; i++) {
              const c = r.rope[2 * (pos * half + i)], s = r.rope[2 * (pos * half + i) + 1];
              const base = (heads + g) * hd;
              const k0 = qkv[base + i], k1 = qkv[base + i + half];
              const at = (g * ctx + pos) * hd;
              expect(Math.abs(r.kCache[at + i] - (k0 * c - k1 * s))).toBeLessThanOrEqual(tol * (Math.abs(k0) + Math.abs(k1)) + 1e-6);
              expect(Math.abs(r.kCache[at + i + half] - (k1 * c + k0 * s))).toBeLessThanOrEqual(tol * (Math.abs(k0) + Math.abs(k1)) + 1e-6);
            }
            for (let i = 0; i < hd; i++) {
              const v = qkv[(heads + kv + g) * hd + i];
              expect(Math.abs(r.vCache[(g * ctx + pos) * hd + i] - v)).toBeLessThanOrEqual(tol * Math.abs(v) + 1e-6);
            }
            const other = (pos + 1) % ctx;
            if (other !== pos) {
              for (let i = 0; i < hd; i++) {
                const at = (g * ctx + other) * hd + i;
                expect(Math.abs(r.kCache[at] - kCache[at])).toBeLessThanOrEqual(tol * Math.abs(kCache[at]) + 1e-6);
              }
            }
          }
          const ref = attentionReference(r, qkv, pos, heads, kv, hd, ctx);
          expect(maxRelErr(r.out, ref)).toBeLessThan(2e-4);
        }
      });
    }
  }

  it('rmsnorm', () => {
    for (const d of [64, 896, 1536, 1000]) {
      const x = randn(d, 3);
      const w = randn(d, 0.2).map((v) => 1 + v);
      const y = K().rmsnorm({ x, w, eps: 1e-6 });
      let ss = 0;
      for (let i = 0; i < d; i++) ss += x[i] * x[i];
      const r = 1 / Math.sqrt(ss / d + 1e-6);
      const ref = Float64Array.from(x, (v, i) => v * r * w[i]);
      expect(maxRelErr(y, ref)).toBeLessThan(1e-5);
    }
  });

  it('embedding gather', () => {
    const d = 96, rows = 50;
    for (const dtype of ['f16', 'bf16'] as const) {
      const table = randn(rows * d, 0.05);
      const tokens = Int32Array.from({ length: 10 }, () => randomInt(0, rows));
      const pos = randomInt(0, 10);
      const r = K().embed({ table, dtype, d, tokens, pos });
      expect(Array.from(r.x)).toEqual(Array.from(r.table.subarray(tokens[pos] * d, tokens[pos] * d + d)));
    }
  });

  it('argmax picks the largest logit, lowest id on ties', () => {
    for (const n of [1, 7, 1000, 151936]) {
      const logits = randn(n, 5);
      const best = randomInt(0, n);
      logits[best] = 100;
      if (n > 10) logits[n - 1] = 100; // a tie after it
      const got = K().argmax(logits);
      expect(got).toBe(n > 10 ? Math.min(best, n - 1) : best);
    }
  });

  const samplingCases = [
    { temperature: 0.7, topK: 0, topP: 1 },
    { temperature: 1, topK: 50, topP: 0.9 },
    { temperature: 1.3, topK: 0, topP: 0.8 },
    { temperature: 0.5, topK: 200, topP: 1 },
    { temperature: 2, topK: 3, topP: 0.5 },
    { temperature: 1, topK: 1, topP: 1 },
  ];
  for (const n of [1000, 151936]) {
    it(`sampling matches the CPU reference sampler token for token (n ${n})`, () => {
      const logits = randn(n, 4);
      // Ties to exercise the (logit desc, id asc) order, and a few dominant tokens.
      for (let i = 0; i < 20; i++) logits[randomInt(0, n)] = logits[randomInt(0, n)];
      for (let i = 0; i < 5; i++) logits[randomInt(0, n)] = 9 + i * 0.01;
      let agree = 0, total = 0;
      for (const opts of samplingCases) {
        for (let t = 0; t < 12; t++) {
          const u = rand();
          const gpu = K().sample({ logits, ...opts, u });
          const cpu = K().cpuSample({ logits, ...opts, u });
          expect(gpu).toBeGreaterThanOrEqual(0);
          expect(gpu).toBeLessThan(n);
          total++;
          if (gpu === cpu) agree++;
          else expect.soft(gpu, `u=${u} ${JSON.stringify(opts)}`).toBe(cpu);
        }
      }
      expect(agree).toBe(total);
    });
  }

  it('synthetic weights on the GPU equal the CPU generator bit for bit', () => {
    const cases = [
      { dtype: 'bf16', count: 100000, seed: 1234n, tensorId: 3, center: 0, halfWidth: 0.044 },
      { dtype: 'f16', count: 100003, seed: 2n ** 63n + 5n, tensorId: 0, center: 0, halfWidth: 0.0346 },
      { dtype: 'f32', count: 4099, seed: 7n, tensorId: 11, center: 1, halfWidth: 0.1 },
    ];
    for (const c of cases) {
      const g = K().synth(c);
      const h = K().cpuSynth(c);
      expect(g).toHaveLength(c.count);
      let diff = 0;
      for (let i = 0; i < c.count; i++) if (!(g[i] === h[i])) diff++;
      expect(diff).toBe(0);
    }
  });

  // ---- plaintext LoRA (lora.cu): y (+)= scaling * B (A x) ----
  function loraReference(a: Float32Array, b: Float32Array, x: Float32Array, rank: number, inDim: number, outDim: number,
    scaling: number, y0?: Float32Array): Float64Array {
    const ax = new Float64Array(rank);
    for (let r = 0; r < rank; r++) {
      let s = 0;
      for (let j = 0; j < inDim; j++) s += a[r * inDim + j] * x[j];
      ax[r] = s;
    }
    const y = new Float64Array(outDim);
    const sc = Math.fround(scaling);
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let r = 0; r < rank; r++) s += b[o * rank + r] * ax[r];
      y[o] = (y0 ? y0[o] : 0) + sc * s;
    }
    return y;
  }
  const loraShapes: Array<[number, number, string]> = [
    [1536, 1536, 'final hidden / q_proj, o_proj of the 1.5B shape'],
    [1536, 256, 'k_proj, v_proj of the 1.5B shape'],
    [1536, 8960, 'gate_proj, up_proj of the 1.5B shape'],
    [8960, 1536, 'down_proj of the 1.5B shape'],
    [37, 5, 'odd, smaller than a block'],
  ];
  for (const rank of [1, 16, 32, 64, 100]) {
    for (const [inDim, outDim, what] of loraShapes) {
      it(`lora_apply rank ${rank} ${inDim} -> ${outDim} (${what}): float64 reference, store and accumulate, deterministic`, () => {
        const a = randn(rank * inDim, 1 / Math.sqrt(inDim));
        const b = randn(outDim * rank, 1 / Math.sqrt(rank));
        const x = randn(inDim);
        const scaling = 2 * rand() + 0.25;
        const delta: Float32Array = K().lora({ a, b, x, rank, inDim, outDim, scaling });
        expect(delta).toHaveLength(outDim);
        expect(maxRelErr(delta, loraReference(a, b, x, rank, inDim, outDim, scaling))).toBeLessThan(1e-5);
        const y0 = randn(outDim, 0.5);
        const y: Float32Array = K().lora({ a, b, x, y0, rank, inDim, outDim, scaling });
        expect(maxRelErr(y, loraReference(a, b, x, rank, inDim, outDim, scaling, y0))).toBeLessThan(1e-5);
        // A fixed reduction order: the same inputs give the same bits.
        const again: Float32Array = K().lora({ a, b, x, rank, inDim, outDim, scaling });
        expect(Buffer.from(again.buffer).equals(Buffer.from(delta.buffer))).toBe(true);
      });
    }
  }

  it('lora_apply: bad shapes and arguments are RangeErrors naming the argument', () => {
    const f = (n: number) => new Float32Array(n);
    const range = (re: RegExp) => expect.objectContaining({ code: 'ERR_TENSAFE_ARG_RANGE', message: expect.stringMatching(re) });
    expect(() => K().lora({ a: f(0), b: f(0), x: f(8), rank: 0, inDim: 8, outDim: 4 })).toThrow(range(/rank must be in \[1, 4096\], got 0/));
    expect(() => K().lora({ a: f(5000), b: f(5000), x: f(1), rank: 5000, inDim: 1, outDim: 1 })).toThrow(range(/rank must be in \[1, 4096\], got 5000/));
    expect(() => K().lora({ a: f(0), b: f(4), x: f(0), rank: 1, inDim: 0, outDim: 4 })).toThrow(range(/in_dim must be in \[1, 1048576\], got 0/));
    expect(() => K().lora({ a: f(8), b: f(0), x: f(8), rank: 1, inDim: 8, outDim: 0 })).toThrow(range(/out_dim must be in \[1, 1048576\], got 0/));
    expect(() => K().lora({ a: f(2 ** 20 + 1), b: f(1), x: f(2 ** 20 + 1), rank: 1, inDim: 2 ** 20 + 1, outDim: 1 })).toThrow(range(/in_dim must be in/));
    // Lengths that do not match the shapes, and a non-finite scaling, are caught by the binding.
    expect(() => K().lora({ a: f(7), b: f(4), x: f(8), rank: 1, inDim: 8, outDim: 4 })).toThrow(/\ba\b/);
    expect(() => K().lora({ a: f(8), b: f(3), x: f(8), rank: 1, inDim: 8, outDim: 4 })).toThrow(/\bb\b/);
    expect(() => K().lora({ a: f(8), b: f(4), x: f(9), rank: 1, inDim: 8, outDim: 4 })).toThrow(/\bx\b/);
    expect(() => K().lora({ a: f(8), b: f(4), x: f(8), y0: f(5), rank: 1, inDim: 8, outDim: 4 })).toThrow(/y0/);
    expect(() => K().lora({ a: f(8), b: f(4), x: f(8), rank: 1, inDim: 8, outDim: 4, scaling: NaN })).toThrow(/scaling/);
  });
});
