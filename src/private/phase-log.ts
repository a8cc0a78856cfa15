/**
 * Where a protocol step's time goes, for the private micro-benchmark (`bench private-site`): wall
 * microseconds per phase, the JS steps timed here and the fused native calls' own phases
 * (their `timings` option, PhaseTimings) added under a prefix. Passing no log costs nothing: the
 * protocol classes then ask the native calls for no timings.
 */
import type { PhaseTimings } from '../engine/ckks/native-api';

export type PhaseLog = Record<string, number>;

/** Adds `us` to phase `name`. */
export function addPhase(log: PhaseLog | undefined, name: string, us: number): void {
  if (log) log[name] = (log[name] ?? 0) + us;
}

/** Adds a native call's phases as `prefix.phase`. */
export function addNativePhases(log: PhaseLog | undefined, prefix: string, timings: PhaseTimings | undefined): void {
  if (!log || !timings) return;
  for (const [k, v] of Object.entries(timings)) addPhase(log, `${prefix}.${k}`, v);
}

/** A stopwatch over a log: lap(name) ends the current phase (no clock read without a log). */
export function stopwatch(log: PhaseLog | undefined): (name: string) => void {
  if (!log) return () => {};
  let t = performance.now();
  return (name: string) => {
    const now = performance.now();
    addPhase(log, name, (now - t) * 1000);
    t = now;
  };
}
