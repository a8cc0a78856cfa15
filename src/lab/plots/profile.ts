/** A kernel profile as horizontal bars: total time per kernel, largest first, calls on hover. */
import { type Figure, HIGHLIGHT, makeFigure } from '../figure';
import type { Provenance } from '../provenance';

export interface KernelBarRow {
  name: string;
  calls: number;
  total_ms: number;
  mean_us: number;
}

export function kernelProfile(rows: KernelBarRow[], provenance: Provenance, opts: { title?: string; top?: number; caption?: string } = {}): Figure {
  if (rows.length === 0) throw new RangeError('kernelProfile: no kernels');
  const top = [...rows].sort((a, b) => b.total_ms - a.total_ms).slice(0, opts.top ?? 20);
  return makeFigure({
    title: opts.title ?? 'Time per kernel',
    data: [{
      type: 'bar',
      orientation: 'h',
      name: 'total',
      y: top.map((r) => r.name),
      x: top.map((r) => r.total_ms),
      customdata: top.map((r) => [r.calls, r.mean_us]),
      marker: { color: provenance.kind === 'measured' ? HIGHLIGHT : '#7F8FA6' },
      hovertemplate: '%{y}<br>total %{x:.3g} ms<br>%{customdata[0]} calls, mean %{customdata[1]:.3g} us<extra></extra>',
    }],
    layout: { xaxis: { title: { text: 'total ms' }, gridcolor: '#eee' }, yaxis: { automargin: true, autorange: 'reversed' } },
    height: Math.max(360, 140 + 24 * top.length),
    sources: [{ provenance }],
    caption: opts.caption,
  });
}
