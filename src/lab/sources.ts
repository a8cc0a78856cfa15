/**
 * Adapters from the datasets and result files to the plot builders' series. Each series
 * carries its provenance: the original's tables are "cited", result files "measured here".
 */
import type { BreakdownName, BreakdownNode, OriginalA2000, PeerEntry, ResultFile, SotaRow } from './datasets';
import { resultLabel, resultProvenance, shortDevice } from './datasets';
import type { StageSeries } from './plots/breakdown';
import { stagesFromTree } from './plots/breakdown';
import type { OpCostSeries } from './plots/ckks';
import type { LmHeadSeries } from './plots/lm-head';
import type { StepSeries } from './plots/optimisation';
import type { MeasuredSotaRow } from './plots/sota';
import { cited, originalProvenance } from './provenance';

export const ORIGINAL_LABEL = 'Original (RTX A2000)';

const BREAKDOWN_LABELS: Record<BreakdownName, string> = {
  breakdown_websocket: 'WebSocket HE',
  breakdown_split_cpu_head: 'Split, CPU LM head',
  breakdown_split_gpu_head: 'Split, GPU LM head',
};

/** The original's breakdown as one stacked bar (stages summed; printed total kept). */
export function originalBreakdownSeries(o: OriginalA2000, name: BreakdownName): StageSeries {
  const { stages, total } = stagesFromTree(o.tables[name].tree);
  return { label: `${BREAKDOWN_LABELS[name]} (original, A2000)`, provenance: originalProvenance(), stages, total };
}

/** The original's tree and a resolver for its refs (split mode's "Server forward" = the WebSocket tree). */
export function originalTree(o: OriginalA2000, name: BreakdownName): { tree: BreakdownNode; resolve: (ref: string) => BreakdownNode | undefined } {
  const resolve = (ref: string) => (ref in o.tables ? (o.tables as unknown as Record<string, { tree?: BreakdownNode }>)[ref].tree : undefined);
  return { tree: o.tables[name].tree, resolve };
}

/** "Why 16384 wins": the original's HE arithmetic per poly_n as stacked bars (as printed). */
export function originalPolyNSeries(o: OriginalA2000): StageSeries[] {
  return o.tables.poly_n_comparison.rows.map((r) => {
    const stages: Record<string, number> = {
      ct_pt_multiply: r.batches * r.ct_pt_ms,
      decrypt: r.batches * r.decrypt_ms,
    };
    if (r.encrypt_ms !== undefined) stages.encrypt = r.encrypt_ms;
    if (r.transfer_ms !== undefined) stages.transfer = r.transfer_ms;
    const what = r.batch_decrypt ? ', batched decrypt (as printed, no encrypt)' : '';
    return { label: `N=${r.poly_n}, ${r.batches} products${what}`, provenance: originalProvenance(), stages, total: r.total_he_ms };
  });
}

/** Peers' HE-LoRA per-token parts (node-seal on the CPU, Phantom on the H100) as stacked bars. */
export function peerHeSeries(peers: PeerEntry[]): StageSeries[] {
  return peers
    .filter((p) => p.kind === 'he_lora_per_token' && p.parts_ms)
    .map((p) => ({
      label: `${p.peer.split(' (')[0]} N=${p.poly_n} (${p.measured_here?.hardware ?? p.hardware ?? '?'})`,
      provenance: cited(p.source, p.measured_here?.hardware ?? p.hardware),
      stages: { ...(p.parts_ms as Record<string, number>) },
      total: p.ms_per_token,
    }));
}

const ORIGINAL_OP_NAMES: Record<string, string> = {
  encrypt: 'encrypt',
  ct_pt_multiply: 'ct_pt_multiply',
  decrypt_to_gpu: 'decrypt',
  decrypt_to_cpu: 'decrypt + copy to host',
  rotate: 'rotate',
};

export function originalOpCosts(o: OriginalA2000): OpCostSeries {
  return {
    label: ORIGINAL_LABEL,
    provenance: originalProvenance(),
    rows: o.tables.ckks_op_costs.rows.map((r) => ({ op: ORIGINAL_OP_NAMES[r.op] ?? r.op, poly_n: r.poly_n, us: r.ms * 1000 })),
  };
}

