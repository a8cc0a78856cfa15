/**
 * The synthetic experts' delta size (issue 16 item 14): |scaling B A x| / |x| is the stated
 * relativeDelta (default 5%), checked on random inputs of any direction and measured on the
 * model's real hidden states (the HE input record with DP off is h itself).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PeftAdapter } from '../../src/pipeline/adapter';
import { CsprngGaussian } from '../../src/pipeline/dp';
import { DEFAULT_RELATIVE_DELTA, makeSyntheticExpert, measuredRelativeDelta, writeSyntheticExperts, type ModelShape } from '../../src/pipeline/experts';
import { Model } from '../../src/engine/model';
import { recordHeInputs } from '../helpers/dp-noise';

const SHAPE: ModelShape = { hiddenSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512 };

describe('synthetic expert delta size', () => {
  it('is the stated fraction of the input norm for every projection shape (random inputs)', () => {
    const g = new CsprngGaussian();
    const rho = 0.02 + 0.3 * Math.random();
    const ex = makeSyntheticExpert(SHAPE, { name: 'e', r: 16, alpha: 32, targetModules: ['q_proj', 'v_proj', 'down_proj'], relativeDelta: rho }, 3);
    for (const p of ex.pairs) {
      const xs = Array.from({ length: 64 }, () => g.sample(p.inDim, 1 + 10 * Math.random()));
      const m = measuredRelativeDelta(p, ex.scaling, xs);
      expect(Math.abs(m / rho - 1), `${p.module} ${p.inDim}->${p.outDim}: ${m} vs ${rho}`).toBeLessThan(0.1);
    }
  });

  it('defaults to 5% and writes it into the PEFT folders; refuses nonsense', () => {
    expect(DEFAULT_RELATIVE_DELTA).toBe(0.05);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-experts-'));
    writeSyntheticExperts(root, SHAPE, { seed: 1 });
    const a = PeftAdapter.load(path.join(root, 'banking_expert'));
    const p = a.finalHiddenPair(SHAPE.hiddenSize);
    const g = new CsprngGaussian();
    expect(Math.abs(measuredRelativeDelta(p, a.scaling, Array.from({ length: 64 }, () => g.sample(256, 1))) / 0.05 - 1)).toBeLessThan(0.1);
    expect(fs.readFileSync(path.join(root, 'SYNTHETIC.md'), 'utf8')).toMatch(/banking_expert 0\.05/);
    fs.rmSync(root, { recursive: true, force: true });
    expect(() => makeSyntheticExpert(SHAPE, { name: 'e', r: 4, alpha: 8, targetModules: ['q_proj'], relativeDelta: 0 }, 1)).toThrow(/relativeDelta/);
    expect(() => writeSyntheticExperts(os.tmpdir(), SHAPE, { relativeDelta: Number.NaN })).toThrow(/relativeDelta/);
  });

  it('measured on the model\'s own hidden states: about the stated size', async () => {
    const model = await Model.load('tiny', { seed: 4, backend: 'cpu', contextLength: 256 });
    const context = await model.createContext();
    try {
      const c = model.config;
      const shape = { hiddenSize: c.hiddenSize, numLayers: c.numHiddenLayers, numHeads: c.numAttentionHeads, numKvHeads: c.numKeyValueHeads, headDim: c.headDim, intermediateSize: c.intermediateSize };
      // Over the random A and B, E |scaling B A h|^2 = rho^2 |h|^2 exactly, whatever h's direction;
      // one expert's ratio varies with its draw (r = 32: sd about 13%), so the RMS over 8 experts
      // (8 seeds) must be within 15% of rho (about 3.5 standard errors).
      const rho = 0.05;
      const hs: Float64Array[] = [];
      const ratios: number[] = [];
      for (let seed = 0; seed < 8; seed++) {
        const ex = makeSyntheticExpert(shape, { name: 'banking_expert', r: 32, alpha: 64, targetModules: ['q_proj'], relativeDelta: rho }, 100 + seed);
        const p = ex.finalHiddenPair(c.hiddenSize);
        if (hs.length === 0) {
          const { records } = await recordHeInputs(context, { mode: 'he-lora', finalPair: { rank: p.rank, a: p.a, b: p.b }, scaling: ex.scaling, polyN: 8192 }, 16);
          hs.push(...records.map((r) => r.hidden));
        }
        ratios.push(measuredRelativeDelta(p, ex.scaling, hs));
      }
      const rms = Math.sqrt(ratios.reduce((a, b) => a + b * b, 0) / ratios.length);
      expect(Math.abs(rms / rho - 1), `measured ${ratios.map((x) => x.toFixed(4)).join(', ')}`).toBeLessThan(0.15);
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });
});
