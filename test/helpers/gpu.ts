/**
 * GPU test gating. On a machine without a usable CUDA device the GPU suites skip and say
 * why; under `npm run test:gpu` (TENSAFE_REQUIRE_GPU=1) a missing GPU fails instead, so the
 * device run cannot pass by skipping.
 */
import { info } from '../../src/engine/info';

export function gpuStatus(): { available: boolean; reason: string } {
  const i = info();
  if (i.cuda.available) return { available: true, reason: `running on ${i.cuda.devices[0]?.name}` };
  return { available: false, reason: i.cuda.unavailableReason ?? 'CUDA backend not built' };
}

const status = gpuStatus();
if (!status.available) {
  if (process.env.TENSAFE_REQUIRE_GPU === '1') {
    throw new Error(`GPU tests required (TENSAFE_REQUIRE_GPU=1) but no GPU is usable: ${status.reason}`);
  }
  // eslint-disable-next-line no-console
  console.log(`[gpu tests skipped] no usable GPU: ${status.reason}`);
}

/** true when GPU suites must be skipped (pass to describe.skipIf). */
export const noGpu = !status.available;
