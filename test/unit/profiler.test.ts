import { describe, expect, it } from 'vitest';
import { info } from '../../src/engine/info';
import { profileKernels, profilerAvailability } from '../../src/engine/profiler';

describe('kernel profiler on a machine without a GPU', () => {
  it.skipIf(info().cuda.available)('reports why it is unavailable and refuses to start', async () => {
    const a = profilerAvailability();
    expect(a.available).toBe(false);
    expect(a.reason).toMatch(/GPU|CUDA/);
    await expect(profileKernels(() => 1)).rejects.toMatchObject({ code: 'ERR_TENSAFE_BACKEND' });
  });
});
