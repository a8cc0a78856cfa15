/**
 * `npm run bench -- ntt [--backend cpu|cuda|auto] [--quick] [--iterations k]`
 * Microseconds per transform (all limbs) for N = 2^13..2^16 and 1..4 limbs, forward and inverse,
 * timed natively (steady clock on the CPU, CUDA events on the GPU). The CPU always runs; CUDA
 * runs when available (and is required with --backend cuda). Achieved bytes/s counts one read and
 * one write of limbs*N*8 bytes; on the GPU it is set against the card's measured
 * device-to-device copy bandwidth (NttPlanCuda.measureCopyBandwidth()).
 */
import type { BenchArgs } from './index';
import { newResult, printTable, writeResult, type Row } from './results';
import { deviceName, info, resolveBackend, type Backend } from '../engine/info';
import { native } from '../engine/native';
import { NttPlan, generateNttPrimes } from '../engine/ntt';

function copyBandwidthBytesPerSecond(): number | undefined {
  const cls = native().NttPlanCuda;
  if (!cls || typeof cls.measureCopyBandwidth !== 'function') return undefined;
  const v = cls.measureCopyBandwidth();
  // Accept a number (bytes/s) or an object carrying bytesPerSecond / gbPerSecond.
  if (typeof v === 'number') return v;
  if (v && typeof v.bytesPerSecond === 'number') return v.bytesPerSecond;
  if (v && typeof v.gbPerSecond === 'number') return v.gbPerSecond * 1e9;
  return undefined;
}

async function runBackend(backend: Backend, args: BenchArgs): Promise<void> {
  const sizes = args.quick ? [8192, 16384] : [8192, 16384, 32768, 65536];
  const limbCounts = args.quick ? [1, 2] : [1, 2, 3, 4];
  const iterations = Number(args.options.iterations ?? (args.quick ? 10 : backend === 'cuda' ? 200 : 50));
  const copyBw = backend === 'cuda' ? copyBandwidthBytesPerSecond() : undefined;
  const result = newResult('ntt', backend, deviceName(backend), args.argv);
  for (const n of sizes) {
    const primes = generateNttPrimes(n, 60, Math.max(...limbCounts));
    for (const limbs of limbCounts) {
      const plan = NttPlan.create({ n, moduli: primes.slice(0, limbs), backend });
      for (const direction of ['forward', 'inverse'] as const) {
        const t = await plan.benchmark({ direction, iterations });
        const bytes = 2 * limbs * n * 8;
        const bytesPerS = bytes / (t.medianUs * 1e-6);
        const row: Row = {
          direction,
          poly_n: n,
          limbs,
          median_us: t.medianUs,
          min_us: t.minUs,
          max_us: t.maxUs,
          runs: t.runs,
          gb_per_s: bytesPerS / 1e9,
        };
        if (copyBw) row.fraction_of_copy_bw = bytesPerS / copyBw;
        result.rows.push(row);
        if (n === 16384 && limbs === 2) result.summary[`${direction}_us_16384_2limbs`] = t.medianUs;
      }
      plan.dispose();
    }
  }
  if (copyBw) result.summary.copy_bandwidth_gb_s = copyBw / 1e9;
  result.notes = [
    `threads: ${info().cpuThreads} (CPU limbs run in parallel)`,
    'primes: 60-bit, q = 1 mod 2N; times are all limbs of one transform',
  ];
  printTable(result.rows, undefined, `NTT ${backend} on ${result.device}`);
  // eslint-disable-next-line no-console
  console.log(`wrote ${writeResult(result)}`);
}

export async function run(args: BenchArgs): Promise<void> {
  const backends: Backend[] = ['cpu'];
  if (args.backend === 'cuda') backends.push(resolveBackend('cuda'));
  else if (args.backend === 'auto' && info().cuda.available) backends.push('cuda');
  for (const b of backends) await runBackend(b, args);
}
