import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS, resolveOptions, SEED_PRESETS, validatePipelineOptions } from '../../src/pipeline/options';
import { heMs, recordsTable, stageMedians } from '../../src/pipeline/records';
import type { TokenEvent } from '../../src/pipeline/types';

function expectErr(fn: () => unknown, cls: typeof TypeError | typeof RangeError, re: RegExp) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(cls);
  expect(String((err as Error).message)).toMatch(re);
}

describe('validatePipelineOptions', () => {
  it('accepts a full valid object and returns only the given keys', () => {
    const o = {
      backend: 'cpu', model: 'tiny', mode: 'lora', expert: 'banking_expert', placement: 'layers', packing: 'coefficients',
      decrypt: 'sequential', polyN: 8192, keyOwner: 'server', dp: { mechanism: 'analytic', epsilon: 2, delta: 1e-6, clipNorm: 1, sensitivity: 2, accountant: 'zcdp' },
      maxTokens: 64, timers: false, seedPreset: 'baseline', allowInsecure: true, temperature: 0.7, topK: 40, topP: 0.9, seed: 42,
      lmHead: 'backend', layersUnderHe: [0, 2], encryption: 'public-key',
    };
    expect(validatePipelineOptions(o)).toEqual(o);
    expect(validatePipelineOptions({ mode: 'base' })).toEqual({ mode: 'base' });
    expect(validatePipelineOptions(undefined)).toEqual({});
  });

  it('names the option in every error, TypeError for types, RangeError for values', () => {
    expectErr(() => validatePipelineOptions('x'), TypeError, /options/);
    expectErr(() => validatePipelineOptions({ mode: 'fast' }), RangeError, /'mode'.*'base', 'lora', 'he-lora'.*"fast"/);
    expectErr(() => validatePipelineOptions({ mode: 3 }), TypeError, /'mode'/);
    expectErr(() => validatePipelineOptions({ packing: 'slots' }), RangeError, /'packing'/);
    expectErr(() => validatePipelineOptions({ decrypt: 'parallel' }), RangeError, /'decrypt'/);
    expectErr(() => validatePipelineOptions({ placement: 'first' }), RangeError, /'placement'/);
    expectErr(() => validatePipelineOptions({ polyN: 10000 }), RangeError, /'polyN'.*16384/);
    expectErr(() => validatePipelineOptions({ polyN: '16384' }), TypeError, /'polyN'/);
    expectErr(() => validatePipelineOptions({ maxTokens: 0 }), RangeError, /'maxTokens'.*\[1, 2048\]/);
    expectErr(() => validatePipelineOptions({ maxTokens: 1.5 }), RangeError, /'maxTokens'/);
    expectErr(() => validatePipelineOptions({ temperature: -0.1 }), RangeError, /'temperature'/);
    expectErr(() => validatePipelineOptions({ temperature: NaN }), RangeError, /'temperature'/);
    expectErr(() => validatePipelineOptions({ topK: 201 }), RangeError, /'topK'/);
    expectErr(() => validatePipelineOptions({ topP: 0 }), RangeError, /'topP'/);
    expectErr(() => validatePipelineOptions({ seed: -1 }), RangeError, /'seed'/);
    expectErr(() => validatePipelineOptions({ timers: 'yes' }), TypeError, /'timers'/);
    expectErr(() => validatePipelineOptions({ allowInsecure: 1 }), TypeError, /'allowInsecure'/);
    expectErr(() => validatePipelineOptions({ backend: 'gpu' }), RangeError, /'backend'/);
    expectErr(() => validatePipelineOptions({ keyOwner: 'nobody' }), RangeError, /'keyOwner'/);
    expectErr(() => validatePipelineOptions({ seedPreset: 'fastest' }), RangeError, /'seedPreset'/);
    expectErr(() => validatePipelineOptions({ model: '' }), RangeError, /'model'/);
    expectErr(() => validatePipelineOptions({ expert: '../etc' }), RangeError, /'expert'/);
    expectErr(() => validatePipelineOptions({ lmHead: 'gpu' }), RangeError, /'lmHead'/);
    expectErr(() => validatePipelineOptions({ encryption: 'none' }), RangeError, /'encryption'/);
    expectErr(() => validatePipelineOptions({ layersUnderHe: [0, -1] }), RangeError, /'layersUnderHe\[1\]'/);
    expectErr(() => validatePipelineOptions({ polyn: 8192 }), RangeError, /'polyn'.*known option/);
    expectErr(() => validatePipelineOptions({ dp: 'on' }), TypeError, /'dp'/);
    expectErr(() => validatePipelineOptions({ dp: { mechanism: 'laplace' } }), RangeError, /'dp.mechanism'/);
    expectErr(() => validatePipelineOptions({ dp: { mechanism: 'analytic', epsilon: 0 } }), RangeError, /'dp.epsilon'/);
    expectErr(() => validatePipelineOptions({ dp: { mechanism: 'analytic', delta: 1 } }), RangeError, /'dp.delta'/);
    expectErr(() => validatePipelineOptions({ dp: { mechanism: 'analytic', clipNorm: -1 } }), RangeError, /'dp.clipNorm'/);
    expectErr(() => validatePipelineOptions({ dp: { mechanism: 'analytic', sensitivity: Infinity } }), RangeError, /'dp.sensitivity'/);
    expectErr(() => validatePipelineOptions({ dp: { mechanism: 'analytic', accountant: 'moments' } }), RangeError, /'dp.accountant'/);
    expectErr(() => validatePipelineOptions({ dp: { mechanism: 'analytic', eps: 1 } }), RangeError, /'dp.eps'/);
  });
});

