// Live measurements say why they are unavailable; generation runs collect tokens from a service.
import { describe, expect, it } from 'vitest';
import { GenerationRun, generate, liveCkksOps, liveHeLora } from '../../src/lab/live';
import { Lab } from '../../src/lab/lab';
import { measured } from '../../src/lab/provenance';
import type { GenerationService, GenerationSummary, TokenEvent } from '../../src/pipeline/types';

const prov = measured('Test CPU', '2026-11-26');

describe('live measurements', () => {
  it('without an engine, return the reason instead of numbers', async () => {
    const host = { backend: null, engineError: 'not built', provenance: () => prov, sweep: async () => { throw new Error('must not run'); } };
    const a = await liveCkksOps(host as never);
    const b = await liveHeLora(host as never);
    expect(a.available).toBe(false);
    expect(a.reason).toBe('no native engine (not built)');
    expect(a.series).toEqual([]);
    expect(a.table.numRows()).toBe(0);
    expect(b.available).toBe(false);
    expect(b.series).toEqual([]);
  });

  it('on this build, either measure or say which part is missing', async () => {
    const lab = await Lab.open({ root: undefined });
    const res = await lab.live.ckksOps({ polyN: [8192], ops: ['encode'], iterations: 1 });
    if (res.available) {
      expect(res.series[0].rows[0].poly_n).toBe(8192);
      expect(res.series[0].rows[0].us).toBeGreaterThan(0);
      expect(res.series[0].provenance.kind).toBe('measured');
    } else {
      expect(res.reason!.length).toBeGreaterThan(0);
      expect(res.series).toEqual([]);
    }
  }, 120_000);
});

function fakeService(stages: Array<Record<string, number>>): GenerationService {
  return {
    async *generate(prompt: string): AsyncGenerator<TokenEvent, GenerationSummary> {
      let text = '';
      for (let i = 0; i < stages.length; i++) {
        text += `t${i}`;
        yield { index: i, id: 100 + i, text: `t${i}`, stages: stages[i], totalMs: Object.values(stages[i]).reduce((a, b) => a + b, 0) };
      }
      return { text, tokens: stages.length, tokPerS: 10, mode: 'he-lora', stageMedians: {}, options: { maxTokens: stages.length } } as GenerationSummary;
    },
    experts: () => [],
    describe: () => ({ model: 'fake', backend: 'cpu', hiddenSize: 8, vocabSize: 16, polyN: 8192 }),
    dispose: async () => {},
  };
}

describe('generation runs', () => {
  it('collect the streamed tokens, with per-stage medians and a stacked-bar series', async () => {
    const stages = Array.from({ length: 5 }, () => ({ forward: Math.random(), encrypt: Math.random() }));
    const run = await generate(fakeService(stages), 'hi', {}, prov);
    expect(run).toBeInstanceOf(GenerationRun);
    expect(run.text).toBe('t0t1t2t3t4');
    expect(run.records().numRows()).toBe(5);
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[2];
    const b = Object.fromEntries((run.breakdown().objects() as Array<{ stage: string; median_ms: number }>).map((r) => [r.stage, r.median_ms]));
    expect(b.forward).toBe(med(stages.map((s) => s.forward)));
    expect(b.encrypt).toBe(med(stages.map((s) => s.encrypt)));
    expect(run.stageSeries().provenance).toBe(prov);
  });

  it('lab.generate uses an injected service', async () => {
    const lab = await Lab.open();
    lab.useService(fakeService([{ forward: 1 }]));
    const run = await lab.generate('What is a savings account?', { maxTokens: 1 });
    expect(run.tokens).toHaveLength(1);
    expect(run.provenance.kind).toBe('measured');
    await expect(lab.generate(5 as never)).rejects.toThrow(TypeError);
  });
});

describe('DP helpers', () => {
  it('sigma rows: the original calibration is the classic formula at half the replace-one sensitivity; analytic is smaller', async () => {
    const { sigmaRows } = await import('../../src/lab/dp');
    const eps = [0.5, 1, 3 * Math.random() + 0.1];
    const rows = sigmaRows({ epsilons: eps });
    for (const e of eps) {
      const get = (m: string) => rows.find((r) => r.epsilon === e && r.mechanism === m)!.sigma;
      expect(get('classic')).toBeCloseTo(2 * get('original'), 9);
      expect(get('analytic')).toBeLessThan(get('classic'));
      // the classic formula, computed directly
      expect(get('classic')).toBeCloseTo((2 * Math.sqrt(2 * Math.log(1.25 / 1e-5))) / e, 9);
    }
    expect(rows.find((r) => r.epsilon === 1 && r.mechanism === 'original')!.sigma).toBeCloseTo(4.8448, 3);
    // the classic formula is flagged outside epsilon < 1; analytic is valid everywhere
    for (const r of rows) expect(r.in_range, `${r.mechanism} ${r.epsilon}`).toBe(r.mechanism === 'analytic' || r.epsilon < 1);
  });

  it('token agreement counts equal positions over the reference', async () => {
    const { tokenAgreement } = await import('../../src/lab/live');
    expect(tokenAgreement([1, 2, 3, 4], [1, 9, 3])).toBe(0.5);
    expect(tokenAgreement([], [1])).toBe(1);
  });
});