/**
 * Per-op figures of the peers (Phantom on the H200 by both timing methods, SEAL's published M1
 * Pro numbers). Rows flagged `equal_terms: false` (e.g. Phantom's H100 figures with 9 primes,
 * single ops) are not drawn beside ours: they are not measured on the same terms.
 */
export function peerOpCosts(peers: PeerEntry[]): OpCostSeries[] {
  const out: OpCostSeries[] = [];
  for (const p of peers) {
    if (p.kind !== 'op_costs' || !p.ops_us || !p.poly_n || p.source === 'seed-performance-analysis.md' || p.equal_terms === false) continue;
    const hw = p.measured_here?.hardware ?? p.hardware ?? '?';
    const rows = (ops: Record<string, number>) => Object.entries(ops).map(([op, us]) => ({ op, poly_n: p.poly_n as number, us }));
    const method = typeof p.method === 'string' ? `, ${p.method}` : '';
    out.push({ label: `${p.peer.split(' (')[0]} (${hw}${method})`, provenance: cited(p.source, hw), rows: rows(p.ops_us as Record<string, number>) });
    if (p.ops_us_single) {
      out.push({ label: `${p.peer.split(' (')[0]} (${hw}, single op)`, provenance: cited(p.source, hw), rows: rows(p.ops_us_single as Record<string, number>) });
    }
  }
  return out;
}

function num(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) ? x : undefined;
}

/** Op names of the engine's benchmarks mapped to the names the figures use. */
const BENCH_OP_NAMES: Record<string, string> = { multiply_plain: 'ct_pt_multiply' };

/** "batched, 10 ops / 10, 3 primes" for a CUDA row; '' for rows without a method (CPU). */
function methodLabel(x: Record<string, unknown>): string {
  if (x.method === 'batched') return `, batched ${num(x.ops_per_sample) ?? '?'} ops / ${num(x.ops_per_sample) ?? '?'}${num(x.primes) ? `, ${x.primes} primes` : ''}`;
  if (x.method === 'single') return `, single op${num(x.primes) ? `, ${x.primes} primes` : ''}`;
  return '';
}

/**
 * The ckks bench's per-op rows ({op, poly_n, median_us}, plus node_seal_us and one_thread_us
 * when node-seal and the one-thread run ran in the same run) as series: tensafe (one series per
 * timing method on the GPU, named with its primes), tensafe on one thread, node-seal. HE-LoRA
 * stage rows (op 'helora_*' or kind 'helora_stage') are left to resultHeLoraSeries.
 */
export function resultOpCosts(r: ResultFile): OpCostSeries[] {
  const opRows = r.rows.filter((x) => typeof x.op === 'string' && !(x.op as string).startsWith('helora_') && x.kind !== 'helora_stage' &&
    num(x.poly_n) !== undefined && num(x.median_us) !== undefined);
  const opName = (x: Record<string, unknown>) => BENCH_OP_NAMES[x.op as string] ?? (x.op as string);
  const out: OpCostSeries[] = [];
  const byMethod = new Map<string, typeof opRows>();
  for (const x of opRows) {
    const m = methodLabel(x);
    if (!byMethod.has(m)) byMethod.set(m, []);
    byMethod.get(m)!.push(x);
  }
  const threads = num(r.summary.threads);
  for (const [m, xs] of byMethod) {
    out.push({
      label: `${resultLabel(r)}${m}${threads && !m ? `, ${threads} threads` : ''}`,
      provenance: resultProvenance(r),
      rows: xs.map((x) => ({ op: opName(x), poly_n: x.poly_n as number, us: x.median_us as number })),
    });
  }
  const one = opRows.filter((x) => num(x.one_thread_us) !== undefined).map((x) => ({ op: opName(x), poly_n: x.poly_n as number, us: x.one_thread_us as number }));
  if (one.length) out.push({ label: `${resultLabel(r)}, 1 thread (same run)`, provenance: resultProvenance(r), rows: one });
  const seal = opRows.filter((x) => num(x.node_seal_us) !== undefined).map((x) => ({ op: opName(x), poly_n: x.poly_n as number, us: x.node_seal_us as number }));
  if (seal.length) out.push({ label: `node-seal@6 WASM, 1 thread, same run (${shortDevice(r.device)})`, provenance: resultProvenance(r), rows: seal });
  return out;
}

