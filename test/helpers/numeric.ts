/**
 * Numeric helpers shared by the GPU suites: a seeded generator of test inputs (the seed is
 * printed, so a failure can be replayed), and the error measures the suites compare with.
 */
import { randomInt } from 'node:crypto';
import { expect } from 'vitest';

/** A fresh random seed, printed with the suite's tag. */
export function freshSeed(tag: string): number {
  const seed = randomInt(1, 2 ** 31 - 1);
  // eslint-disable-next-line no-console
  console.log(`[${tag}] random seed ${seed}`);
  return seed;
}

/** mulberry32: uniform [0, 1) from a 32-bit seed. */
export function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n uniform values of standard deviation `scale` (uniform on [-scale*sqrt3, scale*sqrt3]). */
export function uniformSampler(rand: () => number): (n: number, scale?: number) => Float32Array {
  return (n, scale = 1) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale * 1.7320508;
    return out;
  };
}

/** max |got - ref| / max |ref|; a NaN anywhere gives Infinity. */
export function maxRelErr(got: Float32Array, ref: Float64Array | Float32Array): number {
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(got[i] - ref[i]);
    maxErr = Number.isNaN(e) ? Infinity : Math.max(maxErr, e);
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  return maxErr / Math.max(maxRef, 1e-30);
}

/** max |a - b| (lengths must agree); a NaN anywhere gives Infinity. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    m = Number.isNaN(d) ? Infinity : Math.max(m, d);
  }
  return m;
}

/** Index of the largest entry (lowest on ties). */
export function argmax(a: Float32Array): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** Largest entry minus the second largest. */
export function top2Margin(a: Float32Array): number {
  const b = argmax(a);
  let s = -Infinity;
  for (let i = 0; i < a.length; i++) if (i !== b) s = Math.max(s, a[i]);
  return a[b] - s;
}
