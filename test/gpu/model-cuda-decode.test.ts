/**
 * The decode megakernel (TENSAFE_DECODE=mega: the whole step as one persistent kernel) against
 * the layer kernels (TENSAFE_DECODE=graph) and ModelCpu, step by step on teacher-forced
 * sequences, across attention-split boundaries (256 positions per split), for both weight
 * types and the real shapes; graph replays against eager launches and with or without the L2
 * prefetch, bit for bit (the prefetch is a hint; the barrier and reductions are deterministic).
 * Runs only where a GPU is usable.
 */
import { describe, expect, it } from 'vitest';
import { noGpu } from '../helpers/gpu';
import { compareSteps, suiteModels, teacherForced, tokensFor } from '../helpers/model-steps';
import { maxAbsDiff } from '../helpers/numeric';

const MEGA = { TENSAFE_DECODE: 'mega', TENSAFE_PREFILL: 'steps' };
const LAYERS = { TENSAFE_DECODE: 'graph', TENSAFE_PREFILL: 'steps' };

describe.skipIf(noGpu)('decode megakernel', () => {
  const load = suiteModels();

  for (const dtype of ['bf16', 'f16'] as const) {
    it(`tiny preset ${dtype}: 600 steps (3 attention splits) match the layer kernels and ModelCpu`, async () => {
      const opts = { preset: 'tiny', seed: 321, dtype, contextLength: 1024 };
      const mega = await load('ModelCuda', opts, MEGA);
      const layers = await load('ModelCuda', opts, LAYERS);
      const cpu = await load('ModelCpu', { preset: 'tiny', seed: 321, dtype: 'f32', contextLength: 1024 });
      const tokens = tokensFor(600, mega.config.vocabSize, 1);
      const a = await teacherForced(mega, tokens);
      const b = await teacherForced(layers, tokens);
      const c = await teacherForced(cpu, tokens);
      // Same arithmetic, other summation orders: float32 rounding apart, except where that
      // flips the 16-bit rounding of a cached K/V entry (an ulp of the cache type).
      compareSteps(a, b, 1e-2, 'mega vs layer kernels');
      compareSteps(a, c, 3e-2, 'mega vs ModelCpu');
    });
  }

  it('graph replay equals eager launches; without the L2 prefetch too; KV-cache decode equals recomputation', async () => {
    const opts = { preset: 'tiny', seed: 8, contextLength: 600 };
    const graph = await load('ModelCuda', opts, MEGA);
    const eager = await load('ModelCuda', opts, { ...MEGA, TENSAFE_CUDA_GRAPH: '0' });
    const noPrefetch = await load('ModelCuda', opts, { ...MEGA, TENSAFE_MEGA_LOOKAHEAD_KB: '0' });
    const tokens = tokensFor(300, graph.config.vocabSize, 2);
    const a = await teacherForced(graph, tokens);
    const b = await teacherForced(eager, tokens);
    const c = await teacherForced(noPrefetch, tokens);
    for (let s = 0; s < tokens.length; s++) {
      expect(maxAbsDiff(a[s], b[s]), `eager step ${s}`).toBe(0);
      expect(maxAbsDiff(a[s], c[s]), `no prefetch step ${s}`).toBe(0);
    }
    // Replays after a reset and a trim reproduce the first run exactly.
    for (const n of [1, 257, 300]) {
      graph.reset();
      const again: Float32Array = await graph.forward(tokens.slice(0, n));
      expect(maxAbsDiff(again, a[n - 1])).toBe(0);
    }
    graph.trim(200);
    expect(maxAbsDiff(await graph.forward(tokens.slice(200, 260)), a[259])).toBe(0);
  });

  for (const [preset, steps] of [['qwen2.5-0.5b-shape', 300], ['qwen2.5-1.5b-shape', 300]] as const) {
    it(`${preset}: ${steps} steps match the layer kernels (fp16), ModelCpu on the first 8`, async () => {
      const opts = { preset, seed: 5, contextLength: 512 };
      const mega = await load('ModelCuda', opts, MEGA);
      const layers = await load('ModelCuda', opts, LAYERS);
      const tokens = tokensFor(steps, Math.min(mega.config.vocabSize, 151643), 3);
      const a = await teacherForced(mega, tokens);
      const b = await teacherForced(layers, tokens);
      compareSteps(a, b, 1e-2, `${preset} mega vs layer kernels`);
      const cpu = await load('ModelCpu', { preset, seed: 5, dtype: 'bf16', contextLength: 16 });
      const c = await teacherForced(cpu, tokens.slice(0, 8));
      compareSteps(a.slice(0, 8), c, 2e-2, `${preset} mega vs ModelCpu`);
    }, 600_000);
  }

  it('bf16 1.5B shape: the megakernel matches the layer kernels', async () => {
    const opts = { preset: 'qwen2.5-1.5b-shape', seed: 6, dtype: 'bf16', contextLength: 256 };
    const mega = await load('ModelCuda', opts, MEGA);
    const layers = await load('ModelCuda', opts, LAYERS);
    const tokens = tokensFor(64, 151643, 4);
    compareSteps(await teacherForced(mega, tokens), await teacherForced(layers, tokens), 1e-2, 'bf16 mega vs layer kernels');
  }, 600_000);
});
