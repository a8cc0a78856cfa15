/**
 * Reference implementations (BigInt, from the documented layouts of native/src/ckks/sampling.h
 * and serialize.cc) that the CKKS tests compare the engines against: the ChaCha20 words come
 * from the addon's tested keystream (RFC 7539 vector in ckks.test.ts), everything built on
 * them is re-derived here.
 */
import { native } from '../../src/engine/native';

const TWO64 = 1n << 64n;
const TWO128 = 1n << 128n;

/** The ChaCha20 key of a seeded context: the 256-bit seed, little-endian. */
export function seedKey(seed: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((seed >> BigInt(8 * i)) & 0xffn);
  return out;
}

export function chachaWords(key: Uint8Array, stream: bigint, start: bigint, count: number): BigUint64Array {
  return native().ckksTesting.chacha20Words(key, stream, start, count);
}

/** A stream read in order (rejection samplers consume a data-dependent number of words). */
class Cursor {
  private buf = new BigUint64Array(0);
  private pos = 0;
  private start = 0n;
  constructor(
    private readonly key: Uint8Array,
    private readonly stream: bigint,
  ) {}
  next(): bigint {
    if (this.pos === this.buf.length) {
      this.buf = chachaWords(this.key, this.stream, this.start, 8192);
      this.start += 8192n;
      this.pos = 0;
    }
    return this.buf[this.pos++];
  }
}

/** sampleWords 'uniform': per limb, accept w < 2^64 - (2^64 mod q), value w mod q. */
export function refUniformExact(key: Uint8Array, stream: bigint, moduli: bigint[], count: number): bigint[] {
  const c = new Cursor(key, stream);
  const out: bigint[] = [];
  for (const q of moduli) {
    const limit = TWO64 - (TWO64 % q);
    for (let j = 0; j < count; ) {
      const w = c.next();
      if (w < limit) {
        out.push(w % q);
        j++;
      }
    }
  }
  return out;
}

/** sampleWords 'centered': e uniform on [-2^bits, 2^bits] per position, as residues (limb-major). */
export function refCentered(key: Uint8Array, stream: bigint, moduli: bigint[], count: number, bits: number): { e: bigint[]; words: bigint[] } {
  const c = new Cursor(key, stream);
  const half = 1n << BigInt(bits);
  const M = 2n * half + 1n;
  const limit = TWO128 - (TWO128 % M);
  const e: bigint[] = [];
  for (let j = 0; j < count; j++) {
    let v: bigint;
    do {
      const lo = c.next();
      const hi = c.next();
      v = (hi << 64n) | lo;
    } while (v >= limit);
    e.push((v % M) - half);
  }
  const words: bigint[] = [];
  for (const q of moduli) for (const x of e) words.push(((x % q) + q) % q);
  return { e, words };
}

/** The 128-bit-reduction uniform sampler of keys and encryptions: NTT-domain words of `limbs` primes. */
export function refUniform128(key: Uint8Array, stream: bigint, moduli: bigint[], n: number): bigint[] {
  const w = chachaWords(key, stream, 0n, 2 * moduli.length * n);
  const out: bigint[] = [];
  moduli.forEach((q, l) => {
    for (let j = 0; j < n; j++) out.push(((w[2 * (l * n + j) + 1] << 64n) | w[2 * (l * n + j)]) % q);
  });
  return out;
}

/** FNV-1a 64 of bytes (the checksum of serialisation versions 1 and 2). */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & (TWO64 - 1n);
  }
  return h;
}

/**
 * The word checksum of serialisation versions 3 and 4, written from its definition in
 * native/src/ckks/serialize.cc: the bytes as little-endian u64 words (the last one zero-padded),
 * word i in lane i % 8, h = (h ^ w) * G then h ^= h >> 32 per lane; the lanes folded the same way
 * into F ^ length.
 */
export function wordChecksum64(bytes: Uint8Array): bigint {
  const F = 0xcbf29ce484222325n;
  const G = 0x9e3779b97f4a7c15n;
  const M = TWO64 - 1n;
  const step = (h: bigint, w: bigint): bigint => {
    const x = ((h ^ w) * G) & M;
    return x ^ (x >> 32n);
  };
  const lanes = Array.from({ length: 8 }, (_, k) => F ^ BigInt(k));
  const padded = new Uint8Array(Math.ceil(bytes.length / 8) * 8);
  padded.set(bytes);
  const dv = new DataView(padded.buffer);
  for (let i = 0; i < padded.length / 8; i++) lanes[i % 8] = step(lanes[i % 8], dv.getBigUint64(8 * i, true));
  return lanes.reduce(step, F ^ BigInt(bytes.length));
}

/** The checksum serialised bytes of this format version carry over `body` (everything before it). */
export function objectChecksum(version: number, body: Uint8Array): bigint {
  return version >= 3 ? wordChecksum64(body) : fnv1a64(body);
}

/** Rewrites the trailing checksum of serialised bytes after an edit (for the version in their header). */
export function resum(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer, out.byteOffset);
  dv.setBigUint64(out.length - 8, objectChecksum(dv.getUint16(4, true), out.subarray(0, out.length - 8)), true);
  return out;
}

/** Chi-square statistic of counts against equal expected frequencies. */
export function chiSquare(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const expected = total / counts.length;
  return counts.reduce((s, c) => s + ((c - expected) * (c - expected)) / expected, 0);
}

/**
 * A generous upper bound of the chi-square distribution's quantile at p = 1e-6 for `dof`
 * degrees of freedom (Wilson-Hilferty with z = 4.75): a correct sampler fails about once in
 * a million runs.
 */
export function chiSquareLimit(dof: number): number {
  const z = 4.75;
  const a = 2 / (9 * dof);
  return dof * (1 - a + z * Math.sqrt(a)) ** 3;
}

/** Centred value of x mod q. */
export function centred(x: bigint, q: bigint): bigint {
  return x > q / 2n ? x - q : x;
}
