/**
 * KV cache and the native boundary of the CPU decoder: cached decoding equals full recomputation
 * (across prefill chunk boundaries), trim/reset, context overflow and bad token ids give clear
 * errors without touching the cache, generated presets are deterministic and honestly named.
 */
import * as os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Model, modelConfig, modelPresets } from '../../src/engine/model';

function tokens(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % vocab);
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('KV cache (tiny preset, cpu)', () => {
  let model: Model;
  const seq = tokens(70, 512, 42);

  beforeAll(async () => {
    model = await Model.load('tiny', { backend: 'cpu', contextLength: 128, seed: 3 });
  });
  afterAll(() => model?.dispose());

  it('decodes one token at a time exactly as a full recomputation of the prefix', async () => {
    model.reset();
    const stepwise: Float32Array[] = [];
    for (const id of seq) stepwise.push(await model.forward([id]));
    expect(model.position).toBe(seq.length);
    for (const t of [0, 1, 7, 31, 32, 33, 63, 64, 69]) {
      model.reset();
      const full = await model.forward(seq.slice(0, t + 1)); // one prefill of t+1 tokens (chunks of 32)
      expect(maxAbsDiff(full, stepwise[t])).toBeLessThan(1e-4);
    }
  });

  it('mixes prefill and decode in any split', async () => {
    model.reset();
    const all = await model.forward(seq);
    model.reset();
    await model.prefill(seq.slice(0, 20));
    await model.prefill(seq.slice(20, 55));
    for (const id of seq.slice(55, 69)) await model.decodeStep(id);
    const split = await model.forward([seq[69]]);
    expect(maxAbsDiff(split, all)).toBeLessThan(1e-4);
  });

  it('trim rewinds the cache and recomputes the same logits', async () => {
    model.reset();
    await model.prefill(seq.slice(0, 40));
    const at40 = await model.forward([seq[40]]);
    await model.prefill(seq.slice(41, 60));
    model.trim(40);
    expect(model.position).toBe(40);
    const again = await model.forward([seq[40]]);
    expect(maxAbsDiff(again, at40)).toBe(0);
    expect(() => model.trim(42)).toThrow(RangeError);
    expect(() => model.trim(-1)).toThrow(RangeError);
  });

  it('refuses a context overflow with a clear error and leaves the cache as it was', async () => {
    const small = await Model.load('tiny', { backend: 'cpu', contextLength: 16 });
    try {
      await expect(small.forward(tokens(17, 512, 1))).rejects.toThrow(/context length exceeded.*contextLength 16/);
      expect(small.position).toBe(0);
      await small.prefill(tokens(16, 512, 1));
      await expect(small.decodeStep(5)).rejects.toThrow(RangeError);
      expect(small.position).toBe(16);
      small.reset();
      await expect(async () => {
        for await (const _ of small.generate(tokens(20, 512, 2), { maxNewTokens: 2 })) void _;
      }).rejects.toThrow(/context has room for 16/);
      const run = await small.generateText(tokens(10, 512, 2), { maxNewTokens: 50, stopAtEos: false });
      expect(run.finishReason).toBe('context');
      expect(run.ids.length).toBe(7); // positions 10..15 hold 6 fed tokens, the 7th is sampled last
    } finally {
      small.dispose();
    }
  });

  it('refuses bad token ids, naming the index, before any work', async () => {
    model.reset();
    await expect(model.forward([1, 2, 512])).rejects.toThrow(/token id 512 at index 2 is outside the vocabulary \[0, 512\)/);
    await expect(model.forward([-1])).rejects.toThrow(RangeError);
    await expect(model.forward([1.5])).rejects.toThrow(/integer/);
    await expect(model.forward([])).rejects.toThrow(/at least one token/);
    expect(() => model.context.native.decodeStep('7' as unknown as number)).toThrow(TypeError);
    expect(() => model.context.native.prefill('abc' as unknown as number[])).toThrow(TypeError);
    expect(model.position).toBe(0);
  });

  it('throws ERR_TENSAFE_DISPOSED after dispose()', async () => {
    const m = await Model.load('tiny', { backend: 'cpu', contextLength: 8 });
    m.dispose();
    expect(m.disposed).toBe(true);
    expect(() => m.position).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
    await expect(m.forward([1])).rejects.toMatchObject({ code: 'ERR_TENSAFE_DISPOSED' });
  });
});

