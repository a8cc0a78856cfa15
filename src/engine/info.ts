/** engine.info(): what the native engine was built with and which devices it sees. */
import { callSync, native } from './native';

export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  multiprocessors: number;
  memoryBusWidthBits: number;
  l2CacheBytes: number;
}

export interface EngineInfo {
  version: string;
  backendsBuilt: Array<'cpu' | 'cuda'>;
  cpuThreads: number;
  cpuModel: string;
  cuda: {
    built: boolean;
    available: boolean;
    runtimeVersion: number;
    driverVersion: number;
    cublas: boolean;
    unavailableReason?: string;
    devices: CudaDeviceInfo[];
  };
}

export type Backend = 'cpu' | 'cuda';
export type BackendChoice = Backend | 'auto';

export function info(): EngineInfo {
  return callSync(() => native().info() as EngineInfo);
}

/** True when the CUDA backend is built and a device is usable. */
export function cudaAvailable(): boolean {
  return info().cuda.available;
}

/** Resolves 'auto' to 'cuda' when a GPU is usable, else 'cpu'; refuses 'cuda' without one. */
export function resolveBackend(choice: BackendChoice = 'auto'): Backend {
  if (choice !== 'auto' && choice !== 'cpu' && choice !== 'cuda') {
    throw new RangeError(`backend must be 'auto', 'cpu' or 'cuda', got ${JSON.stringify(choice)}`);
  }
  const i = info();
  if (choice === 'cpu') return 'cpu';
  if (choice === 'cuda') {
    if (!i.cuda.available) {
      const err = new Error(`backend 'cuda' is not available: ${i.cuda.unavailableReason ?? 'unknown reason'}`);
      (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_BACKEND';
      throw err;
    }
    return 'cuda';
  }
  return i.cuda.available ? 'cuda' : 'cpu';
}

/** A short device label for result files: the GPU name, or the CPU model. */
export function deviceName(backend: Backend): string {
  const i = info();
  return backend === 'cuda' ? (i.cuda.devices[0]?.name ?? 'unknown GPU') : i.cpuModel;
}
