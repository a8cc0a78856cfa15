/**
 * Per-kernel GPU profiles (CUPTI activity records, see native/src/timing/kernel_profiler.h).
 * Used by lab.profile(); `profileKernels(fn)` runs fn between start and stop.
 */
import { callSync, native } from './native';

export interface KernelProfileRow {
  name: string;
  calls: number;
  totalUs: number;
  meanUs: number;
  minUs: number;
  maxUs: number;
}

export interface KernelProfile {
  kernels: KernelProfileRow[];
  wallUs: number;
  droppedRecords: number;
}

/** { available: true } or { available: false, reason } (no GPU, no libcupti, CPU-only build). */
export function profilerAvailability(): { available: boolean; reason?: string } {
  return callSync(() => native().profiler.available());
}

/** Records every CUDA kernel launched while fn runs and returns the per-kernel summary. */
export async function profileKernels(fn: () => unknown): Promise<KernelProfile> {
  const p = native().profiler;
  callSync(() => p.start());
  try {
    await fn();
  } catch (err) {
    callSync(() => p.stop()); // end the session; the caller's error is what matters
    throw err;
  }
  return callSync(() => p.stop()) as KernelProfile;
}
