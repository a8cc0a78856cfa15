/**
 * Split mode on ModelCuda (embed, prefillEmbeddings, setHidden): the client's embedding rows
 * against ModelCpu's on the same weights, a prefill from rows against a prefill from token ids
 * on the same GPU model (same kernels, so a tight tolerance), and the LM head over a hidden
 * state set from outside against ModelCpu's LM head over the same vector. Runs only on a GPU.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { native, packageRoot } from '../../src/engine/native';
import { withEnv } from '../helpers/env';
import { noGpu } from '../helpers/gpu';
import { maxAbsDiff } from '../helpers/numeric';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const N = (): Any => native();
const fixtureDir = path.join(packageRoot(), 'datasets', 'fixtures', 'qwen2-tiny-f32');

/**
 * Largest relative error |a - b| / |b| over entries where b is a normal float16 (|b| >= 2^-14);
 * below that (float16 subnormals, spacing 2^-24) the absolute error must stay within half a
 * subnormal step, else the entry counts as Infinity.
 */
function maxRelDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (Number.isNaN(e)) return Infinity;
    if (Math.abs(b[i]) >= 2 ** -14) m = Math.max(m, e / Math.abs(b[i]));
    else if (e > 2 ** -25) return Infinity;
  }
  return m;
}

function randomTokens(n: number, vocab: number): number[] {
  return Array.from({ length: n }, () => Math.floor(Math.random() * vocab));
}

function randomVector(n: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (Math.random() * 2 - 1) * scale;
  return v;
}

interface Case {
  name: string;
  cuda: Record<string, unknown>;
  cpu: Record<string, unknown>;
  // Relative error of one embedding entry: 0 when both sides hold the same values (synthetic
  // weights are bf16-exact), f16 rounding (2^-11) when the GPU stores an f32 checkpoint as f16.
  embedRel: number;
  // A CPU model storing the GPU's dtype: its embedding rows must equal the GPU's exactly.
  cpuSameDtype: Record<string, unknown>;
}

const seed = 20261126;
const cases: Case[] = [
  {
    name: 'tiny preset (bf16 on the GPU, f32 on the CPU)',
    cuda: { preset: 'tiny', seed, dtype: 'bf16', contextLength: 300 },
    cpu: { preset: 'tiny', seed, dtype: 'f32', contextLength: 300 },
    embedRel: 0,
    cpuSameDtype: { preset: 'tiny', seed, dtype: 'bf16', contextLength: 300 },
  },
  {
    name: 'fixture qwen2-tiny-f32 (f16 on the GPU, f32 on the CPU)',
    cuda: { dir: fixtureDir, dtype: 'f16', contextLength: 300 },
    cpu: { dir: fixtureDir, dtype: 'f32', contextLength: 300 },
    embedRel: 2 ** -11,
    cpuSameDtype: { dir: fixtureDir, dtype: 'f16', contextLength: 300 },
  },
];

