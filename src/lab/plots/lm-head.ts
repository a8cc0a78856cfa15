/** LM head backends: milliseconds per token (log scale), one bar per (source, backend). */
import { CITED, type Figure, HIGHLIGHT, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';

export interface LmHeadSeries {
  label: string;
  provenance: Provenance;
  rows: Array<{ backend: string; ms: number }>;
}

export interface LmHeadOptions {
  title?: string;
  caption?: string;
}

/** Horizontal log-scale bars; measured series in the highlight colour, cited ones grey. */
export function lmHeadBackends(series: LmHeadSeries[], opts: LmHeadOptions = {}): Figure {
  if (series.length === 0) throw new RangeError('lmHeadBackends: no series');
  const data: Trace[] = series.map((s) => ({
    type: 'bar',
    orientation: 'h',
    name: s.label,
    y: s.rows.map((r) => `${r.backend} (${s.label})`),
    x: s.rows.map((r) => r.ms),
    text: s.rows.map((r) => `${r.ms.toPrecision(3)} ms`),
    textposition: 'outside',
    marker: { color: s.provenance.kind === 'measured' ? HIGHLIGHT : CITED },
    hovertemplate: '%{y}: %{x:.3g} ms<extra></extra>',
  }));
  const all = series.flatMap((s) => s.rows.map((r) => r.ms)).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...all))) - 0.2;
  const hi = Math.ceil(Math.log10(Math.max(...all))) + 0.6;
  return makeFigure({
    title: opts.title ?? 'LM head (151936 x 1536) per token, by backend',
    data,
    layout: {
      barmode: 'group',
      showlegend: true,
      xaxis: { title: { text: 'ms per token (log)' }, type: 'log', range: [lo, hi], gridcolor: '#eee' },
      yaxis: { automargin: true, autorange: 'reversed' },
    },
    height: Math.max(400, 160 + 40 * series.reduce((n, s) => n + s.rows.length, 0)),
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    caption: opts.caption,
  });
}
