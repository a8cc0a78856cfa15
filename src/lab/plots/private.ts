/**
 * The cost of privacy: figures of the private (client-key) mode (`npm run bench -- private`, or a
 * live `lab.generate(..., { keyOwner: 'client' })`). Every series carries its provenance; server-key
 * rows are labelled as such (they hide nothing from the server) and drawn dashed.
 */
import { type Figure, PALETTE, type Trace, makeFigure } from '../figure';
import type { Provenance } from '../provenance';

/** One configuration's measurements at several round-trip times. */
export interface PrivateRttSeries {
  label: string;
  provenance: Provenance;
  /** Server-key reference (a flat line: it has no network in the loop). */
  serverKey?: boolean;
  points: Array<{ rtt_ms: number; tok_s: number }>;
}

export function privateTokSAgainstRtt(series: PrivateRttSeries[], opts: { title?: string; caption?: string } = {}): Figure {
  if (series.length === 0) throw new RangeError('privateTokSAgainstRtt: no series');
  const rtts = [...new Set(series.flatMap((s) => s.points.map((p) => p.rtt_ms)))].sort((a, b) => a - b);
  const xOf = (rtt: number) => Math.max(rtt, 0.3); // loopback (0 ms) drawn at the left edge of the log axis
  const data: Trace[] = series.map((s, i) => {
    const pts = s.serverKey ? rtts.map((r) => ({ rtt_ms: r, tok_s: s.points[0]?.tok_s ?? NaN })) : [...s.points].sort((a, b) => a.rtt_ms - b.rtt_ms);
    for (const p of pts) if (!(p.tok_s > 0)) throw new RangeError(`privateTokSAgainstRtt: tok/s must be > 0 (series '${s.label}')`);
    return {
      type: 'scatter',
      mode: s.serverKey ? 'lines' : 'lines+markers',
      name: s.label,
      x: pts.map((p) => xOf(p.rtt_ms)),
      y: pts.map((p) => p.tok_s),
      text: pts.map((p) => `${p.rtt_ms === 0 ? 'loopback' : `${p.rtt_ms} ms RTT`}: ${p.tok_s.toPrecision(3)} tok/s`),
      hoverinfo: 'text+name',
      line: { color: PALETTE[i % PALETTE.length], dash: s.serverKey ? 'dash' : 'solid' },
    };
  });
  return makeFigure({
    title: opts.title ?? 'Private mode: tokens per second against network round-trip time',
    data,
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    caption: opts.caption,
    layout: {
      xaxis: { title: { text: 'round-trip time (ms, client-side model; leftmost point: loopback)' }, type: 'log', tickvals: rtts.map(xOf), ticktext: rtts.map((r) => (r === 0 ? 'loopback' : String(r))) },
      yaxis: { title: { text: 'tokens / s (decode rate, log)' }, type: 'log' },
      legend: { orientation: 'h', y: -0.25 },
    },
  });
}

export interface PrivateBarRow {
  label: string;
  provenance: Provenance;
  /** Stage -> ms per token. */
  stages: Record<string, number>;
  bytesUp?: number;
  bytesDown?: number;
  roundsPerToken?: number;
  serverKey?: boolean;
}

export const PRIVATE_STAGE_LABELS: Record<string, string> = {
  forward: 'base model (client)',
  client_encrypt: 'client encrypt',
  network: 'network',
  server_he: 'server HE',
  client_decrypt: 'client decrypt (+ re-encrypt, two-round)',
  lm_head: 'LM head (client)',
  sampling: 'sampling',
  he: 'HE (server key, in-process)',
};

