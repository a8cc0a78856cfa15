/**
 * ModelCuda (f16/bf16 weights, float32 accumulation) against transformers' reference fixtures
 * (datasets/fixtures, float32 compute) and against ModelCpu (float32) on the same models:
 * logits and final hidden states within 2e-2, greedy continuations, KV cache vs recompute,
 * graph vs eager, seeded sampling, clear errors. Runs only where a GPU is usable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { native, packageRoot } from '../../src/engine/native';
import { withEnv } from '../helpers/env';
import { noGpu } from '../helpers/gpu';
import { compareSteps, teacherForced } from '../helpers/model-steps';
import { argmax, maxAbsDiff, top2Margin } from '../helpers/numeric';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const N = (): Any => native();
const fixturesDir = path.join(packageRoot(), 'datasets', 'fixtures');
const fixtureNames = ['qwen2-tiny-f32', 'qwen2-small-tied-f32', 'qwen2-tiny-bf16-sharded', 'qwen2-odd-f32'];

/**
 * Greedy positions compared with transformers' tokens, and skipped because the reference's
 * top-2 margin there is below what our logit error allows (issue 16 item 7: counted, printed,
 * and required to be a real number, never skipped silently).
 */
const greedyCounts = new Map<string, { freeCompared: number; freeSkipped: number; forcedCompared: number; forcedSkipped: number }>();

/** Index of the first position whose margin is not above `threshold` (= the comparable prefix). */
function comparablePrefix(margins: number[], threshold: number): number {
  let k = 0;
  while (k < margins.length && margins[k] > threshold) k++;
  return k;
}

