// Sweeps: cartesian product, cache keyed by (options, commit, device), resume after an
// interruption without recomputing finished points, cancellation between and inside points.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cartesian, noProgress, pointKey, runSweep } from '../../src/lab/api';
import type { Point, PointContext } from '../../src/lab/api';
import { progressText } from '../../src/lab/progress';

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-sweep-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  while (dirs.length) fs.rmSync(dirs.pop()!, { recursive: true, force: true });
});

const space = { polyN: [8192, 16384, 32768], batch: [false, true], packing: ['slots'] };

/** A cheap fake point: a value derived from the options and a per-run random salt (so recomputation is visible). */
function fake(calls: Point[], salt = Math.random()) {
  return async (p: Point) => {
    calls.push(p);
    return { ms: (p.polyN as number) / 1000 + (p.batch ? 0 : 1), salt };
  };
}

describe('cartesian', () => {
  it('enumerates every combination, first option slowest', () => {
    const pts = cartesian(space);
    expect(pts).toHaveLength(6);
    expect(pts[0]).toEqual({ polyN: 8192, batch: false, packing: 'slots' });
    expect(pts[1]).toEqual({ polyN: 8192, batch: true, packing: 'slots' });
    expect(pts[5]).toEqual({ polyN: 32768, batch: true, packing: 'slots' });
    expect(new Set(pts.map((p) => JSON.stringify(p))).size).toBe(6);
  });
  it('refuses empty lists and non-scalar values, naming the option', () => {
    expect(() => cartesian({ a: [] })).toThrow(/'a'/);
    expect(() => cartesian({ b: [{} as unknown as number] })).toThrow(TypeError);
  });
  it('keys do not depend on option order but do on commit and device', () => {
    expect(pointKey({ a: 1, b: 2 }, 'c', 'd')).toBe(pointKey({ b: 2, a: 1 }, 'c', 'd'));
    expect(pointKey({ a: 1 }, 'c', 'd')).not.toBe(pointKey({ a: 1 }, 'c2', 'd'));
    expect(pointKey({ a: 1 }, 'c', 'd')).not.toBe(pointKey({ a: 1 }, 'c', 'd2'));
  });
});

