/**
 * Statistical checks that the HE input is clip(h, C) + N(0, sigma^2 I), fresh per token, for the
 * DP tests on the CPU (test/unit/pipeline-dp-noise) and the GPU (test/gpu/pipeline-dp-noise).
 *
 * Each check is a two-sided z-test at Z = 6 standard errors: under the null (the noise is what it
 * should be) one check fails with probability 2 Phi(-6) = 2.0e-9 (normal approximations; n is
 * thousands of values). Each call prints its number of checks and the union bound; a test file
 * makes fewer than 1000 checks, so it fails falsely with probability below 2e-6. Without noise,
 * with sigma off by 10%, or with noise reused between tokens, the checks fail (the detector
 * tests show it on synthetic noise).
 */
import { expect } from 'vitest';
import type { ModelContext } from '../../src/engine/model';
import { createGenerator, type GeneratorConfig } from '../../src/pipeline/native';

export const Z = 6;
export const FALSE_FAILURE_PER_CHECK = 2.0e-9;
/** P(|N(0,1)| < 1). */
const P_WITHIN_1SIGMA = 0.6826894921370859;

export interface HeInputRecord {
  hidden: Float64Array;
  input: Float64Array;
}

export function clipL2(h: ArrayLike<number>, c: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < h.length; i++) ss += h[i] * h[i];
  const norm = Math.sqrt(ss);
  const f = norm > c ? c / norm : 1;
  return Float64Array.from(h, (v) => v * f);
}

/** input - clip(hidden): the noise the step added to the HE input. */
export function noiseOf(r: HeInputRecord, clipNorm: number): Float64Array {
  const c = clipL2(r.hidden, clipNorm);
  return Float64Array.from(r.input, (v, i) => v - c[i]);
}

function correlation(a: Float64Array, b: Float64Array): number {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) { ma += a[i]; mb += b[i]; }
  ma /= a.length; mb /= b.length;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 1; // zero noise correlates "perfectly"
}

export interface NoiseVerdict {
  /** Names of the failed checks with their statistics; empty when the noise passes. */
  failures: string[];
  checks: number;
  n: number;
  mean: number;
  variance: number;
}

/**
 * The checks over per-token noise vectors (each d long): mean 0, variance sigma^2, the share
 * within one sigma of a Gaussian's, and no correlation between consecutive tokens (fresh noise).
 */
export function judgeNoise(noise: Float64Array[], sigma: number): NoiseVerdict {
  const failures: string[] = [];
  let checks = 0;
  const all = noise.flatMap((e) => Array.from(e));
  const n = all.length;
  const mean = all.reduce((a, b) => a + b, 0) / n;
  const variance = all.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  const check = (name: string, stat: number, se: number) => {
    checks++;
    if (!(Math.abs(stat) <= Z * se)) failures.push(`${name}: ${stat.toPrecision(4)} outside +-${(Z * se).toPrecision(4)}`);
  };
  check('mean', mean, sigma / Math.sqrt(n));
  check('variance / sigma^2 - 1', variance / (sigma * sigma) - 1, Math.sqrt(2 / n));
  const within = all.filter((x) => Math.abs(x) < sigma).length / n;
  check('share within one sigma - 0.6827', within - P_WITHIN_1SIGMA, Math.sqrt((P_WITHIN_1SIGMA * (1 - P_WITHIN_1SIGMA)) / n));
  for (let t = 0; t + 1 < noise.length; t++) {
    check(`correlation of tokens ${t} and ${t + 1}`, correlation(noise[t], noise[t + 1]), 1 / Math.sqrt(noise[t].length));
  }
  return { failures, checks, n, mean, variance };
}

/** Asserts that the noise passes, printing the statistics and the stated false-failure rate. */
export function expectCalibratedNoise(noise: Float64Array[], sigma: number, what: string): NoiseVerdict {
  const v = judgeNoise(noise, sigma);
  // eslint-disable-next-line no-console
  console.log(`${what}: ${v.n} noise values over ${noise.length} tokens, mean ${v.mean.toPrecision(3)}, ` +
    `sd ${Math.sqrt(v.variance).toPrecision(4)} (sigma ${sigma.toPrecision(4)}); ${v.checks} checks at ${Z} standard errors ` +
    `(false failure <= ${(v.checks * FALSE_FAILURE_PER_CHECK).toExponential(1)})`);
  expect(v.failures, what).toEqual([]);
  return v;
}

const PROMPT = Int32Array.from([1, 17, 42, 99, 5]);

/**
 * Runs `tokens` greedy steps of a generator made with config.recordHeInput and returns every
 * token's record (the last release's hidden state and HE input), the releases and the HE backend.
 */
export async function recordHeInputs(context: ModelContext, config: GeneratorConfig, tokens: number): Promise<{ records: HeInputRecord[]; releases: number; heBackend: string }> {
  const g = await createGenerator(context, { ...config, recordHeInput: true });
  try {
    const records: HeInputRecord[] = [];
    let s = await g.start(PROMPT, { temperature: 0 });
    for (let i = 0; i < tokens; i++) {
      const r = g.lastHeInput();
      expect(r, `record of token ${i}`).not.toBeNull();
      records.push({ hidden: Float64Array.from(r!.hidden), input: Float64Array.from(r!.input) });
      if (i + 1 < tokens) s = await g.next(s.token);
    }
    const info = g.info();
    return { records, releases: info.releases, heBackend: info.heBackend };
  } finally {
    await g.dispose();
  }
}
