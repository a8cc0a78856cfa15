/**
 * The standard figures, built from datasets/ (cited) and datasets/results/ (measured here).
 * `npm run figures` exports all of them; the notebooks show them one by one. A figure whose
 * data no result file holds is reported as skipped, never drawn from invented numbers.
 */
import { classicFormulaInRange } from '../pipeline/dp/gaussian';
import { currentResults, historyResults, shortDevice } from '../results';
import type { OriginalA2000, PeersFile, ResultFile, SotaRow } from './datasets';
import { loadOriginal, loadPeers, loadResults, loadSota, resultLabel, resultProvenance } from './datasets';
import type { Figure } from './figure';
import {
  type DpSeries, type MeasuredSotaRow, type OpCostSeries, type StageSeries, type StepSeries, type LmHeadSeries,
  type PrecisionSeries, type PrivateBarRow, type PrivateRttSeries,
  breakdownTree, ckksOpCosts, dpPrivacyUtility, latencyBreakdown, lmHeadBackends, optimisationSteps, privateBytes, privatePrecision,
  privateStageBars, privateTokSAgainstRtt, sotaComparison,
} from './plots';
import {
  measuredSotaRows, originalBreakdownSeries, originalLmHead, originalOpCosts, originalOptimisation, originalPolyNSeries,
  keySettings, originalTree, peerHeSeries, peerOpCosts, resultBreakdownSeries, resultHeLoraSeries, resultLmHead, resultOpCosts, resultOptimisation,
} from './sources';

export interface LabData {
  original: OriginalA2000;
  sota: SotaRow[];
  peers: PeersFile;
  results: ResultFile[];
}

export function loadLabData(root?: string): LabData {
  return {
    original: loadOriginal(root),
    sota: loadSota(root),
    peers: loadPeers(root),
    results: loadResults({ root }).results,
  };
}

/**
 * The results a standard figure draws: the newest file of each (bench, backend), so the figures
 * show the current GPU and CPU. Older files (another GPU, e.g. the H100 before the H200) are
 * history: left out of the figure and named in its caption (historyNote).
 */
export function latestResults(results: ResultFile[], bench: string): ResultFile[] {
  return currentResults(results, bench);
}

/** "History (not drawn): ckks cuda H100 80GB HBM3, 2026-11-26." or '' when there is none. */
export function historyNote(results: ResultFile[], benches: string[]): string {
  const old = benches.flatMap((b) => historyResults(results, b));
  if (old.length === 0) return '';
  return ` History (not drawn; datasets/results): ${old.map((r) => `${r.bench} ${r.backend} ${shortDevice(r.device)}, ${r.date.slice(0, 10)}`).join('; ')}.`;
}

function present<T>(xs: Array<T | null>): T[] {
  return xs.filter((x): x is T => x !== null);
}

/**
 * Panel of a breakdown bar: the original (RTX A2000, cited), GPU rows or CPU rows (measured here
 * or cited peers), so each panel's linear axis fits bars of its own scale.
 */
export function facetByDevice(s: StageSeries): string {
  const p = s.provenance;
  // The split selftest's single-thread CPU LM head (~150-200 ms) would flatten a GPU panel's 2 ms bars.
  if (p.kind === 'measured' && /split-selftest/.test(s.label)) return 'the split selftest (the original\'s single-thread CPU LM head)';
  if (p.kind === 'cited' && /A2000/.test(p.hardware ?? '')) return 'the original (RTX A2000, cited)';
  if (p.kind === 'measured') return p.backend === 'cuda' || /NVIDIA|H100|H200|A100|GPU/i.test(p.device) ? 'GPU' : 'CPU';
  if (p.kind === 'cited') return /H100|H200|A100|GPU|RTX/i.test(p.hardware ?? '') ? 'GPU' : 'CPU';
  return 'computed';
}

export function ckksOpCostsFigure(d: LabData, extra: OpCostSeries[] = []): Figure {
  const measured = [...latestResults(d.results, 'ckks').flatMap(resultOpCosts), ...extra];
  const series: OpCostSeries[] = [originalOpCosts(d.original), ...measured, ...peerOpCosts(d.peers.peers)];
  return ckksOpCosts(series, {
    ops: ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decrypt + copy to host', 'decode', 'rotate'],
    caption: (measured.length ? '' : 'No ckks result file or live measurement yet: original and peers only.') + historyNote(d.results, ['ckks']) || undefined,
  });
}