/** Where each millisecond goes, one stacked bar per configuration (log axis: server-key rows are short). */
export function privateStageBars(rows: PrivateBarRow[], opts: { title?: string; caption?: string } = {}): Figure {
  if (rows.length === 0) throw new RangeError('privateStageBars: no rows');
  const stages = Object.keys(PRIVATE_STAGE_LABELS).filter((s) => rows.some((r) => (r.stages[s] ?? 0) > 0));
  const labels = rows.map((r) => (r.serverKey ? `${r.label} [server key: hides nothing from the server]` : r.label));
  const data: Trace[] = stages.map((s, i) => ({
    type: 'bar',
    orientation: 'h',
    name: PRIVATE_STAGE_LABELS[s],
    y: labels,
    x: rows.map((r) => r.stages[s] ?? 0),
    marker: { color: PALETTE[i % PALETTE.length] },
    hovertemplate: `${PRIVATE_STAGE_LABELS[s]}: %{x:.3f} ms<extra>%{y}</extra>`,
  }));
  return makeFigure({
    title: opts.title ?? 'Private mode: where a token\'s time goes (median ms per token, loopback)',
    data,
    sources: rows.map((r) => ({ label: r.label, provenance: r.provenance })),
    caption: opts.caption,
    height: 160 + 46 * rows.length,
    layout: { barmode: 'stack', xaxis: { title: { text: 'ms per token' } }, yaxis: { automargin: true }, legend: { orientation: 'h', y: -0.2 }, margin: { l: 300 } },
  });
}

/** Bytes per token up and down, and rounds, per configuration. */
export function privateBytes(rows: PrivateBarRow[], opts: { title?: string; caption?: string } = {}): Figure {
  const rs = rows.filter((r) => r.bytesUp !== undefined && r.bytesDown !== undefined);
  if (rs.length === 0) throw new RangeError('privateBytes: no rows with bytes');
  const y = rs.map((r) => `${r.label}${r.roundsPerToken !== undefined ? ` (${r.roundsPerToken} rounds / token)` : ''}`);
  const data: Trace[] = [
    { type: 'bar', orientation: 'h', name: 'client -> server', y, x: rs.map((r) => (r.bytesUp as number) / 1e6), marker: { color: PALETTE[0] } },
    { type: 'bar', orientation: 'h', name: 'server -> client', y, x: rs.map((r) => (r.bytesDown as number) / 1e6), marker: { color: PALETTE[1] } },
  ];
  return makeFigure({
    title: opts.title ?? 'Private mode: bytes per token on the wire',
    data,
    sources: rs.map((r) => ({ label: r.label, provenance: r.provenance })),
    caption: opts.caption,
    height: 160 + 46 * rs.length,
    layout: { barmode: 'stack', xaxis: { title: { text: 'MB per token (log)' }, type: 'log' }, yaxis: { automargin: true }, legend: { orientation: 'h', y: -0.2 }, margin: { l: 300 } },
  });
}

export interface PrecisionSeries {
  label: string;
  provenance: Provenance;
  points: Array<{ flood_bits: number; rel_error: number }>;
}

/** What noise flooding costs in precision: relative error against float64 per lambda. */
export function privatePrecision(series: PrecisionSeries[], opts: { title?: string; caption?: string } = {}): Figure {
  if (series.length === 0) throw new RangeError('privatePrecision: no series');
  const data: Trace[] = series.map((s, i) => ({
    type: 'scatter',
    mode: 'lines+markers',
    name: s.label,
    x: s.points.map((p) => p.flood_bits),
    y: s.points.map((p) => p.rel_error),
    line: { color: PALETTE[i % PALETTE.length] },
    hovertemplate: 'lambda %{x}: relative error %{y:.2e}<extra>%{fullData.name}</extra>',
  }));
  return makeFigure({
    title: opts.title ?? 'Noise flooding against precision: one site\'s delta against float64',
    data,
    sources: series.map((s) => ({ label: s.label, provenance: s.provenance })),
    caption: opts.caption,
    layout: {
      xaxis: { title: { text: 'flooding parameter lambda (bits; 0 = off, insecure against a curious client)' } },
      yaxis: { title: { text: 'relative L2 error of the delta (log)' }, type: 'log' },
      shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 1e-3, y1: 1e-3, line: { dash: 'dot', color: '#888' } }],
      annotations: [{ xref: 'paper', x: 1, y: -3, yref: 'y', text: '1e-3 (the tests\' bound)', showarrow: false, xanchor: 'right', yanchor: 'bottom', font: { size: 11, color: '#666' } }],
    },
  });
}
