/**
 * Negacyclic NTT over a batch of RNS primes, on the CPU (NttPlanCpu) or the GPU (NttPlanCuda).
 * Both native classes take the same constructor options and have the same methods; the tables
 * (minimal primitive 2n-th root, bit-reversed output) are defined in native/src/ckks/ntt_tables.h.
 */
import { type BackendChoice, type Backend, resolveBackend } from './info';
import { callAsync, callSync, native } from './native';

export interface NttPlanOptions {
  /** Ring dimension, a power of two in [2^12, 2^16]. */
  n: number;
  /** 1..16 NTT-friendly primes (q = 1 mod 2n, below 2^61). */
  moduli: bigint[];
  backend?: BackendChoice;
}

export interface NttTiming {
  medianUs: number;
  minUs: number;
  maxUs: number;
  runs: number;
}

/** The shape both native classes (NttPlanCpu, NttPlanCuda) implement. */
export interface NativeNttPlan {
  forward(data: BigUint64Array): Promise<BigUint64Array>;
  inverse(data: BigUint64Array): Promise<BigUint64Array>;
  forwardSync(data: BigUint64Array): BigUint64Array;
  inverseSync(data: BigUint64Array): BigUint64Array;
  benchmark(options: { direction: 'forward' | 'inverse'; iterations?: number }): Promise<NttTiming>;
  dispose(): void;
  readonly disposed: boolean;
}

export class NttPlan {
  private constructor(
    private readonly impl: NativeNttPlan,
    readonly backend: Backend,
    readonly n: number,
    readonly moduli: readonly bigint[],
  ) {}

  static create(options: NttPlanOptions): NttPlan {
    const backend = resolveBackend(options?.backend ?? 'auto');
    const addon = native();
    const cls = backend === 'cuda' ? addon.NttPlanCuda : addon.NttPlanCpu;
    if (typeof cls !== 'function') {
      const err = new Error(`NttPlan: the ${backend} NTT is not built into this addon`);
      (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_BACKEND';
      throw err;
    }
    const impl = callSync(() => new cls({ n: options.n, moduli: options.moduli }) as NativeNttPlan);
    return new NttPlan(impl, backend, options.n, [...options.moduli]);
  }

  /** Number of RNS limbs; data arrays hold limbs * n words, limb-major. */
  get limbs(): number {
    return this.moduli.length;
  }

  forward(data: BigUint64Array): Promise<BigUint64Array> {
    return callAsync(() => this.impl.forward(data));
  }
  inverse(data: BigUint64Array): Promise<BigUint64Array> {
    return callAsync(() => this.impl.inverse(data));
  }
  forwardSync(data: BigUint64Array): BigUint64Array {
    return callSync(() => this.impl.forwardSync(data));
  }
  inverseSync(data: BigUint64Array): BigUint64Array {
    return callSync(() => this.impl.inverseSync(data));
  }
  /** Natively timed transforms of all limbs (steady clock on the CPU, CUDA events on the GPU). */
  benchmark(options: { direction: 'forward' | 'inverse'; iterations?: number }): Promise<NttTiming> {
    return callAsync(() => this.impl.benchmark(options));
  }
  dispose(): void {
    this.impl.dispose();
  }
  get disposed(): boolean {
    return this.impl.disposed;
  }
}

/** `count` primes q = 1 (mod 2n) of exactly `bits` bits, largest first (deterministic). */
export function generateNttPrimes(n: number, bits: number, count: number): bigint[] {
  return callSync(() => native().generateNttPrimes(n, bits, count) as bigint[]);
}

/** Deterministic 64-bit primality test (Miller-Rabin with the first twelve prime bases). */
export function isPrime(x: bigint): boolean {
  return callSync(() => native().isPrime(x) as boolean);
}
