import { describe, expect, it } from 'vitest';
import { info } from '../../src/engine/info';
import { noGpu } from '../helpers/gpu';

describe.skipIf(noGpu)('engine on a GPU machine', () => {
  it('reports the CUDA device, its capability, memory and driver', () => {
    const i = info();
    expect(i.backendsBuilt).toContain('cuda');
    expect(i.cuda.available).toBe(true);
    const d = i.cuda.devices[0];
    expect(d.name).toMatch(/NVIDIA/);
    expect(Number(d.computeCapability)).toBeGreaterThanOrEqual(8);
    expect(d.totalMemoryBytes).toBeGreaterThan(16 * 2 ** 30);
    expect(d.freeMemoryBytes).toBeGreaterThan(0);
    expect(i.cuda.driverVersion).toBeGreaterThanOrEqual(i.cuda.runtimeVersion);
  });
});
