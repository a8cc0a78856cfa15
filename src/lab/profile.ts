/**
 * lab.profile(fn): a per-kernel table (name, calls, total, mean) of the native work done while
 * fn runs. It reads a native profiler hook, `native().profiler.start()` / `.stop()`, that the
 * CUDA backend may provide (stop() returning one record per kernel). Where the build has no
 * such hook the table holds only the whole call's host time, and its note says so.
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import type { NativeAddon } from '../engine/native';

/** One kernel's totals as the native hook may report them (several spellings accepted). */
export interface NativeKernelRecord {
  name: string;
  calls?: number;
  count?: number;
  totalUs?: number;
  total_us?: number;
  totalMs?: number;
  total_ms?: number;
  totalNs?: number;
}

export interface NativeProfiler {
  /** Whether kernels can be recorded here (no GPU, no CUPTI, a CPU-only build: false + reason). */
  available?(): { available: boolean; reason?: string };
  start(): void;
  stop(): NativeKernelRecord[] | { kernels: NativeKernelRecord[] };
}

export interface KernelRow {
  name: string;
  calls: number;
  total_ms: number;
  mean_us: number;
  share: number;
}

export interface ProfileResult<T> {
  /** What fn returned. */
  value: T;
  /** Kernel rows, largest total first. */
  rows: KernelRow[];
  table(): ColumnTable;
  /** Wall time of fn on the host clock, milliseconds. */
  wallMs: number;
  /** True when the rows come from the native profiler. */
  native: boolean;
  note: string;
}

function totalMsOf(r: NativeKernelRecord): number {
  if (r.totalMs !== undefined) return Number(r.totalMs);
  if (r.total_ms !== undefined) return Number(r.total_ms);
  if (r.totalUs !== undefined) return Number(r.totalUs) / 1e3;
  if (r.total_us !== undefined) return Number(r.total_us) / 1e3;
  if (r.totalNs !== undefined) return Number(r.totalNs) / 1e6;
  return NaN;
}

export function normaliseKernelRecords(raw: unknown): KernelRow[] {
  const list = Array.isArray(raw) ? raw : (raw as { kernels?: unknown })?.kernels;
  if (!Array.isArray(list)) throw new TypeError('profile: the native profiler returned neither an array nor { kernels: [...] }');
  const rows = list.map((r: NativeKernelRecord) => {
    if (!r || typeof r.name !== 'string') throw new TypeError('profile: a kernel record has no name');
    const calls = Number(r.calls ?? r.count ?? 0);
    const totalMs = totalMsOf(r);
    if (!Number.isFinite(totalMs)) throw new TypeError(`profile: kernel '${r.name}' has no total time`);
    return { name: r.name, calls, total_ms: totalMs, mean_us: calls > 0 ? (1000 * totalMs) / calls : NaN, share: 0 };
  });
  const sum = rows.reduce((a, r) => a + r.total_ms, 0);
  for (const r of rows) r.share = sum > 0 ? r.total_ms / sum : 0;
  return rows.sort((a, b) => b.total_ms - a.total_ms);
}

export async function profile<T>(fn: () => T | Promise<T>, addon: NativeAddon | null): Promise<ProfileResult<T>> {
  const profiler = addon?.profiler as NativeProfiler | undefined;
  let hasHook = !!profiler && typeof profiler.start === 'function' && typeof profiler.stop === 'function';
  let unavailable: string | undefined;
  if (hasHook && typeof profiler!.available === 'function') {
    const a = profiler!.available();
    if (!a.available) {
      hasHook = false;
      unavailable = a.reason ?? 'unavailable';
    }
  }
  if (hasHook) profiler!.start();
  const t0 = process.hrtime.bigint();
  let value: T;
  let raw: unknown;
  try {
    value = await fn();
  } finally {
    raw = hasHook ? profiler!.stop() : undefined;
  }
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let rows: KernelRow[];
  let note: string;
  if (hasHook) {
    rows = normaliseKernelRecords(raw);
    note = `native profiler: ${rows.length} kernels; wall time ${wallMs.toFixed(2)} ms on the host clock`;
  } else {
    rows = [{ name: '(whole call, host clock)', calls: 1, total_ms: wallMs, mean_us: wallMs * 1000, share: 1 }];
    note = unavailable
      ? `the native profiler is unavailable here (${unavailable}): per-kernel times are unavailable; only the whole call is timed`
      : addon
      ? 'no native profiler in this build (native().profiler is absent): per-kernel times are unavailable; only the whole call is timed'
      : 'the native engine is not loaded: per-kernel times are unavailable; only the whole call is timed';
  }
  return {
    value,
    rows,
    table: () => aq.from(rows),
    wallMs,
    native: hasHook,
    note,
  };
}