/**
 * HE-LoRA per-token stages of a ckks result, one stacked bar per poly_n (and node-seal's, when
 * it ran beside): CPU rows {kind:'helora_stage', stage, poly_n, ms, node_seal_ms}, CUDA rows
 * {op:'helora_<stage>', poly_n, median_us}. The 'total' stage becomes the bar's total.
 */
export function resultHeLoraSeries(r: ResultFile): StageSeries[] {
  const ours = new Map<number, Record<string, number>>();
  const one = new Map<number, Record<string, number>>();
  const seal = new Map<number, Record<string, number>>();
  const put = (m: Map<number, Record<string, number>>, n: number, stage: string, ms: number) => {
    if (!m.has(n)) m.set(n, {});
    m.get(n)![stage] = ms;
  };
  for (const x of r.rows) {
    const n = num(x.poly_n);
    if (n === undefined) continue;
    if (x.kind === 'helora_stage' && typeof x.stage === 'string' && num(x.ms) !== undefined) {
      put(ours, n, x.stage, x.ms as number);
      if (num(x.one_thread_ms) !== undefined) put(one, n, x.stage, x.one_thread_ms as number);
      if (num(x.node_seal_ms) !== undefined) put(seal, n, x.stage, x.node_seal_ms as number);
    } else if (typeof x.op === 'string' && x.op.startsWith('helora_') && num(x.median_us) !== undefined) {
      put(ours, n, x.op.slice('helora_'.length), (x.median_us as number) / 1000);
    }
  }
  const series = (m: Map<number, Record<string, number>>, who: string): StageSeries[] =>
    [...m.entries()].sort((a, b) => a[0] - b[0]).map(([n, st]) => {
      const { total, ...stages } = st;
      return { label: `${who} N=${n}`, provenance: resultProvenance(r), stages, ...(total !== undefined ? { total } : {}) };
    });
  const threads = num(r.summary.threads);
  return [
    ...series(ours, `${resultLabel(r)}${threads ? `, ${threads} threads` : ''}`),
    ...series(one, `${resultLabel(r)}, 1 thread`),
    ...series(seal, `node-seal@6, 1 thread, same run (${shortDevice(r.device)})`),
  ];
}

/** The original's WebSocket optimisation steps (range midpoints, ranges as error bars). */
export function originalOptimisation(o: OriginalA2000): StepSeries {
  return {
    label: ORIGINAL_LABEL,
    provenance: originalProvenance(),
    steps: o.tables.optimisation_websocket.rows.map((r) => ({
      step: r.step,
      label: r.configuration.replace(/^\+ /, '+ '),
      tok_s: (r.tok_s_min + r.tok_s_max) / 2,
      tok_s_min: r.tok_s_min,
      tok_s_max: r.tok_s_max,
    })),
  };
}

/**
 * Optimisation steps measured by the pipeline bench: rows carrying `step` (number), `tok_s`
 * and a `setting` (or `label`). Null when the file has none.
 */
export function resultOptimisation(r: ResultFile): StepSeries | null {
  const steps = r.rows
    .filter((x) => num(x.step) !== undefined && num(x.tok_s) !== undefined)
    .map((x) => ({ step: x.step as number, label: String(x.label ?? x.setting ?? `step ${x.step}`), tok_s: x.tok_s as number }));
  return steps.length ? { label: resultLabel(r), provenance: resultProvenance(r), steps } : null;
}

export function originalLmHead(o: OriginalA2000): LmHeadSeries {
  return {
    label: ORIGINAL_LABEL,
    provenance: originalProvenance(),
    rows: o.tables.lm_head_backends.rows.map((r) => ({ backend: r.backend, ms: r.ms_per_token })),
  };
}

const LM_HEAD_KEYS: Array<[string, string]> = [
  ['lm_head_ms_cpu_naive', 'CPU, naive loop'],
  ['lm_head_ms_cpu', 'CPU, tensafe'],
  ['lm_head_ms_gpu', 'GPU, tensafe'],
];

/** The model bench's LM head summary keys as a series; null when absent. */
export function resultLmHead(r: ResultFile): LmHeadSeries | null {
  const rows = LM_HEAD_KEYS.filter(([k]) => num(r.summary[k]) !== undefined).map(([k, backend]) => ({ backend, ms: r.summary[k] as number }));
  return rows.length ? { label: resultLabel(r), provenance: resultProvenance(r), rows } : null;
}

