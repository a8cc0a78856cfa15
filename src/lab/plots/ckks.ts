/** CKKS operation costs against the ring degree N (poly_n), one line per (source, operation). */
import { type Figure, PALETTE, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';

export interface OpCostRow {
  op: string;
  poly_n: number;
  /** Microseconds per operation. */
  us: number;
}

export interface OpCostSeries {
  label: string;
  provenance: Provenance;
  rows: OpCostRow[];
}

const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up', 'x', 'star', 'cross', 'triangle-down'];
const DASHES = ['solid', 'dash', 'dot', 'dashdot', 'longdash'];

export interface OpCostOptions {
  title?: string;
  caption?: string;
  /** Only these operations, in this order. */
  ops?: string[];
}

/**
 * Log-log lines: x = poly_n (powers of two), y = microseconds. Colour = operation, marker and
 * dash = series, so one source's lines read together and sources never blend.
 */
export function ckksOpCosts(series: OpCostSeries[], opts: OpCostOptions = {}): Figure {
  if (series.length === 0) throw new RangeError('ckksOpCosts: no series');
  const ops = opts.ops ?? [...new Set(series.flatMap((s) => s.rows.map((r) => r.op)))];
  const data: Trace[] = [];
  const ns = new Set<number>();
  series.forEach((s, si) => {
    ops.forEach((op, oi) => {
      const rows = s.rows.filter((r) => r.op === op).sort((a, b) => a.poly_n - b.poly_n);
      if (rows.length === 0) return;
      rows.forEach((r) => ns.add(r.poly_n));
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: op,
        legendgroup: s.label,
        legendgrouptitle: { text: s.label },
        x: rows.map((r) => r.poly_n),
        y: rows.map((r) => r.us),
        line: { color: PALETTE[oi % PALETTE.length], dash: DASHES[si % DASHES.length] },
        marker: { symbol: SYMBOLS[si % SYMBOLS.length], size: 8 },
        hovertemplate: `${s.label}<br>${op}, N=%{x}: %{y:.3g} us<extra></extra>`,
        meta: { op, series: s.label },
      });
    });
  });
  if (data.length === 0) throw new RangeError('ckksOpCosts: no rows for the requested operations');
  const ticks = [...ns].sort((a, b) => a - b);
  return makeFigure({
    title: opts.title ?? 'CKKS operation cost against poly_n',
    data,
    layout: {
      xaxis: { title: { text: 'poly_n (ring degree N)' }, type: 'log', tickvals: ticks, ticktext: ticks.map(String), gridcolor: '#eee' },
      yaxis: { title: { text: 'microseconds per operation (log)' }, type: 'log', gridcolor: '#eee' },
      legend: { groupclick: 'toggleitem', font: { size: 11 }, tracegroupgap: 8 },
    },
    height: Math.max(600, 200 + 19 * (data.length + series.length)),
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    caption: opts.caption,
  });
}
