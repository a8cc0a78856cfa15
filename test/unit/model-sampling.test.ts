/**
 * Sampling: the engine's sampler (sampling.h) against a float64 TypeScript implementation of the
 * documented rule, distribution checks with stratified draws (deterministic, so the tolerances are
 * tight), top-k / top-p never leaving their sets, and seeded reproducibility through a model.
 */
import { describe, expect, it } from 'vitest';

import { Model, sampleToken, samplingUniform } from '../../src/engine/model';
import type { SamplingOptions } from '../../src/engine/model';

let state = 12345;
function rand(): number {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 2 ** 32;
}
function randomLogits(n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rand() - 0.5) * 2 * scale);
}

/** The documented rule, written independently in float64. */
function reference(logits: Float32Array, o: Required<SamplingOptions>, u: number): number {
  const n = logits.length;
  const ids = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  if (o.temperature <= 0 || o.topK === 1) return ids[0];
  const k = o.topK > 0 ? Math.min(o.topK, n) : n;
  const kept = ids.slice(0, k);
  const zmax = logits[kept[0]] / o.temperature;
  const w = kept.map((id) => Math.exp(logits[id] / o.temperature - zmax));
  const total = w.reduce((a, b) => a + b, 0);
  let cut = k;
  let mass = total;
  if (o.topP < 1) {
    let c = 0;
    for (let i = 0; i < k; i++) {
      c += w[i];
      if (c >= o.topP * total) {
        cut = i + 1;
        mass = c;
        break;
      }
    }
  }
  let c = 0;
  for (let i = 0; i < cut; i++) {
    c += w[i];
    if (c > u * mass) return kept[i];
  }
  return kept[cut - 1];
}

/** Ids the top-k/top-p rules allow, from the float64 reference. */
function allowed(logits: Float32Array, o: Required<SamplingOptions>): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < 2000; i++) out.add(reference(logits, o, (i + 0.5) / 2000));
  return out;
}

const full = (o: SamplingOptions): Required<SamplingOptions> => ({ temperature: 0, topK: 0, topP: 1, ...o });

describe('sampling', () => {
  it('greedy picks the argmax, the lowest id on ties, whatever the draw', () => {
    const l = Float32Array.from([0.5, 2, -1, 2, 1.9]);
    expect(sampleToken(l, {}, 0.99)).toBe(1);
    expect(sampleToken(l, { temperature: 0.7, topK: 1 }, 0.5)).toBe(1);
  });

  it('agrees with the float64 reference on random logits, options and draws', () => {
    const settings: SamplingOptions[] = [
      { temperature: 1 }, { temperature: 0.7, topK: 40 }, { temperature: 1.3, topP: 0.9 },
      { temperature: 0.8, topK: 20, topP: 0.8 }, { temperature: 2, topK: 300 }, { temperature: 0.5, topP: 0.5 },
    ];
    let disagreements = 0;
    for (let trial = 0; trial < 300; trial++) {
      const logits = randomLogits(trial % 2 ? 5000 : 300, 1 + (trial % 5));
      const o = full(settings[trial % settings.length]);
      const u = rand();
      if (sampleToken(logits, o, u) !== reference(logits, o, u)) disagreements++;
    }
    // Float32 vs float64 accumulation can only disagree where u falls on a boundary: ~never.
    expect(disagreements).toBeLessThanOrEqual(1);
  });

  it('draws each token with its softmax probability (stratified draws)', () => {
    const logits = Float32Array.from([1.0, 0.2, -0.5, 2.0, 0.0, -3.0]);
    const T = 0.8;
    const z = Array.from(logits, (x) => Math.exp(x / T));
    const zs = z.reduce((a, b) => a + b, 0);
    const N = 20000;
    const counts = new Array<number>(logits.length).fill(0);
    for (let i = 0; i < N; i++) counts[sampleToken(logits, { temperature: T }, (i + 0.5) / N)]++;
    counts.forEach((c, i) => expect(Math.abs(c / N - z[i] / zs)).toBeLessThan(2 / N + 1e-6));
  });

  it('samples only inside the top-k and top-p sets, and covers them', () => {
    const logits = randomLogits(2000, 4);
    for (const o of [full({ temperature: 1, topK: 10 }), full({ temperature: 1, topP: 0.3 }), full({ temperature: 1.5, topK: 50, topP: 0.6 })]) {
      const set = allowed(logits, o);
      if (o.topK > 0) expect(set.size).toBeLessThanOrEqual(o.topK);
      const seen = new Set<number>();
      for (let i = 0; i < 3000; i++) seen.add(sampleToken(logits, o, rand()));
      for (const id of seen) expect(set.has(id), `id ${id} outside the allowed set`).toBe(true);
      expect(seen.size).toBeGreaterThan(set.size * 0.8);
    }
    // The nucleus by hand: probabilities 0.5, 0.3, 0.2 with top_p 0.6 keep the first two only.
    const l = Float32Array.from([Math.log(0.3), Math.log(0.5), Math.log(0.2)]);
    const ids = new Set(Array.from({ length: 1000 }, (_, i) => sampleToken(l, { temperature: 1, topP: 0.6 }, (i + 0.5) / 1000)));
    expect([...ids].sort()).toEqual([0, 1]);
  });

  it('refuses invalid options and draws', () => {
    const l = Float32Array.from([1, 2, 3]);
    expect(() => sampleToken(l, { temperature: -1 }, 0.5)).toThrow(/temperature must be in \[0, 100\]/);
    expect(() => sampleToken(l, { topP: 0 }, 0.5)).toThrow(/topP must be in \(0, 1\]/);
    expect(() => sampleToken(l, { topP: 1.5 }, 0.5)).toThrow(RangeError);
    expect(() => sampleToken(l, { topK: -2 }, 0.5)).toThrow(RangeError);
    expect(() => sampleToken(l, { temperature: 1 }, 1)).toThrow(/u must be in \[0, 1\)/);
    expect(() => sampleToken(Float32Array.from([1, NaN]), { temperature: 1 }, 0.5)).toThrow(RangeError);
  });

  it('is reproducible from the seed through a model, and the seed matters', async () => {
    const m = await Model.load('tiny', { backend: 'cpu', contextLength: 64 });
    try {
      const opts = { maxNewTokens: 24, temperature: 1.0, topK: 100, topP: 0.95, stopAtEos: false };
      const a = await m.generateIds([1, 2, 3], { ...opts, seed: 7 });
      const b = await m.generateIds([1, 2, 3], { ...opts, seed: 7 });
      const c = await m.generateIds([1, 2, 3], { ...opts, seed: 8 });
      expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
      expect(Array.from(a.tokens)).not.toEqual(Array.from(c.tokens));
      // The iterator and the native loop draw the same numbers.
      const viaIterator = await m.generateText([1, 2, 3], { ...opts, seed: 7 });
      expect(viaIterator.ids).toEqual(Array.from(a.tokens));
      // And the k-th draw is samplingUniform(seed, k): replay the first token by hand.
      m.reset();
      m.setSamplingSeed(7);
      const logits = await m.forward([1, 2, 3]);
      expect(sampleToken(logits, opts, samplingUniform(7, 0))).toBe(a.tokens[0]);
    } finally {
      m.dispose();
    }
  });
});
