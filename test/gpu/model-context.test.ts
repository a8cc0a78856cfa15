/**
 * Contexts of one model on the GPU (each its own arena, stream and captured decode graph):
 * interleaved contexts of one model give the tokens of models of their own; runWithSites on the
 * instrumented eager path equals the model's own plaintext adapters; a context costs its arena
 * (KV cache + small scratch) and gives it back on dispose; the device option (device 0 works,
 * a device that is not visible is a clear error). Runs only where a GPU is usable.
 */
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import { gpuMemory, info } from '../../src/engine/info';
import { Model, type LayerAdapter, type ModelContext, type ProjectionName, type SiteCall } from '../../src/engine/model';
import { noGpu } from '../helpers/gpu';
import { continuation, maxAbsDiff, rng } from '../helpers/contexts';

describe.skipIf(noGpu)('contexts of one CUDA model', () => {
  it('interleaved contexts give each the tokens of a model of its own (greedy and sampled)', async () => {
    const shared = await Model.load('tiny', { backend: 'cuda', seed: 21, contextLength: 300 });
    const own = await Model.load('tiny', { backend: 'cuda', seed: 21, contextLength: 300 });
    const a = await shared.createContext();
    const b = await shared.createContext({ contextLength: 200 });
    const ref = await own.createContext();
    try {
      const r = rng(5);
      const promptA = Array.from({ length: 140 }, () => Math.floor(r() * 512)); // attention crosses its 128-position split
      const promptB = Array.from({ length: 7 }, () => Math.floor(r() * 512));
      const wantA = await continuation(ref, promptA, 32, 1, 0);
      const wantB = await continuation(ref, promptB, 32, 77, 0.9);
      await a.setSamplingSeed(1);
      await b.setSamplingSeed(77);
      const gotA: number[] = [];
      const gotB: number[] = [];
      let [na, nb] = await Promise.all([a.step(promptA, { temperature: 0, topK: 40 }), b.step(promptB, { temperature: 0.9, topK: 40 })]);
      gotA.push(na);
      gotB.push(nb);
      for (let i = 1; i < 32; i++) {
        [na, nb] = await Promise.all([a.step(na, { temperature: 0, topK: 40 }), b.step(nb, { temperature: 0.9, topK: 40 })]);
        gotA.push(na);
        gotB.push(nb);
      }
      expect(gotA).toEqual(wantA);
      expect(gotB).toEqual(wantB);
      expect(() => shared.dispose()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BUSY' }));
    } finally {
      await Promise.all([a.dispose(), b.dispose(), ref.dispose()]);
      await Promise.all([shared.dispose(), own.dispose()]);
    }
  });

  it('a context costs its arena (KV cache + small scratch) and gives it back when disposed', async () => {
    const m = await Model.load('qwen2.5-0.5b-shape', { backend: 'cuda', seed: 3, contextLength: 2048 });
    try {
      const c = m.config;
      const kv = 2 * c.numHiddenLayers * c.numKeyValueHeads * 2048 * c.headDim * 2;
      const arena = m.contextBytes(2048);
      expect(arena).toBeGreaterThan(kv);
      expect(arena / kv - 1).toBeLessThan(0.05); // scratch is small: logits and a few rows
      // One context first, run and disposed: the one-time costs of the first forward (kernel
      // modules loaded lazily by the driver, cuBLAS workspace) land before `before`, not on the
      // eight contexts measured.
      const warm = await m.createContext();
      await warm.forward([1, 2, 3]);
      await warm.dispose();
      const before = gpuMemory(0);
      const ctxs: ModelContext[] = [];
      for (let i = 0; i < 8; i++) {
        const ctx = await m.createContext();
        await ctx.forward([1, 2, 3]); // captures the graph too
        ctxs.push(ctx);
      }
      const with8 = gpuMemory(0);
      expect(with8.allocatedBytes - before.allocatedBytes).toBe(8 * arena);
      const used = with8.usedBytes - before.usedBytes;
      // eslint-disable-next-line no-console
      console.log(`8 contexts of 2048 positions: ${used} B used (cudaMemGetInfo), ${8 * arena} B allocated, KV ${8 * kv} B`);
      // Beyond our arenas (exact, above), the driver's own per-context cost: a stream, a captured
      // graph and 2 MiB allocation granularity, a few MiB each (measured on an H200: ~1.9 MiB).
      const driverPerContext = (used - 8 * arena) / 8;
      const dispose = Promise.all(ctxs.map((x) => x.dispose()));
      await dispose;
      expect(driverPerContext, 'driver bytes per context beyond its arena').toBeLessThan(4 * 2 ** 20);
      expect(used / (8 * kv) - 1).toBeLessThan(0.15);
      const after = gpuMemory(0);
      expect(after.allocatedBytes).toBe(before.allocatedBytes);
    } finally {
      await m.dispose();
    }
  }, 300_000);

  it('runWithSites (instrumented eager path) equals setLayerAdapters with the same pairs: prefill + 16 decode steps', async () => {
    const m = await Model.load('tiny', { backend: 'cuda', seed: 8, contextLength: 128, dtype: 'bf16' });
    const sites = await m.createContext();
    const plain = await m.createContext();
    try {
      const c = m.config;
      const d = c.hiddenSize, qd = c.numAttentionHeads * c.headDim, kvd = c.numKeyValueHeads * c.headDim, f = c.intermediateSize;
      const dims: Record<ProjectionName, [number, number]> = {
        q_proj: [d, qd], k_proj: [d, kvd], v_proj: [d, kvd], o_proj: [qd, d], gate_proj: [d, f], up_proj: [d, f], down_proj: [f, d],
      };
      const groups: Array<{ layer: number; modules: ProjectionName[] }> = [
        { layer: 0, modules: ['q_proj', 'v_proj'] },
        { layer: 1, modules: ['o_proj'] },
        { layer: 1, modules: ['gate_proj', 'up_proj'] },
        { layer: 0, modules: ['down_proj'] },
      ];
      const r = rng(Date.now() % 1e9);
      const adapters: LayerAdapter[] = groups.flatMap((g) =>
        g.modules.map((target) => {
          const [inDim, outDim] = dims[target];
          return { layer: g.layer, target, rank: 4, scaling: 2, a: Float32Array.from({ length: 4 * inDim }, () => (r() - 0.5) * 0.6), b: Float32Array.from({ length: outDim * 4 }, () => (r() - 0.5) * 0.6) };
        }),
      );
      const onSite = async (call: SiteCall): Promise<Float32Array[]> => {
        await new Promise((res) => setTimeout(res, 0));
        return call.modules.map((mod) => {
          const a = adapters.find((x) => x.layer === call.layer && x.target === mod)!;
          const inDim = call.input.length, outDim = a.b.length / a.rank;
          const ax = new Float64Array(a.rank);
          for (let k = 0; k < a.rank; k++) for (let i = 0; i < inDim; i++) ax[k] += a.a[k * inDim + i] * call.input[i];
          const out = new Float32Array(outDim);
          for (let o = 0; o < outDim; o++) {
            let s = 0;
            for (let k = 0; k < a.rank; k++) s += a.b[o * a.rank + k] * ax[k];
            out[o] = (a.scaling ?? 1) * s;
          }
          return out;
        });
      };
      await plain.setLayerAdapters(adapters);
      const prompt = [3, 141, 59, 26, 5, 358, 97];
      await plain.prefill(prompt);
      await sites.runWithSites({ prefill: prompt }, groups, onSite);
      expect(maxAbsDiff(sites.hidden(), plain.hidden())).toBeLessThan(1e-4);
      await plain.lmHead();
      await sites.lmHead();
      let tp = plain.sample();
      let ts = sites.sample();
      expect(ts).toBe(tp);
      for (let step = 0; step < 16; step++) {
        await plain.decodeStep(tp);
        await sites.runWithSites({ decode: ts }, groups, onSite);
        expect(maxAbsDiff(sites.hidden(), plain.hidden()), `step ${step}`).toBeLessThan(1e-4);
        await plain.lmHead();
        await sites.lmHead();
        tp = plain.sample();
        ts = sites.sample();
        expect(ts, `step ${step}`).toBe(tp);
      }
      // A rejection leaves the context where it was: the next plain step equals a recompute.
      const before = sites.position;
      await expect(sites.runWithSites({ decode: 9 }, groups, async () => Promise.reject(new Error('gone')))).rejects.toMatchObject({ code: 'ERR_TENSAFE_SITE' });
      expect(sites.position).toBe(before);
    } finally {
      await sites.dispose();
      await plain.dispose();
      await m.dispose();
    }
  });
});

describe.skipIf(noGpu)('the CUDA device option on a GPU machine', () => {
  it('device 0 works for models and CKKS contexts', async () => {
    const m = await Model.load('tiny', { device: 0, contextLength: 16 });
    expect(m.backend).toBe('cuda');
    expect(m.device).toBe(0);
    expect((await m.forward([1, 2, 3])).length).toBe(m.config.vocabSize);
    await m.dispose();
    const ckks = Ckks.create({ polyN: 8192, device: 0 });
    expect(ckks.backend).toBe('cuda');
    ckks.dispose();
  });

  it.skipIf(info().cuda.devices.length > 1)('device 1 on a one-GPU machine is a clear error naming the option', async () => {
    await expect(Model.load('tiny', { device: 1 })).rejects.toThrow(/options.device must be in \[0, 0\] \(1 CUDA device visible.*\), got 1/);
    await expect(Model.load('tiny', { device: 1 })).rejects.toMatchObject({ code: 'ERR_TENSAFE_ARG_RANGE' });
    expect(() => Ckks.create({ polyN: 8192, device: 1 })).toThrow(/option 'device' must be in \[0, 0\]/);
  });
});
