// The Lab session, inline display (plotly inlined once per notebook), tables, profiling.
import { describe, expect, it, vi } from 'vitest';
import { Lab } from '../../src/lab/lab';
import { display, figureHtml, resetDisplayState, tableHtml } from '../../src/lab/display';
import { normaliseKernelRecords, profile } from '../../src/lab/profile';
import { plotlySource } from '../../src/lab/html';
import { gunzipSync } from 'node:zlib';
import { lmHeadBackends } from '../../src/lab/plots';
import { originalProvenance } from '../../src/lab/provenance';
import * as aq from 'arquero';

const fig = lmHeadBackends([{ label: 'o', provenance: originalProvenance(), rows: [{ backend: 'cpu', ms: 650 }] }]);

describe('Lab.open', () => {
  it("opens with 'auto' and serves the cited data, whether or not the engine is built", async () => {
    const lab = await Lab.open({ backend: 'auto' });
    expect(lab.original.hardware).toBe('RTX A2000 8GB');
    expect(lab.tables.headline().numRows()).toBe(5);
    expect(lab.tables.sota().numRows()).toBe(lab.sotaRows.length);
    const ws = lab.tables.breakdown('breakdown_split_cpu_head').objects() as Array<{ name: string; ms: number }>;
    // The split tree shows the server forward expanded into the WebSocket stages.
    expect(ws.some((r) => r.name.trim() === 'Transformer forward')).toBe(true);
    if (lab.backend) expect(['cpu', 'cuda']).toContain(lab.backend);
    else expect(lab.engineError).toBeTruthy();
    expect(lab.header()).toContain('original: RTX A2000 8GB (cited');
  });

  it('refuses an unknown backend, naming it', async () => {
    await expect(Lab.open({ backend: 'tpu' as never })).rejects.toThrow(/backend must be/);
  });

  it('standard figures are reachable from the session', async () => {
    const lab = await Lab.open();
    const f = lab.plot.sotaStandard();
    expect(f.data.length).toBeGreaterThan(0);
    expect(lab.plot.standard().map((s) => s.name)).toContain('ckks-op-costs');
  });
});

describe('display', () => {
  it('inlines plotly.js (gzipped, base64) with the first figure of a session only', () => {
    resetDisplayState();
    const first = figureHtml(fig);
    const second = figureHtml(fig);
    // the first output carries the whole bundle: it inflates to exactly plotly.js's source
    const b64 = /var b64 = "([A-Za-z0-9+/=]+)"/.exec(first)?.[1];
    expect(b64).toBeTruthy();
    expect(gunzipSync(Buffer.from(b64!, 'base64')).toString('utf8')).toBe(plotlySource());
    expect(first.includes('DecompressionStream')).toBe(true);
    expect(first.length).toBeLessThan(0.5 * plotlySource().length);
    expect(second.includes('var b64')).toBe(false);
    expect(second.length).toBeLessThan(20_000);
    expect(second.includes('window.Plotly.newPlot')).toBe(true);
    expect(second.includes('cited (seed-performance-analysis.md, RTX A2000 8GB)')).toBe(true);
    // The figure JSON cannot close the script element early.
    expect(/<\/script>[\s\S]*<\/script>[\s\S]*<\/script>/.test(second)).toBe(false);
  });

  it('renders tables as HTML with a caption, and falls back to text outside tslab', () => {
    const t = aq.from([{ a: 1, b: '<x>' }]);
    const html = tableHtml(t, { caption: 'cited (here)' });
    expect(html).toContain('<table');
    expect(html).toContain('cited (here)');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      display(t, { caption: 'cap' });
      display(fig);
      expect(log.mock.calls[0][0]).toContain('cap');
      expect(log.mock.calls[0][0]).toMatch(/a\s+b\n/);
      expect(log.mock.calls[1][0]).toContain('[figure]');
      expect(log.mock.calls[1][0]).toContain('cited (seed-performance-analysis.md');
    } finally {
      log.mockRestore();
    }
  });
});

describe('profile', () => {
  it('reads a native profiler hook into a per-kernel table, largest first', async () => {
    const calls: string[] = [];
    const addon = {
      profiler: {
        start: () => calls.push('start'),
        stop: () => {
          calls.push('stop');
          return [{ name: 'ntt_forward', calls: 4, totalUs: 40 }, { name: 'encrypt', count: 1, total_ms: 0.2 }];
        },
      },
    };
    const res = await profile(() => { calls.push('fn'); return 7; }, addon);
    expect(calls).toEqual(['start', 'fn', 'stop']);
    expect(res.value).toBe(7);
    expect(res.native).toBe(true);
    expect(res.rows.map((r) => r.name)).toEqual(['encrypt', 'ntt_forward']);
    expect(res.rows[1].total_ms).toBeCloseTo(0.04, 12);
    expect(res.rows[1].mean_us).toBeCloseTo(10, 12);
    expect(res.rows[0].share + res.rows[1].share).toBeCloseTo(1, 12);
    expect(res.table().columnNames()).toEqual(['name', 'calls', 'total_ms', 'mean_us', 'share']);
  });

  it('stops the profiler even when fn throws', async () => {
    let stopped = false;
    const addon = { profiler: { start() {}, stop() { stopped = true; return []; } } };
    await expect(profile(() => { throw new Error('boom'); }, addon)).rejects.toThrow('boom');
    expect(stopped).toBe(true);
  });

  it('says clearly when there is no native profiler', async () => {
    const res = await profile(async () => 1, {});
    expect(res.native).toBe(false);
    expect(res.note).toMatch(/no native profiler/);
    expect(res.rows).toHaveLength(1);
    const none = await profile(() => 2, null);
    expect(none.note).toMatch(/not loaded/);
  });

  it('reports the reason when the native profiler says it is unavailable, without starting it', async () => {
    let started = false;
    const addon = { profiler: { available: () => ({ available: false, reason: 'no GPU' }), start() { started = true; }, stop() { return { kernels: [] }; } } };
    const res = await profile(() => 3, addon);
    expect(started).toBe(false);
    expect(res.note).toMatch(/unavailable here \(no GPU\)/);
  });

  it("reads the engine's { kernels, wallUs } shape", () => {
    const rows = normaliseKernelRecords({ kernels: [{ name: 'k', calls: 2, totalUs: 6, meanUs: 3 }], wallUs: 10, droppedRecords: 0 });
    expect(rows[0]).toMatchObject({ name: 'k', calls: 2, mean_us: 3 });
  });

  it('refuses malformed kernel records', () => {
    expect(() => normaliseKernelRecords({})).toThrow(TypeError);
    expect(() => normaliseKernelRecords([{ name: 'k', calls: 1 }])).toThrow(/no total time/);
  });
});

describe('toDanfo', () => {
  it('gives a danfojs DataFrame with the same rows', async () => {
    const lab = await Lab.open();
    const df = lab.toDanfo(lab.tables.headline()) as { shape: number[]; columns: string[] };
    expect(df.shape).toEqual([5, 5]);
    expect(df.columns).toContain('tok_s');
  }, 60_000);
});
