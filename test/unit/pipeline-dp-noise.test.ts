/**
 * DP noise on the HE input, measured (issue 16 item 5): the input the CKKS step encrypts is
 * clip(h, C) + N(0, sigma^2 I) with sigma the calibrated one, and the noise is fresh per token
 * and per request. The generator's test hook (config.recordHeInput) returns the last release's
 * hidden state and HE input; the checks are z-tests at 6 standard errors (test/helpers/dp-noise:
 * false failure below 4e-7 per run). These tests fail if no noise, the wrong sigma or reused
 * noise were added, which the detector test shows on synthetic noise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CsprngGaussian, resolveDp } from '../../src/pipeline/dp';
import { makeSyntheticExpert } from '../../src/pipeline/experts';
import { Model, type ModelContext } from '../../src/engine/model';
import { createGenerator, type GeneratorConfig } from '../../src/pipeline/native';
import { clipL2, expectCalibratedNoise, judgeNoise, noiseOf, recordHeInputs, type HeInputRecord } from '../helpers/dp-noise';

/** Every token's HE input record; releases: one per token (final-hidden) or more (layers). */
async function records(model: ModelContext, config: GeneratorConfig, tokens: number): Promise<HeInputRecord[]> {
  const r = await recordHeInputs(model, config, tokens);
  if (config.placement !== 'layers') expect(r.releases).toBe(tokens);
  else expect(r.releases).toBeGreaterThan(tokens);
  return r.records;
}

describe('the statistical detector (synthetic noise)', () => {
  const d = 64, T = 128, sigma = 7.46;
  const g = new CsprngGaussian();
  it('passes N(0, sigma^2) drawn fresh per token', () => {
    expect(judgeNoise(Array.from({ length: T }, () => g.sample(d, sigma)), sigma).failures).toEqual([]);
  });
  it('fails without noise, with sigma 10% too large or too small, and with noise reused between tokens', () => {
    expect(judgeNoise(Array.from({ length: T }, () => new Float64Array(d)), sigma).failures.length).toBeGreaterThan(0);
    expect(judgeNoise(Array.from({ length: T }, () => g.sample(d, 1.1 * sigma)), sigma).failures.join()).toMatch(/variance/);
    expect(judgeNoise(Array.from({ length: T }, () => g.sample(d, sigma / 1.1)), sigma).failures.join()).toMatch(/variance/);
    const once = g.sample(d, sigma);
    expect(judgeNoise(Array.from({ length: T }, () => once), sigma).failures.join()).toMatch(/correlation/);
  });
});

