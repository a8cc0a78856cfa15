/**
 * Pipeline (GenerationService) on the CPU with the tiny model: streaming, stage records,
 * modes, routing, DP accounting, validation.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyticGaussianSigma, PrivacyAccountant } from '../../src/pipeline/dp';
import { writeSyntheticExperts } from '../../src/pipeline/experts';
import { Pipeline } from '../../src/pipeline/pipeline';
import { recordsTable } from '../../src/pipeline/records';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-pipeline-'));
let p: Pipeline;

beforeAll(async () => {
  // tiny: d 64, 2 layers (the model's own preset); experts written for that shape
  const root = path.join(tmp, 'experts');
  writeSyntheticExperts(root, { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 }, { seed: 5 });
  p = await Pipeline.open({ backend: 'cpu', model: 'tiny', adapters: root, polyN: 8192, maxTokens: 12 });
});
afterAll(async () => {
  await p?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Pipeline on the CPU (tiny model)', () => {
  it('describes itself and lists the experts', () => {
    const d = p.describe();
    expect(d).toMatchObject({ backend: 'cpu', hiddenSize: 64, polyN: 8192 });
    expect(p.experts()).toEqual(['banking_expert', 'investment_expert', 'shared_attention']);
  });

  it('streams one event per token with a stage record, and a summary', async () => {
    const { events, summary } = await p.run('What is a savings account?', { mode: 'he-lora', temperature: 0 });
    expect(events.length).toBe(summary.tokens);
    expect(events.length).toBeGreaterThan(0);
    expect(events.map((e) => e.index)).toEqual(events.map((_, i) => i));
    for (const e of events) {
      for (const s of ['forward', 'encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'extract_sum', 'lora_b', 'lm_head', 'sampling'] as const) {
        expect(e.stages[s], s).toBeGreaterThanOrEqual(0);
      }
      expect(e.totalMs).toBeGreaterThan(0);
    }
    expect(summary.text).toBe(events.map((e) => e.text).join(''));
    expect(summary.expert).toBe('banking_expert'); // routed by "savings"
    expect(summary.tokPerS).toBeGreaterThan(0);
    expect(summary.privacy).toBeUndefined();
    expect(summary.heBackend).toBe('cpu');
    const t = recordsTable(events);
    expect(t.numRows()).toBe(events.length);
    expect(t.columnNames()).toContain('ct_pt_multiply');
  });

  it('he-lora gives the tokens of plaintext lora for every packing; base differs', async () => {
    const q = 'How should I build a portfolio?';
    const ids = async (o: object) => (await p.run(q, { temperature: 0, maxTokens: 12, ...o })).events.map((e) => e.id);
    const lora = await ids({ mode: 'lora' });
    expect(await ids({ mode: 'base' })).not.toEqual(lora);
    for (const packing of ['replicated-slots', 'rotations', 'coefficients'] as const) {
      expect(await ids({ mode: 'he-lora', packing }), packing).toEqual(lora);
    }
  });

  it('DP: noise per token, privacy composed over the releases', async () => {
    const { events, summary } = await p.run('Tell me a story', { mode: 'he-lora', dp: { mechanism: 'analytic', epsilon: 1, accountant: 'zcdp' } });
    expect(summary.expert).toBe('shared_attention');
    expect(events[0].stages.dp_noise).toBeGreaterThanOrEqual(0);
    const sigma = analyticGaussianSigma(1, 1e-5, 2);
    const acc = new PrivacyAccountant('zcdp', 1e-5);
    acc.addGaussian(sigma, 2, events.length);
    expect(summary.privacy!.releases).toBe(events.length);
    expect(summary.privacy!.epsilon).toBeCloseTo(acc.spent().epsilon, 10);
  });

  it('seed preset and timers off run; layers placement under HE matches plaintext', async () => {
    const { summary } = await p.run('loan', { seedPreset: 'poly-n-16384', maxTokens: 3, timers: false });
    expect(summary.options.polyN).toBe(16384);
    expect(summary.options.packing).toBe('replicated-slots');
    const a = await p.run('loan', { mode: 'lora', placement: 'layers', maxTokens: 8, expert: 'shared_attention' });
    const b = await p.run('loan', { mode: 'he-lora', placement: 'layers', maxTokens: 8, expert: 'shared_attention', layersUnderHe: [1] });
    expect(b.events.map((e) => e.id)).toEqual(a.events.map((e) => e.id));
    // On the CPU backend plaintext LoRA runs on the host (the CUDA model's resident path is a GPU test).
    expect(a.summary.loraBackend).toBe('host');
    expect(b.summary.loraBackend).toBe('host'); // the pairs left in plaintext (layer 0)
    expect((await p.run('loan', { mode: 'lora', maxTokens: 2 })).summary.loraBackend).toBe('host');
    expect((await p.run('loan', { mode: 'base', maxTokens: 2 })).summary.loraBackend).toBeUndefined();
  });

  it('validates options before any work, naming the option', async () => {
    await expect(p.run('x', { polyN: 1234 })).rejects.toThrow(/'polyN'/);
    await expect(p.run('x', { expert: 'nobody' })).rejects.toThrow(/expert 'nobody' not found/);
    await expect(p.run('x', { keyOwner: 'client' })).rejects.toThrow(/'keyOwner'/);
    await expect(p.run('x', { backend: 'cuda' })).rejects.toThrow(/'backend'/);
    await expect(p.run('x', { polyN: 4096, packing: 'rotations' })).rejects.toThrow(/128-bit/);
    await expect(Pipeline.open({ numLayers: 0 })).rejects.toThrow(/'numLayers'/);
    await expect(Pipeline.open({ model: '/nonexistent' })).rejects.toThrow(/'model'/);
  });

  it('stops at the abort signal', async () => {
    const ac = new AbortController();
    const it = p.generate('hello', { maxTokens: 50 }, ac.signal);
    const first = await it.next();
    expect(first.done).toBe(false);
    ac.abort();
    const rest: unknown[] = [];
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      rest.push(r.value);
    }
    expect(rest.length).toBeLessThanOrEqual(1);
  });
});
