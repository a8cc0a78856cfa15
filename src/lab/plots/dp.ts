/**
 * DP privacy against utility: token agreement with plaintext LoRA against the privacy of the
 * request. The x axis is the accounted request epsilon (every token is a release; the
 * accountant composes them from sigma, so the figure is honest for every calibration), with the
 * nominal per-token epsilon as each point's label. Points whose sigma comes from the classic
 * formula outside its proven range (epsilon < 1) are drawn open and say so.
 */
import { type Figure, PALETTE, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';

export interface DpRow {
  /** Nominal per-token epsilon the noise was calibrated for. */
  epsilon: number;
  /** Fraction (0..1) of generated tokens equal to those of plaintext LoRA without noise. */
  agreement: number;
  /** Accounted epsilon of the whole request (all its releases composed), where known. */
  request_epsilon?: number;
  /** Noise standard deviation used, shown on hover. */
  sigma?: number;
  /** False where sigma came from the classic formula outside epsilon < 1 (not a guarantee). */
  in_range?: boolean;
  /** Cosine of the adapter's output under DP with the noise-free one (the direction it keeps), where measured. */
  adapter_cosine?: number;
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
  /**
   * 'request' (default where every row has request_epsilon): x = accounted request epsilon;
   * 'per-token': x = the nominal per-token epsilon (older rows without the accountant's figure).
   */
  x?: 'request' | 'per-token';
}

export const OUT_OF_RANGE_NOTE = 'classic formula outside its proven range (epsilon < 1): per-token epsilon is a target, not a guarantee';

/** Labels for points whose x is at least `decades` (log10) past the last labelled one; '' elsewhere. */
function spacedLabels(xs: number[], labels: string[], decades = 0.5): string[] {
  let last = -Infinity;
  return labels.map((l, i) => {
    const lx = Math.log10(xs[i]);
    if (lx - last < decades) return '';
    last = lx;
    return l;
  });
}

export function dpPrivacyUtility(series: DpSeries[], opts: DpOptions = {}): Figure {
  if (series.length === 0) throw new RangeError('dpPrivacyUtility: no series');
  const allRows = series.flatMap((s) => s.rows);
  const xMode = opts.x ?? (allRows.every((r) => typeof r.request_epsilon === 'number' && r.request_epsilon > 0) ? 'request' : 'per-token');
  if (xMode === 'request' && !allRows.every((r) => typeof r.request_epsilon === 'number' && r.request_epsilon > 0)) {
    throw new RangeError("dpPrivacyUtility: x 'request' needs request_epsilon > 0 on every row");
  }
  const xOf = (r: DpRow) => (xMode === 'request' ? (r.request_epsilon as number) : r.epsilon);
  const anyOut = allRows.some((r) => r.in_range === false);
  const data: Trace[] = series.map((s, i) => {
    for (const r of s.rows) {
      if (!(r.epsilon > 0)) throw new RangeError(`dpPrivacyUtility: epsilon must be > 0 (series '${s.label}')`);
      if (!(r.agreement >= 0 && r.agreement <= 1)) throw new RangeError(`dpPrivacyUtility: agreement must be in [0, 1] (series '${s.label}')`);
    }
    const rows = [...s.rows].sort((a, b) => xOf(a) - xOf(b));
    const withBand = rows.every((r) => r.agreement_lo !== undefined && r.agreement_hi !== undefined);
    const color = PALETTE[i % PALETTE.length];
    return {
      type: 'scatter',
      mode: 'lines+markers+text',
      name: s.label,
      x: rows.map(xOf),
      y: rows.map((r) => r.agreement),
      // the secondary label: the nominal per-token epsilon, on points at least half a decade apart (legible)
      text: spacedLabels(rows.map(xOf), rows.map((r) => `\u03b5/token ${r.epsilon}${r.in_range === false ? '*' : ''}`)),
      textposition: 'top center',
      textfont: { size: 10, color },
      customdata: rows.map((r) => [
        r.sigma !== undefined ? r.sigma.toPrecision(4) : 'n/a',
        r.epsilon,
        r.request_epsilon !== undefined ? r.request_epsilon.toPrecision(4) : 'n/a',
        r.in_range === false ? `<br>${OUT_OF_RANGE_NOTE}` : '',
      ]),
      line: { color },
      marker: { color, size: 8, symbol: rows.map((r) => (r.in_range === false ? 'circle-open' : 'circle')) },
      ...(withBand
        ? {
            error_y: {
              type: 'data', symmetric: false,
              array: rows.map((r) => (r.agreement_hi as number) - r.agreement),
              arrayminus: rows.map((r) => r.agreement - (r.agreement_lo as number)),
            },
          }
        : {}),
      hovertemplate: `${s.label}<br>request epsilon (accounted)=%{customdata[2]}<br>per-token epsilon (nominal)=%{customdata[1]}` +
        '<br>agreement=%{y:.1%}<br>sigma=%{customdata[0]}%{customdata[3]}<extra></extra>',
    };
  });
  // The adapter's direction kept under DP: dashed, on a right-hand axis, where measured.
  series.forEach((s, i) => {
    const rows = [...s.rows].filter((r) => typeof r.adapter_cosine === 'number').sort((a, b) => xOf(a) - xOf(b));
    if (!rows.length) return;
    data.push({
      type: 'scatter',
      mode: 'lines+markers',
      name: `${s.label}: adapter output cosine`,
      x: rows.map(xOf),
      y: rows.map((r) => r.adapter_cosine),
      yaxis: 'y2',
      line: { color: PALETTE[i % PALETTE.length], dash: 'dash' },
      marker: { color: PALETTE[i % PALETTE.length], size: 7, symbol: 'diamond' },
      customdata: rows.map((r) => r.epsilon),
      hovertemplate: `${s.label}<br>per-token epsilon %{customdata}<br>cos(adapter output with DP, without)=%{y:.3f}<extra></extra>`,
    });
  });
  const withCosine = data.some((t) => t.yaxis === 'y2');
  const shapes = (opts.references ?? []).map((r) => ({
    type: 'line', xref: 'paper', x0: 0, x1: 1, y0: r.agreement, y1: r.agreement, line: { dash: 'dot', color: '#888' },
  }));
  const refNotes = (opts.references ?? []).map((r) => ({
    xref: 'paper', x: 1, y: r.agreement, xanchor: 'right', yanchor: 'bottom', text: r.label, showarrow: false, font: { size: 11, color: '#666' },
  }));
  const axis = xMode === 'request'
    ? 'epsilon of the whole request, accounted over all its releases (log; smaller = more private)'
    : 'nominal epsilon per token (log; smaller = more private)';
  const how = xMode === 'request'
    ? 'x: the accountant\'s epsilon of the request (every token is a release; composed from sigma, valid for every calibration); labels: the nominal per-token epsilon.'
    : 'x: the nominal per-token epsilon (these rows carry no accounted request epsilon).';
  return makeFigure({
    title: opts.title ?? 'DP privacy against utility',
    data,
    layout: {
      xaxis: { title: { text: axis }, type: 'log', gridcolor: '#eee' },
      yaxis: { title: { text: 'token agreement with plaintext LoRA (solid)' }, range: [0, 1.1], tickformat: '.0%', gridcolor: '#eee' },
      ...(withCosine ? { yaxis2: { title: { text: 'cosine of the adapter output with the noise-free one (dashed)' }, overlaying: 'y', side: 'right', range: [-0.1, 1.1], showgrid: false } } : {}),
      legend: { orientation: 'h', y: -0.2, yanchor: 'top', x: 0 },
      margin: { r: 90 },
      shapes,
      annotations: refNotes,
    },
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    height: 620,
    caption: [how, withCosine ? 'Dashed (right axis): the cosine between the adapter output B A (clip(h) + noise) and B A h, the direction of the LoRA delta that DP keeps.' : '',
      anyOut ? `* open markers: ${OUT_OF_RANGE_NOTE}.` : '', opts.caption ?? ''].filter(Boolean).join(' '),
  });
}
