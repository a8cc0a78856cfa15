/**
 * Helpers of the GPU model suites: loading models (with engine switches in the environment)
 * that are disposed after the suite, deterministic token sequences, teacher-forced runs and
 * their step-by-step comparison.
 */
import { afterAll, expect } from 'vitest';
import { native } from '../../src/engine/native';
import { withEnv } from './env';
import { argmax, maxAbsDiff, top2Margin } from './numeric';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/**
 * A loader for the suite: loads a model (native ModelCuda / ModelCpu) and returns a context of
 * it (createContextSync); contexts, then models, are disposed after the suite (call inside
 * describe). `env` holds engine switches, read when the model is loaded (TENSAFE_DECODE,
 * TENSAFE_PREFILL, TENSAFE_GEMM, ...) and when the context is made (TENSAFE_CUDA_GRAPH).
 */
export function suiteModels(): (cls: 'ModelCuda' | 'ModelCpu', opts: Record<string, unknown>, env?: Record<string, string | undefined>) => Promise<Any> {
  const open: Array<{ model: Any; context: Any }> = [];
  afterAll(async () => {
    for (const { model, context } of open) {
      if (!context.disposed) await context.dispose();
      if (!model.disposed) await model.dispose();
    }
  });
  return (cls, opts, env = {}) =>
    withEnv(env, async () => {
      const model = await native()[cls].load(opts);
      const context = model.createContextSync();
      open.push({ model, context });
      return context;
    });
}

/** n ordinary token ids below `vocab`, a different sequence for each salt. */
export function tokensFor(n: number, vocab: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 13) % vocab);
}

/** Logits of each step of a teacher-forced run over `tokens` (one token at a time). */
export async function teacherForced(m: Any, tokens: number[]): Promise<Float32Array[]> {
  m.reset();
  const out: Float32Array[] = [];
  for (const t of tokens) {
    await m.prefill([t]);
    await m.lmHead();
    out.push(m.logits());
  }
  return out;
}

/**
 * `got` vs the reference `want` over the same token sequence: every step's logits within tol,
 * and the argmax equal to the reference's wherever the reference's top-2 margin exceeds twice
 * the step's error (below that, float16 rounding may legitimately flip a near-tie). Returns
 * the largest error.
 */
export function compareSteps(got: Float32Array[], want: Float32Array[], tol: number, what = ''): number {
  const tag = what ? `${what} ` : '';
  let worst = 0;
  for (let s = 0; s < got.length; s++) {
    const err = maxAbsDiff(got[s], want[s]);
    worst = Math.max(worst, err);
    expect(err, `${tag}step ${s}`).toBeLessThan(tol);
    if (top2Margin(want[s]) > 2 * err) expect(argmax(got[s]), `${tag}argmax at step ${s}`).toBe(argmax(want[s]));
  }
  return worst;
}