export function breakdownBarsFigure(d: LabData, extra: StageSeries[] = [], all = false): Figure {
  const measured = [...latestResults(d.results, 'pipeline').flatMap((r) => resultBreakdownSeries(r, all ? undefined : keySettings(r))), ...extra];
  const series: StageSeries[] = [
    originalBreakdownSeries(d.original, 'breakdown_websocket'),
    originalBreakdownSeries(d.original, 'breakdown_split_gpu_head'),
    originalBreakdownSeries(d.original, 'breakdown_split_cpu_head'),
    ...measured,
  ];
  return latencyBreakdown(series, {
    title: 'Per-token latency: the original (RTX A2000) and tensafe',
    facet: facetByDevice,
    caption: (measured.length
      ? (all ? '' : 'tensafe: base, plaintext LoRA, the best HE-LoRA setting and the seed presets (every setting: breakdownStandard([], true)). ')
      : 'No pipeline result file yet: the original only. ') +
      'Each panel has its own linear axis (the original\'s 135-806 ms and tensafe\'s ~1 ms bars would not both be readable on one).' +
      historyNote(d.results, ['pipeline']),
  });
}

export function heCostFigure(d: LabData, extra: StageSeries[] = []): Figure {
  const measured = [...latestResults(d.results, 'ckks').flatMap(resultHeLoraSeries), ...extra];
  const series: StageSeries[] = [...originalPolyNSeries(d.original), ...peerHeSeries(d.peers.peers), ...measured];
  return latencyBreakdown(series, {
    title: 'HE-LoRA crypto per token: the original by poly_n, peers, and tensafe',
    facet: facetByDevice,
    caption: "The original's arithmetic as printed (its batched line omits encrypt). Peers and tensafe: HE-LoRA at d=1536, r=32, slot packing. " +
      'Panels: the original, GPU, CPU, each on its own linear axis.' +
      (measured.length ? '' : ' No ckks result file yet.') + historyNote(d.results, ['ckks']),
  });
}

export function breakdownTreeFigure(d: LabData, name: 'breakdown_websocket' | 'breakdown_split_cpu_head' | 'breakdown_split_gpu_head', kind: 'sunburst' | 'treemap' | 'icicle' = 'sunburst'): Figure {
  const { tree, resolve } = originalTree(d.original, name);
  return breakdownTree(tree, { kind: 'cited', source: d.original.tables[name].source, hardware: d.original.tables[name].hardware }, {
    kind,
    resolve,
    title: `${tree.name} (original, RTX A2000): nested breakdown, ms per token`,
  });
}

export function optimisationFigure(d: LabData, extra: StepSeries[] = []): Figure {
  const measured = [...present(latestResults(d.results, 'pipeline').map(resultOptimisation)), ...extra];
  const series: StepSeries[] = [originalOptimisation(d.original), ...measured];
  return optimisationSteps(series, {
    title: 'Optimisation steps, WebSocket HE (cumulative tok/s)',
    caption: 'Original: midpoints of the printed ranges, ranges as error bars; labels give the speed-up over step 0.' +
      (measured.length ? '' : ' No pipeline result file yet: the original only.') + historyNote(d.results, ['pipeline']),
  });
}

export function lmHeadFigure(d: LabData, extra: LmHeadSeries[] = []): Figure {
  const measured = [...present(latestResults(d.results, 'model').map(resultLmHead)), ...extra];
  const series: LmHeadSeries[] = [originalLmHead(d.original), ...measured];
  return lmHeadBackends(series, { caption: (measured.length ? '' : 'No model result file yet: the original only.') + historyNote(d.results, ['model']) || undefined });
}

export function sotaFigure(d: LabData, extra: MeasuredSotaRow[] = []): Figure {
  const measured = [...measuredSotaRows([...latestResults(d.results, 'pipeline'), ...latestResults(d.results, 'server'), ...latestResults(d.results, 'private')]), ...extra];
  const hist = historyNote(d.results, ['pipeline', 'server', 'private']);
  return sotaComparison(d.sota, measured, hist ? { caption: undefined, history: hist } : {});
}

/** True where a committed DP row's sigma came from the classic formula outside epsilon < 1 (older rows carry no flag). */
function dpRowInRange(x: Record<string, unknown>): boolean {
  if (typeof x.calibration_in_range === 'boolean') return x.calibration_in_range;
  const m = String(x.mechanism ?? '');
  return !((m === 'original' || m === 'classic') && !classicFormulaInRange(x.epsilon as number));
}

