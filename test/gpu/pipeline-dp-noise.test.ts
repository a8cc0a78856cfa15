/**
 * DP noise on the HE input on the GPU (issue 16 item 5): the device-resident step (noise drawn
 * by the device's ChaCha20 stream, input prepared in device memory) and the per-op CUDA path
 * both encrypt clip(h, C) + N(0, sigma^2 I) at the calibrated sigma, fresh per token and per
 * request. Same z-tests as the CPU test (test/helpers/dp-noise: 6 standard errors, false failure
 * below 2e-6 for the file). The record comes from config.recordHeInput (a synchronising copy).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDp } from '../../src/pipeline/dp';
import { Model, type ModelContext } from '../../src/engine/model';
import { type GeneratorConfig } from '../../src/pipeline/native';
import { clipL2, expectCalibratedNoise, noiseOf, recordHeInputs, type HeInputRecord } from '../helpers/dp-noise';
import { noGpu } from '../helpers/gpu';

/** Every token's HE input record, on the expected CUDA path, one release per token. */
async function records(model: ModelContext, config: GeneratorConfig, tokens: number, heBackend: string): Promise<HeInputRecord[]> {
  const r = await recordHeInputs(model, config, tokens);
  expect(r.heBackend).toBe(heBackend);
  expect(r.releases).toBe(tokens);
  return r.records;
}

describe.skipIf(noGpu)('DP noise on the HE input (CUDA)', () => {
  let owner: Model;
  let big: ModelContext;
  let pair: { rank: number; a: Float32Array; b: Float32Array };
  const d = 1536;
  beforeAll(async () => {
    owner = await Model.load('qwen2.5-1.5b-shape', { numLayers: 1, seed: 2, backend: 'cuda', contextLength: 256 });
    big = await owner.createContext();
    const a = Float32Array.from({ length: 32 * d }, () => ((Math.random() * 2 - 1) * 1.7) / Math.sqrt(d));
    const b = Float32Array.from({ length: d * 32 }, () => (Math.random() * 2 - 1) * 0.01);
    pair = { rank: 32, a, b };
  });
  afterAll(async () => {
    await big?.dispose();
    await owner?.dispose();
  });

  const paths = [
    { name: 'resident', extra: { packing: 'coefficients', decrypt: 'batched' } as Partial<GeneratorConfig>, heBackend: 'cuda-resident' },
    { name: 'per-op', extra: { packing: 'coefficients', decrypt: 'batched', resident: false } as Partial<GeneratorConfig>, heBackend: 'cuda' },
  ];

  for (const p of paths) {
    it(`${p.name}: the record is the HE input (h without DP, clip(h) with sigma 0)`, async () => {
      const off = await records(big, { mode: 'he-lora', finalPair: pair, polyN: 16384, ...p.extra }, 3, p.heBackend);
      for (const r of off) expect(Array.from(r.input)).toEqual(Array.from(r.hidden));
      const zero = await records(big, { mode: 'he-lora', finalPair: pair, polyN: 16384, ...p.extra, dp: { clipNorm: 1, sigma: 0 } }, 3, p.heBackend);
      for (const r of zero) {
        const c = clipL2(r.hidden, 1);
        let e = 0;
        for (let i = 0; i < d; i++) e = Math.max(e, Math.abs(r.input[i] - c[i]));
        expect(e).toBeLessThan(1e-12);
        expect(Math.hypot(...r.hidden)).toBeGreaterThan(1);
      }
    });

    it(`${p.name}: HE input = clip(h, 1) + N(0, sigma^2), analytic epsilon 1 and the original's sigma, fresh per token and per request`, async () => {
      const dp = resolveDp({ mechanism: 'analytic', epsilon: 1 })!;
      const cfg: GeneratorConfig = { mode: 'he-lora', finalPair: pair, polyN: 16384, ...p.extra, dp: { clipNorm: dp.clipNorm, sigma: dp.sigma } };
      const recs = await records(big, cfg, 32, p.heBackend);
      expectCalibratedNoise(recs.map((r) => noiseOf(r, 1)), dp.sigma, `CUDA ${p.name}, analytic epsilon 1`);
      const orig = resolveDp({ mechanism: 'original', epsilon: 1 })!;
      const o = await records(big, { ...cfg, dp: { clipNorm: 1, sigma: orig.sigma } }, 32, p.heBackend);
      expectCalibratedNoise(o.map((r) => noiseOf(r, 1)), orig.sigma, `CUDA ${p.name}, original sigma`);
      // a second request with the same prompt: token 0 has the same h, independent noise
      const again = await records(big, cfg, 1, p.heBackend);
      expectCalibratedNoise([noiseOf(recs[0], 1), noiseOf(again[0], 1)], dp.sigma, `CUDA ${p.name}, token 0 of two requests`);
    });
  }
});