describe('seed presets and defaults', () => {
  it('presets reproduce the original steps and override the request', () => {
    const b = resolveOptions({ seedPreset: 'baseline', polyN: 8192, decrypt: 'batched', maxTokens: 16 });
    expect(b).toMatchObject({ polyN: 32768, decrypt: 'sequential', packing: 'replicated-slots', placement: 'final-hidden', mode: 'he-lora', maxTokens: 16 });
    expect(b.dp.mechanism).toBe('original');
    expect(b.encryption).toBe('public-key');
    expect(resolveOptions({}).encryption).toBe('secret-key');
    expect(resolveOptions({ seedPreset: 'batched-decrypt' })).toMatchObject({ polyN: 32768, decrypt: 'batched' });
    expect(resolveOptions({ seedPreset: 'poly-n-16384' })).toMatchObject({ polyN: 16384, decrypt: 'batched' });
    expect(resolveOptions({ seedPreset: 'split-selftest' }).lmHead).toBe('cpu-f32-single-thread');
    expect(SEED_PRESETS['poly-n-16384'].original.tokPerS).toEqual([6.6, 7.4]);
  });
  it('request options win over the pipeline defaults, which win over the built-in ones', () => {
    const r = resolveOptions({ polyN: 8192 }, { polyN: 32768, packing: 'coefficients' });
    expect(r.polyN).toBe(8192);
    expect(r.packing).toBe('coefficients');
    expect(r.decrypt).toBe(DEFAULT_OPTIONS.decrypt);
    expect(() => resolveOptions({}, { polyN: 3 })).toThrow(/'polyN'/);
  });
});

describe('stage records', () => {
  const ev = (i: number, f: number, he?: number): TokenEvent => ({
    index: i, id: 100 + i, text: `t${i}`, totalMs: f + (he ?? 0),
    stages: he === undefined ? { forward: f, lm_head: 1 } : { forward: f, encrypt: he, decrypt: he / 2, lm_head: 1 },
  });
  it('medians per stage over the tokens where the stage ran', () => {
    const m = stageMedians([ev(0, 3, 2), ev(1, 1), ev(2, 2, 4), ev(3, 10, 6)]);
    expect(m.forward).toBe(2.5);
    expect(m.encrypt).toBe(4);
    expect(m.decrypt).toBe(2);
    expect(m.sampling).toBeUndefined();
    expect(heMs({ encrypt: 1, decrypt: 0.5, forward: 9, extract_sum: 0.25 })).toBe(1.75);
  });
  it('one row per token as an arquero table', () => {
    const t = recordsTable([ev(0, 3, 2), ev(1, 1)]);
    expect(t.numRows()).toBe(2);
    expect(t.columnNames()).toEqual(['index', 'id', 'text', 'totalMs', 'forward', 'encrypt', 'decrypt', 'lm_head']);
    expect(t.get('encrypt', 1)).toBeNull();
    expect(t.get('forward', 0)).toBe(3);
  });
});
