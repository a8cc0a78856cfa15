// Plot builders on fixed tables (and on fresh random trees): traces, axes and provenance notes.
import { describe, expect, it } from 'vitest';
import type { BreakdownNode, SotaRow } from '../../src/lab/datasets';
import { loadOriginal } from '../../src/lab/datasets';
import { HIGHLIGHT, makeFigure } from '../../src/lab/figure';
import {
  NOT_COMPARABLE_MARK, SERVER_KEY_MARK, breakdownTree, ckksOpCosts, dpPrivacyUtility, flattenTree, latencyBreakdown, lmHeadBackends,
  optimisationSteps, sotaComparison, stagesFromRecords, stagesFromTree, sweepView,
} from '../../src/lab/plots';
import { cited, computed, measured, originalProvenance, provenanceNote, provenanceText } from '../../src/lab/provenance';
import { standardFigures, loadLabData } from '../../src/lab/figures';

const A2000 = originalProvenance();
const H100 = measured('NVIDIA H100 80GB HBM3', '2026-11-26T12:00:00Z', { committed: true });

function caption(fig: { layout: Record<string, unknown> }): string {
  const title = fig.layout.title as { subtitle: { text: string } };
  return title.subtitle.text.replace(/<br>/g, ' ');
}

describe('provenance', () => {
  it('prints measured and cited sources distinctly and groups series that share one', () => {
    expect(provenanceText(H100)).toBe('measured here (NVIDIA H100 80GB HBM3, 2026-11-26; datasets/results)');
    expect(provenanceText(A2000)).toBe('cited (seed-performance-analysis.md, RTX A2000 8GB)');
    expect(provenanceText(computed('src/pipeline/dp', '2026-11-26T01:00:00Z'))).toBe('computed here (src/pipeline/dp, 2026-11-26; no hardware involved)');
    expect(provenanceNote([{ label: 'a', provenance: A2000 }, { label: 'b', provenance: A2000 }])).toBe(provenanceText(A2000));
    const mixed = provenanceNote([{ label: 'orig', provenance: A2000 }, { label: 'ours', provenance: H100 }]);
    expect(mixed).toContain('cited (seed-performance-analysis.md, RTX A2000 8GB): orig');
    expect(mixed).toContain('measured here (NVIDIA H100 80GB HBM3, 2026-11-26; datasets/results): ours');
  });

  it('a figure without a source is refused', () => {
    expect(() => makeFigure({ title: 't', data: [], sources: [] })).toThrow(RangeError);
  });
});

