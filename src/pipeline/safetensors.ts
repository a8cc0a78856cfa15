/**
 * A small safetensors reader/writer (the format of `adapter_model.safetensors`):
 *
 *   [8 bytes: header length N, unsigned little-endian] [N bytes: JSON header] [raw data]
 *
 * The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets
 * relative to the start of the data block) plus an optional `__metadata__` of string pairs.
 * Only the float types LoRA adapters use are supported (F32, F16, BF16); tensors are returned
 * as Float32Array whatever their stored type. Every length and offset is checked, so a truncated
 * or hostile file raises a FormatError-like Error (code ERR_TENSAFE_FORMAT), never a bad read.
 */
import * as fs from 'node:fs';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16';

export interface SafetensorsTensor {
  dtype: SafetensorsDType;
  shape: number[];
  /** Values widened to float32 (exact for F16/BF16). */
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<SafetensorsDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Refuse absurd headers before parsing them (the reference implementation caps at 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export function formatError(message: string): Error {
  const err = new Error(message);
  (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_FORMAT';
  return err;
}

// ---- half-precision conversions (round to nearest even, like the native dtype.h) -------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function bf16ToFloat(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

export function floatToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff; // NaN stays NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16ToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function floatToF16(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to infinity
  if (a < 0x38800000) {
    // below 2^-14: subnormal, value = m * 2^-24 with m rounded to nearest even
    const v = Math.abs(f32[0]) * 2 ** 24;
    let m = Math.floor(v);
    const rem = v - m;
    if (rem > 0.5 || (rem === 0.5 && m & 1)) m++;
    return sign | m;
  }
  const r = (a + 0x0fff + ((a >>> 13) & 1)) >>> 0;
  return sign | (((r - 0x38000000) >>> 13) & 0x7fff);
}

/** The value a float32 takes after storage in `dtype` (what a reader will see). */
export function roundTo(dtype: SafetensorsDType, x: number): number {
  if (dtype === 'F32') return Math.fround(x);
  return dtype === 'BF16' ? bf16ToFloat(floatToBf16(x)) : f16ToFloat(floatToF16(x));
}

// ---- reading ---------------------------------------------------------------------------------

export function parseSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsFile {
  if (bytes.length < 8) throw formatError(`${source}: ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) {
    throw formatError(`${source}: header length ${headerLen} exceeds the file (${bytes.length} bytes)`);
  }
  const n = Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw formatError(`${source}: header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw formatError(`${source}: header must be a JSON object`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, SafetensorsTensor>();
  let metadata: Record<string, string> = {};
  const spans: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw formatError(`${source}: __metadata__ must be an object`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw formatError(`${source}: __metadata__.${k} must be a string`);
      }
      metadata = { ...(entry as Record<string, string>) };
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw formatError(`${source}: tensor '${name}' entry is not an object`);
    if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16') {
      throw formatError(`${source}: tensor '${name}' has dtype ${JSON.stringify(e.dtype)}; supported: F32, F16, BF16`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      throw formatError(`${source}: tensor '${name}' shape must be a list of non-negative integers`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[0] > off[1]) {
      throw formatError(`${source}: tensor '${name}' data_offsets must be [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen) throw formatError(`${source}: tensor '${name}' ends at ${end}, past the data block (${dataLen} bytes)`);
    const numel = (e.shape as number[]).reduce((a, b) => a * b, 1);
    const dtype = e.dtype as SafetensorsDType;
    if (numel * DTYPE_BYTES[dtype] !== end - begin) {
      throw formatError(`${source}: tensor '${name}' shape [${(e.shape as number[]).join(', ')}] ${dtype} needs ${numel * DTYPE_BYTES[dtype]} bytes, offsets give ${end - begin}`);
    }
    spans.push([begin, end, name]);
    tensors.set(name, { dtype, shape: [...(e.shape as number[])], data: decodeData(bytes, dataStart + begin, numel, dtype) });
  }
  // Overlapping tensors are a malformed (possibly hostile) file.
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) throw formatError(`${source}: tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }
  return { tensors, metadata };
}

function decodeData(bytes: Uint8Array, offset: number, numel: number, dtype: SafetensorsDType): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, numel * DTYPE_BYTES[dtype]);
  const out = new Float32Array(numel);
  if (dtype === 'F32') for (let i = 0; i < numel; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'BF16') for (let i = 0; i < numel; i++) out[i] = bf16ToFloat(view.getUint16(2 * i, true));
  else for (let i = 0; i < numel; i++) out[i] = f16ToFloat(view.getUint16(2 * i, true));
  return out;
}

export function readSafetensors(file: string): SafetensorsFile {
  return parseSafetensors(fs.readFileSync(file), file);
}

// ---- writing ---------------------------------------------------------------------------------

export interface TensorToWrite {
  dtype: SafetensorsDType;
  shape: number[];
  data: ArrayLike<number>;
}

/** Serialises tensors (in the given order) with the header padded to 8 bytes, as the reference writer does. */
export function serializeSafetensors(tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata?: Record<string, string>): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new RangeError(`tensors: '__metadata__' is reserved`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new RangeError(`tensors['${name}']: shape [${t.shape.join(', ')}] holds ${numel} values, data has ${t.data.length}`);
    if (!(t.dtype in DTYPE_BYTES)) throw new RangeError(`tensors['${name}'].dtype must be F32, F16 or BF16`);
    const size = numel * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const [, t] of entries) {
    const n = t.data.length;
    if (t.dtype === 'F32') for (let i = 0; i < n; i++, pos += 4) view.setFloat32(pos, t.data[i], true);
    else if (t.dtype === 'BF16') for (let i = 0; i < n; i++, pos += 2) view.setUint16(pos, floatToBf16(t.data[i]), true);
    else for (let i = 0; i < n; i++, pos += 2) view.setUint16(pos, floatToF16(t.data[i]), true);
  }
  return out;
}

export function writeSafetensors(file: string, tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>, metadata?: Record<string, string>): void {
  fs.writeFileSync(file, serializeSafetensors(tensors, metadata));
}
