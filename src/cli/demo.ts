/**
 * `npm start`: engine facts, then the NTT benchmark on the best backend (quick sizes).
 * Grows into the HE-LoRA demo once the pipeline lands.
 */
import { info, resolveBackend } from '../engine/info';
import { runBench } from '../bench/index';

export async function runDemo(argv: string[]): Promise<void> {
  const i = info();
  const backend = resolveBackend('auto');
  console.log(`tensafe ${i.version}: backends built [${i.backendsBuilt.join(', ')}], using ${backend}`);
  console.log(`CPU: ${i.cpuModel}, ${i.cpuThreads} threads`);
  if (i.cuda.available) {
    for (const d of i.cuda.devices) {
      console.log(`GPU ${d.index}: ${d.name}, sm_${d.computeCapability.replace('.', '')}, ${(d.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB, driver ${i.cuda.driverVersion}`);
    }
  } else {
    console.log(`GPU: none (${i.cuda.unavailableReason})`);
  }
  await runBench(['ntt', '--backend', backend, '--quick', ...argv]);
}
