/**
 * The SOTA comparison: tok/s on a log scale, each row with its source and who holds the key;
 * rows without a fair per-token figure are listed and marked (†) instead of drawn; rows measured
 * here are highlighted; server-key rows (the key holder is the server, so the encryption hides
 * nothing from it) are hatched and say so in the bar label and the hover text.
 */
import { type SotaRow, isServerKey } from '../datasets';
import { CITED, type Figure, HIGHLIGHT, type Trace, makeFigure } from '../figure';
import { type Provenance, cited, provenanceText } from '../provenance';

/** A row measured by this repository, to be drawn beside the cited ones. */
export interface MeasuredSotaRow {
  system: string;
  model: string;
  hardware: string;
  what_encrypted: string;
  tok_s: number;
  /** Who holds the decryption key ('server', 'client', ...). */
  key_holder: string;
  /** What is protected from whom. */
  protects: string;
  provenance: Provenance;
}

export interface SotaOptions {
  title?: string;
  caption?: string;
  /** Appended to the caption: older result files not drawn. */
  history?: string;
}

interface PlotRow {
  label: string;
  tok_s: number | null;
  source: string;
  measured: boolean;
  comparable: boolean;
  metric: string;
  hover: string;
  serverKey: boolean;
}

export const NOT_COMPARABLE_MARK = '\u2020';
/** Appended to the label of every row whose key the server holds. */
export const SERVER_KEY_MARK = '[server key: hides nothing from the server]';

function keyLine(r: { key_holder: string; protects: string }): string {
  return `key holder: ${r.key_holder}; protects: ${r.protects}`;
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

/** Second, smaller line of a tick label. */
function sub(text: string): string {
  return `<br><span style="font-size:10px;color:#666">${text}</span>`;
}

export function sotaComparison(rows: SotaRow[], measuredRows: MeasuredSotaRow[] = [], opts: SotaOptions = {}): Figure {
  if (rows.length + measuredRows.length === 0) throw new RangeError('sotaComparison: no rows');
  const plotRows: PlotRow[] = [
    ...measuredRows.map((r) => {
      const serverKey = isServerKey(r);
      return {
        label: `<b>${r.system}</b>${sub(clip(`${r.model}, ${r.hardware}`, 70) + (serverKey ? ` ${SERVER_KEY_MARK}` : ''))}`,
        tok_s: r.tok_s,
        source: r.provenance.kind === 'measured' ? `measured here (${r.provenance.device}, ${r.provenance.date.slice(0, 10)})` : provenanceText(r.provenance),
        measured: true,
        comparable: true,
        metric: `${r.tok_s.toPrecision(3)} tok/s`,
        hover: `${keyLine(r)}<br>${r.what_encrypted}<br>${r.model}, ${r.hardware}`,
        serverKey,
      };
    }),
    ...rows.map((r) => {
      const comparable = r.comparable && r.tok_s !== null && Number.isFinite(r.tok_s);
      const serverKey = isServerKey(r);
      return {
        label: `${r.system}${comparable ? '' : ` ${NOT_COMPARABLE_MARK}`}${sub(`${r.model}, ${r.hardware}` + (serverKey ? ` ${SERVER_KEY_MARK}` : ''))}`,
        tok_s: comparable ? r.tok_s : null,
        source: r.source,
        measured: false,
        comparable,
        metric: r.reported_metric,
        hover: `${keyLine(r)}<br>${r.what_encrypted}<br>${r.note}`,
        serverKey,
      };
    }),
  ];
  const drawn = plotRows.filter((r) => r.comparable).sort((a, b) => (b.tok_s as number) - (a.tok_s as number));
  const listed = plotRows.filter((r) => !r.comparable);
  const order = [...drawn, ...listed];
  const values = drawn.map((r) => r.tok_s as number).filter((v) => v > 0);
  const lo = values.length ? Math.floor(Math.log10(Math.min(...values))) - 0.5 : -4;
  const hi = values.length ? Math.ceil(Math.log10(Math.max(...values))) + 4 : 2;
  const wrapHover = (s: string) => s.replace(/(.{1,90})(\s|$)/g, '$1<br>');
  const bar = (subset: PlotRow[], name: string, color: string): Trace => ({
    type: 'bar',
    orientation: 'h',
    name,
    y: subset.map((r) => r.label),
    x: subset.map((r) => r.tok_s),
    text: subset.map((r) => `${(r.tok_s as number).toPrecision(3)} tok/s | ${r.serverKey ? 'server key | ' : ''}${clip(r.source, r.serverKey ? 26 : 40)}`),
    textposition: 'outside',
    cliponaxis: false,
    // Server-key bars are hatched: same speed axis, not the same protection.
    marker: { color, pattern: { shape: subset.map((r) => (r.serverKey ? '/' : '')), fillmode: 'overlay', fgcolor: '#fff', solidity: 0.35 } },
    customdata: subset.map((r) => wrapHover(r.hover)),
    hovertemplate: '%{y}<br>%{x:.3g} tok/s<br>%{customdata}<extra></extra>',
  });
  const data: Trace[] = [];
  const measuredDrawn = drawn.filter((r) => r.measured);
  const citedDrawn = drawn.filter((r) => !r.measured);
  if (measuredDrawn.length) data.push(bar(measuredDrawn, 'measured here', HIGHLIGHT));
  if (citedDrawn.length) data.push(bar(citedDrawn, 'cited (source per row)', CITED));
  if (listed.length) {
    data.push({
      type: 'scatter',
      mode: 'markers+text',
      name: `${NOT_COMPARABLE_MARK} not comparable per token (no bar)`,
      y: listed.map((r) => r.label),
      x: listed.map(() => 10 ** (lo + 0.05)),
      text: listed.map((r) => `${clip(r.metric, 44)} | ${clip(r.source, 24)}`),
      textposition: 'middle right',
      marker: { symbol: 'x-thin-open', size: 10, color: '#999' },
      customdata: listed.map((r) => wrapHover(r.hover)),
      hovertemplate: '%{y}<br>%{text}<br>%{customdata}<extra></extra>',
    });
  }
  const sources: Array<{ label?: string; provenance: Provenance }> = [
    ...measuredRows.map((r) => ({ label: r.system, provenance: r.provenance })),
  ];
  if (rows.length) sources.push({ label: 'other rows', provenance: cited('datasets/sota.csv, corrected per field-notes section 1; each row names its source') });
  return makeFigure({
    title: opts.title ?? 'Private LLM inference: tokens per second (log scale)',
    data,
    layout: {
      barmode: 'overlay',
      xaxis: { title: { text: 'tokens per second (log)' }, type: 'log', range: [lo, hi], gridcolor: '#eee' },
      yaxis: { automargin: true, autorange: 'reversed', categoryorder: 'array', categoryarray: order.map((r) => r.label) },
      legend: { orientation: 'h', y: -0.14, yanchor: 'top', x: 0 },
      margin: { l: 20, r: 30, b: 130 },
    },
    width: 1100,
    height: Math.max(480, 170 + 42 * order.length),
    sources,
    caption: opts.caption ?? `${NOT_COMPARABLE_MARK} marks rows whose source reports no per-token figure (or none was found); they are listed, not drawn. ` +
      'Hatched bars marked "server key" are server-key rows (tensafe\'s default and the original): the server holds the key, so the encryption hides ' +
      'nothing from it, unlike the client-key, FHE and MPC rows, which keep the client\'s data from the server; the hover text says who holds the key and what is protected from whom. ' +
      'Rows measured here name the model they ran (e.g. fewer layers or random weights on a CPU) under the system.' + (opts.history ?? ''),
  });
}
