/**
 * Where a number comes from. Every figure and table the lab builds carries one of these per
 * series, so "measured here" and "cited" are never mixed without saying so.
 */

/** Measured by this repository's code on a machine of this workplace. */
export interface MeasuredProvenance {
  kind: 'measured';
  /** GPU or CPU model name, as the result file records it. */
  device: string;
  /** ISO date (or date-time) of the measurement. */
  date: string;
  backend?: string;
  commit?: string;
  /** Result file the numbers were read from, relative to the package root. */
  file?: string;
  /** Set when the numbers were read back from a committed file rather than measured in this session. */
  committed?: boolean;
}

/** Taken from a document: the original's analysis, a paper, the field notes. */
export interface CitedProvenance {
  kind: 'cited';
  source: string;
  /** Hardware the cited figure was obtained on, where the source says. */
  hardware?: string;
}

/** Computed here from formulas (no hardware involved), e.g. DP noise scales. */
export interface ComputedProvenance {
  kind: 'computed';
  /** What computed it, e.g. "src/pipeline/dp". */
  by: string;
  date: string;
}

export type Provenance = MeasuredProvenance | CitedProvenance | ComputedProvenance;

export const ORIGINAL_SOURCE = 'seed-performance-analysis.md';
export const ORIGINAL_HARDWARE = 'RTX A2000 8GB';

/** The original analysis (RTX A2000), as cited. */
export function originalProvenance(): CitedProvenance {
  return { kind: 'cited', source: ORIGINAL_SOURCE, hardware: ORIGINAL_HARDWARE };
}

export function cited(source: string, hardware?: string): CitedProvenance {
  return hardware ? { kind: 'cited', source, hardware } : { kind: 'cited', source };
}

export function computed(by: string, date = new Date().toISOString()): ComputedProvenance {
  return { kind: 'computed', by, date };
}

export function measured(device: string, date: string, extra: Partial<MeasuredProvenance> = {}): MeasuredProvenance {
  return { ...extra, kind: 'measured', device, date };
}

/** "measured here (NVIDIA H100 80GB HBM3, 2026-11-26)" or "cited (seed-performance-analysis.md, RTX A2000 8GB)". */
export function provenanceText(p: Provenance): string {
  if (p.kind === 'measured') {
    const day = p.date.slice(0, 10);
    const how = p.committed ? '; datasets/results' : '';
    return `measured here (${p.device}, ${day}${how})`;
  }
  if (p.kind === 'computed') return `computed here (${p.by}, ${p.date.slice(0, 10)}; no hardware involved)`;
  return p.hardware ? `cited (${p.source}, ${p.hardware})` : `cited (${p.source})`;
}

function key(p: Provenance): string {
  return provenanceText(p);
}

/** Distinct provenances in first-seen order. */
export function uniqueProvenance(list: Provenance[]): Provenance[] {
  const seen = new Set<string>();
  const out: Provenance[] = [];
  for (const p of list) {
    const k = key(p);
    if (!seen.has(k)) {
      seen.add(k);
      out.push(p);
    }
  }
  return out;
}

/**
 * One line naming every source of a figure. Series that share a provenance are grouped:
 * "cited (seed-performance-analysis.md, RTX A2000 8GB): WebSocket HE, Split | measured here
 * (NVIDIA H100 80GB HBM3, 2026-11-26): tensafe cuda". A single source is printed alone.
 */
export function provenanceNote(entries: Array<{ label?: string; provenance: Provenance }>): string {
  const groups = new Map<string, string[]>();
  for (const e of entries) {
    const text = provenanceText(e.provenance);
    if (!groups.has(text)) groups.set(text, []);
    const labels = groups.get(text)!;
    if (e.label && !labels.includes(e.label)) labels.push(e.label);
  }
  if (groups.size === 1) return [...groups.keys()][0];
  const list = (labels: string[]) => (labels.length > 4 ? `${labels.slice(0, 3).join(', ')} and ${labels.length - 3} more` : labels.join(', '));
  return [...groups.entries()].map(([text, labels]) => (labels.length ? `${text}: ${list(labels)}` : text)).join(' | ');
}
