/**
 * The standard figures, built from datasets/ (cited) and datasets/results/ (measured here).
 * `npm run figures` exports all of them; the notebooks show them one by one. A figure whose
 * data no result file holds is reported as skipped, never drawn from invented numbers.
 */
import type { OriginalA2000, PeersFile, ResultFile, SotaRow } from './datasets';
import { loadOriginal, loadPeers, loadResults, loadSota, resultLabel, resultProvenance } from './datasets';
import type { Figure } from './figure';
import {
  type DpSeries, type MeasuredSotaRow, type OpCostSeries, type StageSeries, type StepSeries, type LmHeadSeries,
  breakdownTree, ckksOpCosts, dpPrivacyUtility, latencyBreakdown, lmHeadBackends, optimisationSteps, sotaComparison,
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

/** Newest result of each (bench, backend, device). */
export function latestResults(results: ResultFile[], bench: string): ResultFile[] {
  const seen = new Set<string>();
  return results
    .filter((r) => r.bench === bench)
    .sort((a, b) => b.date.localeCompare(a.date))
    .filter((r) => {
      const k = `${r.backend}|${r.device}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
}

function present<T>(xs: Array<T | null>): T[] {
  return xs.filter((x): x is T => x !== null);
}

export function ckksOpCostsFigure(d: LabData, extra: OpCostSeries[] = []): Figure {
  const measured = [...latestResults(d.results, 'ckks').flatMap(resultOpCosts), ...extra];
  const series: OpCostSeries[] = [originalOpCosts(d.original), ...measured, ...peerOpCosts(d.peers.peers)];
  return ckksOpCosts(series, {
    ops: ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decrypt + copy to host', 'decode', 'rotate'],
    caption: measured.length ? undefined : 'No ckks result file or live measurement yet: original and peers only.',
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
    caption: measured.length
      ? (all ? undefined : 'tensafe: base, plaintext LoRA, the best HE-LoRA setting and the seed presets (every setting: breakdownStandard([], true)).')
      : 'No pipeline result file yet: the original only.',
  });
}

export function heCostFigure(d: LabData, extra: StageSeries[] = []): Figure {
  const measured = [...latestResults(d.results, 'ckks').flatMap(resultHeLoraSeries), ...extra];
  const series: StageSeries[] = [...originalPolyNSeries(d.original), ...peerHeSeries(d.peers.peers), ...measured];
  return latencyBreakdown(series, {
    title: 'HE-LoRA crypto per token: the original by poly_n, peers, and tensafe',
    caption: "The original's arithmetic as printed (its batched line omits encrypt). Peers and tensafe: HE-LoRA at d=1536, r=32, slot packing." +
      (measured.length ? '' : ' No ckks result file yet.'),
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
      (measured.length ? '' : ' No pipeline result file yet: the original only.'),
  });
}

export function lmHeadFigure(d: LabData, extra: LmHeadSeries[] = []): Figure {
  const measured = [...present(latestResults(d.results, 'model').map(resultLmHead)), ...extra];
  const series: LmHeadSeries[] = [originalLmHead(d.original), ...measured];
  return lmHeadBackends(series, { caption: measured.length ? undefined : 'No model result file yet: the original only.' });
}

export function sotaFigure(d: LabData, extra: MeasuredSotaRow[] = []): Figure {
  const measured = [...measuredSotaRows([...latestResults(d.results, 'pipeline'), ...latestResults(d.results, 'server')]), ...extra];
  return sotaComparison(d.sota, measured);
}

/** DP rows in result files: {epsilon, agreement[, sigma, mechanism]}; null when none. */
export function dpFigure(d: LabData, extra: DpSeries[] = []): Figure | null {
  const series: DpSeries[] = [...extra];
  for (const r of d.results) {
    const rows = r.rows.filter((x) => typeof x.epsilon === 'number' && typeof x.agreement === 'number');
    if (!rows.length) continue;
    const byMech = new Map<string, typeof rows>();
    for (const x of rows) {
      const m = String(x.mechanism ?? 'dp');
      if (!byMech.has(m)) byMech.set(m, []);
      byMech.get(m)!.push(x);
    }
    for (const [m, xs] of byMech) {
      series.push({
        label: `${m} (${resultLabel(r)})`,
        provenance: resultProvenance(r),
        rows: xs.map((x) => ({ epsilon: x.epsilon as number, agreement: x.agreement as number, sigma: typeof x.sigma === 'number' ? x.sigma : undefined })),
      });
    }
  }
  return series.length ? dpPrivacyUtility(series) : null;
}

export interface StandardFigure {
  name: string;
  figure?: Figure;
  skipped?: string;
}

/** Every standard figure, by file name. */
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
  return out;
}