/**
 * DP rows of the current result files ({epsilon, agreement, request_epsilon, sigma, mechanism}),
 * one series per (file, mechanism); null when none holds any. x is the accounted request epsilon.
 */
export function dpFigure(d: LabData, extra: DpSeries[] = []): Figure | null {
  const series: DpSeries[] = [...extra];
  const files = [...currentResults(d.results, 'pipeline'), ...d.results.filter((r) => r.bench !== 'pipeline')];
  for (const r of files) {
    const rows = r.rows.filter((x) => typeof x.epsilon === 'number' && typeof x.agreement === 'number');
    if (!rows.length) continue;
    const byMech = new Map<string, typeof rows>();
    for (const x of rows) {
      const m = String(x.mechanism ?? 'dp');
      if (!byMech.has(m)) byMech.set(m, []);
      byMech.get(m)!.push(x);
    }
    for (const [m, xs] of byMech) {
      const rd = r.summary.expert_relative_delta_measured ?? r.summary.expert_relative_delta;
      const delta = typeof rd === 'number' ? `, adapter delta ${(100 * rd).toPrecision(2)}% of |h|` : ', experts before the stated 5% delta';
      series.push({
        label: `${m} (${resultLabel(r)}${delta})`,
        provenance: resultProvenance(r),
        rows: xs.map((x) => ({
          epsilon: x.epsilon as number,
          agreement: x.agreement as number,
          sigma: typeof x.sigma === 'number' ? x.sigma : undefined,
          ...(typeof x.request_epsilon === 'number' ? { request_epsilon: x.request_epsilon } : {}),
          ...(typeof x.adapter_cosine === 'number' ? { adapter_cosine: x.adapter_cosine } : {}),
          in_range: dpRowInRange(x),
        })),
      });
    }
  }
  if (!series.length) return null;
  const references = currentResults(d.results, 'pipeline')
    .filter((r) => typeof r.summary.dp_agreement_base_vs_lora === 'number')
    .map((r) => ({ label: `adapter off (base model) vs plaintext LoRA, ${shortDevice(r.device)}`, agreement: r.summary.dp_agreement_base_vs_lora as number }));
  return dpPrivacyUtility(series, {
    references,
    title: 'DP privacy against utility: greedy-token agreement with plaintext LoRA',
    caption: 'Each point: one greedy generation with DP noise on the HE input (clip to C = 1, then noise) against the same generation without DP. ' +
      "'original' reproduces the demonstrator's calibration (C as the sensitivity) and is accounted at the true sensitivity 2C. " +
      'The dotted line: the agreement of the base model (adapter off); at large epsilon DP can do no better than clipping h, i.e. about this.' +
      historyNote(d.results, ['pipeline']),
  });
}

export interface StandardFigure {
  name: string;
  figure?: Figure;
  skipped?: string;
}

/** Every standard figure, by file name. */
// ---- the private (client-key) mode -------------------------------------------------------------

type Row = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function privateGenerationRows(r: ResultFile): Row[] {
  return r.rows.filter((x) => x.table === 'generation' && num(x.tok_s) !== undefined);
}

function privateConfigLabel(x: Row): string {
  if (x.key_owner === 'server') return x.protocol === 'in-process' ? 'server key, HE-LoRA final-hidden (in-process)' : 'base model, no adapter';
  return `client key, ${x.placement}, ${x.protocol} (N ${x.poly_n})`;
}

const PRIVATE_CAPTION =
  'Client and server: two processes on one machine, real WebSocket on loopback; RTT rows add a client-side network model. ' +
  'Client key: the client runs the base model and holds the CKKS key, the server sees ciphertexts only (src/server/PROTOCOL.md). ' +
  'Server key: the original\'s design, which hides nothing from the server (dashed).';

/** tok/s against RTT per placement x protocol, with the same run's server-key HE-LoRA and base model. */
export function privateRttFigure(d: LabData): Figure | null {
  const files = currentResults(d.results, 'private');
  const series: PrivateRttSeries[] = [];
  for (const r of files) {
    const rows = privateGenerationRows(r);
    const groups = new Map<string, Row[]>();
    for (const x of rows) {
      const k = privateConfigLabel(x);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k)!.push(x);
    }
    for (const [label, xs] of groups) {
      series.push({
        label: `${label}, ${resultLabel(r)}`,
        provenance: resultProvenance(r),
        serverKey: xs[0].key_owner === 'server',
        points: xs.map((x) => ({ rtt_ms: num(x.rtt_ms) ?? 0, tok_s: num(x.tok_s) as number })),
      });
    }
  }
  if (!series.length) return null;
  return privateTokSAgainstRtt(series, { caption: PRIVATE_CAPTION + historyNote(d.results, ['private']) });
}