describe('latencyBreakdown', () => {
  const series = [
    { label: 'A', provenance: A2000, stages: { forward: 25, encrypt: 10, decrypt: 28 }, total: 70 },
    { label: 'B', provenance: H100, stages: { forward: 1.5, encrypt: 0.2, lm_head: 0.4 } },
  ];
  const fig = latencyBreakdown(series);

  it('stacks one trace per stage, in pipeline order, with an unitemised segment where a total exceeds the parts', () => {
    expect(fig.layout.barmode).toBe('stack');
    const stages = fig.data.map((t) => (t.meta as { stage: string }).stage);
    expect(stages).toEqual(['forward', 'encrypt', 'decrypt', 'lm_head', 'unaccounted']);
    const byStage = Object.fromEntries(fig.data.map((t) => [(t.meta as { stage: string }).stage, t.x as number[]]));
    expect(byStage.forward).toEqual([25, 1.5]);
    expect(byStage.decrypt).toEqual([28, 0]);
    expect(byStage.unaccounted[0]).toBeCloseTo(7, 12);
    expect(byStage.unaccounted[1]).toBe(0);
    for (const t of fig.data) expect(t.y).toEqual(['A', 'B']);
  });

  it('labels the totals and names both sources in the caption', () => {
    const totals = (fig.layout.annotations as Array<{ text: string }>).map((a) => a.text);
    expect(totals).toEqual(['70.0 ms', '2.10 ms']);
    expect(caption(fig)).toContain('cited (seed-performance-analysis.md, RTX A2000 8GB): A');
    expect(caption(fig)).toContain('measured here (NVIDIA H100 80GB HBM3');
    expect(fig.note).toBe(provenanceNote(series.map((s) => ({ label: s.label, provenance: s.provenance }))));
  });

  it('facets: each group in its own panel with its own linear axis, one legend entry per stage', () => {
    const f = latencyBreakdown(series, { facet: (s) => (s.provenance.kind === 'cited' ? 'original' : 'tensafe') });
    const a = f.data.filter((t) => (t.meta as { facet: string }).facet === 'original');
    const b = f.data.filter((t) => (t.meta as { facet: string }).facet === 'tensafe');
    expect(a.every((t) => t.xaxis === undefined && (t.y as string[])[0] === 'A')).toBe(true);
    expect(b.every((t) => t.xaxis === 'x2' && t.yaxis === 'y2' && (t.y as string[])[0] === 'B')).toBe(true);
    expect((f.layout.xaxis2 as { type?: string; anchor: string }).anchor).toBe('y2');
    expect((f.layout.xaxis2 as { type?: string }).type).toBeUndefined(); // linear
    const legend = f.data.filter((t) => t.showlegend).map((t) => (t.meta as { stage: string }).stage);
    expect(new Set(legend).size).toBe(legend.length);
    expect(legend).toContain('forward');
    const [d1, d2] = [(f.layout.yaxis as { domain: number[] }).domain, (f.layout.yaxis2 as { domain: number[] }).domain];
    expect(d1[0]).toBeGreaterThan(d2[1]);
  });

  it('the standard per-token figure puts the original and tensafe in separate panels', () => {
    const fig = standardFigures(loadLabData()).find((x) => x.name === 'latency-breakdown')!.figure!;
    const facets = new Set(fig.data.map((t) => (t.meta as { facet: string }).facet));
    expect(facets.has('the original (RTX A2000, cited)')).toBe(true);
    expect([...facets].some((x) => x === 'GPU' || x === 'CPU')).toBe(true);
  });

  it('stage sums of random records match a direct median', () => {
    const records = Array.from({ length: 9 }, () => ({ forward: Math.random() * 10, encrypt: Math.random() }));
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[4];
    const s = stagesFromRecords(records);
    expect(s.forward).toBe(med(records.map((r) => r.forward)));
    expect(s.encrypt).toBe(med(records.map((r) => r.encrypt)));
  });

  it("the original's WebSocket tree gives its printed stages", () => {
    const o = loadOriginal();
    const { stages, total } = stagesFromTree(o.tables.breakdown_websocket.tree);
    expect(total).toBe(135);
    expect(stages.forward).toBe(25);
    expect(stages.transfer).toBe(28);
    expect(stages.network).toBe(1);
  });
});

/** A random tree: printed totals sometimes above, sometimes below the children's sum. */
function randomTree(depth: number, name = 'root'): BreakdownNode {
  if (depth === 0 || Math.random() < 0.3) return { name, ms: Math.random() * 50 };
  const children = Array.from({ length: 1 + Math.floor(Math.random() * 4) }, (_, i) => randomTree(depth - 1, `${name}.${i}`));
  const sum = children.reduce((a, c) => a + c.ms, 0);
  return { name, ms: sum * (0.8 + Math.random() * 0.5), children };
}

describe('breakdownTree', () => {
  it('on random trees, every parent value equals the sum of its children (branchvalues total)', () => {
    for (let trial = 0; trial < 20; trial++) {
      const nodes = flattenTree(randomTree(4));
      const kids = new Map<string, number>();
      nodes.parents.forEach((p, i) => {
        if (p) kids.set(p, (kids.get(p) ?? 0) + nodes.values[i]);
      });
      for (const [id, s] of kids) {
        const v = nodes.values[nodes.ids.indexOf(id)];
        expect(Math.abs(v - s)).toBeLessThan(1e-9 * Math.max(1, v));
      }
      expect(new Set(nodes.ids).size).toBe(nodes.ids.length);
    }
  });

  it("expands split mode's server forward into the WebSocket tree and keeps unitemised time", () => {
    const o = loadOriginal();
    const resolve = (ref: string) => (ref === 'breakdown_websocket' ? o.tables.breakdown_websocket.tree : undefined);
    const fig = breakdownTree(o.tables.breakdown_split_gpu_head.tree, A2000, { resolve });
    const t = fig.data[0] as unknown as { type: string; ids: string[]; values: number[]; labels: string[]; branchvalues: string };
    expect(t.type).toBe('sunburst');
    expect(t.branchvalues).toBe('total');
    expect(t.ids).toContain('Split token, GPU LM head/Server forward/Transformer forward');
    const notItemised = t.ids.filter((id) => id.endsWith('(not itemised)'));
    expect(notItemised).toHaveLength(2); // 55 ms at the top, 13.9 ms inside the server forward
    expect(t.values[t.ids.indexOf('Split token, GPU LM head/(not itemised)')]).toBeCloseTo(55, 9);
    expect(fig.note).toBe('cited (seed-performance-analysis.md, RTX A2000 8GB)');
  });
});