describe.skipIf(noGpu)('ModelCuda against transformers fixtures and ModelCpu', () => {
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

  for (const name of fixtureNames) {
    const dir = path.join(fixturesDir, name);
    it.skipIf(!fs.existsSync(path.join(dir, 'reference.json')))(`${name}: logits and hidden states within 2e-2 of transformers, greedy continuations`, async () => {
      const ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
      const t = N().readSafetensors(path.join(dir, 'reference.safetensors')).tensors;
      const dtype = ref.weights_dtype === 'bfloat16' ? 'bf16' : 'f16';
      const m = await load('ModelCuda', { dir, dtype, contextLength: 256 });
      expect(m.backend).toBe('cuda');
      expect(m.dtype).toBe(dtype);
      const V = m.config.vocabSize, d = m.config.hiddenSize;
      let worst = 0;
      for (let i = 0; i < ref.prompts.length; i++) {
        const prompt: number[] = ref.prompts[i];
        const logits = t[`prompt${i}.logits`].data as Float32Array;
        const hidden = t[`prompt${i}.hidden`].data as Float32Array;
        m.reset();
        for (let p = 0; p < prompt.length; p++) {
          await m.prefill([prompt[p]]);
          await m.lmHead();
          const e1 = maxAbsDiff(m.logits(), logits.subarray(p * V, (p + 1) * V));
          const e2 = maxAbsDiff(m.hidden(), hidden.subarray(p * d, (p + 1) * d));
          expect(e1, `${name} prompt ${i} position ${p} logits`).toBeLessThan(2e-2);
          expect(e2, `${name} prompt ${i} position ${p} hidden`).toBeLessThan(2e-2);
          worst = Math.max(worst, e1);
        }
        // The same prompt in one prefill call gives the last position's logits.
        m.reset();
        const last = await m.forward(prompt);
        expect(maxAbsDiff(last, logits.subarray((prompt.length - 1) * V, prompt.length * V))).toBeLessThan(2e-2);
      }
      // 200 tokens: attention crosses its 128-position split.
      m.reset();
      const longLogits = await m.forward(ref.long_prompt);
      expect(maxAbsDiff(longLogits, t['long.logits'].data)).toBeLessThan(2e-2);

      // Greedy: free-running continuations equal the reference up to the first position whose
      // top-2 margin is not well above our logit error, teacher-forced argmaxes equal it wherever
      // the margin allows (both counted below), and a teacher-forced run over the reference
      // continuation agrees with ModelCpu (float32) step by step.
      const cpu = await load('ModelCpu', { dir, dtype: 'f32', contextLength: 256 });
      for (let i = 0; i < ref.prompts.length; i++) {
        m.reset();
        const r = await m.generate(ref.prompts[i], { maxNewTokens: 32 });
        const expected: number[] = ref.greedy[i];
        const seq = [...ref.prompts[i], ...expected.slice(0, 31)];
        const g = await teacherForced(m, seq);
        const c = await teacherForced(cpu, seq);
        // Teacher-forced continuations run up to 40 positions past the prompt: fp16 rounding in
        // the KV cache accumulates with length (seen: 0.0209 at step 26 on the H100), so these
        // steps get 3e-2; the prompt positions above keep the 2e-2.
        const err = compareSteps(g, c, 3e-2);
        // last_logits: the reference's logits after the prompt and 31 of its greedy tokens.
        expect(maxAbsDiff(g[g.length - 1], t[`prompt${i}.last_logits`].data)).toBeLessThan(3e-2);
        // Per position: step p0 + k of the teacher-forced run predicts expected[k]. The CPU
        // (float32) margins there stand for the reference's (float32 transformers).
        const p0 = ref.prompts[i].length - 1;
        const margins = expected.map((_, k) => top2Margin(c[p0 + k]));
        const count = greedyCounts.get(name) ?? { freeCompared: 0, freeSkipped: 0, forcedCompared: 0, forcedSkipped: 0 };
        // Free-running: our greedy tokens equal the reference's up to the first position whose
        // margin is not well above our logit error (after a legitimate flip nothing compares).
        const free = comparablePrefix(margins, 4 * Math.max(err, worst));
        expect(Array.from(r.tokens).slice(0, free), `${name} prompt ${i} greedy, first ${free} positions`).toEqual(expected.slice(0, free));
        count.freeCompared += free;
        count.freeSkipped += expected.length - free;
        // Teacher-forced: at every position whose margin is above twice the step's error, our
        // argmax is transformers' greedy token.
        for (let k = 0; k < expected.length; k++) {
          const e = maxAbsDiff(g[p0 + k], c[p0 + k]);
          if (margins[k] > 2 * e) {
            expect(argmax(g[p0 + k]), `${name} prompt ${i} teacher-forced position ${k}`).toBe(expected[k]);
            count.forcedCompared++;
          } else {
            count.forcedSkipped++;
          }
        }
        greedyCounts.set(name, count);
      }
      cpu.dispose();
      m.dispose();
    });
  }

  it.skipIf(!fixtureNames.some((n) => fs.existsSync(path.join(fixturesDir, n, 'reference.json'))))(
    'greedy positions compared with transformers: counted, printed, and a real number of them', () => {
      const rows = [...greedyCounts.entries()];
      // eslint-disable-next-line no-console
      console.log(['greedy positions vs transformers (compared / skipped for a small margin):',
        ...rows.map(([n, c]) => `  ${n}: free-running ${c.freeCompared} / ${c.freeSkipped}, teacher-forced ${c.forcedCompared} / ${c.forcedSkipped}`)].join('\n'));
      expect(rows.length, 'every fixture ran').toBe(fixtureNames.filter((n) => fs.existsSync(path.join(fixturesDir, n, 'reference.json'))).length);
      const sum = (f: (c: (typeof rows)[number][1]) => number) => rows.reduce((a, [, c]) => a + f(c), 0);
      const forced = sum((c) => c.forcedCompared);
      const total = forced + sum((c) => c.forcedSkipped);
      // Measured on the CPU from the fixtures' margins (threshold 0.04-0.08): about 300 of 384
      // teacher-forced positions and 100-200 free-running ones are comparable.
      expect(forced, `teacher-forced positions compared of ${total}`).toBeGreaterThanOrEqual(0.5 * total);
      expect(sum((c) => c.freeCompared), 'free-running positions compared').toBeGreaterThanOrEqual(64);
    });

  it('synthetic tiny preset: same weights as the CPU generator, logits and greedy within tolerance', async () => {
    const seed = 20261126;
    const g = await load('ModelCuda', { preset: 'tiny', seed, dtype: 'bf16', contextLength: 512 });
    const c = await load('ModelCpu', { preset: 'tiny', seed, dtype: 'f32', contextLength: 512 });
    const V = g.config.vocabSize;
    const prompt = Array.from({ length: 24 }, (_, i) => (i * 131 + 7) % V);
    const a = await g.forward(prompt);
    const b = await c.forward(prompt);
    expect(maxAbsDiff(a, b)).toBeLessThan(2e-2);
    g.reset();
    const r = await g.generate(prompt, { maxNewTokens: 32 });
    expect(r.tokens).toHaveLength(32);
    const seq = [...prompt, ...Array.from(r.tokens as Int32Array).slice(0, 31)];
    compareSteps(await teacherForced(g, seq), await teacherForced(c, seq), 2e-2);
  });

  it('KV-cache decode equals recomputation; trim rewinds; graph and eager launches agree', async () => {
    // Token-by-token prefill (TENSAFE_PREFILL=steps): a prefill is then the decode step run n
    // times, so it must equal the teacher-forced steps bit for bit. The batched tensor-core
    // prefill is compared with these steps in model-cuda-prefill.test.ts.
    const m = await withEnv({ TENSAFE_PREFILL: 'steps' }, () => load('ModelCuda', { preset: 'tiny', seed: 5, contextLength: 300 }));
    const V = m.config.vocabSize;
    const tokens = Array.from({ length: 150 }, (_, i) => (i * 37 + 11) % V);
    const steps = await teacherForced(m, tokens);
    for (const n of [1, 64, 129, 150]) {
      m.reset();
      const full = await m.forward(tokens.slice(0, n));
      expect(maxAbsDiff(full, steps[n - 1])).toBe(0);
    }
    m.trim(100);
    expect(m.position).toBe(100);
    const again = await m.forward(tokens.slice(100, 120));
    expect(maxAbsDiff(again, steps[119])).toBe(0);

    const eager: Any = await withEnv({ TENSAFE_CUDA_GRAPH: '0', TENSAFE_PREFILL: 'steps' }, () =>
      load('ModelCuda', { preset: 'tiny', seed: 5, contextLength: 300 }));
    const e = await eager.forward(tokens);
    expect(maxAbsDiff(e, steps[149])).toBe(0);
    eager.dispose();
    m.dispose();
  });

  it('seeded sampling on the device follows the reference sampler', async () => {
    const m = await load('ModelCuda', { preset: 'tiny', seed: 9 });
    const opts = [
      { temperature: 0.8, topK: 40, topP: 0.9 },
      { temperature: 1.2, topK: 0, topP: 0.7 },
      { temperature: 0.6, topK: 0, topP: 1 },
    ];
    await m.forward([1, 2, 3, 4]);
    const logits: Float32Array = m.logits();
    for (const [i, o] of opts.entries()) {
      const seed = 1000 + i;
      m.setSamplingSeed(seed);
      for (let step = 0; step < 8; step++) {
        const got = m.sample(o);
        const want = N().sampleToken(logits, o, N().samplingUniform(seed, step));
        expect(got, `${JSON.stringify(o)} step ${step}`).toBe(want);
      }
    }
    // Greedy needs no draw.
    expect(m.sample({ temperature: 0 })).toBe(argmax(logits));
    m.dispose();
  });

  it('per-layer plaintext LoRA adapters match the CPU backend (instrumented path, adapters on the device)', async () => {
    const seed = 31;
    const g = await load('ModelCuda', { preset: 'tiny', seed, dtype: 'bf16', contextLength: 64 });
    const c = await load('ModelCpu', { preset: 'tiny', seed, dtype: 'f32', contextLength: 64 });
    const cfg = g.config;
    const d = cfg.hiddenSize, I = cfg.intermediateSize, qd = cfg.numAttentionHeads * cfg.headDim;
    const kvd = cfg.numKeyValueHeads * cfg.headDim;
    let state = 12345;
    const r = (n: number, s: number) =>
      Float32Array.from({ length: n }, () => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return (state / 2147483648 - 0.5) * 2 * s;
      });
    const rank = 4;
    const spec: Array<[number, string, number, number]> = [
      [0, 'q_proj', d, qd], [0, 'v_proj', d, kvd], [1, 'o_proj', qd, d], [1, 'up_proj', d, I], [1, 'down_proj', I, d],
    ];
    const adapters = spec.map(([layer, target, inDim, outDim]) => ({
      layer, target, rank, scaling: 2, a: r(rank * inDim, 0.3), b: r(outDim * rank, 0.3),
    }));
    const prompt = [5, 9, 77, 301, 12, 4, 88, 250];
    const base = await g.forward(prompt);
    g.reset();
    g.setLayerAdapters(adapters);
    c.setLayerAdapters(adapters);
    expect(g.layerAdapterPath).toBe('cuda-resident'); // no hook: every site on the device
    expect(c.layerAdapterPath).toBe('host');
    const a = await g.forward(prompt);
    const b = await c.forward(prompt);
    expect(maxAbsDiff(a, b)).toBeLessThan(2e-2);
    expect(maxAbsDiff(a, base)).toBeGreaterThan(1e-2); // the adapters changed the result
    // Adapters and a hook at the same sites: those sites take the host path (adapters in float64,
    // then the hook, which adds the pairs again); with the hook at two of the five sites, those
    // two run on the host and the other three on the device. The CPU backend with the doubled
    // pairs as adapters is the reference of both.
    for (const [hooked, path] of [[adapters, 'host'], [adapters.slice(0, 2), 'mixed']] as const) {
      g.setHookLora([...hooked]);
      expect(g.layerAdapterPath).toBe(path);
      g.reset();
      const got = await g.forward(prompt);
      c.setLayerAdapters([...adapters, ...hooked]);
      c.reset();
      expect(maxAbsDiff(got, await c.forward(prompt)), path).toBeLessThan(2e-2);
      expect(maxAbsDiff(got, a), path).toBeGreaterThan(1e-2);
    }
    g.setHookLora([]);
    c.setLayerAdapters(adapters);
    // Cleared: back to the captured graph and the base model.
    g.setLayerAdapters([]);
    expect(g.layerAdapterPath).toBe('none');
    g.reset();
    expect(maxAbsDiff(await g.forward(prompt), base)).toBe(0);
    // The same pairs through the projection-hook interface (how an encrypted LoRA plugs in):
    // the hook sees each site's input and output once per token.
    g.setHookLora(adapters);
    g.reset();
    const hooked = await g.forward(prompt);
    expect(maxAbsDiff(hooked, a)).toBeLessThan(1e-4);
    expect(g.hookCalls).toBe(prompt.length * adapters.length);
    g.setHookLora([]);
    g.reset();
    expect(maxAbsDiff(await g.forward(prompt), base)).toBe(0);
  });

  it('bad token ids and context overflow are RangeErrors; dispose frees the model', async () => {
    const m = await load('ModelCuda', { preset: 'tiny', seed: 1, contextLength: 16 });
    const V = m.config.vocabSize;
    await expect(m.prefill([V])).rejects.toThrow(RangeError);
    await expect(m.prefill([-1])).rejects.toThrow(/outside the vocabulary/);
    await expect(m.prefill(Array.from({ length: 17 }, () => 1))).rejects.toThrow(/context length exceeded/);
    expect(m.position).toBe(0);
    await m.prefill(Array.from({ length: 16 }, () => 1));
    await expect(m.decodeStep(1)).rejects.toThrow(RangeError);
    m.dispose();
    expect(m.disposed).toBe(true);
    expect(() => m.position).toThrow(/disposed/);
  });

  it('0.5B shape: CUDA f16 matches the CPU backend on the real shape (head_dim 64, GQA 7)', async () => {
    const seed = 77;
    const g = await load('ModelCuda', { preset: 'qwen2.5-0.5b-shape', seed, contextLength: 256 });
    const c = await load('ModelCpu', { preset: 'qwen2.5-0.5b-shape', seed, dtype: 'bf16', contextLength: 256 });
    const prompt = [3838, 374, 264, 18986, 2692, 30];
    const a = await g.forward(prompt);
    const b = await c.forward(prompt);
    expect(maxAbsDiff(a, b)).toBeLessThan(2e-2);
    expect(maxAbsDiff(g.hidden(), c.hidden())).toBeLessThan(2e-2);
    c.dispose();
    g.dispose();
  }, 300_000);

  it('1.5B shape: generated on the GPU, matches the CPU backend, decodes 32 greedy tokens', async () => {
    const seed = 42;
    const g = await load('ModelCuda', { preset: 'qwen2.5-1.5b-shape', seed, contextLength: 4096 });
    expect(g.weightBytesPerToken).toBeGreaterThan(3.0e9);
    expect(g.weightBytesPerToken).toBeLessThan(3.2e9);
    const c = await load('ModelCpu', { preset: 'qwen2.5-1.5b-shape', seed, dtype: 'bf16', contextLength: 64 });
    const prompt = [3838, 374, 264, 18986, 2692, 30, 11, 13];
    const a = await g.forward(prompt);
    const b = await c.forward(prompt);
    expect(maxAbsDiff(a, b)).toBeLessThan(2e-2);
    c.dispose();
    g.reset();
    const r = await g.generate(prompt, { maxNewTokens: 32 });
    expect(r.tokens).toHaveLength(32);
    for (const t of r.tokens as Int32Array) expect(t >= 0 && t < g.config.vocabSize).toBe(true);
    g.dispose();
  }, 300_000);
});
