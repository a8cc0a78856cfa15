/**
 * Binary frames of the private endpoint (WS /api/v1/private/stream), version 1. Every frame is
 *
 *   offset  size  field
 *   0       4     magic "TSPF"
 *   4       1     version (1)
 *   5       1     type (FrameType)
 *   6       2     reserved (0)
 *   8       4     session handle (u32 LE; 0 before `ready`)
 *   12      4     site id (u32 LE)
 *   16      4     sequence number (u32 LE; a reply repeats its request's)
 *   20      4     server HE time of a reply, microseconds (f32 LE; 0 in requests)
 *   24      2     number of blobs (u16 LE)
 *   26      2     reserved (0)
 *   28      ...   blobs: u32 LE length, then the bytes (ciphertexts and keys in the engine's
 *                 versioned serialisation; control messages as one UTF-8 JSON blob)
 *
 * parseFrame checks all of it (sizes, counts, the exact total length) before anything reads a
 * blob, so a malformed or truncated frame is refused without a native call.
 */

export const MAGIC = 0x46505354; // "TSPF" read as u32 LE
export const WIRE_VERSION = 1;
export const HEADER_BYTES = 28;

export enum FrameType {
  Hello = 0x01,
  Adapter = 0x02,
  Open = 0x03,
  Ready = 0x04,
  Close = 0x05,
  Closed = 0x06,
  Round1 = 0x10,
  Round1Reply = 0x11,
  Round2 = 0x12,
  Round2Reply = 0x13,
  OneRound = 0x20,
  OneRoundReply = 0x21,
  Error = 0x7f,
}

const KNOWN = new Set<number>(Object.values(FrameType).filter((v): v is number => typeof v === 'number'));

export interface Frame {
  type: FrameType;
  session: number;
  site: number;
  seq: number;
  serverUs: number;
  blobs: Uint8Array[];
}

export class WireError extends Error {
  readonly code = 'bad_frame';
}

/**
 * One frame in one buffer: the blobs are copied once (a WebSocket message is one buffer; sending
 * them as fragments would only move the copy to the receiver, which joins fragments). The buffer
 * is not zero-filled first (for a reply of ~1 MB that was most of the cost): every byte of it is
 * written below, the reserved fields included.
 */
export function encodeFrame(f: Omit<Frame, 'serverUs'> & { serverUs?: number }): Uint8Array {
  if (f.blobs.length > 0xffff) throw new RangeError('too many blobs in one frame');
  const total = HEADER_BYTES + f.blobs.reduce((s, b) => s + 4 + b.byteLength, 0);
  const out: Uint8Array = Buffer.allocUnsafeSlow(total);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(0, MAGIC, true);
  dv.setUint8(4, WIRE_VERSION);
  dv.setUint8(5, f.type);
  dv.setUint16(6, 0, true);
  dv.setUint16(26, 0, true);
  dv.setUint32(8, f.session >>> 0, true);
  dv.setUint32(12, f.site >>> 0, true);
  dv.setUint32(16, f.seq >>> 0, true);
  dv.setFloat32(20, f.serverUs ?? 0, true);
  dv.setUint16(24, f.blobs.length, true);
  let o = HEADER_BYTES;
  for (const b of f.blobs) {
    dv.setUint32(o, b.byteLength, true);
    out.set(b, o + 4);
    o += 4 + b.byteLength;
  }
  return out;
}

/**
 * Parses and checks a frame. `maxBlobs` and `maxBlobBytes` bound what the caller accepts for this
 * connection's state (checked before the blobs are sliced).
 */
export function parseFrame(data: Uint8Array, limits: { maxBlobs: number; maxBlobBytes: number }): Frame {
  if (!(data instanceof Uint8Array)) throw new WireError('a frame must be binary');
  if (data.byteLength < HEADER_BYTES) throw new WireError(`frame of ${data.byteLength} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new WireError('not a tensafe private frame (bad magic)');
  const version = dv.getUint8(4);
  if (version !== WIRE_VERSION) throw new WireError(`unsupported frame version ${version} (this server speaks ${WIRE_VERSION})`);
  const type = dv.getUint8(5);
  if (!KNOWN.has(type)) throw new WireError(`unknown frame type 0x${type.toString(16)}`);
  if (dv.getUint16(6, true) !== 0 || dv.getUint16(26, true) !== 0) throw new WireError('reserved header fields must be 0');
  const count = dv.getUint16(24, true);
  if (count > limits.maxBlobs) throw new WireError(`frame holds ${count} blobs, at most ${limits.maxBlobs} allowed here`);
  const blobs: Uint8Array[] = [];
  let o = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (o + 4 > data.byteLength) throw new WireError(`frame truncated in the length of blob ${i}`);
    const len = dv.getUint32(o, true);
    if (len > limits.maxBlobBytes) throw new WireError(`blob ${i} of ${len} bytes exceeds the limit of ${limits.maxBlobBytes}`);
    if (o + 4 + len > data.byteLength) throw new WireError(`frame truncated in blob ${i} (${len} bytes announced)`);
    blobs.push(data.subarray(o + 4, o + 4 + len));
    o += 4 + len;
  }
  if (o !== data.byteLength) throw new WireError(`frame has ${data.byteLength - o} bytes after its last blob`);
  return { type, session: dv.getUint32(8, true), site: dv.getUint32(12, true), seq: dv.getUint32(16, true), serverUs: dv.getFloat32(20, true), blobs };
}

export function jsonBlob(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** Parses a JSON control blob into an object (a WireError otherwise). */
export function parseJsonBlob(b: Uint8Array | undefined, what: string): Record<string, unknown> {
  if (!b) throw new WireError(`${what}: the JSON blob is missing`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new WireError(`${what}: the JSON blob is not UTF-8`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new WireError(`${what}: the JSON blob does not parse`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new WireError(`${what}: the JSON blob must be an object`);
  return v as Record<string, unknown>;
}
