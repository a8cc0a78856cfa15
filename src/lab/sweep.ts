/**
 * Parameter sweeps: the cartesian product of option lists, one injected function per point,
 * a progress bar, a cache under datasets/cache/ keyed by (options, git commit, device) so an
 * interrupted sweep resumes without recomputing finished points, and cancellation through an
 * AbortSignal that stops between points and is handed to the point function so running native
 * work can stop too.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import { type ProgressSink, defaultProgress } from './progress';

export type OptionValue = string | number | boolean | null;
export type Point = Record<string, OptionValue>;
export type Space = Record<string, readonly OptionValue[]>;
export type Metrics = Record<string, unknown>;

export interface PointContext {
  /** Aborted when the sweep is cancelled: pass it on to native work that can stop early. */
  signal: AbortSignal;
  index: number;
  total: number;
}

export type PointFn<M extends Metrics = Metrics> = (point: Point, ctx: PointContext) => Promise<M> | M;

export interface SweepOptions {
  /** Sweep name: a folder under the cache (default: a hash of the space). */
  name?: string;
  /** Cache folder (default <package root>/datasets/cache). Set false to disable caching. */
  cacheDir?: string | false;
  /** Part of the cache key: the git commit of the code that computes the points. */
  commit: string;
  /** Part of the cache key: the device the points run on. */
  device: string;
  /** Cancels between points (and is passed to each point). */
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Recompute even where a cached point exists. */
  refresh?: boolean;
  /** While the sweep runs, Ctrl-C (SIGINT) cancels it instead of killing the process (default true). */
  handleSigint?: boolean;
}

export interface PointRecord<M extends Metrics = Metrics> {
  point: Point;
  metrics: M;
  /** True when read from the cache rather than computed in this call. */
  cached: boolean;
  ms: number;
}

export interface SweepResult<M extends Metrics = Metrics> {
  name: string;
  space: Space;
  commit: string;
  device: string;
  records: PointRecord<M>[];
  /** Points of the space not finished (cancelled). */
  pending: Point[];
  cancelled: boolean;
  computed: number;
  fromCache: number;
  /** One row per finished point: the options then the metrics (scalar metrics only). */
  table(): ColumnTable;
}

/** Cartesian product, first option varying slowest. Empty lists are refused (a sweep of nothing is a mistake). */
export function cartesian(space: Space): Point[] {
  const keys = Object.keys(space);
  for (const k of keys) {
    const v = space[k];
    if (!Array.isArray(v) || v.length === 0) throw new RangeError(`sweep: option '${k}' needs a non-empty list of values`);
    for (const x of v) {
      if (!(x === null || ['string', 'number', 'boolean'].includes(typeof x))) {
        throw new TypeError(`sweep: option '${k}' values must be strings, numbers, booleans or null`);
      }
    }
  }
  let points: Point[] = [{}];
  for (const k of keys) points = points.flatMap((p) => space[k].map((v) => ({ ...p, [k]: v })));
  return points;
}

/** JSON with sorted keys, so {a,b} and {b,a} give the same cache key. */
export function stableJson(x: unknown): string {
  if (Array.isArray(x)) return `[${x.map(stableJson).join(',')}]`;
  if (x && typeof x === 'object') {
    return `{${Object.keys(x as object).sort().map((k) => `${JSON.stringify(k)}:${stableJson((x as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(x);
}

export function pointKey(point: Point, commit: string, device: string): string {
  return createHash('sha256').update(stableJson({ point, commit, device })).digest('hex').slice(0, 32);
}

function abortError(): Error {
  const e = new Error('sweep cancelled');
  e.name = 'AbortError';
  return e;
}

function isAbort(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (err instanceof Error && err.name === 'AbortError');
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function describe(point: Point): string {
  return Object.entries(point).map(([k, v]) => `${k}=${v}`).join(' ');
}

export async function runSweep<M extends Metrics>(space: Space, compute: PointFn<M>, opts: SweepOptions): Promise<SweepResult<M>> {
  if (typeof compute !== 'function') throw new TypeError('sweep: compute must be a function (point, ctx) => metrics');
  if (!opts || typeof opts.commit !== 'string' || typeof opts.device !== 'string') {
    throw new TypeError('sweep: options.commit and options.device (strings) are required: they key the cache');
  }
  const points = cartesian(space);
  const name = opts.name ?? `sweep-${createHash('sha256').update(stableJson(space)).digest('hex').slice(0, 12)}`;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new RangeError(`sweep: name '${name}' must be letters, digits, '.', '_' or '-'`);
  const dir = opts.cacheDir === false ? null : path.join(opts.cacheDir as string, name);
  if (dir) fs.mkdirSync(dir, { recursive: true });
  const progress = opts.progress ?? defaultProgress();

  // One controller joins the caller's signal and Ctrl-C; the point function sees it.
  const controller = new AbortController();
  const onAbort = () => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) controller.abort(opts.signal.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const onSigint = () => controller.abort(abortError());
  const handleSigint = opts.handleSigint ?? true;
  if (handleSigint) process.on('SIGINT', onSigint);

  const records: PointRecord<M>[] = [];
  const pending: Point[] = [];
  let computed = 0;
  let fromCache = 0;
  let cancelled = false;
  try {
    for (let i = 0; i < points.length; i++) {
      const point = points[i];
      if (controller.signal.aborted) {
        cancelled = true;
        pending.push(...points.slice(i));
        break;
      }
      const key = pointKey(point, opts.commit, opts.device);
      const file = dir ? path.join(dir, `${key}.json`) : null;
      if (file && !opts.refresh && fs.existsSync(file)) {
        try {
          const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { point: Point; metrics: M; ms: number };
          if (stableJson(doc.point) === stableJson(point)) {
            records.push({ point, metrics: doc.metrics, cached: true, ms: doc.ms });
            fromCache++;
            progress.update(i + 1, points.length, `${describe(point)} (cached)`);
            continue;
          }
        } catch {
          // A damaged cache entry is recomputed.
        }
      }
      progress.update(i, points.length, describe(point));
      const t0 = process.hrtime.bigint();
      let metrics: M;
      try {
        metrics = await compute(point, { signal: controller.signal, index: i, total: points.length });
      } catch (err) {
        if (isAbort(err, controller.signal)) {
          cancelled = true;
          pending.push(...points.slice(i));
          break;
        }
        throw err;
      }
      // A point that finished after a cancel request is complete: it is kept and cached,
      // and the loop stops before the next one.
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (file) {
        writeAtomic(file, JSON.stringify({ point, metrics, ms, commit: opts.commit, device: opts.device, date: new Date().toISOString() }, null, 1));
      }
      records.push({ point, metrics, cached: false, ms });
      computed++;
      progress.update(i + 1, points.length, describe(point));
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (handleSigint) process.off('SIGINT', onSigint);
  }
  progress.finish(
    cancelled
      ? `sweep ${name}: cancelled after ${records.length}/${points.length} points (${computed} computed, ${fromCache} cached); run again to resume`
      : `sweep ${name}: ${points.length} points (${computed} computed, ${fromCache} cached)`,
  );
  return {
    name,
    space,
    commit: opts.commit,
    device: opts.device,
    records,
    pending,
    cancelled,
    computed,
    fromCache,
    table() {
      const rows = records.map((r) => {
        const scalars: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(r.metrics)) {
          if (v === null || ['string', 'number', 'boolean'].includes(typeof v)) scalars[k] = v;
        }
        return { ...r.point, ...scalars };
      });
      return aq.from(rows);
    },
  };
}