describe('generated presets', () => {
  it('have the exact Qwen2.5 shapes and say their weights are random', () => {
    const presets = Object.fromEntries(modelPresets().map((p) => [p.preset, p.config]));
    const b15 = presets['qwen2.5-1.5b-shape'];
    expect(b15).toMatchObject({
      name: 'qwen2.5-1.5b-shape (random weights)', hiddenSize: 1536, numHiddenLayers: 28, numAttentionHeads: 12,
      numKeyValueHeads: 2, headDim: 128, intermediateSize: 8960, vocabSize: 151936, ropeTheta: 1e6,
      tieWordEmbeddings: true, rmsNormEps: 1e-6,
    });
    expect(b15.parameterCount).toBe(1_543_714_304); // Qwen2.5-1.5B's published count
    const b05 = presets['qwen2.5-0.5b-shape'];
    expect(b05).toMatchObject({ hiddenSize: 896, numHiddenLayers: 24, numAttentionHeads: 14, numKeyValueHeads: 2, headDim: 64, intermediateSize: 4864 });
    expect(b05.parameterCount).toBe(494_032_768); // Qwen2.5-0.5B's published count
    expect(modelConfig('tiny').name).toBe('tiny (random weights)');
  });

  it('are deterministic in the seed and identical whatever the storage dtype', async () => {
    const ids = tokens(9, 512, 5);
    const logitsOf = async (opts: Parameters<typeof Model.load>[1]) => {
      const m = await Model.load('tiny', { backend: 'cpu', contextLength: 16, ...opts });
      try {
        return await m.forward(ids);
      } finally {
        m.dispose();
      }
    };
    const a = await logitsOf({ seed: 11 });
    const b = await logitsOf({ seed: 11 });
    const c = await logitsOf({ seed: 12 });
    const f32 = await logitsOf({ seed: 11, dtype: 'f32' });
    const f16 = await logitsOf({ seed: 11, dtype: 'f16' });
    expect(maxAbsDiff(a, b)).toBe(0);
    expect(maxAbsDiff(a, c)).toBeGreaterThan(0.05);
    expect(maxAbsDiff(a, f32)).toBeLessThan(1e-5); // generated values are bf16-exact
    expect(maxAbsDiff(a, f16)).toBeLessThan(1e-2); // f16 rounds the smallest values only
    // Activations of order one: logits neither vanish nor explode.
    const rms = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    expect(rms).toBeGreaterThan(0.05);
    expect(rms).toBeLessThan(10);
  });

  // 1.5B shape in f32 plus a 2^20-token cache needs about 66 GB: refused up front on a machine
  // with less than 88 GB, instead of being killed while zeroing overcommitted memory.
  it.skipIf(os.totalmem() > 80e9)('refuses a model the machine cannot hold, before allocating it', async () => {
    await expect(Model.load('qwen2.5-1.5b-shape', { backend: 'cpu', dtype: 'f32', contextLength: 1 << 20 })).rejects.toMatchObject({
      code: 'ERR_TENSAFE_OUT_OF_MEMORY',
      message: expect.stringMatching(/needs \d+\.\d+ GB; this machine has/),
    });
  });

  it('refuses unknown presets, missing folders and bad options', async () => {
    await expect(Model.load('qwen9-shape', { backend: 'cpu' })).rejects.toThrow(/neither a preset .*tiny/);
    await expect(Model.load('tiny', { backend: 'cpu', contextLength: 0 })).rejects.toThrow(RangeError);
    await expect(Model.load('tiny', { backend: 'cpu', dtype: 'f64' as never })).rejects.toThrow(/dtype/);
    await expect(Model.load('tiny', { backend: 'cpu', seed: -1 })).rejects.toThrow(RangeError);
  });
});

describe('split mode (cpu)', () => {
  it('runs the layers from embedding rows exactly as from token ids, and sets the hidden state', async () => {
    const m = await Model.load('tiny', { backend: 'cpu', contextLength: 64, seed: 4 });
    try {
      const ids = tokens(37, 512, 9);
      const fromIds = await m.forward(ids);
      const hiddenIds = m.hidden();
      const rows = m.embed(ids);
      expect(rows.length).toBe(37 * 64);
      m.reset();
      await m.prefillEmbeddings(rows.subarray(0, 20 * 64), 20);
      await m.prefillEmbeddings(rows.subarray(20 * 64), 17);
      expect(m.position).toBe(37);
      expect(Array.from(m.hidden())).toEqual(Array.from(hiddenIds));
      await m.lmHead();
      expect(Array.from(m.logits())).toEqual(Array.from(fromIds));
      // A client's LM head over a hidden state from elsewhere.
      m.reset();
      await m.forward([1, 2, 3]);
      m.setHidden(hiddenIds);
      await m.lmHead();
      expect(Array.from(m.logits())).toEqual(Array.from(fromIds));
      await expect(m.prefillEmbeddings(new Float32Array(64), 2)).rejects.toThrow(/n x hiddenSize = 128/);
      const bad = new Float32Array(64);
      bad[5] = NaN;
      await expect(m.prefillEmbeddings(bad, 1)).rejects.toThrow(/not finite/);
      expect(() => m.embed([600])).toThrow(/outside the vocabulary/);
      expect(() => m.setHidden(new Float32Array(3))).toThrow(/length 64/);
    } finally {
      m.dispose();
    }
  });
});
