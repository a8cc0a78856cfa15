/** DP privacy against utility: token agreement with plaintext LoRA against epsilon (log x). */
import { type Figure, PALETTE, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';

export interface DpRow {
  epsilon: number;
  /** Fraction (0..1) of generated tokens equal to those of plaintext LoRA without noise. */
  agreement: number;
  /** Noise standard deviation used, shown on hover. */
  sigma?: number;
  /** Spread over prompts or seeds, drawn as error bars where given. */
  agreement_lo?: number;
  agreement_hi?: number;
}

export interface DpSeries {
  label: string;
  provenance: Provenance;
  rows: DpRow[];
}

export interface DpOptions {
  title?: string;
  caption?: string;
  /** Horizontal reference lines, e.g. the agreement of LoRA off vs on. */
  references?: Array<{ label: string; agreement: number }>;
}

export function dpPrivacyUtility(series: DpSeries[], opts: DpOptions = {}): Figure {
  if (series.length === 0) throw new RangeError('dpPrivacyUtility: no series');
  const data: Trace[] = series.map((s, i) => {
    const rows = [...s.rows].sort((a, b) => a.epsilon - b.epsilon);
    for (const r of rows) {
      if (!(r.epsilon > 0)) throw new RangeError(`dpPrivacyUtility: epsilon must be > 0 (series '${s.label}')`);
      if (!(r.agreement >= 0 && r.agreement <= 1)) throw new RangeError(`dpPrivacyUtility: agreement must be in [0, 1] (series '${s.label}')`);
    }
    const withBand = rows.every((r) => r.agreement_lo !== undefined && r.agreement_hi !== undefined);
    return {
      type: 'scatter',
      mode: 'lines+markers',
      name: s.label,
      x: rows.map((r) => r.epsilon),
      y: rows.map((r) => r.agreement),
      customdata: rows.map((r) => (r.sigma !== undefined ? r.sigma.toPrecision(4) : 'n/a')),
      line: { color: PALETTE[i % PALETTE.length] },
      ...(withBand
        ? {
            error_y: {
              type: 'data', symmetric: false,
              array: rows.map((r) => (r.agreement_hi as number) - r.agreement),
              arrayminus: rows.map((r) => r.agreement - (r.agreement_lo as number)),
            },
          }
        : {}),
      hovertemplate: `${s.label}<br>epsilon=%{x}<br>agreement=%{y:.1%}<br>sigma=%{customdata}<extra></extra>`,
    };
  });
  const shapes = (opts.references ?? []).map((r) => ({
    type: 'line', xref: 'paper', x0: 0, x1: 1, y0: r.agreement, y1: r.agreement, line: { dash: 'dot', color: '#888' },
  }));
  const refNotes = (opts.references ?? []).map((r) => ({
    xref: 'paper', x: 1, y: r.agreement, xanchor: 'right', yanchor: 'bottom', text: r.label, showarrow: false, font: { size: 11, color: '#666' },
  }));
  return makeFigure({
    title: opts.title ?? 'DP privacy against utility',
    data,
    layout: {
      xaxis: { title: { text: 'epsilon per token (log; smaller = more private)' }, type: 'log', gridcolor: '#eee' },
      yaxis: { title: { text: 'token agreement with plaintext LoRA' }, range: [0, 1.05], tickformat: '.0%', gridcolor: '#eee' },
      shapes,
      annotations: refNotes,
    },
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    caption: opts.caption,
  });
}
