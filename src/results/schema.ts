/**
 * The benchmark result file of shared/design/results.md: one JSON document per
 * (bench, backend, device) under datasets/results/. This is the only definition of the format:
 * benchmarks write it (./write), the notebook library and the README generator read it (./read).
 */

/** Benchmarks that write result files ('private' is the client-key mode's bench, 'private-site' its per-site phases). */
export const BENCH_NAMES = ['ntt', 'ckks', 'model', 'pipeline', 'server', 'private', 'private-site'] as const;
export type BenchName = (typeof BENCH_NAMES)[number];

export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;
export type SummaryValue = number | string | boolean;

export interface ResultFile {
  bench: BenchName;
  backend: 'cpu' | 'cuda';
  /** GPU name, or the CPU model name. */
  device: string;
  /** Git commit of the measured tree; '-dirty' when it had uncommitted changes. */
  commit: string;
  /** ISO date-time of the run. */
  date: string;
  command: string;
  /** Headline figures under the names of results.md (added to, never renamed). */
  summary: Record<string, SummaryValue>;
  rows: Row[];
  /** Facts a reader needs: parameters, peers' versions, machine load, cited figures. */
  notes?: string[];
  /** Set by the reader: the file's path relative to the package root (never written). */
  file?: string;
}

/** Why a parsed document is not a result file, or null when it is one. */
export function resultFileProblem(x: unknown): string | null {
  if (!x || typeof x !== 'object' || Array.isArray(x)) return 'not a JSON object';
  const r = x as Record<string, unknown>;
  for (const k of ['bench', 'backend', 'device', 'date'] as const) {
    if (typeof r[k] !== 'string') return `'${k}' is not a string`;
  }
  if (!(BENCH_NAMES as readonly string[]).includes(r.bench as string)) return `unknown bench '${String(r.bench)}'`;
  if (r.backend !== 'cpu' && r.backend !== 'cuda') return `backend must be 'cpu' or 'cuda', got '${String(r.backend)}'`;
  if (Number.isNaN(Date.parse(r.date as string))) return `'date' is not a date: '${String(r.date)}'`;
  if (!r.summary || typeof r.summary !== 'object' || Array.isArray(r.summary)) return "'summary' is not an object";
  if (!Array.isArray(r.rows)) return "'rows' is not an array";
  if (r.notes !== undefined && !(Array.isArray(r.notes) && r.notes.every((n) => typeof n === 'string'))) return "'notes' is not an array of strings";
  return null;
}

export function isResultFile(x: unknown): x is ResultFile {
  return resultFileProblem(x) === null;
}

/** True when the measured tree had uncommitted changes (or its commit is unknown). */
export function fromDirtyTree(r: Pick<ResultFile, 'commit'>): boolean {
  return !r.commit || r.commit === 'unknown' || r.commit.endsWith('-dirty');
}

/** "NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3". */
export function deviceSlug(device: string): string {
  return device.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'unknown';
}

/** `<bench>-<backend>-<device-slug>.json` */
export function resultFileName(r: Pick<ResultFile, 'bench' | 'backend' | 'device'>): string {
  return `${r.bench}-${r.backend}-${deviceSlug(r.device)}.json`;
}

/** "NVIDIA H100 80GB HBM3" -> "H100 80GB HBM3"; long CPU names cut after the model. */
export function shortDevice(device: string): string {
  return device.replace(/^NVIDIA\s+/i, '').replace(/\(R\)|\(TM\)|CPU\s*@.*$/gi, '').replace(/\s+/g, ' ').trim();
}