describe('ckksOpCosts', () => {
  it('draws log-log lines per (series, op) with poly_n ticks', () => {
    const fig = ckksOpCosts([
      { label: 'orig', provenance: A2000, rows: [{ op: 'encrypt', poly_n: 16384, us: 10200 }, { op: 'encrypt', poly_n: 32768, us: 23100 }, { op: 'decrypt', poly_n: 16384, us: 7100 }] },
      { label: 'ours', provenance: H100, rows: [{ op: 'encrypt', poly_n: 8192, us: 20 }, { op: 'encrypt', poly_n: 16384, us: 40 }] },
    ]);
    expect(fig.data).toHaveLength(3);
    expect((fig.layout.xaxis as { type: string }).type).toBe('log');
    expect((fig.layout.yaxis as { type: string }).type).toBe('log');
    expect((fig.layout.xaxis as { tickvals: number[] }).tickvals).toEqual([8192, 16384, 32768]);
    const enc = fig.data.find((t) => t.legendgroup === 'orig' && t.name === 'encrypt')!;
    expect(enc.x).toEqual([16384, 32768]);
    expect(enc.y).toEqual([10200, 23100]);
    const ours = fig.data.find((t) => t.legendgroup === 'ours')!;
    expect((ours.line as { dash: string }).dash).not.toBe((enc.line as { dash: string }).dash);
    expect(caption(fig)).toContain('ours');
  });
});

describe('optimisationSteps', () => {
  it('groups bars by source, with ranges as error bars and the speed-up over step 0', () => {
    const fig = optimisationSteps([
      { label: 'orig', provenance: A2000, steps: [{ step: 0, label: 'base', tok_s: 3.6, tok_s_min: 3.0, tok_s_max: 4.2 }, { step: 1, label: 'batch', tok_s: 7.2, tok_s_min: 6.6, tok_s_max: 7.8 }] },
    ]);
    const t = fig.data[0];
    expect(t.y).toEqual([3.6, 7.2]);
    const e = t.error_y as { array: number[]; arrayminus: number[] };
    expect(e.array[0]).toBeCloseTo(0.6, 12);
    expect(e.arrayminus[1]).toBeCloseTo(0.6, 12);
    expect((t.text as string[])[1]).toContain('x2.00');
    expect(fig.layout.barmode).toBe('group');
  });
});

describe('lmHeadBackends', () => {
  it('uses a log axis and the highlight colour only for measured series', () => {
    const fig = lmHeadBackends([
      { label: 'orig', provenance: A2000, rows: [{ backend: 'numpy CPU', ms: 650 }, { backend: 'torch GPU', ms: 5 }] },
      { label: 'ours', provenance: H100, rows: [{ backend: 'GPU', ms: 0.21 }] },
    ]);
    expect((fig.layout.xaxis as { type: string }).type).toBe('log');
    expect((fig.data[0].marker as { color: string }).color).not.toBe(HIGHLIGHT);
    expect((fig.data[1].marker as { color: string }).color).toBe(HIGHLIGHT);
    expect(fig.data[0].x).toEqual([650, 5]);
  });
});

