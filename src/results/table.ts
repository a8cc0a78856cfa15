/** Rows as a fixed-width text table (benchmarks print it; notebooks show it outside Jupyter). */
import type { Cell, Row } from './schema';

export function formatCell(v: Cell | undefined): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : a >= 0.01 ? v.toFixed(3) : v.toPrecision(3);
  }
  return String(v);
}

/** Renders rows as a fixed-width text table (columns default to the union of keys). */
export function formatTable(rows: Row[], columns?: string[], title?: string): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => formatCell(r[c] ?? null)));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padStart(widths[i])).join('  ');
  const out = [] as string[];
  if (title) out.push(title);
  out.push(line(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line));
  return out.join('\n');
}
