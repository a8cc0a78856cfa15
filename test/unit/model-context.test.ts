/**
 * One model, many contexts (the llama.cpp / node-llama-cpp shape) on the CPU: contexts of one
 * model give the tokens of models of their own even when their steps interleave; calls on a
 * context are ordered and never block the JS thread; disposal rules (a model with live contexts
 * refuses, a disposed context says so); runWithSites (a forward that pauses at projection sites
 * for async JS work) against the model's own plaintext adapters; the CUDA device option's
 * validation; host memory reported to V8; Symbol.dispose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import { info } from '../../src/engine/info';
import { Model, type LayerAdapter, type ModelContext, type ProjectionName, type SiteCall } from '../../src/engine/model';
import { native } from '../../src/engine/native';
import { Pipeline } from '../../src/pipeline/pipeline';
import { continuation, maxAbsDiff, rng } from '../helpers/contexts';

const gpu = info().cuda.available;

describe('contexts of one model', () => {
  it('give each context the tokens of a model of its own, with their steps interleaved', async () => {
    const shared = await Model.load('tiny', { backend: 'cpu', seed: 21, contextLength: 128 });
    const own1 = await Model.load('tiny', { backend: 'cpu', seed: 21, contextLength: 128 });
    const own2 = await Model.load('tiny', { backend: 'cpu', seed: 21, contextLength: 128 });
    const a = await shared.createContext();
    const b = await shared.createContext({ contextLength: 64 });
    try {
      expect(shared.contexts).toBe(2);
      expect(b.contextLength).toBe(64);
      const r = rng(7);
      const promptA = Array.from({ length: 9 }, () => Math.floor(r() * 512));
      const promptB = Array.from({ length: 5 }, () => Math.floor(r() * 512));
      // References: each prompt alone on a model of its own (greedy for a, sampled for b).
      const wantA = await continuation(own1.context, promptA, 24, 1, 0);
      const wantB = await continuation(own2.context, promptB, 24, 99, 0.9);
      // Interleaved on the shared model: a's step, b's step, ... both in flight at once.
      await a.setSamplingSeed(1);
      await b.setSamplingSeed(99);
      const gotA: number[] = [];
      const gotB: number[] = [];
      let [na, nb] = await Promise.all([a.step(promptA, { temperature: 0, topK: 40 }), b.step(promptB, { temperature: 0.9, topK: 40 })]);
      gotA.push(na);
      gotB.push(nb);
      for (let i = 1; i < 24; i++) {
        [na, nb] = await Promise.all([a.step(na, { temperature: 0, topK: 40 }), b.step(nb, { temperature: 0.9, topK: 40 })]);
        gotA.push(na);
        gotB.push(nb);
      }
      expect(gotA).toEqual(wantA);
      expect(gotB).toEqual(wantB);
      expect(a.position).toBe(promptA.length + 23);
      expect(b.position).toBe(promptB.length + 23);
      // And the hidden states of the last steps are the references', bit for bit.
      await own1.context.decodeStep(na);
      await a.decodeStep(na);
      expect(maxAbsDiff(a.hidden(), own1.context.hidden())).toBe(0);
      // The weights are held once: a context costs its KV cache and scratch only.
      expect(a.memoryBytes).toBe(shared.contextBytes(128));
      expect(b.memoryBytes).toBeLessThan(a.memoryBytes);
      expect(shared.contextBytes(64)).toBe(b.memoryBytes);
    } finally {
      await a.dispose();
      await b.dispose();
      await Promise.all([shared.dispose(), own1.dispose(), own2.dispose()]);
    }
  });

  it('refuses to dispose a model while a context lives, and a disposed context says so', async () => {
    const m = await Model.load('tiny', { backend: 'cpu', seed: 2, contextLength: 32 });
    const c = await m.createContext();
    const d = await m.createContext();
    const running = c.prefill([1, 2, 3, 4]);
    expect(() => m.dispose()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BUSY', message: expect.stringMatching(/2 live contexts.*dispose them before the model/) }));
    expect(m.disposed).toBe(false);
    await running;
    await d.dispose();
    expect(() => m.dispose()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BUSY', message: expect.stringMatching(/1 live context made/) }));
    // The context still works after the refused dispose, then goes.
    expect((await c.forward([5])).length).toBe(512);
    await c.dispose();
    expect(c.disposed).toBe(true);
    expect(() => c.position).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
    await expect(c.forward([1])).rejects.toMatchObject({ code: 'ERR_TENSAFE_DISPOSED' });
    expect(() => c.hidden()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
    await m.dispose();
    expect(m.disposed).toBe(true);
    await expect(m.createContext()).rejects.toMatchObject({ code: 'ERR_TENSAFE_DISPOSED' });
    // The native model says the same to a caller that skips the TS layer.
    const raw = await native().ModelCpu.load({ preset: 'tiny', contextLength: 8 });
    const rc = await raw.createContext();
    expect(() => raw.dispose()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BUSY', message: expect.stringMatching(/1 live context/) }));
    await rc.dispose();
    await raw.dispose();
    await expect(Promise.resolve().then(() => rc.prefill([1]))).rejects.toMatchObject({ code: 'ERR_TENSAFE_DISPOSED' });
  });

  it('queues calls on a busy context in order and never blocks the JS thread (a reset behind a long prefill)', async () => {
    // A prefill long enough to see (0.5B shape, 2 layers, 256 tokens: about half a second here).
    const m = await Model.load('qwen2.5-0.5b-shape', { backend: 'cpu', numLayers: 2, seed: 3, contextLength: 512 });
    const a = await m.createContext();
    const b = await m.createContext({ contextLength: 16 });
    try {
      const long = Array.from({ length: 256 }, (_, i) => (i * 7919) % 151936);
      let maxLag = 0;
      let last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        maxLag = Math.max(maxLag, now - last - 5);
        last = now;
      }, 5);
      const t0 = performance.now();
      const prefill = a.prefill(long);
      expect(a.busy).toBe(true);
      // State changes are queued behind the work (they return at once), reads refuse.
      const t1 = performance.now();
      const reset = a.reset();
      const trim = a.trim(0);
      expect(performance.now() - t1).toBeLessThan(50);
      expect(a.position).toBe(0); // nothing finished yet
      expect(() => a.hidden()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BUSY', message: expect.stringMatching(/hidden\(\) needs an idle context.*prefill/) }));
      expect(() => a.sample()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BUSY' }));
      // Another context of the same model computes meanwhile.
      const other = await b.forward([1, 2, 3]);
      expect(other.length).toBe(151936);
      const order: string[] = [];
      await Promise.all([prefill.then(() => order.push('prefill')), reset.then(() => order.push('reset')), trim.then(() => order.push('trim'))]);
      const elapsed = performance.now() - t0;
      clearInterval(timer);
      expect(order).toEqual(['prefill', 'reset', 'trim']);
      expect(a.position).toBe(0); // the reset ran after the prefill, not before it
      expect(elapsed).toBeGreaterThan(100); // the prefill was long enough to matter
      expect(maxLag).toBeLessThan(Math.max(100, elapsed / 4)); // the event loop kept running
      // A trim that turns out invalid when its turn comes rejects (queued), or throws (idle).
      const p2 = a.prefill([1, 2]);
      const badTrim = a.trim(5);
      await p2;
      await expect(badTrim).rejects.toThrow(/trim length must be in \[0, 2\]/);
      expect(() => a.trim(9)).toThrow(RangeError);
      expect(a.position).toBe(2);
    } finally {
      await a.dispose();
      await b.dispose();
      await m.dispose();
    }
  }, 120_000);

  it('reports the CPU weights and KV caches to V8 as external memory', async () => {
    const external = (): number => native().externalMemory();
    const base = external();
    const m = await Model.load('qwen2.5-0.5b-shape', { backend: 'cpu', numLayers: 1, seed: 1, contextLength: 1024 });
    const weights = m.memoryBytes;
    expect(weights).toBeGreaterThan(2e8); // bf16 embedding 151936 x 896 alone is 272 MB
    // Within 1 MB: Node reports its own buffers to the same counter meanwhile.
    const near = (want: number) => expect(Math.abs(external() - base - want)).toBeLessThan(1e6);
    near(weights);
    const c = await m.createContext({ contextLength: 1024 });
    expect(c.memoryBytes).toBeGreaterThan(3e6); // KV cache + logits (151936 floats) + chunk scratch
    near(weights + c.memoryBytes);
    await c.dispose();
    near(weights);
    await m.dispose();
    near(0);
  });

  it('implements Symbol.dispose on Model, ModelContext and Pipeline', async () => {
    const m = await Model.load('tiny', { backend: 'cpu', contextLength: 8 });
    const c = await m.createContext();
    expect(typeof c[Symbol.dispose]).toBe('function');
    c[Symbol.dispose]();
    expect(c.disposed).toBe(true);
    m[Symbol.dispose]();
    expect(m.disposed).toBe(true);
    const p = await Pipeline.open({ backend: 'cpu', model: 'tiny', maxTokens: 2 });
    await p[Symbol.asyncDispose]();
    await expect(p.run('hi')).rejects.toMatchObject({ code: 'ERR_TENSAFE_DISPOSED' });
  });
});

describe('runWithSites (remote projection sites)', () => {
  let model: Model;
  let sites: ModelContext;
  let plain: ModelContext;
  const rank = 4;
  const scaling = 2;
  let adapters: LayerAdapter[];
  const groups: Array<{ layer: number; modules: ProjectionName[] }> = [
    { layer: 0, modules: ['q_proj', 'v_proj'] },
    { layer: 0, modules: ['o_proj'] },
    { layer: 1, modules: ['gate_proj', 'up_proj'] },
    { layer: 1, modules: ['down_proj'] },
    { layer: 1, modules: ['k_proj'] },
  ];

  beforeAll(async () => {
    model = await Model.load('tiny', { backend: 'cpu', seed: 8, contextLength: 128 });
    sites = await model.createContext();
    plain = await model.createContext();
    const c = model.config;
    const d = c.hiddenSize, qd = c.numAttentionHeads * c.headDim, kvd = c.numKeyValueHeads * c.headDim, f = c.intermediateSize;
    const dims: Record<ProjectionName, [number, number]> = {
      q_proj: [d, qd], k_proj: [d, kvd], v_proj: [d, kvd], o_proj: [qd, d], gate_proj: [d, f], up_proj: [d, f], down_proj: [f, d],
    };
    const r = rng(Date.now() % 1e9); // fresh inputs each run
    adapters = groups.flatMap((g) =>
      g.modules.map((target) => {
        const [inDim, outDim] = dims[target];
        return {
          layer: g.layer, target, rank, scaling,
          a: Float32Array.from({ length: rank * inDim }, () => (r() - 0.5) * 0.6),
          b: Float32Array.from({ length: outDim * rank }, () => (r() - 0.5) * 0.6),
        };
      }),
    );
  });
  afterAll(async () => {
    await sites?.dispose();
    await plain?.dispose();
    await model?.dispose();
  });

  /** scaling * B (A x) in float64, with A x kept in float32 as the engine keeps it. */
  function delta(a: LayerAdapter, x: Float32Array): Float32Array {
    const inDim = x.length;
    const outDim = a.b.length / a.rank;
    const ax = new Float64Array(a.rank);
    for (let k = 0; k < a.rank; k++) {
      let s = 0;
      for (let i = 0; i < inDim; i++) s += a.a[k * inDim + i] * x[i];
      ax[k] = Math.fround(s);
    }
    const out = new Float32Array(outDim);
    for (let o = 0; o < outDim; o++) {
      let s = 0;
      for (let k = 0; k < a.rank; k++) s += a.b[o * a.rank + k] * ax[k];
      out[o] = (a.scaling ?? 1) * Math.fround(s);
    }
    return out;
  }

  function onSite(log: SiteCall[]) {
    return async (call: SiteCall): Promise<Float32Array[]> => {
      log.push(call);
      await new Promise((r) => setTimeout(r, 0)); // a real await (the network round trip)
      return call.modules.map((m) => delta(adapters.find((a) => a.layer === call.layer && a.target === m)!, call.input));
    };
  }

  it('prefill + 16 decode steps equal setLayerAdapters with the same pairs (hidden states and greedy tokens)', async () => {
    await plain.setLayerAdapters(adapters);
    const prompt = [3, 141, 59, 26, 5, 358, 97];
    await plain.reset();
    await sites.reset();
    const log: SiteCall[] = [];
    await plain.prefill(prompt);
    await sites.runWithSites({ prefill: prompt }, groups, onSite(log));
    // One call per prompt position per group, positions in order; the input is the group's.
    for (const g of groups) {
      const calls = log.filter((c) => c.layer === g.layer && c.modules.join() === g.modules.join());
      expect(calls.map((c) => c.position)).toEqual(prompt.map((_, i) => i));
    }
    expect(log.length).toBe(prompt.length * groups.length);
    expect(sites.position).toBe(prompt.length);
    expect(maxAbsDiff(sites.hidden(), plain.hidden())).toBeLessThan(1e-5);
    await plain.lmHead();
    await sites.lmHead();
    let tokP = plain.sample();
    let tokS = sites.sample();
    expect(tokS).toBe(tokP);
    for (let step = 0; step < 16; step++) {
      const before = log.length;
      await plain.decodeStep(tokP);
      await sites.runWithSites({ decode: tokS }, groups, onSite(log));
      expect(log.length - before).toBe(groups.length);
      expect(log.slice(before).every((c) => c.position === prompt.length + step)).toBe(true);
      expect(maxAbsDiff(sites.hidden(), plain.hidden())).toBeLessThan(1e-5);
      await plain.lmHead();
      await sites.lmHead();
      expect(maxAbsDiff(sites.logits(), plain.logits())).toBeLessThan(1e-4);
      tokP = plain.sample();
      tokS = sites.sample();
      expect(tokS, `step ${step}`).toBe(tokP);
    }
    // The sites did something: without them the hidden state differs.
    await plain.setLayerAdapters([]);
    await plain.reset();
    await plain.prefill(prompt);
    await sites.reset();
    await sites.runWithSites({ prefill: prompt }, groups, onSite([]));
    expect(maxAbsDiff(sites.hidden(), plain.hidden())).toBeGreaterThan(1e-3);
    // And with no site it is a plain forward.
    await sites.reset();
    await sites.runWithSites({ prefill: prompt }, [], onSite([]));
    expect(maxAbsDiff(sites.hidden(), plain.hidden())).toBe(0);
  });

  it('a bad delta, a NaN, a rejection or a throw aborts the forward with a clear error; the context stays as it was', async () => {
    const prompt = [11, 12, 13, 14];
    await sites.reset();
    await sites.prefill(prompt);
    const q = [{ layer: 1, modules: ['q_proj'] as ProjectionName[] }];
    const qd = model.config.numAttentionHeads * model.config.headDim;
    const cases: Array<[string, (c: SiteCall) => Promise<Float32Array[]>, RegExp, string | undefined]> = [
      ['short delta', async () => [new Float32Array(3)], /onSite \(layer 1, q_proj, position 4\) result\[0\] \(q_proj\) must hold \d+ values, got 3/, 'ERR_TENSAFE_ARG_RANGE'],
      ['NaN', async () => [Float32Array.from({ length: qd }, (_, i) => (i === 7 ? NaN : 0))], /result\[0\] \(q_proj\)\[7\] is not finite/, 'ERR_TENSAFE_ARG_RANGE'],
      ['too many deltas', async () => [new Float32Array(qd), new Float32Array(qd)], /must resolve to 1 deltas/, 'ERR_TENSAFE_ARG_RANGE'],
      ['not an array', async () => new Float32Array(qd) as never, /must resolve to an array/, 'ERR_TENSAFE_ARG_TYPE'],
      ['wrong type', async () => [new Int32Array(qd) as never], /must be a Float32Array/, 'ERR_TENSAFE_ARG_TYPE'],
      ['rejection', async () => Promise.reject(new Error('server went away')), /onSite \(layer 1, q_proj, position 4\) failed: server went away/, 'ERR_TENSAFE_SITE'],
      ['throw', () => { throw new Error('sync boom'); }, /failed: sync boom/, 'ERR_TENSAFE_SITE'],
    ];
    for (const [name, fn, re, code] of cases) {
      const err = await sites.runWithSites({ decode: 7 }, q, fn).then(() => undefined, (e) => e);
      expect(err, name).toBeInstanceOf(Error);
      expect(err.message, name).toMatch(re);
      expect(err.code, name).toBe(code);
      if (name === 'rejection') expect(err.cause?.message).toBe('server went away');
      expect(sites.position, name).toBe(prompt.length); // the failed step left the cache as it was
    }
    // The next step after the failures equals a clean recompute of the whole sequence.
    await sites.runWithSites({ decode: 7 }, [], onSite([]));
    const after = sites.hidden();
    await sites.reset();
    await sites.prefill([...prompt, 7]);
    expect(maxAbsDiff(after, sites.hidden())).toBeLessThan(1e-5);
  });

  it('refuses bad ops and sites before any work, naming them', async () => {
    const f = async () => [];
    const refused = async (op: Parameters<ModelContext['runWithSites']>[0], st: Parameters<ModelContext['runWithSites']>[1], fn: unknown, re: RegExp) =>
      expect(sites.runWithSites(op, st, fn as never)).rejects.toThrow(re);
    await refused({ prefill: [] }, [], f, /op.prefill must hold at least one token/);
    await refused({} as never, [], f, /op must be \{ prefill: Int32Array \} or \{ decode: tokenId \}/);
    await refused({ decode: 1 }, [{ layer: 2, modules: ['q_proj'] }], f, /sites\[0\].layer must be in \[0, 1\]/);
    await refused({ decode: 1 }, [{ layer: 0, modules: [] }], f, /sites\[0\].modules must be a non-empty array/);
    await refused({ decode: 1 }, [{ layer: 0, modules: ['x_proj' as never] }], f, /sites\[0\].modules\[0\]: unknown projection/);
    await refused({ decode: 1 }, [{ layer: 0, modules: ['q_proj', 'gate_proj'] }], f, /mixes q_proj and gate_proj, which take different inputs/);
    await refused({ decode: 1 }, [{ layer: 0, modules: ['q_proj'] }, { layer: 0, modules: ['k_proj', 'q_proj'] }], f, /q_proj of layer 0 is named twice/);
    await refused({ decode: 1 }, [], 'f', /onSite must be a function/);
    expect(sites.busy).toBe(false); // nothing was queued
    // A token outside the vocabulary is refused when the forward starts (the engine checks it).
    await expect(sites.runWithSites({ decode: 4096 }, [], f)).rejects.toThrow(/outside the vocabulary/);
  });

  it('keeps the context busy while it waits on onSite (reads refuse, state changes queue)', async () => {
    await sites.reset();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const qd = model.config.numAttentionHeads * model.config.headDim;
    const run = sites.runWithSites({ prefill: [1, 2] }, [{ layer: 0, modules: ['q_proj'] }], async () => {
      await gate;
      return [new Float32Array(qd)];
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(sites.busy).toBe(true);
    expect(() => sites.hidden()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BUSY' }));
    const reset = sites.reset();
    release();
    await run;
    await reset;
    expect(sites.position).toBe(0);
  });
});

describe('the CUDA device option', () => {
  it('is validated where it is read, naming the option', async () => {
    await expect(Model.load('tiny', { backend: 'cpu', device: 0 })).rejects.toThrow(/option 'device' selects a CUDA device; it does not apply to backend 'cpu'/);
    await expect(Model.load('tiny', { device: 'x' as never })).rejects.toThrow(TypeError);
    await expect(Model.load('tiny', { device: 'x' as never })).rejects.toThrow(/option 'device' must be a CUDA device index/);
    await expect(Model.load('tiny', { device: -1 })).rejects.toThrow(RangeError);
    await expect(Model.load('tiny', { device: 1.5 })).rejects.toThrow(/option 'device' must be a CUDA device index \(an integer in \[0, 1023\]\), got 1.5/);
    await expect(Pipeline.open({ backend: 'cpu', model: 'tiny', device: 0 })).rejects.toThrow(/option 'device' .* backend 'cpu'/);
    await expect(Pipeline.open({ model: 'tiny', device: 'gpu0' as never })).rejects.toThrow(TypeError);
    expect(() => Ckks.create({ polyN: 8192, backend: 'cpu', device: 0 })).toThrow(/option 'device' .* backend 'cpu'/);
    expect(() => Ckks.create({ polyN: 8192, device: -2 })).toThrow(RangeError);
    // The native classes check their own argument the same way.
    expect(() => native().ModelCpu.load({ preset: 'tiny', device: 0 })).toThrow(/options.device selects a CUDA device; it does not apply to ModelCpu/);
    if (native().ModelCuda) {
      expect(() => native().ModelCuda.load({ preset: 'tiny', device: 'x' })).toThrow(/options.device must be an integer number/);
      expect(() => native().ModelCuda.load({ preset: 'tiny', device: -1 })).toThrow(/options.device must be in \[0, 1023\]/);
    }
  });

  it.skipIf(gpu)('without a usable GPU, a device gives ERR_TENSAFE_BACKEND', async () => {
    await expect(Model.load('tiny', { device: 0 })).rejects.toMatchObject({ code: 'ERR_TENSAFE_BACKEND' });
    await expect(Model.load('tiny', { backend: 'cuda', device: 0 })).rejects.toMatchObject({ code: 'ERR_TENSAFE_BACKEND' });
    await expect(Pipeline.open({ model: 'tiny', device: 0 })).rejects.toMatchObject({ code: 'ERR_TENSAFE_BACKEND' });
    expect(() => Ckks.create({ polyN: 8192, device: 0 })).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BACKEND' }));
    if (native().ModelCuda) {
      await expect(native().ModelCuda.load({ preset: 'tiny', device: 0 })).rejects.toMatchObject({ code: 'ERR_TENSAFE_BACKEND' });
      expect(() => native().useCudaDevice(0, "option 'device'")).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BACKEND' }));
    }
  });
});