describe('sotaComparison', () => {
  const rows: SotaRow[] = [
    { system: 'Fast', model: 'M', hardware: 'H', what_encrypted: 'w', reported_metric: '2 tok/s', tok_s: 2, comparable: true, year: 2025, source: 'paper A', note: '', key_holder: 'server', protects: 'nothing from the server' },
    { system: 'Slow', model: 'M', hardware: 'H', what_encrypted: 'w', reported_metric: '1 min/token', tok_s: 1 / 60, comparable: true, year: 2024, source: 'paper B', note: '', key_holder: 'client', protects: "the client's input from the server" },
    { system: 'Bert', model: 'BERT', hardware: 'H', what_encrypted: 'w', reported_metric: 'per inference', tok_s: null, comparable: false, year: 2024, source: 'paper C', note: '', key_holder: 'client', protects: 'input' },
  ];
  const fig = sotaComparison(rows, [
    { system: 'tensafe', model: 'Q', hardware: 'H100', what_encrypted: 'LoRA', tok_s: 100, key_holder: 'server', protects: 'nothing from the server', provenance: H100 },
    { system: 'tensafe private', model: 'Q', hardware: 'H100', what_encrypted: 'LoRA', tok_s: 50, key_holder: 'client', protects: "the client's input from the server", provenance: H100 },
  ]);

  it('draws comparable rows as log bars with their source, highlights rows measured here, lists the rest with a mark', () => {
    expect((fig.layout.xaxis as { type: string }).type).toBe('log');
    const measuredBar = fig.data.find((t) => t.name === 'measured here')!;
    expect((measuredBar.marker as { color: string }).color).toBe(HIGHLIGHT);
    expect(measuredBar.x).toEqual([100, 50]);
    const citedBar = fig.data.find((t) => t.type === 'bar' && t.name !== 'measured here')!;
    expect(citedBar.x).toEqual([2, 1 / 60]);
    expect((citedBar.text as string[])[0]).toContain('paper A');
    expect((citedBar.text as string[])[1]).toContain('paper B');
    const listed = fig.data.find((t) => t.type === 'scatter')!;
    expect((listed.y as string[])[0]).toContain(`Bert ${NOT_COMPARABLE_MARK}`);
    expect((listed.text as string[])[0]).toContain('paper C');
    // Order: fastest first, non-comparable last.
    const order = (fig.layout.yaxis as { categoryarray: string[] }).categoryarray;
    expect(order[0]).toContain('tensafe');
    expect(order[order.length - 1]).toContain('Bert');
    expect(caption(fig)).toContain('measured here (NVIDIA H100 80GB HBM3');
  });

  it('marks server-key rows in the bar label, the bar text, the hatch and the hover; client-key rows are not marked', () => {
    const bars = fig.data.filter((t) => t.type === 'bar');
    const all = bars.flatMap((t) => (t.y as string[]).map((y, i) => ({
      y, text: (t.text as string[])[i], hover: (t.customdata as string[])[i],
      hatch: ((t.marker as { pattern: { shape: string[] } }).pattern.shape)[i],
    })));
    const byName = (n: string) => all.find((x) => x.y.replace(/<[^>]+>/g, '').startsWith(n))!;
    for (const n of ['tensafe', 'Fast']) {
      const b = n === 'tensafe' ? all.find((x) => x.y.startsWith('<b>tensafe</b>'))! : byName(n);
      expect(b.y, n).toContain(SERVER_KEY_MARK);
      expect(b.text, n).toContain('server key');
      expect(b.hatch, n).toBe('/');
      expect(b.hover, n).toContain('key holder: server');
      expect(b.hover, n).toContain('nothing from the server');
    }
    for (const n of ['tensafe private', 'Slow']) {
      const b = byName(n);
      expect(b.y, n).not.toContain(SERVER_KEY_MARK);
      expect(b.hatch, n).toBe('');
      expect(b.hover, n).toContain('key holder: client');
    }
  });
});

describe('sweepView', () => {
  const rows = [
    { polyN: 8192, batch: false, ms: 4 }, { polyN: 16384, batch: false, ms: 3 },
    { polyN: 8192, batch: true, ms: 2 }, { polyN: 16384, batch: true, ms: 1 },
  ];
  it('draws one line per combination of the other options', () => {
    const fig = sweepView(rows, { x: 'polyN', y: 'ms', provenance: H100 });
    expect(fig.data.map((t) => t.name)).toEqual(['batch=off', 'batch=on']);
    expect(fig.data[1].y).toEqual([2, 1]);
  });
  it('groups lines by the columns asked for, numeric ones included', () => {
    const fig = sweepView(rows, { x: 'batch', y: 'ms', lines: ['polyN'], provenance: H100 });
    expect(fig.data.map((t) => t.name)).toEqual(['polyN=8192', 'polyN=16384']);
    expect(fig.data[0].y).toEqual([4, 2]);
  });
  it('draws a heatmap over two options', () => {
    const fig = sweepView(rows, { x: 'polyN', y: 'ms', by: 'batch', provenance: H100 });
    expect(fig.data[0].type).toBe('heatmap');
    expect(fig.data[0].z).toEqual([[4, 3], [2, 1]]);
  });
  it('names a missing column', () => {
    expect(() => sweepView(rows, { x: 'nope', y: 'ms', provenance: H100 })).toThrow(/nope/);
  });
});

