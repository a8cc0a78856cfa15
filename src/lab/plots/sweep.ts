/** A sweep's results: lines (one option on x, one line per combination of the others) or a heatmap. */
import { type Figure, PALETTE, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';
import { type TableLike, rowsOf } from '../tables';

export interface SweepViewOptions {
  /** Option on the x axis. */
  x: string;
  /** Metric on the y axis (lines) or the colour (heatmap). */
  y: string;
  /** Second option for the heatmap's y axis; lines are drawn when absent. */
  by?: string;
  kind?: 'lines' | 'heatmap';
  /** Columns whose combinations make the lines (default: the non-numeric columns other than x and y). */
  lines?: string[];
  title?: string;
  caption?: string;
  logX?: boolean;
  logY?: boolean;
  provenance: Provenance;
  label?: string;
}

type Row = Record<string, unknown>;

function fmt(v: unknown): string {
  return typeof v === 'number' ? String(v) : typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
}

export function sweepView(table: TableLike, opts: SweepViewOptions): Figure {
  const rows = rowsOf(table);
  if (rows.length === 0) throw new RangeError('sweepView: no rows');
  for (const k of [opts.x, opts.y, ...(opts.by ? [opts.by] : [])]) {
    if (!(k in rows[0])) throw new RangeError(`sweepView: no column '${k}' (columns: ${Object.keys(rows[0]).join(', ')})`);
  }
  const kind = opts.kind ?? (opts.by ? 'heatmap' : 'lines');
  const xs = [...new Set(rows.map((r) => r[opts.x]))].sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : fmt(a).localeCompare(fmt(b))));
  let data: Trace[];
  let layout: Record<string, unknown>;
  if (kind === 'heatmap') {
    if (!opts.by) throw new RangeError("sweepView: a heatmap needs 'by' (the option on the y axis)");
    const by = opts.by;
    const ys = [...new Set(rows.map((r) => r[by]))];
    const z = ys.map((yv) => xs.map((xv) => {
      const hit = rows.filter((r) => r[opts.x] === xv && r[by] === yv).map((r) => Number(r[opts.y]));
      return hit.length ? hit.reduce((a, b) => a + b, 0) / hit.length : null;
    }));
    data = [{
      type: 'heatmap',
      name: opts.y,
      x: xs.map(fmt),
      y: ys.map(fmt),
      z,
      colorscale: 'Viridis',
      colorbar: { title: { text: opts.y } },
      texttemplate: '%{z:.3g}',
      hovertemplate: `${opts.x}=%{x}<br>${by}=%{y}<br>${opts.y}=%{z:.3g}<extra></extra>`,
    }];
    layout = { xaxis: { title: { text: opts.x }, type: 'category' }, yaxis: { title: { text: by }, type: 'category' } };
  } else {
    const others = opts.lines ?? Object.keys(rows[0]).filter((k) => k !== opts.x && k !== opts.y && isOption(rows, k));
    const groups = new Map<string, Row[]>();
    for (const r of rows) {
      const key = others.map((k) => `${k}=${fmt(r[k])}`).join(', ') || opts.y;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(r);
    }
    data = [...groups.entries()].map(([key, g], i) => {
      const sorted = [...g].sort((a, b) => xs.indexOf(a[opts.x]) - xs.indexOf(b[opts.x]));
      return {
        type: 'scatter',
        mode: 'lines+markers',
        name: key,
        x: sorted.map((r) => r[opts.x]),
        y: sorted.map((r) => r[opts.y]),
        line: { color: PALETTE[i % PALETTE.length] },
        hovertemplate: `${key}<br>${opts.x}=%{x}: ${opts.y}=%{y:.3g}<extra></extra>`,
      };
    });
    const numericX = xs.every((v) => typeof v === 'number');
    layout = {
      xaxis: {
        title: { text: opts.x },
        type: numericX ? (opts.logX ? 'log' : 'linear') : 'category',
        ...(numericX ? { tickvals: xs, ticktext: xs.map(fmt) } : {}),
        gridcolor: '#eee',
      },
      yaxis: { title: { text: opts.y }, type: opts.logY ? 'log' : 'linear', gridcolor: '#eee' },
    };
  }
  return makeFigure({
    title: opts.title ?? `Sweep: ${opts.y} against ${opts.x}`,
    data,
    layout,
    sources: [{ label: opts.label, provenance: opts.provenance }],
    caption: opts.caption,
  });
}

/** A column is an option (not a metric) when it was varied with few distinct values or is not numeric. */
function isOption(rows: Row[], k: string): boolean {
  const vals = rows.map((r) => r[k]);
  if (vals.some((v) => typeof v !== 'number')) return vals.every((v) => v === null || ['string', 'boolean'].includes(typeof v));
  return false;
}
