/**
 * Arquero tables over the datasets and results, for display in notebooks and for export
 * to danfojs-node (`toDanfo`).
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import type { BreakdownNode, OriginalA2000, PeersFile, ResultFile, SotaRow } from './datasets';

/** Any table-like input: an arquero table or an array of row objects. */
export type TableLike = ColumnTable | Array<Record<string, unknown>>;

export function asTable(t: TableLike): ColumnTable {
  if (Array.isArray(t)) return aq.from(t);
  if (t && typeof (t as ColumnTable).objects === 'function') return t as ColumnTable;
  throw new TypeError('expected an arquero table or an array of row objects');
}

export function rowsOf(t: TableLike): Array<Record<string, unknown>> {
  return Array.isArray(t) ? t : (t.objects() as Array<Record<string, unknown>>);
}

/**
 * A danfojs-node DataFrame of a table. danfojs-node (with TensorFlow.js) takes about a second
 * to load, so it is required only here, on request.
 */
export function toDanfo(t: TableLike): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dfd = require('danfojs-node') as { DataFrame: new (rows: unknown) => unknown };
  return new dfd.DataFrame(rowsOf(t));
}

/** A tree as indented rows: depth, name, stage, ms, share of the root, detail. */
export function treeRows(root: BreakdownNode, resolve?: (ref: string) => BreakdownNode | undefined): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  const walk = (n: BreakdownNode, depth: number) => {
    out.push({
      depth,
      name: `${'  '.repeat(depth)}${n.name}`,
      stage: n.stage ?? '',
      ms: n.ms,
      share: root.ms > 0 ? n.ms / root.ms : null,
      detail: n.detail ?? '',
    });
    const kids = n.children ?? (n.ref && resolve ? resolve(n.ref)?.children : undefined) ?? [];
    kids.forEach((k) => walk(k, depth + 1));
    if (kids.length) {
      const rest = n.ms - kids.reduce((a, k) => a + k.ms, 0);
      if (rest > 1e-9) out.push({ depth: depth + 1, name: `${'  '.repeat(depth + 1)}(not itemised)`, stage: '', ms: rest, share: rest / root.ms, detail: 'printed total minus printed parts' });
    }
  };
  walk(root, 0);
  return out;
}

export function originalTables(o: OriginalA2000) {
  const t = o.tables;
  return {
    headline: () => aq.from(t.headline.rows),
    optimisationWebsocket: () => aq.from(t.optimisation_websocket.rows),
    optimisationSplit: () => aq.from(t.optimisation_split.rows),
    ckksOpCosts: () => aq.from(t.ckks_op_costs.rows),
    polyNComparison: () => aq.from(t.poly_n_comparison.rows),
    lmHead: () => aq.from(t.lm_head_backends.rows),
    lmHeadAnalysis: () => aq.from(t.lm_head_analysis.rows),
    sotaAsPrinted: () => aq.from(t.sota_table.rows),
    sotaFactors: () => aq.from(t.sota_factors.rows),
    scaling: () => aq.from(t.scaling_projections.rows),
  };
}

export function sotaTable(rows: SotaRow[]): ColumnTable {
  return aq.from(rows);
}

export function peersTable(p: PeersFile): ColumnTable {
  return aq.from(
    p.peers.map((x) => ({
      peer: x.peer,
      what: x.what,
      poly_n: x.poly_n ?? null,
      ms_per_token: x.ms_per_token ?? null,
      tok_s: x.tok_s ?? null,
      where: x.measured_here ? `${x.measured_here.hardware} (this workplace)` : `${x.hardware ?? ''} (published)`,
      how: x.how,
      source: x.source,
    })),
  );
}

/** Every summary figure of the given result files: bench, backend, device, date, key, value. */
export function summaryTable(results: ResultFile[]): ColumnTable {
  return aq.from(
    results.flatMap((r) =>
      Object.entries(r.summary).map(([key, value]) => ({
        bench: r.bench, backend: r.backend, device: r.device, date: r.date.slice(0, 10), key, value,
      })),
    ),
  );
}

/** A result file's rows as a table. */
export function resultRowsTable(r: ResultFile): ColumnTable {
  return aq.from(r.rows);
}