describe.skipIf(noGpu)('ModelCuda split mode (embed, prefillEmbeddings, setHidden)', () => {
  // Each test model is a native model with one context (the object the tests drive: the
  // context's methods, and the model's backend / dtype / config through the context).
  const open: Array<{ model: Any; context: Any }> = [];
  afterAll(async () => {
    for (const { model, context } of open) {
      if (!context.disposed) await context.dispose();
      await model.dispose();
    }
  });
  async function load(cls: 'ModelCuda' | 'ModelCpu', opts: Record<string, unknown>): Promise<Any> {
    const model = await N()[cls].load(opts);
    const context = model.createContextSync(); // reads TENSAFE_CUDA_GRAPH now
    open.push({ model, context });
    return context;
  }

  for (const c of cases) {
    const haveWeights = c.cuda.dir === undefined || fs.existsSync(path.join(fixtureDir, 'config.json'));

    it.skipIf(!haveWeights)(`${c.name}: embed equals ModelCpu.embed`, async () => {
      const g = await load('ModelCuda', c.cuda);
      const cpu = await load('ModelCpu', c.cpu);
      const d = g.config.hiddenSize, V = g.config.vocabSize;
      // Every id at the ends of the table and a random batch with repeats.
      const tokens = [0, V - 1, ...randomTokens(37, V), 5, 5];
      const a: Float32Array = g.embed(tokens);
      const b: Float32Array = cpu.embed(tokens);
      expect(a.length).toBe(tokens.length * d);
      expect(maxRelDiff(a, b)).toBeLessThanOrEqual(c.embedRel);
      const same = await load('ModelCpu', c.cpuSameDtype);
      expect(maxAbsDiff(a, same.embed(tokens))).toBe(0);
      same.dispose();
      // Embedding leaves the cache alone.
      expect(g.position).toBe(0);
      // One token alone gives the same row as in the batch.
      expect(maxAbsDiff(g.embed([tokens[7]]), a.subarray(7 * d, 8 * d))).toBe(0);
      g.dispose();
      cpu.dispose();
    });

    it.skipIf(!haveWeights)(`${c.name}: prefillEmbeddings(embed(tokens)) equals prefill(tokens)`, async () => {
      // Rows run the decode step's kernels; the ids take the same path with TENSAFE_PREFILL=steps
      // (the batched tensor-core prefill is compared with it in model-cuda-prefill.test.ts).
      const g = await withEnv({ TENSAFE_PREFILL: 'steps' }, () => load('ModelCuda', c.cuda));
      const d = g.config.hiddenSize, V = g.config.vocabSize;
      // 150 positions: attention crosses its 128-position split.
      const tokens = randomTokens(150, V);
      const rows: Float32Array = g.embed(tokens);

      const byIds: Float32Array = await g.forward(tokens);
      const hIds: Float32Array = g.hidden();
      g.reset();
      await g.prefillEmbeddings(rows, tokens.length);
      expect(g.position).toBe(tokens.length);
      await g.lmHead();
      expect(maxAbsDiff(g.logits(), byIds)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(g.hidden(), hIds)).toBeLessThanOrEqual(1e-5);

      // Token and row positions mix in one cache: ids for a prefix, rows for the rest, then a
      // token decode step after the rows.
      g.reset();
      await g.prefill(tokens.slice(0, 60));
      await g.prefillEmbeddings(rows.slice(60 * d, 149 * d), 89);
      await g.prefill([tokens[149]]);
      await g.lmHead();
      expect(g.position).toBe(150);
      expect(maxAbsDiff(g.logits(), byIds)).toBeLessThanOrEqual(1e-5);

      // One row at a time (the decode shape) after trim: same as the ids.
      g.trim(100);
      for (let p = 100; p < 150; p++) await g.prefillEmbeddings(rows.slice(p * d, (p + 1) * d), 1);
      await g.lmHead();
      expect(maxAbsDiff(g.logits(), byIds)).toBeLessThanOrEqual(1e-5);
      g.dispose();
    });

    it.skipIf(!haveWeights)(`${c.name}: setHidden + lmHead equals ModelCpu's LM head on the same vector`, async () => {
      const g = await load('ModelCuda', c.cuda);
      const cpu = await load('ModelCpu', c.cpu);
      const d = g.config.hiddenSize, V = g.config.vocabSize;
      // A real hidden state (the CPU's, after a prompt) and a random one.
      await cpu.forward(randomTokens(12, V));
      const real: Float32Array = cpu.hidden();
      for (const h of [real, randomVector(d, 2)]) {
        g.setHidden(h);
        expect(maxAbsDiff(g.hidden(), h)).toBe(0);
        await g.lmHead();
        cpu.setHidden(h);
        await cpu.lmHead();
        const want: Float32Array = cpu.logits();
        expect(g.logits().length).toBe(V);
        expect(maxAbsDiff(g.logits(), want)).toBeLessThan(2e-2);
      }
      // setHidden replaces the state a forward left (it does not add to it).
      await g.forward(randomTokens(5, V));
      g.setHidden(real);
      await g.lmHead();
      cpu.setHidden(real);
      await cpu.lmHead();
      expect(maxAbsDiff(g.logits(), cpu.logits())).toBeLessThan(2e-2);
      g.dispose();
      cpu.dispose();
    });
  }

  it('bad shapes and values are refused with named errors; the cache is unchanged', async () => {
    const g = await load('ModelCuda', { preset: 'tiny', seed: 3, contextLength: 16 });
    const d = g.config.hiddenSize, V = g.config.vocabSize;
    await g.prefill([1, 2, 3]);
    const before: Float32Array = await g.forward([4]);
    g.trim(3);

    expect(() => g.embed([V])).toThrow(RangeError);
    expect(() => g.embed([V])).toThrow(/token id/);
    expect(() => g.embed([-1])).toThrow(RangeError);
    expect(() => g.embed([])).toThrow(/tokens/);

    expect(() => g.setHidden(new Float32Array(d + 1))).toThrow(RangeError);
    expect(() => g.setHidden(new Float32Array(d + 1))).toThrow(/hidden/);
    expect(() => g.setHidden(new Float64Array(d))).toThrow(TypeError);

    const rows: Float32Array = g.embed([5, 6]);
    // Shapes are checked by the binding before any work is queued (synchronous throws).
    expect(() => g.prefillEmbeddings(rows.subarray(0, 2 * d - 1), 2)).toThrow(RangeError);
    expect(() => g.prefillEmbeddings(rows.subarray(0, 2 * d - 1), 2)).toThrow(/rows must hold/);
    expect(() => g.prefillEmbeddings(rows, 0)).toThrow(RangeError);
    expect(() => g.prefillEmbeddings([1, 2], 1)).toThrow(TypeError);
    const bad = rows.slice();
    bad[d + 3] = Number.NaN;
    await expect(g.prefillEmbeddings(bad, 2)).rejects.toThrow(/not finite/);
    await expect(g.prefillEmbeddings(new Float32Array(14 * d), 14)).rejects.toThrow(/context length/);
    expect(g.position).toBe(3);

    // Nothing above touched the cache: the next step gives the same logits as before.
    const again: Float32Array = await g.forward([4]);
    expect(maxAbsDiff(again, before)).toBe(0);
    g.dispose();
  });
});