function privateBarRows(d: LabData): PrivateBarRow[] {
  const out: PrivateBarRow[] = [];
  for (const r of currentResults(d.results, 'private')) {
    for (const x of privateGenerationRows(r)) {
      if ((num(x.rtt_ms) ?? 0) !== 0) continue;
      const stages: Record<string, number> = {};
      for (const s of ['forward', 'client_encrypt', 'network', 'server_he', 'client_decrypt', 'lm_head', 'sampling']) {
        const v = num(x[`${s}_ms`]);
        if (v !== undefined) stages[s] = v;
      }
      if (x.key_owner === 'server') stages[x.protocol === 'in-process' ? 'he' : 'forward'] = num(x.ms_per_token) as number;
      out.push({
        label: `${privateConfigLabel(x)}, ${shortDevice(r.device)}`,
        provenance: resultProvenance(r),
        stages,
        bytesUp: num(x.bytes_up_per_token),
        bytesDown: num(x.bytes_down_per_token),
        roundsPerToken: num(x.rounds_per_token),
        serverKey: x.key_owner === 'server',
      });
    }
  }
  return out;
}

export function privateStagesFigure(d: LabData): Figure | null {
  const rows = privateBarRows(d);
  return rows.length ? privateStageBars(rows, { caption: PRIVATE_CAPTION }) : null;
}

export function privateBytesFigure(d: LabData): Figure | null {
  const rows = privateBarRows(d).filter((r) => r.bytesUp !== undefined);
  return rows.length ? privateBytes(rows, { caption: 'Bytes of the binary frames (src/private/wire.ts) per generated token, after the first; the session setup (keys) is once per session and not included.' }) : null;
}

export function privatePrecisionFigure(d: LabData): Figure | null {
  const series: PrecisionSeries[] = [];
  for (const r of currentResults(d.results, 'private')) {
    const rows = r.rows.filter((x) => x.table === 'precision' && num(x.rel_error) !== undefined);
    for (const protocol of [...new Set(rows.map((x) => String(x.protocol)))]) {
      const xs = rows.filter((x) => x.protocol === protocol);
      series.push({
        label: `${protocol} (N ${xs[0].poly_n}, ${xs[0].primes} primes), ${resultLabel(r)}`,
        provenance: resultProvenance(r),
        points: xs.map((x) => ({ flood_bits: num(x.flood_bits) as number, rel_error: num(x.rel_error) as number })),
      });
    }
  }
  return series.length ? privatePrecision(series, { caption: 'One layer site (q_proj + v_proj of layer 0, r 16 each) on unit-RMS inputs, max over 3 inputs; the error floor is the 20-bit quantisation of A and B.' }) : null;
}

export function standardFigures(d: LabData): StandardFigure[] {
  const out: StandardFigure[] = [
    { name: 'ckks-op-costs', figure: ckksOpCostsFigure(d) },
    { name: 'latency-breakdown', figure: breakdownBarsFigure(d) },
    { name: 'breakdown-tree-websocket', figure: breakdownTreeFigure(d, 'breakdown_websocket') },
    { name: 'breakdown-tree-split-cpu-head', figure: breakdownTreeFigure(d, 'breakdown_split_cpu_head') },
    { name: 'breakdown-tree-split-gpu-head', figure: breakdownTreeFigure(d, 'breakdown_split_gpu_head', 'icicle') },
    { name: 'he-cost-by-poly-n', figure: heCostFigure(d) },
    { name: 'optimisation-steps', figure: optimisationFigure(d) },
    { name: 'lm-head', figure: lmHeadFigure(d) },
    { name: 'sota-comparison', figure: sotaFigure(d) },
  ];
  const dp = dpFigure(d);
  out.push(dp ? { name: 'dp-privacy-utility', figure: dp } : { name: 'dp-privacy-utility', skipped: 'no result file holds DP rows ({epsilon, agreement}) yet' });
  const privateFigures: Array<[string, Figure | null]> = [
    ['private-tok-s-vs-rtt', privateRttFigure(d)],
    ['private-stages', privateStagesFigure(d)],
    ['private-bytes', privateBytesFigure(d)],
    ['private-precision', privatePrecisionFigure(d)],
  ];
  for (const [name, figure] of privateFigures) out.push(figure ? { name, figure } : { name, skipped: 'no private-*.json result file yet (npm run bench -- private)' });
  return out;
}
