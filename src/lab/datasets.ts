/**
 * Reads the cited datasets (datasets/original-a2000.json, sota.csv, peers.json); the benchmark
 * result files (datasets/results/*.json) are read by src/results and labelled here.
 * Pure file reading: nothing here needs the native engine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as aq from 'arquero';
import { packageRoot } from '../engine/native';
import { type ResultFile, shortDevice } from '../results';
import { type MeasuredProvenance, measured } from './provenance';

// The result-file format is src/results' (one schema for benchmarks and the lab).
export { type ResultFile, loadResults, shortDevice } from '../results';

/** A node of the original's per-token breakdown trees. */
export interface BreakdownNode {
  name: string;
  /** Stage name of the architecture's stage records (forward, encrypt, ...), where one applies. */
  stage?: string;
  ms: number;
  approx?: boolean;
  detail?: string;
  /** Name of another breakdown table whose tree this node stands for (split mode's "Server forward"). */
  ref?: string;
  /** Printed total minus the printed parts, as transcribed. */
  unaccounted_ms?: number;
  children?: BreakdownNode[];
}

export interface CitedTable<R = Record<string, unknown>> {
  source: string;
  section: string;
  hardware?: string;
  note?: string;
  rows: R[];
}

export interface BreakdownTable {
  source: string;
  section: string;
  hardware: string;
  note?: string;
  tree: BreakdownNode;
}

export interface OriginalA2000 {
  title: string;
  source: string;
  hardware: string;
  note: string;
  tables: {
    headline: CitedTable<{ mode: string; key: string; tok_s: number; ms_per_token: number; hardware: string }>;
    optimisation_websocket: CitedTable<{
      step: number; configuration: string; poly_n: number; batch_decrypt: boolean;
      tok_s_min: number; tok_s_max: number; delta_pct: number | null; cumulative_pct: number | null;
    }>;
    optimisation_split: CitedTable<{ step: number; configuration: string; tok_s: number; approx: boolean; delta_pct: number | null; delta_text: string }>;
    breakdown_websocket: BreakdownTable;
    breakdown_split_cpu_head: BreakdownTable;
    breakdown_split_gpu_head: BreakdownTable;
    lm_head_analysis: CitedTable<{ quantity: string; value: number; unit: string; text: string }>;
    lm_head_backends: CitedTable<{ backend: string; ms_per_token: number; split_tok_s: number; approx: boolean }> & {
      speedup: { lm_head: number; end_to_end: number; text: string };
    };
    ckks_op_costs: CitedTable<{ poly_n: number; slots: number; op: string; label: string; ms: number; approx?: boolean; note: string }>;
    poly_n_comparison: CitedTable<{
      poly_n: number; batches: number; ct_pt_ms: number; decrypt_ms: number; encrypt_ms?: number;
      transfer_ms?: number; total_he_ms: number; reduced_to_ms?: number; batch_decrypt?: boolean; text: string;
    }>;
    sota_bars: CitedTable<{ system: string; tok_s: number }>;
    sota_table: CitedTable<{ system: string; model: string; hardware: string; what_encrypted: string; tok_s: number; tok_s_text: string; year: number }>;
    sota_factors: CitedTable<{ factor: string; chatglm2_fhe: string; tensafe: string; impact: string }>;
    hardware_profile: Record<string, unknown> & { source: string; hardware: string };
    scaling_projections: CitedTable<{
      gpu: string; measured: boolean; ws_he_tok_s_min: number; ws_he_tok_s_max: number;
      split_he_tok_s_min: number; split_he_tok_s_max: number;
    }>;
    methodology: { source: string; section: string; tools: Array<{ mode: string; how: string }>; protocol: string[] };
  };
}

export type BreakdownName = 'breakdown_websocket' | 'breakdown_split_cpu_head' | 'breakdown_split_gpu_head';

export interface SotaRow {
  system: string;
  model: string;
  hardware: string;
  what_encrypted: string;
  reported_metric: string;
  /** Tokens per second where a fair conversion exists, else null. */
  tok_s: number | null;
  comparable: boolean;
  year: number;
  source: string;
  note: string;
  /** Who holds the decryption key: 'server' (server-local keys), 'client', 'none (...)' (MPC), ... */
  key_holder: string;
  /** What is protected from whom, in a sentence ("nothing from the server", "the client's input from the server"). */
  protects: string;
}

/** A server-key row: the CKKS layer hides nothing from the server that holds the key. */
export function isServerKey(r: { key_holder: string }): boolean {
  return r.key_holder.trim().toLowerCase().startsWith('server');
}

export interface PeerEntry {
  id: string;
  peer: string;
  kind: 'he_lora_per_token' | 'decode_tok_s' | 'decode_floor' | 'op_costs';
  what: string;
  poly_n?: number;
  ms_per_token?: number;
  tok_s?: number;
  parts_ms?: Record<string, number>;
  counts?: Record<string, number>;
  ops_us?: Record<string, number>;
  ops_us_wasm?: Record<string, number>;
  how: string;
  measured_here: { machine: string; hardware: string } | null;
  hardware?: string;
  source: string;
  [k: string]: unknown;
}

export interface PeersFile {
  title: string;
  source: string;
  note: string;
  peers: PeerEntry[];
}

export function datasetsDir(root = packageRoot()): string {
  return path.join(root, 'datasets');
}

function readJson<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`lab: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new SyntaxError(`lab: ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export function loadOriginal(root = packageRoot()): OriginalA2000 {
  return readJson<OriginalA2000>(path.join(datasetsDir(root), 'original-a2000.json'));
}

export function loadPeers(root = packageRoot()): PeersFile {
  return readJson<PeersFile>(path.join(datasetsDir(root), 'peers.json'));
}

/** The corrected SOTA table. Empty tok_s cells become null; comparable becomes a boolean. */
export function loadSota(root = packageRoot()): SotaRow[] {
  const file = path.join(datasetsDir(root), 'sota.csv');
  const table = aq.fromCSV(fs.readFileSync(file, 'utf8'), {
    parse: { tok_s: (v: string) => (v === '' ? null : Number(v)), comparable: (v: string) => v === 'true', year: Number },
  });
  return table.objects() as unknown as SotaRow[];
}

/** Provenance of a committed result file: "measured here (device, date; datasets/results)". */
export function resultProvenance(r: ResultFile): MeasuredProvenance {
  return measured(r.device, r.date, { backend: r.backend, commit: r.commit, ...(r.file ? { file: r.file } : {}), committed: true });
}

/** Short label for a result's series: "tensafe cuda (NVIDIA H100 80GB HBM3)". */
export function resultLabel(r: ResultFile): string {
  return `tensafe ${r.backend} (${shortDevice(r.device)})`;
}
