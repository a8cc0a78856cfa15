/**
 * Batched prefill on ModelCuda (tensor-core GEMMs, causal prefill attention) against ModelCpu
 * (float32) and against the same GPU model prefilling token by token (TENSAFE_PREFILL=steps):
 * prompt logits and hidden states within the model's tolerances, and teacher-forced
 * continuations after a batched prefill, which read the KV cache it wrote, within the
 * continuation tolerance of model-cuda.test.ts. Also: chunked prefill, our GEMM against cuBLAS,
 * and the 0.5B and 1.5B shapes. Runs only where a GPU is usable.
 */
import { describe, expect, it } from 'vitest';
import { native } from '../../src/engine/native';
import { noGpu } from '../helpers/gpu';
import { compareSteps, suiteModels, tokensFor } from '../helpers/model-steps';
import { argmax, maxAbsDiff, top2Margin } from '../helpers/numeric';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const N = (): Any => native();

/** Prefill `prompt` in one call, then teacher-force `cont` one token at a time: the logits of each step. */
async function prefillThenSteps(m: Any, prompt: number[], cont: number[]): Promise<{ prompt: Float32Array; hidden: Float32Array; steps: Float32Array[] }> {
  m.reset();
  const last: Float32Array = await m.forward(prompt);
  const hidden: Float32Array = m.hidden();
  const steps: Float32Array[] = [];
  for (const t of cont) {
    await m.prefill([t]);
    await m.lmHead();
    steps.push(m.logits());
  }
  return { prompt: last, hidden, steps };
}

describe.skipIf(noGpu)('ModelCuda batched prefill', () => {
  const load = suiteModels();

  for (const dtype of ['bf16', 'f16'] as const) {
    it(`tiny preset ${dtype}: batched prompts and their continuations match ModelCpu and token-by-token prefill`, async () => {
      const seed = 4242;
      const opts = { preset: 'tiny', seed, dtype, contextLength: 512 };
      const g = await load('ModelCuda', opts);
      const steps = await load('ModelCuda', opts, { TENSAFE_PREFILL: 'steps' });
      const c = await load('ModelCpu', { preset: 'tiny', seed, dtype: 'f32', contextLength: 512 });
      const V = g.config.vocabSize;
      // 2 tokens (the smallest batch), one attention tile, and several (150 > 2 x 64).
      for (const [n, salt] of [[2, 1], [24, 2], [150, 3]]) {
        const prompt = tokensFor(n, V, salt);
        const cont = tokensFor(40, V, salt + 10);
        const a = await prefillThenSteps(g, prompt, cont);
        const b = await prefillThenSteps(steps, prompt, cont);
        const r = await prefillThenSteps(c, prompt, cont);
        expect(maxAbsDiff(a.prompt, r.prompt), `prompt ${n} vs ModelCpu`).toBeLessThan(2e-2);
        expect(maxAbsDiff(a.hidden, r.hidden), `hidden ${n} vs ModelCpu`).toBeLessThan(2e-2);
        expect(maxAbsDiff(a.prompt, b.prompt), `prompt ${n} vs token-by-token`).toBeLessThan(2e-2);
        // The continuation reads the K/V the batched prefill wrote for every prompt position.
        compareSteps(a.steps, r.steps, 3e-2, `continuation after ${n} vs ModelCpu`);
        compareSteps(a.steps, b.steps, 3e-2, `continuation after ${n} vs token-by-token`);
      }
    });
  }

  it('chunked prefill (64-token chunks) equals one chunk with our GEMM, and stays within tolerance with the default', async () => {
    const opts = { preset: 'tiny', seed: 99, dtype: 'f16', contextLength: 512 };
    const whole = await load('ModelCuda', opts, { TENSAFE_GEMM: 'own' });
    const chunked = await load('ModelCuda', opts, { TENSAFE_GEMM: 'own', TENSAFE_PREFILL_CHUNK: '64' });
    const chunkedDefault = await load('ModelCuda', opts, { TENSAFE_PREFILL_CHUNK: '64' });
    const V = whole.config.vocabSize;
    const prompt = tokensFor(300, V, 5);
    const cont = tokensFor(8, V, 6);
    const a = await prefillThenSteps(whole, prompt, cont);
    const b = await prefillThenSteps(chunked, prompt, cont);
    const d = await prefillThenSteps(chunkedDefault, prompt, cont);
    // Each row's products, norms and attention do not depend on which chunk it is in.
    expect(maxAbsDiff(a.prompt, b.prompt)).toBeLessThanOrEqual(1e-6);
    for (let s = 0; s < cont.length; s++) expect(maxAbsDiff(a.steps[s], b.steps[s])).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(a.prompt, d.prompt)).toBeLessThan(2e-2);
    // A prompt that does not start at position 0 (prefill after a prefill).
    whole.reset();
    await whole.prefill(prompt.slice(0, 100));
    const tail: Float32Array = await whole.forward(prompt.slice(100));
    expect(maxAbsDiff(tail, a.prompt)).toBeLessThanOrEqual(1e-6);
  });

  it('our tensor-core GEMM and cuBLAS give the same model (0.5B shape, 300-token prompt)', async () => {
    const k = N().modelCudaKernels.cublas();
    if (!k.available) {
      // eslint-disable-next-line no-console
      console.log(`[model-cuda-prefill] cuBLAS not available (${k.detail}): comparison skipped`);
      if (process.env.TENSAFE_REQUIRE_CUBLAS === '1') expect(k.available, k.detail).toBe(true);
      return;
    }
    const opts = { preset: 'qwen2.5-0.5b-shape', seed: 7, contextLength: 512 };
    const own = await load('ModelCuda', opts, { TENSAFE_GEMM: 'own' });
    const cub = await load('ModelCuda', opts, { TENSAFE_GEMM: 'cublas' });
    const V = own.config.vocabSize;
    const prompt = tokensFor(300, V, 8);
    const a: Float32Array = await own.forward(prompt);
    const b: Float32Array = await cub.forward(prompt);
    expect(maxAbsDiff(a, b)).toBeLessThan(2e-2);
  }, 300_000);

  for (const [preset, n] of [['qwen2.5-0.5b-shape', 300], ['qwen2.5-1.5b-shape', 1024]] as const) {
    it(`${preset}: a ${n}-token batched prefill matches token-by-token prefill, and so do 8 steps after it`, async () => {
      const opts = { preset, seed: 11, contextLength: 2048 };
      const g = await load('ModelCuda', opts);
      const steps = await load('ModelCuda', opts, { TENSAFE_PREFILL: 'steps' });
      const V = g.config.vocabSize;
      const prompt = tokensFor(n, Math.min(V, 151643), 9);
      const cont = tokensFor(8, Math.min(V, 151643), 10);
      const a = await prefillThenSteps(g, prompt, cont);
      const b = await prefillThenSteps(steps, prompt, cont);
      // Long prompts: the fp16 KV-cache error grows with length (model-cuda.test.ts: 3e-2).
      const err = maxAbsDiff(a.prompt, b.prompt);
      expect(err).toBeLessThan(3e-2);
      if (top2Margin(b.prompt) > 2 * err) expect(argmax(a.prompt)).toBe(argmax(b.prompt));
      expect(maxAbsDiff(a.hidden, b.hidden)).toBeLessThan(3e-2);
      compareSteps(a.steps, b.steps, 3e-2, `${preset} continuation`);
    }, 600_000);
  }
});
