import { describe, expect, it } from 'vitest';
import { NttPlan, generateNttPrimes } from '../../src/engine/ntt';
import { profileKernels, profilerAvailability } from '../../src/engine/profiler';
import { noGpu } from '../helpers/gpu';

describe.skipIf(noGpu)('kernel profiler (CUPTI)', () => {
  it('records the NTT kernels launched inside the profiled function', async () => {
    expect(profilerAvailability()).toEqual({ available: true });
    const n = 1 << 14;
    const moduli = generateNttPrimes(n, 50, 2);
    const plan = NttPlan.create({ n, moduli, backend: 'cuda' });
    const data = new BigUint64Array(2 * n);
    for (let i = 0; i < data.length; i++) data[i] = BigInt(Math.floor(Math.random() * 1e9)) % moduli[i < n ? 0 : 1];
    const runs = 5;
    const profile = await profileKernels(async () => {
      for (let i = 0; i < runs; i++) await plan.forward(data);
    });
    plan.dispose();
    expect(profile.kernels.length).toBeGreaterThan(0);
    const total = profile.kernels.reduce((s, k) => s + k.calls, 0);
    expect(total).toBeGreaterThanOrEqual(runs);
    for (const k of profile.kernels) {
      expect(k.name.length).toBeGreaterThan(0);
      expect(k.meanUs).toBeGreaterThan(0);
      expect(k.totalUs).toBeCloseTo(k.meanUs * k.calls, 3);
    }
    // A second session starts clean.
    const empty = await profileKernels(() => undefined);
    expect(empty.kernels).toHaveLength(0);
  });
});
