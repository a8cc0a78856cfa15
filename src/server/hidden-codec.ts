/**
 * Hidden states on the wire. Two encodings carry the same numbers:
 *
 * - the original's JSON: `hidden_states_b64` (client -> server) and `pre_activations_b64`
 *   (server -> client), base64 of little-endian float32 (our extension: `"dtype": "float16"`
 *   for half the bytes);
 * - binary WebSocket frames (ours), which skip base64 and JSON number formatting:
 *
 *     offset 0  4 bytes  magic "TSH1"
 *     offset 4  u32 LE   H = byte length of the JSON header
 *     offset 8  H bytes  JSON header, UTF-8, space-padded so that 8 + H is a multiple of 4
 *     8 + H     payload  seq_len x hidden_dim values, little-endian float32 or float16
 *
 *   The JSON header holds the same fields as the JSON message minus the base64 string (for a
 *   forward: type, seq_len, hidden_dim, dtype, session_id, incremental, ...).
 *
 * Every decoder here validates and throws RequestError naming the field; nothing trusts sizes
 * sent by the client.
 */
import * as os from 'node:os';
import { RequestError } from './errors';

// The wire is little-endian; on a little-endian host float32 arrays are copied as bytes.
const LITTLE_ENDIAN = os.endianness() === 'LE';

export type HiddenDtype = 'float32' | 'float16';
export const HIDDEN_DTYPES: readonly HiddenDtype[] = ['float32', 'float16'];
export const BINARY_MAGIC = 'TSH1';

export function bytesPerValue(dtype: HiddenDtype): number {
  return dtype === 'float16' ? 2 : 4;
}

export function parseDtype(value: unknown, field = 'dtype'): HiddenDtype {
  if (value === undefined || value === null) return 'float32';
  if (value === 'float32' || value === 'float16') return value;
  throw new RequestError(`${field} must be "float32" or "float16", got ${JSON.stringify(value)}`, { field });
}

// ---- float16 <-> float32 (IEEE 754 binary16, round to nearest even) ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> binary16 bits, round to nearest even; overflow -> +-Inf, NaN kept NaN. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa right, round to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into the exponent: correct
  return sign | half;
}

/** binary16 bits -> number (exact). */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// Decoding table: 65536 entries, built once on first use (256 KiB).
let halfTable: Float32Array | undefined;
function table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = fromHalfBits(i);
  }
  return halfTable;
}

/** Encodes floats in the wire dtype as little-endian bytes (a fresh Buffer). */
export function encodeValues(values: Float32Array, dtype: HiddenDtype): Buffer {
  if (dtype === 'float32') {
    if (LITTLE_ENDIAN) return Buffer.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    const out = Buffer.allocUnsafe(values.length * 4);
    for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
    return out;
  }
  const out = Buffer.allocUnsafe(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(toHalfBits(values[i]), i * 2);
  return out;
}

/**
 * Decodes `count` little-endian values of `dtype` from bytes; the byte length must match
 * exactly, and every value must be finite (a NaN or Inf hidden state is refused, naming the
 * first bad index).
 */
export function decodeValues(bytes: Uint8Array, dtype: HiddenDtype, count: number, field: string): Float32Array {
  const width = bytesPerValue(dtype);
  if (bytes.length !== count * width) {
    throw new RequestError(
      `${field}: payload is ${bytes.length} bytes, expected ${count * width} (${count} ${dtype} values)`,
      { field },
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out = new Float32Array(count);
  if (dtype === 'float32') {
    if (LITTLE_ENDIAN) out = new Float32Array(new Uint8Array(bytes).buffer); // aligned copy
    else for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else {
    const t = table();
    for (let i = 0; i < count; i++) out[i] = t[view.getUint16(i * 2, true)];
  }
  for (let i = 0; i < count; i++) {
    if (!Number.isFinite(out[i])) {
      throw new RequestError(`${field}: value ${i} is ${out[i]}; hidden states must be finite`, { field });
    }
  }
  return out;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 (standard alphabet, padded): Node's decoder silently skips bad characters. */
export function decodeBase64(value: unknown, field: string): Buffer {
  if (typeof value !== 'string') {
    throw new RequestError(`${field} must be a base64 string`, { field });
  }
  if (value.length % 4 !== 0 || !BASE64_RE.test(value)) {
    throw new RequestError(`${field} is not valid base64 (standard alphabet, padded to a multiple of 4)`, { field });
  }
  return Buffer.from(value, 'base64');
}

export function encodeBase64(values: Float32Array, dtype: HiddenDtype): string {
  return encodeValues(values, dtype).toString('base64');
}

// ---- binary frames ----

/** Builds a binary frame: magic, header length, padded JSON header, payload bytes. */
export function packFrame(header: Record<string, unknown>, payload: Uint8Array): Buffer {
  let json = JSON.stringify(header);
  let bytes = Buffer.byteLength(json);
  const pad = (4 - ((8 + bytes) % 4)) % 4;
  if (pad) {
    json += ' '.repeat(pad);
    bytes += pad;
  }
  const out = Buffer.allocUnsafe(8 + bytes + payload.length);
  out.write(BINARY_MAGIC, 0, 'latin1');
  out.writeUInt32LE(bytes, 4);
  out.write(json, 8, 'utf8');
  out.set(payload, 8 + bytes);
  return out;
}

/** Splits a binary frame into its JSON header (an object) and payload; validates the layout. */
export function unpackFrame(frame: Uint8Array): { header: Record<string, unknown>; payload: Uint8Array } {
  const buf = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== BINARY_MAGIC) {
    throw new RequestError(`binary frame must start with "${BINARY_MAGIC}" and a header length`, { field: 'frame' });
  }
  const h = buf.readUInt32LE(4);
  if (h > buf.length - 8) {
    throw new RequestError(`binary frame header length ${h} exceeds the frame (${buf.length} bytes)`, { field: 'frame' });
  }
  let header: unknown;
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + h));
  } catch (err) {
    throw new RequestError(`binary frame header is not valid JSON: ${(err as Error).message}`, { field: 'frame' });
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new RequestError('binary frame header must be a JSON object', { field: 'frame' });
  }
  return { header: header as Record<string, unknown>, payload: buf.subarray(8 + h) };
}
