/**
 * Per-token latency breakdowns: stacked bars (one bar per series, one segment per stage) and
 * the nested tree of the original's breakdown (sunburst, treemap or icicle).
 */
import type { BreakdownNode } from '../datasets';
import { type Figure, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';
import { orderStages, stageColor, stageLabel } from './stages';

/** One bar: milliseconds per stage for one configuration or source. */
export interface StageSeries {
  label: string;
  provenance: Provenance;
  /** Milliseconds per stage (stage names of the per-token records). */
  stages: Record<string, number>;
  /** A printed or measured total larger than the parts; the difference is drawn as "not itemised". */
  total?: number;
}

/** Adds a node's leaves into per-stage sums; refs are not expanded (the node's own stage counts). */
export function stagesFromTree(tree: BreakdownNode): { stages: Record<string, number>; total: number } {
  const stages: Record<string, number> = {};
  const walk = (n: BreakdownNode) => {
    if (n.children && n.children.length) {
      n.children.forEach(walk);
      return;
    }
    const s = n.stage ?? 'other';
    stages[s] = (stages[s] ?? 0) + n.ms;
  };
  walk(tree);
  return { stages, total: tree.ms };
}

/** Median of each stage over per-token records ({forward: 1.2, encrypt: 0.3, ...}). */
export function stagesFromRecords(records: Array<Record<string, number>>): Record<string, number> {
  if (records.length === 0) throw new RangeError('stagesFromRecords: no records');
  const keys = new Set(records.flatMap((r) => Object.keys(r)));
  const out: Record<string, number> = {};
  for (const k of keys) {
    const v = records.map((r) => r[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
    if (v.length === 0) continue;
    const m = v.length >> 1;
    out[k] = v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  }
  return out;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

export interface LatencyBreakdownOptions {
  title?: string;
  caption?: string;
  /** 'h' draws horizontal bars (long labels), 'v' vertical. */
  orientation?: 'h' | 'v';
  unit?: 'ms' | 'us';
  /**
   * Draws each group of series in its own panel with its own linear value axis (the groups'
   * names title the panels), so 1 ms bars stay readable beside 800 ms ones. Without it, one axis.
   */
  facet?: (s: StageSeries) => string;
}

/** "cited: the original (RTX A2000)" / "measured here: tensafe": the usual facets of a breakdown. */
export function facetByProvenance(s: StageSeries): string {
  if (s.provenance.kind === 'cited') return `cited${s.provenance.hardware ? ` (${s.provenance.hardware})` : ''}`;
  if (s.provenance.kind === 'measured') return `measured here (${s.provenance.device})`;
  return 'computed';
}

/**
 * Stacked bars: one bar per series, one trace per stage (per panel), with the total printed at
 * the end of each bar. With `facet`, one panel per group, each on its own linear axis.
 */
export function latencyBreakdown(series: StageSeries[], opts: LatencyBreakdownOptions = {}): Figure {
  if (series.length === 0) throw new RangeError('latencyBreakdown: no series');
  const orientation = opts.orientation ?? 'h';
  const unit = opts.unit ?? 'ms';
  const rowsOf = (s: StageSeries) => {
    const parts = sum(Object.values(s.stages));
    const unaccounted = s.total !== undefined && s.total - parts > 1e-9 ? s.total - parts : 0;
    return { ...s.stages, ...(unaccounted > 0 ? { unaccounted } : {}) } as Record<string, number>;
  };
  const groupNames = opts.facet ? [...new Set(series.map(opts.facet))] : [''];
  const groups = groupNames.map((g) => series.filter((s) => !opts.facet || opts.facet(s) === g));
  const stages = orderStages(series.flatMap((s) => Object.keys(rowsOf(s))));
  const data: Trace[] = [];
  const annotations: Array<Record<string, unknown>> = [];
  const layoutAxes: Record<string, unknown> = {};
  // Panels share the figure's height in proportion to their bar counts (plus a title line each).
  const weights = groups.map((g) => g.length + (groupNames.length > 1 ? 0.8 : 0));
  const totalWeight = sum(weights);
  const gap = groupNames.length > 1 ? 0.06 : 0;
  let top = 1;
  groups.forEach((group, gi) => {
    const suffix = gi === 0 ? '' : String(gi + 1);
    const labels = group.map((s) => s.label);
    const rows = group.map(rowsOf);
    const groupStages = stages.filter((st) => rows.some((r) => r[st] !== undefined));
    for (const stage of groupStages) {
      const values = rows.map((r) => r[stage] ?? 0);
      const trace: Trace = {
        type: 'bar',
        name: stageLabel(stage),
        orientation,
        legendgroup: stage,
        showlegend: !data.some((t) => t.legendgroup === stage),
        marker: { color: stageColor(stage), ...(stage === 'unaccounted' ? { pattern: { shape: '/' } } : {}) },
        hovertemplate: `%{${orientation === 'h' ? 'y' : 'x'}}<br>${stageLabel(stage)}: %{${orientation === 'h' ? 'x' : 'y'}:.3g} ${unit}<extra></extra>`,
        meta: { stage, ...(opts.facet ? { facet: groupNames[gi] } : {}) },
      };
      if (orientation === 'h') {
        trace.x = values;
        trace.y = labels;
      } else {
        trace.x = labels;
        trace.y = values;
      }
      if (suffix) {
        trace.xaxis = `x${suffix}`;
        trace.yaxis = `y${suffix}`;
      }
      data.push(trace);
    }
    const totals = group.map((s, i) => Math.max(s.total ?? 0, sum(Object.values(rows[i]))));
    const ref = suffix ? { xref: `x${suffix}`, yref: `y${suffix}` } : {};
    totals.forEach((t, i) => annotations.push({
      text: `${t.toPrecision(3)} ${unit}`,
      showarrow: false,
      ...ref,
      ...(orientation === 'h'
        ? { x: t, y: labels[i], xanchor: 'left', xshift: 4 }
        : { x: labels[i], y: t, yanchor: 'bottom', yshift: 2 }),
      font: { size: 11 },
    }));
    const share = (weights[gi] / totalWeight) * (1 - gap * (groups.length - 1));
    const domain = [Math.max(0, top - share), top];
    top = domain[0] - gap;
    const valueAxis = { title: { text: `${unit} per token` }, rangemode: 'tozero', gridcolor: '#eee', ...(suffix ? { anchor: `y${suffix}` } : {}) };
    const categoryAxis = { automargin: true, ...(orientation === 'h' ? { autorange: 'reversed' } : {}), ...(suffix ? { anchor: `x${suffix}` } : {}),
      ...(groupNames.length > 1 && orientation === 'h' ? { domain } : {}) };
    layoutAxes[`xaxis${suffix}`] = orientation === 'h' ? valueAxis : categoryAxis;
    layoutAxes[`yaxis${suffix}`] = orientation === 'h' ? categoryAxis : valueAxis;
    if (groupNames.length > 1) {
      annotations.push({
        text: `<b>${groupNames[gi]}</b> (own linear axis)`, showarrow: false, xref: 'paper', yref: 'paper',
        x: 0, y: domain[1], xanchor: 'left', yanchor: 'bottom', font: { size: 12, color: '#333' },
      });
    }
  });
  return makeFigure({
    title: opts.title ?? 'Per-token latency breakdown',
    data,
    layout: {
      barmode: 'stack',
      annotations,
      legend: { orientation: 'v', x: 1.02, y: 1, traceorder: 'normal' },
      ...layoutAxes,
    },
    height: Math.max(420, 160 + 60 * series.length + (groupNames.length > 1 ? 50 * groupNames.length : 0)),
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    caption: opts.caption,
  });
}

/** Flat node list of a tree for plotly's hierarchical traces. */
export interface TreeNodes {
  ids: string[];
  labels: string[];
  parents: string[];
  values: number[];
  text: string[];
}

/**
 * Flattens a breakdown tree into plotly's ids/parents/values. A node with `ref` is expanded
 * with the referenced tree's children. Each parent's value is the larger of its printed total
 * and the sum of its children; where the printed total is larger, the difference becomes a
 * "not itemised" child, so values always add up (branchvalues: 'total').
 */
export function flattenTree(root: BreakdownNode, resolve: (ref: string) => BreakdownNode | undefined = () => undefined): TreeNodes {
  const out: TreeNodes = { ids: [], labels: [], parents: [], values: [], text: [] };
  const visit = (n: BreakdownNode, parentId: string, depth: number): number => {
    if (depth > 8) throw new RangeError('flattenTree: breakdown tree nested too deep (a ref cycle?)');
    const id = parentId ? `${parentId}/${n.name}` : n.name;
    const children = n.children ?? (n.ref ? resolve(n.ref)?.children : undefined) ?? [];
    const index = out.ids.length;
    out.ids.push(id);
    out.labels.push(n.name);
    out.parents.push(parentId);
    out.values.push(0);
    out.text.push(n.detail ?? '');
    let value = n.ms;
    if (children.length) {
      const parts = children.reduce((acc, c) => acc + visit(c, id, depth + 1), 0);
      const rest = n.ms - parts;
      if (rest > 1e-9) {
        out.ids.push(`${id}/(not itemised)`);
        out.labels.push('not itemised');
        out.parents.push(id);
        out.values.push(rest);
        out.text.push('printed total minus the printed parts');
      }
      value = Math.max(n.ms, parts);
    }
    out.values[index] = value;
    return value;
  };
  visit(root, '', 0);
  return out;
}

export interface BreakdownTreeOptions {
  kind?: 'sunburst' | 'treemap' | 'icicle';
  title?: string;
  caption?: string;
  resolve?: (ref: string) => BreakdownNode | undefined;
}

/** The nested breakdown as a sunburst (default), treemap or icicle. */
export function breakdownTree(tree: BreakdownNode, provenance: Provenance, opts: BreakdownTreeOptions = {}): Figure {
  const nodes = flattenTree(tree, opts.resolve);
  const kind = opts.kind ?? 'sunburst';
  return makeFigure({
    title: opts.title ?? `${tree.name}: nested breakdown (ms per token)`,
    data: [
      {
        type: kind,
        name: tree.name,
        ids: nodes.ids,
        labels: nodes.labels,
        parents: nodes.parents,
        values: nodes.values,
        customdata: nodes.text,
        branchvalues: 'total',
        hovertemplate: '%{label}: %{value:.3g} ms<br>%{customdata}<extra></extra>',
        ...(kind === 'sunburst' ? { insidetextorientation: 'radial' } : {}),
        textinfo: kind === 'sunburst' ? 'label' : 'label+value',
      },
    ],
    layout: { margin: { l: 20, r: 20, t: 60 } },
    height: 640,
    sources: [{ label: tree.name, provenance }],
    caption: opts.caption,
  });
}

/** A breakdown tree built from measured stages, grouped (model / HE-LoRA / head) for the nested view. */
export function treeFromStages(name: string, stages: Record<string, number>, groups: Record<string, string[]>): BreakdownNode {
  const used = new Set<string>();
  const children: BreakdownNode[] = [];
  for (const [group, members] of Object.entries(groups)) {
    const kids = members.filter((s) => stages[s] !== undefined).map((s) => {
      used.add(s);
      return { name: stageLabel(s), stage: s, ms: stages[s] };
    });
    if (kids.length) children.push({ name: group, ms: sum(kids.map((k) => k.ms)), children: kids });
  }
  for (const [s, ms] of Object.entries(stages)) {
    if (!used.has(s)) children.push({ name: stageLabel(s), stage: s, ms });
  }
  return { name, ms: sum(children.map((c) => c.ms)), children };
}

/** The grouping used for measured trees: what runs in the model, under HE, and after. */
export const DEFAULT_GROUPS: Record<string, string[]> = {
  'Model forward': ['forward'],
  'HE-LoRA': ['dp_noise', 'encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decode', 'transfer', 'extract_sum', 'lora_b'],
  'Head + sampling': ['lm_head', 'sampling'],
  Transport: ['network'],
};
