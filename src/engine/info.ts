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

/**
 * The backend and CUDA device of an engine object from its `backend` and `device` options (the
 * one place that reads the device option; the native side checks the index against the visible
 * devices). A device implies 'cuda' under 'auto' and is refused with 'cpu'; without a usable GPU
 * the 'cuda' backend gives ERR_TENSAFE_BACKEND.
 */
export function resolveDevice(choice: BackendChoice = 'auto', device?: unknown, option = 'device'): { backend: Backend; device?: number } {
  if (device === undefined) return { backend: resolveBackend(choice) };
  if (typeof device !== 'number') throw new TypeError(`option '${option}' must be a CUDA device index (an integer >= 0), got ${typeof device}`);
  if (!Number.isInteger(device) || device < 0 || device > 1023) {
    throw new RangeError(`option '${option}' must be a CUDA device index (an integer in [0, 1023]), got ${device}`);
  }
  if (choice === 'cpu') throw new RangeError(`option '${option}' selects a CUDA device; it does not apply to backend 'cpu'`);
  return { backend: resolveBackend('cuda'), device };
}

/** GPU memory of a device (engine.gpuMemory): cudaMemGetInfo and our own allocation counter. */
export interface GpuMemory {
  available: boolean;
  device: number | null;
  /** total - free (every process and the CUDA context included). */
  usedBytes: number;
  freeBytes: number;
  totalBytes: number;
  /** Bytes this process holds through the engine's device buffers (all devices). */
  allocatedBytes: number;
}

export function gpuMemory(device = 0): GpuMemory {
  return callSync(() => native().gpuMemory(device) as GpuMemory);
}

/** A short device label for result files: the GPU name, or the CPU model. */
export function deviceName(backend: Backend): string {
  const i = info();
  return backend === 'cuda' ? (i.cuda.devices[0]?.name ?? 'unknown GPU') : i.cpuModel;
}
