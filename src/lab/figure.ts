/**
 * Plotly figure objects as plain data. We keep our own small types instead of @types/plotly.js
 * (not a dependency): a figure is what `Plotly.newPlot(div, data, layout, config)` takes, plus
 * the provenance of every series, which the builders also print under the plot.
 */
import { type Provenance, provenanceNote } from './provenance';

/** One plotly trace (bar, scatter, sunburst, heatmap, ...): plotly's own keys. */
export type Trace = { type: string; name?: string } & Record<string, unknown>;
export type Layout = Record<string, unknown>;
export type Config = Record<string, unknown>;

export interface Figure {
  data: Trace[];
  layout: Layout;
  config: Config;
  /** Every source behind the figure, labelled by series. */
  sources: Array<{ label?: string; provenance: Provenance }>;
  /** The provenance line shown under the plot (also in layout.annotations). */
  note: string;
}

export interface FigureSpec {
  title: string;
  data: Trace[];
  layout?: Layout;
  sources: Array<{ label?: string; provenance: Provenance }>;
  /** Extra caption text after the provenance line (e.g. "bars marked † are not comparable"). */
  caption?: string;
  width?: number;
  height?: number;
}

/** Default export size in CSS pixels. */
export const DEFAULT_WIDTH = 960;
export const DEFAULT_HEIGHT = 540;

/** Wraps a long line at spaces so the caption fits under the plot (plotly does not wrap). */
export function wrapText(text: string, width = 150): string {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      if (line && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    }
    out.push(line);
  }
  return out.join('<br>');
}

/**
 * Builds a figure with a title, the provenance (and caption) as the title's subtitle, and a
 * fixed size. The subtitle is placed against the whole figure, not the plot area, so long
 * category labels never push it off the page.
 */
export function makeFigure(spec: FigureSpec): Figure {
  if (spec.sources.length === 0) throw new RangeError('makeFigure: a figure needs at least one source (provenance)');
  const note = provenanceNote(spec.sources);
  const width = spec.width ?? DEFAULT_WIDTH;
  const chars = Math.max(60, Math.floor((width - 40) / 6.3));
  const subtitle = wrapText(spec.caption ? `${note}\n${spec.caption}` : note, chars);
  const lines = subtitle.split('<br>').length;
  const base = spec.layout ?? {};
  const margin = { l: 80, r: 30, b: 70, ...(base.margin as object | undefined), t: 64 + 15 * lines };
  const layout: Layout = {
    font: { family: 'Helvetica, Arial, sans-serif', size: 13 },
    paper_bgcolor: 'white',
    plot_bgcolor: 'white',
    width,
    height: spec.height ?? DEFAULT_HEIGHT,
    ...base,
    title: {
      text: spec.title,
      x: 0.01,
      xanchor: 'left',
      xref: 'container',
      y: 1,
      yref: 'container',
      yanchor: 'top',
      pad: { t: 14 },
      subtitle: { text: subtitle, font: { size: 11, color: '#555' } },
    },
    margin,
    meta: { provenance: note },
  };
  if (spec.height !== undefined) layout.height = spec.height + 15 * lines;
  return {
    data: spec.data,
    layout,
    config: { displaylogo: false, responsive: true },
    sources: spec.sources,
    note,
  };
}

/** A stable palette (colour-blind friendly, Okabe-Ito first) so stages keep their colour across figures. */
export const PALETTE = [
  '#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000',
  '#8C564B', '#7F7F7F', '#17BECF', '#BCBD22', '#9467BD', '#2CA02C', '#1F3A93', '#FF9896',
];

/** Highlight colour for rows measured here. */
export const HIGHLIGHT = '#D55E00';
/** Colour for cited rows. */
export const CITED = '#7F8FA6';