describe('dpPrivacyUtility', () => {
  it('plots agreement against log epsilon and validates its inputs', () => {
    const fig = dpPrivacyUtility([{ label: 'analytic', provenance: H100, rows: [{ epsilon: 8, agreement: 0.9 }, { epsilon: 0.5, agreement: 0.3 }] }]);
    expect(fig.data[0].x).toEqual([0.5, 8]);
    expect(fig.data[0].y).toEqual([0.3, 0.9]);
    expect((fig.layout.xaxis as { type: string }).type).toBe('log');
    expect(() => dpPrivacyUtility([{ label: 'x', provenance: H100, rows: [{ epsilon: 1, agreement: 1.5 }] }])).toThrow(RangeError);
    expect(() => dpPrivacyUtility([{ label: 'x', provenance: H100, rows: [{ epsilon: 0, agreement: 0.5 }] }])).toThrow(RangeError);
  });

  it('puts the accounted request epsilon on x, labels each point with its per-token epsilon and flags the classic formula outside its range', () => {
    const fig = dpPrivacyUtility([{ label: 'original', provenance: H100, rows: [
      { epsilon: 8, agreement: 0.9, request_epsilon: 40.5, in_range: false },
      { epsilon: 0.5, agreement: 0.3, request_epsilon: 3.2, in_range: true },
    ] }]);
    expect(fig.data[0].x).toEqual([3.2, 40.5]);
    expect(fig.data[0].text).toEqual(['\u03b5/token 0.5', '\u03b5/token 8*']); // 3.2 and 40.5: a decade apart
    const dense = dpPrivacyUtility([{ label: 'd', provenance: H100, rows: [1, 1.2, 10].map((e) => ({ epsilon: e, agreement: 0.5, request_epsilon: e })) }]);
    expect(dense.data[0].text).toEqual(['\u03b5/token 1', '', '\u03b5/token 10']);
    expect((fig.data[0].marker as { symbol: string[] }).symbol).toEqual(['circle', 'circle-open']);
    expect(((fig.layout.xaxis as { title: { text: string } }).title.text)).toMatch(/request, accounted/);
    expect(caption(fig)).toContain('outside its proven range');
    // the adapter-output cosine, where measured, is a dashed series on a right-hand axis
    const withCos = dpPrivacyUtility([{ label: 'a', provenance: H100, rows: [
      { epsilon: 1, agreement: 0.1, request_epsilon: 4, adapter_cosine: 0.05 }, { epsilon: 64, agreement: 0.2, request_epsilon: 500, adapter_cosine: 0.97 },
    ] }]);
    const cosTrace = withCos.data.find((t) => t.yaxis === 'y2')!;
    expect(cosTrace.y).toEqual([0.05, 0.97]);
    expect((withCos.layout.yaxis2 as { overlaying: string }).overlaying).toBe('y');
    expect(fig.data.some((t) => t.yaxis === 'y2')).toBe(false);
    // asking for the request axis without the accountant's figure is refused
    expect(() => dpPrivacyUtility([{ label: 'x', provenance: H100, rows: [{ epsilon: 1, agreement: 0.5 }] }], { x: 'request' })).toThrow(/request_epsilon/);
  });
});

describe('standard figures', () => {
  it('are built from the datasets, each with a provenance note; figures without data are skipped with a reason', () => {
    const figs = standardFigures(loadLabData());
    expect(figs.length).toBeGreaterThanOrEqual(9);
    for (const f of figs) {
      if (f.figure) {
        expect(f.figure.note.length, f.name).toBeGreaterThan(0);
        expect(f.figure.note, f.name).toMatch(/cited|measured here/);
      } else {
        expect(f.skipped, f.name).toBeTruthy();
      }
    }
    expect(cited('x').kind).toBe('cited');
  });
});
