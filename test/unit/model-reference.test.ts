/**
 * The CPU decoder against an independent float64 implementation written here from the Qwen2
 * definition, on the `tiny` preset; and the synthetic-weight generator against its documented
 * formula (synthetic.h), re-implemented with BigInt.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { Model, modelConfig } from '../../src/engine/model';
import { native } from '../../src/engine/native';

type Weights = Record<string, { shape: number[]; data: Float32Array }>;

// ---- the generator, from its documentation ----
const M64 = (1n << 64n) - 1n;
function mix64(x: bigint): bigint {
  x = (x + 0x9e3779b97f4a7c15n) & M64;
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M64;
  return x ^ (x >> 31n);
}
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bf16Round(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const r = (u + 0x7fff + ((u >>> 16) & 1)) >>> 0;
  u32[0] = (r >>> 16) << 16;
  return f32[0];
}
function synthetic(seed: bigint, tensorId: number, index: number, center: number, halfWidth: number): number {
  const h = mix64((mix64(seed ^ 0x7e5a5afen) + (BigInt(tensorId) << 40n) + BigInt(index)) & M64);
  const u = Number(h >> 40n) * 2 ** -23 - 1;
  return bf16Round(Math.fround(Math.fround(halfWidth) * u + center)); // fmaf: exact product, one rounding
}

// ---- Qwen2 in float64 ----
function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * w[i]);
}
function linear(w: { shape: number[]; data: Float32Array }, x: Float64Array, bias?: Float32Array): Float64Array {
  const [out, inp] = w.shape;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = bias ? bias[o] : 0;
    for (let i = 0; i < inp; i++) s += w.data[o * inp + i] * x[i];
    y[o] = s;
  }
  return y;
}

class ReferenceQwen2 {
  private keys: Float64Array[][] = [];
  private values: Float64Array[][] = [];
  constructor(
    private readonly w: Weights,
    private readonly c: ReturnType<typeof modelConfig>,
  ) {
    for (let l = 0; l < c.numHiddenLayers; l++) {
      this.keys.push([]);
      this.values.push([]);
    }
  }
  private rope(v: Float64Array, pos: number): void {
    const D = this.c.headDim;
    const half = D / 2;
    for (let h = 0; h < v.length / D; h++) {
      for (let i = 0; i < half; i++) {
        const angle = pos * Math.pow(this.c.ropeTheta, (-2 * i) / D);
        const a = v[h * D + i];
        const b = v[h * D + i + half];
        v[h * D + i] = a * Math.cos(angle) - b * Math.sin(angle);
        v[h * D + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  }
  step(token: number): Float64Array {
    const { c, w } = this;
    const d = c.hiddenSize;
    const D = c.headDim;
    const pos = this.keys[0].length;
    let x = Float64Array.from(w['model.embed_tokens.weight'].data.subarray(token * d, (token + 1) * d));
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const p = `model.layers.${l}.`;
      const xn = rmsNorm(x, w[p + 'input_layernorm.weight'].data, c.rmsNormEps);
      const q = linear(w[p + 'self_attn.q_proj.weight'], xn, w[p + 'self_attn.q_proj.bias'].data);
      const k = linear(w[p + 'self_attn.k_proj.weight'], xn, w[p + 'self_attn.k_proj.bias'].data);
      const v = linear(w[p + 'self_attn.v_proj.weight'], xn, w[p + 'self_attn.v_proj.bias'].data);
      this.rope(q, pos);
      this.rope(k, pos);
      this.keys[l].push(k);
      this.values[l].push(v);
      const attn = new Float64Array(c.numAttentionHeads * D);
      const group = c.numAttentionHeads / c.numKeyValueHeads;
      for (let h = 0; h < c.numAttentionHeads; h++) {
        const g = Math.floor(h / group);
        const scores = this.keys[l].map((kj) => {
          let s = 0;
          for (let i = 0; i < D; i++) s += q[h * D + i] * kj[g * D + i];
          return s / Math.sqrt(D);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        this.values[l].forEach((vj, j) => {
          for (let i = 0; i < D; i++) attn[h * D + i] += (e[j] / z) * vj[g * D + i];
        });
      }
      const o = linear(w[p + 'self_attn.o_proj.weight'], attn);
      x = x.map((v2, i) => v2 + o[i]);
      const xn2 = rmsNorm(x, w[p + 'post_attention_layernorm.weight'].data, c.rmsNormEps);
      const gate = linear(w[p + 'mlp.gate_proj.weight'], xn2);
      const up = linear(w[p + 'mlp.up_proj.weight'], xn2);
      const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
      const down = linear(w[p + 'mlp.down_proj.weight'], act);
      x = x.map((v2, i) => v2 + down[i]);
    }
    const h = rmsNorm(x, w['model.norm.weight'].data, c.rmsNormEps);
    return linear(w[c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'], h);
  }
}

describe('tiny preset against float64 references', () => {
  const seed = 21n;
  let weights: Weights;
  const config = modelConfig('tiny');
  beforeAll(() => {
    weights = native().syntheticWeights('tiny', seed) as Weights;
  });

  it('generates every weight by the documented formula', () => {
    const L = config.numHiddenLayers;
    const d = config.hiddenSize;
    const layerNames = [
      'self_attn.q_proj.weight', 'self_attn.q_proj.bias', 'self_attn.k_proj.weight', 'self_attn.k_proj.bias',
      'self_attn.v_proj.weight', 'self_attn.v_proj.bias', 'self_attn.o_proj.weight', 'mlp.gate_proj.weight',
      'mlp.up_proj.weight', 'mlp.down_proj.weight', 'input_layernorm.weight', 'post_attention_layernorm.weight',
    ];
    // Scales in float32 arithmetic, as synthetic.h computes them.
    const F = Math.fround;
    const std = (s: number) => [0, F(F(Math.sqrt(3)) * F(s))] as const;
    const linear = (fanIn: number) => std(F(1 / F(Math.sqrt(fanIn))));
    const scaleOf = (t: number): readonly [number, number] => {
      if ([0, 2, 4, 7, 8].includes(t)) return linear(d);
      if ([1, 3, 5].includes(t)) return std(0.02);
      if (t === 6) return linear(config.numAttentionHeads * config.headDim);
      if (t === 9) return linear(config.intermediateSize);
      return [1, F(0.1)];
    };
    const check = (name: string, id: number, [center, half]: readonly [number, number]) => {
      const t = weights[name];
      expect(t, name).toBeDefined();
      const n = t.data.length;
      for (let i = 0; i < n; i += n > 5000 ? 7 : 1) {
        expect(t.data[i], `${name}[${i}]`).toBe(synthetic(seed, id, i, center, half));
      }
    };
    check('model.embed_tokens.weight', 0, std(0.02));
    for (let l = 0; l < L; l++) layerNames.forEach((n, t) => check(`model.layers.${l}.${n}`, 1 + 16 * l + t, scaleOf(t)));
    check('model.norm.weight', 1 + 16 * L, [1, Math.fround(0.1)]);
    check('lm_head.weight', 2 + 16 * L, std(0.02));
  });

  it('computes the logits of a float64 Qwen2 at every position (KV cache over 40 tokens)', async () => {
    const ref = new ReferenceQwen2(weights, config);
    const model = await Model.load('tiny', { backend: 'cpu', seed, contextLength: 64 });
    try {
      let s = 99;
      let worst = 0;
      for (let t = 0; t < 40; t++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const token = s % config.vocabSize;
        const expected = ref.step(token);
        const got = await model.forward([token]);
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - expected[i]));
      }
      expect(worst).toBeLessThan(1e-4);
    } finally {
      model.dispose();
    }
  });
});
