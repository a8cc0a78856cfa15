/** Shared by the CPU and GPU tests of model contexts. */
import type { ModelContext } from '../../src/engine/model';

/** A small deterministic generator for test inputs (replayable from its seed). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// max |a - b| (lengths must agree; a NaN anywhere counts as Infinity).
export { maxAbsDiff } from './numeric';

/** `steps` tokens after `prompt` on `ctx` (one native step each), greedy or sampled from `seed`. */
export async function continuation(ctx: ModelContext, prompt: number[], steps: number, seed: number, temperature: number): Promise<number[]> {
  await ctx.reset();
  await ctx.setSamplingSeed(seed);
  const out = [await ctx.step(prompt, { temperature, topK: 40 })];
  for (let i = 1; i < steps; i++) out.push(await ctx.step(out[i - 1], { temperature, topK: 40 }));
  return out;
}
