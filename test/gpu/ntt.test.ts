/**
 * CUDA NTT (NttPlanCuda) against the CPU NTT (NttPlanCpu), word for word.
 *
 * The CPU transform is itself tested against a naive negacyclic convolution
 * (test/unit/ntt.test.ts); here the GPU must reproduce it exactly, for every n in 2^12..2^16,
 * 1..4 limbs and prime sizes from 30 to 61 bits, on fresh random inputs each run. The
 * transform is in place on the device, so every output word that a kernel failed to write
 * would still hold an input or intermediate value: the device buffer is "poisoned" with a
 * different random input before each transform by running one on unrelated data first.
 */
import { randomFillSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { noGpu } from '../helpers/gpu';
import { native } from '../../src/engine/native';
import { NttPlan, generateNttPrimes } from '../../src/engine/ntt';

function randomPoly(n: number, moduli: bigint[]): BigUint64Array {
  const a = new BigUint64Array(n * moduli.length);
  randomFillSync(a);
  moduli.forEach((q, l) => {
    for (let j = 0; j < n; j++) a[l * n + j] %= q;
  });
  return a;
}

function firstMismatch(a: BigUint64Array, b: BigUint64Array): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const BITS = [61, 50, 40, 30];

describe.skipIf(noGpu)('NttPlanCuda equals NttPlanCpu word for word', () => {
  for (let logN = 12; logN <= 16; logN++) {
    for (let limbs = 1; limbs <= 4; limbs++) {
      const n = 2 ** logN;
      it(`n = 2^${logN}, ${limbs} limb(s)`, async () => {
        // mixed prime sizes: the first limb cycles through BITS with logN
        const moduli = Array.from({ length: limbs }, (_, l) => generateNttPrimes(n, BITS[(l + logN) % 4], l + 1)[l]);
        const cpu = NttPlan.create({ n, moduli, backend: 'cpu' });
        const gpu = NttPlan.create({ n, moduli, backend: 'cuda' });
        try {
          for (let round = 0; round < 2; round++) {
            gpu.forwardSync(randomPoly(n, moduli)); // poison the device buffer with other data
            const x = randomPoly(n, moduli);
            const want = cpu.forwardSync(x);
            const got = await gpu.forward(x);
            expect(firstMismatch(got, want)).toBe(-1);
            gpu.inverseSync(randomPoly(n, moduli));
            const y = randomPoly(n, moduli);
            const wantInv = cpu.inverseSync(y);
            const gotInv = await gpu.inverse(y);
            expect(firstMismatch(gotInv, wantInv)).toBe(-1);
            // round trip on the GPU alone
            expect(firstMismatch(gpu.inverseSync(gpu.forwardSync(x)), x)).toBe(-1);
          }
          // the input array is not modified
          const z = randomPoly(n, moduli);
          const copy = z.slice();
          await gpu.forward(z);
          expect(firstMismatch(z, copy)).toBe(-1);
        } finally {
          cpu.dispose();
          gpu.dispose();
        }
      });
    }
  }

  it('edge values: all zeros, all q-1', () => {
    const n = 16384;
    const moduli = generateNttPrimes(n, 61, 2);
    const cpu = NttPlan.create({ n, moduli, backend: 'cpu' });
    const gpu = NttPlan.create({ n, moduli, backend: 'cuda' });
    const top = new BigUint64Array(2 * n);
    moduli.forEach((q, l) => top.fill(q - 1n, l * n, (l + 1) * n));
    for (const x of [new BigUint64Array(2 * n), top]) {
      expect(firstMismatch(gpu.forwardSync(x), cpu.forwardSync(x))).toBe(-1);
      expect(firstMismatch(gpu.inverseSync(x), cpu.inverseSync(x))).toBe(-1);
    }
    cpu.dispose();
    gpu.dispose();
  });

  it('validates arguments before any CUDA work and fails clearly after dispose', () => {
    const n = 4096;
    const moduli = generateNttPrimes(n, 50, 2);
    const gpu = NttPlan.create({ n, moduli, backend: 'cuda' });
    expect(() => gpu.forwardSync(new BigUint64Array(n))).toThrow(RangeError); // wrong length
    expect(() => gpu.forwardSync(new Float64Array(2 * n) as unknown as BigUint64Array)).toThrow(TypeError);
    const bad = randomPoly(n, moduli);
    bad[5] = moduli[0];
    expect(() => gpu.forwardSync(bad)).toThrow(/not reduced/);
    const Cls = native().NttPlanCuda;
    expect(() => new Cls({ n: 3000, moduli })).toThrow(RangeError);
    expect(() => new Cls({ n, moduli: [97n] })).toThrow(/moduli\[0\]/);
    expect(() => new Cls({ n, moduli: [moduli[0] + 2n * BigInt(n)] })).toThrow(RangeError);
    gpu.dispose();
    expect(gpu.disposed).toBe(true);
    expect(() => gpu.forwardSync(randomPoly(n, moduli))).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
  });

  it('benchmark and copy bandwidth are measured on the device', async () => {
    const n = 16384;
    const moduli = generateNttPrimes(n, 50, 2);
    const gpu = NttPlan.create({ n, moduli, backend: 'cuda' });
    const t = await gpu.benchmark({ direction: 'forward', iterations: 5 });
    expect(t.runs).toBe(5);
    expect(t.medianUs).toBeGreaterThan(0);
    expect(t.minUs).toBeLessThanOrEqual(t.medianUs);
    gpu.dispose();
    const bw = native().NttPlanCuda.measureCopyBandwidth() as number;
    expect(bw).toBeGreaterThan(1e11); // any real GPU copies faster than 100 GB/s
  });
});

describe.skipIf(!noGpu)('NttPlanCuda without a usable GPU', () => {
  it('throws ERR_TENSAFE_BACKEND naming the reason', () => {
    const moduli = generateNttPrimes(4096, 50, 1);
    const Cls = native().NttPlanCuda;
    expect(typeof Cls).toBe('function');
    expect(() => new Cls({ n: 4096, moduli })).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BACKEND' }));
  });
});
