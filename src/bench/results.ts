/**
 * Benchmark plumbing shared by every `npm run bench -- <name>`: timing statistics and the
 * printed table. The result file itself (schema, writer, reader) lives in src/results.
 */
import { type Row, formatTable } from '../results';

export { newResult, writeResult, type BenchName, type Cell, type ResultFile, type Row } from '../results';

export interface Stats {
  median: number;
  min: number;
  max: number;
  p10: number;
  p90: number;
  runs: number;
}

/** Order statistics of a sample (median of an even count is the mean of the middle two). */
export function stats(samples: number[]): Stats {
  if (samples.length === 0) throw new RangeError('stats: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))];
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], p10: at(0.1), p90: at(0.9), runs: s.length };
}

/**
 * Times an async (or sync) function on the host clock: `warmup` untimed calls, then
 * `iterations` timed ones. Returns per-call milliseconds. Use native timings (CUDA events)
 * where the engine offers them; this is for whole-call costs seen from JavaScript.
 */
export async function timeMs(fn: () => unknown, iterations: number, warmup = 2): Promise<Stats> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return stats(samples);
}

export function printTable(rows: Row[], columns?: string[], title?: string): void {
  // eslint-disable-next-line no-console
  console.log('\n' + formatTable(rows, columns, title) + '\n');
}