describe('DP noise on the HE input (CPU)', () => {
  let owner: Model;
  let model: ModelContext;
  let d = 0;
  let pair: { rank: number; a: Float32Array; b: Float32Array };
  beforeAll(async () => {
    owner = await Model.load('tiny', { seed: 11, backend: 'cpu', contextLength: 512 });
    model = await owner.createContext();
    d = owner.config.hiddenSize;
    const a = Float32Array.from({ length: 4 * d }, () => ((Math.random() * 2 - 1) * 1.7) / Math.sqrt(d));
    const b = Float32Array.from({ length: d * 4 }, () => (Math.random() * 2 - 1) * 0.05);
    pair = { rank: 4, a, b };
  });
  afterAll(async () => {
    await model?.dispose();
    await owner?.dispose();
  });

  it('the hook is off unless asked for, and empty before the first release', async () => {
    const g = await createGenerator(model, { mode: 'he-lora', finalPair: pair, polyN: 8192 });
    expect(() => g.lastHeInput()).toThrow(/recordHeInput/);
    await g.dispose();
    const h = await createGenerator(model, { mode: 'he-lora', finalPair: pair, polyN: 8192, recordHeInput: true });
    expect(h.lastHeInput()).toBeNull();
    await h.dispose();
    await expect(createGenerator(model, { mode: 'he-lora', finalPair: pair, polyN: 8192, recordHeInput: 1 as never })).rejects.toThrow(/config.recordHeInput/);
  });

  it('the record is the HE input: h itself without DP, clip(h) exactly with sigma 0', async () => {
    const off = await records(model, { mode: 'he-lora', finalPair: pair, polyN: 8192 }, 4);
    for (const r of off) expect(Array.from(r.input)).toEqual(Array.from(r.hidden));
    const zero = await records(model, { mode: 'he-lora', finalPair: pair, polyN: 8192, dp: { clipNorm: 1, sigma: 0 } }, 4);
    for (const r of zero) {
      const c = clipL2(r.hidden, 1);
      for (let i = 0; i < d; i++) expect(r.input[i]).toBeCloseTo(c[i], 12);
      // the hidden states are longer than C = 1, so the clip is active
      expect(Math.hypot(...r.hidden)).toBeGreaterThan(1);
    }
  });

  it('final-hidden: HE input = clip(h, 1) + N(0, sigma^2) at the calibrated sigma (analytic, epsilon 1), fresh per token', async () => {
    const dp = resolveDp({ mechanism: 'analytic', epsilon: 1, delta: 1e-5 })!;
    const recs = await records(model, { mode: 'he-lora', finalPair: pair, polyN: 8192, dp: { clipNorm: dp.clipNorm, sigma: dp.sigma } }, 128);
    expectCalibratedNoise(recs.map((r) => noiseOf(r, dp.clipNorm)), dp.sigma, 'CPU final-hidden, analytic epsilon 1');
  });

  it("the original's calibration (sigma 4.8448) and a small sigma, other packings", async () => {
    const orig = resolveDp({ mechanism: 'original', epsilon: 1 })!;
    expect(orig.sigma).toBeCloseTo(4.8448, 4);
    const recs = await records(model, { mode: 'he-lora', finalPair: pair, packing: 'replicated-slots', polyN: 8192, dp: { clipNorm: 1, sigma: orig.sigma } }, 128);
    expectCalibratedNoise(recs.map((r) => noiseOf(r, 1)), orig.sigma, 'CPU final-hidden, original calibration');
    const small = await records(model, { mode: 'he-lora', finalPair: pair, packing: 'rotations', polyN: 8192, dp: { clipNorm: 2, sigma: 0.05 } }, 128);
    expectCalibratedNoise(small.map((r) => noiseOf(r, 2)), 0.05, 'CPU final-hidden, sigma 0.05, C = 2');
  });

  it('layers placement: the input of the last hooked projection is clip(x) + noise too', async () => {
    const cfg = owner.config;
    const shape = { hiddenSize: cfg.hiddenSize, numLayers: cfg.numHiddenLayers, numHeads: cfg.numAttentionHeads, numKvHeads: cfg.numKeyValueHeads, headDim: cfg.headDim, intermediateSize: cfg.intermediateSize };
    const expert = makeSyntheticExpert(shape, { name: 'banking_expert', r: 4, alpha: 8, targetModules: ['q_proj'] }, 5);
    const pairs = expert.pairs.map((p) => ({ rank: p.rank, a: p.a, b: p.b, layer: p.layer, module: p.module, underHe: true }));
    const recs = await records(model, { mode: 'he-lora', placement: 'layers', pairs, scaling: expert.scaling, packing: 'coefficients', polyN: 8192, dp: { clipNorm: 1, sigma: 2 } }, 64);
    expectCalibratedNoise(recs.map((r) => noiseOf(r, 1)), 2, 'CPU layers (q_proj of the last layer)');
  });

  it('fresh per request: two requests with the same prompt draw independent noise', async () => {
    const cfg: GeneratorConfig = { mode: 'he-lora', finalPair: pair, polyN: 8192, dp: { clipNorm: 1, sigma: 3 } };
    const a = noiseOf((await records(model, cfg, 1))[0], 1);
    const b = noiseOf((await records(model, cfg, 1))[0], 1);
    // the first token's hidden state is the same in both requests (same prompt, no noise before it)
    expectCalibratedNoise([a, b], 3, 'CPU, token 0 of two requests');
  });
});
