import { describe, expect, it } from 'vitest';
import { info, resolveBackend } from '../../src/engine/info';

describe('engine.info', () => {
  it('reports version, backends and CPU facts', () => {
    const i = info();
    expect(i.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(i.backendsBuilt).toContain('cpu');
    expect(i.cpuThreads).toBeGreaterThanOrEqual(1);
    expect(typeof i.cuda.built).toBe('boolean');
    if (i.cuda.available) {
      const d = i.cuda.devices[0];
      expect(d.name.length).toBeGreaterThan(0);
      expect(d.computeCapability).toMatch(/^\d+\.\d+$/);
      expect(d.totalMemoryBytes).toBeGreaterThan(1e9);
      expect(i.cuda.driverVersion).toBeGreaterThan(0);
    } else {
      expect(i.cuda.devices).toHaveLength(0);
      expect(i.cuda.unavailableReason).toBeTruthy();
    }
  });

  it('resolves backends and refuses a missing GPU clearly', () => {
    const i = info();
    expect(resolveBackend('cpu')).toBe('cpu');
    expect(resolveBackend('auto')).toBe(i.cuda.available ? 'cuda' : 'cpu');
    if (!i.cuda.available) expect(() => resolveBackend('cuda')).toThrow(/not available/);
    expect(() => resolveBackend('tpu' as never)).toThrow(RangeError);
  });
});