/** The model a result measured: summary.model, else a "model: ..." note, else the design's shape. */
export function resultModel(r: ResultFile): string {
  if (typeof r.summary.model === 'string') return r.summary.model;
  const n = (r.notes ?? []).find((x) => x.startsWith('model: '));
  if (n) return n.slice('model: '.length).split(/;| \(d = /)[0].trim();
  return 'Qwen2.5-1.5B shape';
}

const SERVER_KEY_PROTECTS = 'nothing from the server (server-key mode: the server makes the key, encrypts, computes and decrypts; see the threat model)';
const CLIENT_KEY_PROTECTS = "the client's adapter inputs from the server (client-key mode; see src/server/PROTOCOL.md)";

/**
 * Rows measured here for the SOTA figure, each with who holds the key: the pipeline's best
 * HE-LoRA tok/s and the server's WebSocket HE (server key), and the private bench's client-key
 * rows (summary keys of results.md: final_hidden_tok_s, layers_tok_s) once its file exists.
 */
export function measuredSotaRows(results: ResultFile[]): MeasuredSotaRow[] {
  const out: MeasuredSotaRow[] = [];
  for (const r of results) {
    const hw = `1x ${r.device}`;
    const row = (system: string, tok_s: number, what_encrypted: string, key_holder: string, protects: string) =>
      out.push({ system, model: resultModel(r), hardware: hw, what_encrypted, tok_s, key_holder, protects, provenance: resultProvenance(r) });
    if (r.bench === 'pipeline' && num(r.summary.he_lora_tok_s_best) !== undefined) {
      const setting = r.summary.he_lora_best_setting ? `, ${r.summary.he_lora_best_setting}` : '';
      row(`tensafe in-process HE-LoRA (${r.backend}${setting})`, r.summary.he_lora_tok_s_best as number,
        'LoRA-A product under CKKS (this repository)', 'server', SERVER_KEY_PROTECTS);
    }
    if (r.bench === 'server' && num(r.summary.ws_he_tok_s) !== undefined) {
      row(`tensafe WebSocket HE (${r.backend})`, r.summary.ws_he_tok_s as number,
        'LoRA-A product under CKKS, over the WebSocket server', 'server', SERVER_KEY_PROTECTS);
    }
    if (r.bench === 'private') {
      for (const [key, placement] of [['final_hidden_tok_s', 'final hidden state'], ['layers_tok_s', 'adapted layers']] as const) {
        if (num(r.summary[key]) === undefined) continue;
        row(`tensafe private LoRA, client key (${r.backend}, ${placement})`, r.summary[key] as number,
          `LoRA inputs (${placement}) under CKKS with the client's key; the server computes blind`, 'client', CLIENT_KEY_PROTECTS);
      }
    }
  }
  return out;
}

/**
 * Per-stage breakdowns in a pipeline result: rows with `stage` and `median_ms` (or `ms`),
 * grouped by `setting` (or `mode`); one series per group.
 */
export function resultBreakdownSeries(r: ResultFile, keep: (setting: string) => boolean = () => true): StageSeries[] {
  const groups = new Map<string, Record<string, number>>();
  for (const x of r.rows) {
    const ms = num(x.median_ms) ?? num(x.ms);
    if (typeof x.stage !== 'string' || ms === undefined) continue;
    const g = String(x.setting ?? x.mode ?? 'default');
    if (!keep(g)) continue;
    if (!groups.has(g)) groups.set(g, {});
    const stages = groups.get(g)!;
    stages[x.stage] = (stages[x.stage] ?? 0) + ms;
  }
  return [...groups.entries()].map(([g, stages]) => ({
    label: `${g} (${resultLabel(r)})`,
    provenance: resultProvenance(r),
    stages,
  }));
}

/**
 * The settings a summary figure shows from a pipeline result: base, plaintext LoRA, the best
 * HE-LoRA setting and the seed presets (the original's steps); the notebooks show all.
 */
export function keySettings(r: ResultFile): (setting: string) => boolean {
  const best = typeof r.summary.he_lora_best_setting === 'string' ? r.summary.he_lora_best_setting : undefined;
  return (s) => s === best || /^(base|lora)\b/.test(s) || s.startsWith('seed preset');
}

/** The rows of the corrected SOTA table that have a fair tok/s conversion. */
export function comparableSota(rows: SotaRow[]): SotaRow[] {
  return rows.filter((r) => r.comparable && r.tok_s !== null);
}
