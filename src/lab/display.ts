/**
 * Inline display in a tslab notebook: tables as HTML, figures as plotly (the bundle inlined
 * with the first figure of the kernel session, i.e. once per notebook). Outside tslab (plain
 * Node, tests, the CLI) display falls back to text on stdout.
 */
import type { ColumnTable as Table } from 'arquero';
import { type Row, formatTable } from '../results';
import type { Figure } from './figure';
import { escapeHtml, figureDiv, plotlyInlineTag } from './html';

/** The part of tslab's public API we use (tslab.display / tslab.newDisplay). */
export interface TslabDisplay {
  html(s: string): void;
  text(s: string): void;
  markdown(s: string): void;
}
interface TslabModule {
  display: TslabDisplay;
  newDisplay(): TslabDisplay;
}

let tslabModule: TslabModule | null | undefined;
let plotlyInlined = false;

/**
 * tslab's module when this code runs inside a tslab kernel, else null. tslab is a dev
 * dependency: it is loaded lazily and its absence is normal. Inside the kernel its jupyter
 * writer is set; elsewhere display.html throws "Not ready", which we test once.
 */
export function tslab(): TslabModule | null {
  if (tslabModule !== undefined) return tslabModule;
  tslabModule = null;
  if (process.env.TENSAFE_NO_TSLAB === '1') return null;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const jupyter = require('tslab/dist/jupyter') as { lastWriteDisplayData?: unknown };
    if (jupyter.lastWriteDisplayData) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      tslabModule = require('tslab') as TslabModule;
    }
  } catch {
    tslabModule = null;
  }
  return tslabModule;
}

export function inNotebook(): boolean {
  return tslab() !== null;
}

/** For tests: forget whether plotly was inlined. */
export function resetDisplayState(): void {
  plotlyInlined = false;
  tslabModule = undefined;
}

/** HTML for a figure in the notebook; the first one of the session carries the plotly bundle (gzipped). */
export function figureHtml(fig: Figure): string {
  const lib = plotlyInlined ? '' : plotlyInlineTag() + '\n';
  plotlyInlined = true;
  return lib + figureDiv(fig);
}

export interface TableDisplayOptions {
  /** Caption above the table, e.g. its provenance. */
  caption?: string;
  /** Most rows shown (default 50). */
  limit?: number;
}

export function tableHtml(t: Table, opts: TableDisplayOptions = {}): string {
  const caption = opts.caption ? `<div style="font-size:11px;color:#555;margin:4px 0">${escapeHtml(opts.caption)}</div>` : '';
  const more = t.numRows() > (opts.limit ?? 50) ? `<div style="font-size:11px;color:#555">${t.numRows()} rows, first ${opts.limit ?? 50} shown</div>` : '';
  return caption + t.toHTML({ limit: opts.limit ?? 50 }) + more;
}

export function isFigure(x: unknown): x is Figure {
  const f = x as Figure;
  return !!f && Array.isArray(f.data) && typeof f.layout === 'object' && typeof f.note === 'string';
}

export function isTable(x: unknown): x is Table {
  const t = x as Table;
  return !!t && typeof t.toHTML === 'function' && typeof t.numRows === 'function' && typeof t.columnNames === 'function';
}

function textOf(x: unknown, opts: TableDisplayOptions): string {
  if (isFigure(x)) {
    const title = (x.layout.title as { text?: string } | undefined)?.text ?? 'figure';
    return `[figure] ${title}: ${x.data.length} traces\n  ${x.note}`;
  }
  if (isTable(x)) {
    const limit = opts.limit ?? 50;
    const rows = (x.objects({ limit }) as Row[]).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === undefined ? null : typeof v === 'object' && v !== null ? JSON.stringify(v) : v])) as Row);
    const more = x.numRows() > limit ? `\n(${x.numRows()} rows, first ${limit} shown)` : '';
    return formatTable(rows, x.columnNames(), opts.caption) + more;
  }
  return typeof x === 'string' ? x : JSON.stringify(x, null, 2);
}

/**
 * Shows a table, a figure, or text: rich HTML in tslab, text elsewhere. Returns nothing so a
 * notebook cell ending with display(...) prints no extra value.
 */
export function display(x: unknown, opts: TableDisplayOptions = {}): void {
  const tl = tslab();
  if (!tl) {
    // eslint-disable-next-line no-console
    console.log(textOf(x, opts));
    return;
  }
  if (isFigure(x)) tl.display.html(figureHtml(x));
  else if (isTable(x)) tl.display.html(tableHtml(x, opts));
  else if (typeof x === 'string') tl.display.markdown(x);
  else tl.display.text(JSON.stringify(x, null, 2));
}

/** Markdown in a notebook, plain text elsewhere. */
export function note(markdown: string): void {
  const tl = tslab();
  if (tl) tl.display.markdown(markdown);
  // eslint-disable-next-line no-console
  else console.log(markdown);
}
