/**
 * Benchmark plumbing shared by every `npm run bench -- <name>`: timing statistics, the
 * printed table, and the JSON result file of ../shared/design/results.md
 * (datasets/results/<bench>-<backend>-<device-slug>.json; newest run replaces the older).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../engine/native';

export type BenchName = 'ntt' | 'ckks' | 'model' | 'pipeline' | 'server' | 'private';
export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

export interface BenchResult {
  bench: BenchName;
  backend: 'cpu' | 'cuda';
  device: string;
  commit: string;
  date: string;
  command: string;
  summary: Record<string, number | string | boolean>;
  rows: Row[];
  /** Free-form facts a reader needs: insecure parameters used, peers' versions, cited figures. */
  notes?: string[];
}

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

/** Git commit of the measured tree (+"-dirty"); TENSAFE_COMMIT wins (device runs have no .git). */
export function gitCommit(): string {
  if (process.env.TENSAFE_COMMIT) return process.env.TENSAFE_COMMIT;
  try {
    const root = packageRoot();
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

/** "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3". */
export function deviceSlug(device: string): string {
  return device.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'unknown';
}

/** Folder the result files go to (TENSAFE_RESULTS_DIR overrides, e.g. $OUT on the GPU machine). */
export function resultsDir(): string {
  return process.env.TENSAFE_RESULTS_DIR ?? path.join(packageRoot(), 'datasets', 'results');
}

/** Writes the result file and returns its path. */
export function writeResult(result: BenchResult): string {
  const dir = resultsDir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.bench}-${result.backend}-${deviceSlug(result.device)}.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

/** Starts a result record with the common fields filled in. */
export function newResult(bench: BenchName, backend: 'cpu' | 'cuda', device: string, argv: string[]): BenchResult {
  return {
    bench,
    backend,
    device,
    commit: gitCommit(),
    date: new Date().toISOString(),
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    summary: {},
    rows: [],
  };
}

function formatCell(v: Cell): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : a >= 0.01 ? v.toFixed(3) : v.toPrecision(3);
  }
  return String(v);
}

/** Renders rows as a fixed-width text table (columns default to the union of keys). */
export function formatTable(rows: Row[], columns?: string[], title?: string): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => formatCell(r[c] ?? null)));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(widths[i])).join('  ');
  const out = [] as string[];
  if (title) out.push(title);
  out.push(line(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line));
  return out.join('\n');
}

export function printTable(rows: Row[], columns?: string[], title?: string): void {
  // eslint-disable-next-line no-console
  console.log('\n' + formatTable(rows, columns, title) + '\n');
}