describe('runSweep', () => {
  it('computes each point once, then serves the whole sweep from the cache', async () => {
    const cacheDir = tmp();
    const calls: Point[] = [];
    const first = await runSweep(space, fake(calls), { cacheDir, commit: 'abc', device: 'cpu:test', progress: noProgress, name: 's' });
    expect(calls).toHaveLength(6);
    expect(first.computed).toBe(6);
    expect(first.table().numRows()).toBe(6);
    expect(first.table().columnNames()).toEqual(['polyN', 'batch', 'packing', 'ms', 'salt']);
    const again: Point[] = [];
    const second = await runSweep(space, fake(again), { cacheDir, commit: 'abc', device: 'cpu:test', progress: noProgress, name: 's' });
    expect(again).toHaveLength(0);
    expect(second.fromCache).toBe(6);
    expect(second.records.map((r) => r.metrics)).toEqual(first.records.map((r) => r.metrics));
    // Another commit or device is another cache key: everything is recomputed.
    const other: Point[] = [];
    await runSweep(space, fake(other), { cacheDir, commit: 'def', device: 'cpu:test', progress: noProgress, name: 's' });
    expect(other).toHaveLength(6);
  });

  it('resumes after an interruption halfway without recomputing finished points', async () => {
    const cacheDir = tmp();
    const controller = new AbortController();
    const calls: Point[] = [];
    const salt1 = Math.random();
    const interrupted = await runSweep(space, async (p: Point, ctx: PointContext) => {
      const r = await fake(calls, salt1)(p);
      if (ctx.index === 2) controller.abort(); // the third point finishes, then the sweep is interrupted
      return r;
    }, { cacheDir, commit: 'abc', device: 'd', signal: controller.signal, progress: noProgress, name: 'r' });
    expect(interrupted.cancelled).toBe(true);
    expect(interrupted.records).toHaveLength(3);
    expect(interrupted.pending).toHaveLength(3);
    expect(calls).toHaveLength(3);

    const resumedCalls: Point[] = [];
    const resumed = await runSweep(space, fake(resumedCalls, Math.random()), { cacheDir, commit: 'abc', device: 'd', progress: noProgress, name: 'r' });
    expect(resumed.cancelled).toBe(false);
    expect(resumedCalls).toEqual(cartesian(space).slice(3));
    expect(resumed.fromCache).toBe(3);
    expect(resumed.computed).toBe(3);
    expect(resumed.records.slice(0, 3).map((r) => r.metrics.salt)).toEqual([salt1, salt1, salt1]);
  });

  it('a cancel during a point stops it (the point function sees the signal) and caches nothing for it', async () => {
    const cacheDir = tmp();
    const controller = new AbortController();
    let sawSignal = false;
    const res = await runSweep({ n: [1, 2, 3] }, (p: Point, ctx: PointContext) => new Promise((resolve, reject) => {
      if (p.n === 1) return resolve({ v: 1 });
      // "native work" that stops when asked
      sawSignal = ctx.signal instanceof AbortSignal;
      ctx.signal.addEventListener('abort', () => {
        const e = new Error('stopped');
        e.name = 'AbortError';
        reject(e);
      });
      setTimeout(() => controller.abort(), 5);
    }), { cacheDir, commit: 'c', device: 'd', signal: controller.signal, progress: noProgress, name: 'x' });
    expect(sawSignal).toBe(true);
    expect(res.cancelled).toBe(true);
    expect(res.records.map((r) => r.point.n)).toEqual([1]);
    expect(res.pending.map((p) => p.n)).toEqual([2, 3]);
    expect(fs.readdirSync(path.join(cacheDir, 'x')).filter((f) => f.endsWith('.json'))).toHaveLength(1);
  });

  it('a signal aborted before the start computes nothing; errors other than aborts propagate', async () => {
    const controller = new AbortController();
    controller.abort();
    const calls: Point[] = [];
    const res = await runSweep(space, fake(calls), { cacheDir: false, commit: 'c', device: 'd', signal: controller.signal, progress: noProgress });
    expect(calls).toHaveLength(0);
    expect(res.cancelled).toBe(true);
    await expect(runSweep({ a: [1] }, () => { throw new RangeError('bad point'); }, { cacheDir: false, commit: 'c', device: 'd', progress: noProgress }))
      .rejects.toThrow('bad point');
  });

  it('removes its Ctrl-C handler afterwards and recomputes a damaged cache entry', async () => {
    const before = process.listenerCount('SIGINT');
    const cacheDir = tmp();
    await runSweep({ a: [1, 2] }, (p: Point) => ({ v: p.a }), { cacheDir, commit: 'c', device: 'd', progress: noProgress, name: 'dmg' });
    expect(process.listenerCount('SIGINT')).toBe(before);
    const file = path.join(cacheDir, 'dmg', `${pointKey({ a: 1 }, 'c', 'd')}.json`);
    fs.writeFileSync(file, '{ not json');
    const calls: Point[] = [];
    const res = await runSweep({ a: [1, 2] }, (p: Point) => { calls.push(p); return { v: p.a }; }, { cacheDir, commit: 'c', device: 'd', progress: noProgress, name: 'dmg' });
    expect(calls).toEqual([{ a: 1 }]);
    expect(res.records.map((r) => r.metrics.v)).toEqual([1, 2]);
  });

  it('requires commit and device, and a function', async () => {
    await expect(runSweep({ a: [1] }, (() => ({})) as never, {} as never)).rejects.toThrow(TypeError);
    await expect(runSweep({ a: [1] }, 5 as never, { commit: 'c', device: 'd' })).rejects.toThrow(/function/);
  });
});

describe('progress', () => {
  it('renders a bar proportional to the work done', () => {
    expect(progressText(0, 4, 'x', 8)).toBe('[........] 0/4 x');
    expect(progressText(2, 4, 'x', 8)).toBe('[####....] 2/4 x');
    expect(progressText(4, 4, 'x', 8)).toBe('[########] 4/4 x');
  });
});
