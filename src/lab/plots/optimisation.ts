/** The optimisation steps: tok/s after each cumulative step, grouped by source, ranges as error bars. */
import { type Figure, PALETTE, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';

export interface StepRow {
  step: number;
  label: string;
  tok_s: number;
  /** A printed range (the original gives min and max); tok_s is then the midpoint. */
  tok_s_min?: number;
  tok_s_max?: number;
}

export interface StepSeries {
  label: string;
  provenance: Provenance;
  steps: StepRow[];
}

export interface OptimisationOptions {
  title?: string;
  caption?: string;
  log?: boolean;
}

/** Grouped bars, x = step ("0 Baseline", "1 + batched decrypt", ...), text = speedup over that series' step 0. */
function shorten(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

export function optimisationSteps(series: StepSeries[], opts: OptimisationOptions = {}): Figure {
  if (series.length === 0) throw new RangeError('optimisationSteps: no series');
  // One category per step number, named by the first series that has it, so the sources'
  // bars for the same step stand side by side; each bar's own configuration is on hover.
  const names = new Map<number, string>();
  for (const s of series) for (const r of s.steps) if (!names.has(r.step)) names.set(r.step, `${r.step}: ${shorten(r.label, 38)}`);
  const data: Trace[] = series.map((s, si) => {
    const steps = [...s.steps].sort((a, b) => a.step - b.step);
    if (steps.length === 0) throw new RangeError(`optimisationSteps: series '${s.label}' has no steps`);
    const base = steps[0].tok_s;
    const hasRange = steps.some((r) => r.tok_s_min !== undefined && r.tok_s_max !== undefined);
    return {
      type: 'bar',
      name: s.label,
      x: steps.map((r) => names.get(r.step)),
      customdata: steps.map((r) => r.label),
      y: steps.map((r) => r.tok_s),
      text: steps.map((r) => (r.step === steps[0].step ? `${r.tok_s.toPrecision(3)}` : `${r.tok_s.toPrecision(3)} (x${(r.tok_s / base).toFixed(2)})`)),
      textposition: 'outside',
      marker: { color: PALETTE[si % PALETTE.length] },
      ...(hasRange
        ? {
            error_y: {
              type: 'data',
              symmetric: false,
              array: steps.map((r) => (r.tok_s_max ?? r.tok_s) - r.tok_s),
              arrayminus: steps.map((r) => r.tok_s - (r.tok_s_min ?? r.tok_s)),
              color: '#444',
            },
          }
        : {}),
      hovertemplate: `${s.label}<br>%{customdata}: %{y:.3g} tok/s<extra></extra>`,
    };
  });
  return makeFigure({
    title: opts.title ?? 'Optimisation steps (cumulative tok/s)',
    data,
    layout: {
      barmode: 'group',
      xaxis: { automargin: true, categoryorder: 'array', categoryarray: [...names.keys()].sort((a, b) => a - b).map((k) => names.get(k)) },
      yaxis: { title: { text: 'tokens per second' }, type: opts.log ? 'log' : 'linear', rangemode: 'tozero', gridcolor: '#eee' },
    },
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    caption: opts.caption,
  });
}
