/**
 * References for the fused operations of the private protocols (Ckks.sanitizeProducts,
 * traceRotations, partial replies): the compositions of the single operations they replace,
 * written as the protocols wrote them before (sampleWords -> plaintextFromWords -> multiplyPlain
 * -> addPlain -> rerandomize -> rescale -> serialize), and the byte-level facts of the reply
 * format (native/src/ckks/serialize.cc) for crafting corrupt replies.
 */
import { randomBytes } from 'node:crypto';
import type { Ckks } from '../../src/engine/ckks';
import type { Ciphertext, GaloisKeys, Plaintext, PublicKey } from '../../src/engine/ckks/handles';
import type { SanitizeOptions } from '../../src/engine/ckks/native-api';
import { objectChecksum } from './ckks-reference';

/** sanitizeProducts by the single operations (stream ids per product: mask, flood, rerandomisation). */
export function composedSanitize(c: Ckks, ct: Ciphertext, pts: Plaintext[], pk: PublicKey, o: SanitizeOptions): { replies: Uint8Array[]; masks?: BigUint64Array[] } {
  const n = c.polyN;
  const limbs = ct.limbs;
  const replies: Uint8Array[] = [];
  const masks: BigUint64Array[] = [];
  pts.forEach((pt, p) => {
    const mask = c.sampleWords({ limbs, count: n, distribution: 'uniform' });
    const read = o.read?.[p];
    if (read) {
      const flood = o.floodBits ? c.sampleWords({ limbs, count: read.length, distribution: 'centered', bits: o.floodBits }) : undefined;
      for (let l = 0; l < limbs; l++) for (let k = 0; k < read.length; k++) mask[l * n + read[k]] = flood ? flood[l * read.length + k] : 0n;
    }
    const at = o.returnMaskAt?.[p];
    if (at) masks.push(gatherWords(mask, limbs, n, at));
    const mpt = c.plaintextFromWords(mask, { limbs, scale: ct.scale * pt.scale, encoding: 'coefficients' });
    const chain = [c.multiplyPlain(ct, pt)];
    chain.push(c.addPlain(chain[0], mpt));
    chain.push(c.rerandomize(chain[1], pk));
    for (let r = 0; r < (o.rescale ?? 0); r++) chain.push(c.rescale(chain[chain.length - 1]));
    const last = chain[chain.length - 1];
    replies.push(o.format === 'full' ? c.serialize(last) : c.serializeReply(last, o.keep?.[p] ?? (read as Uint32Array)));
    for (const x of chain) x.dispose();
    mpt.dispose();
  });
  return o.returnMaskAt ? { replies, masks } : { replies };
}

/** traceRotations by the single operations. */
export function composedTrace(c: Ckks, ct: Ciphertext, steps: number[], gk: GaloisKeys): Ciphertext {
  let x = ct;
  for (const s of steps) {
    const r = c.rotate(x, s, gk);
    const next = c.add(x, r);
    r.dispose();
    if (x !== ct) x.dispose();
    x = next;
  }
  return x;
}

/** words[l*stride + positions[k]] for every limb, limb-major. */
export function gatherWords(words: BigUint64Array, limbs: number, stride: number, positions: ArrayLike<number>): BigUint64Array {
  const out = new BigUint64Array(limbs * positions.length);
  for (let l = 0; l < limbs; l++) for (let k = 0; k < positions.length; k++) out[l * positions.length + k] = words[l * stride + positions[k]];
  return out;
}

/** `count` distinct sorted positions below n from OS randomness, always with 0 and n - 1 when count >= 2. */
export function randomPositions(n: number, count: number): Uint32Array {
  const set = new Set<number>(count >= 2 ? [0, n - 1] : []);
  const raw = new Uint32Array(randomBytes(4 * (4 * count + 8)).buffer);
  for (let i = 0; set.size < count && i < raw.length; i++) set.add(raw[i] % n);
  for (let j = 0; set.size < count; j++) set.add(j);
  return Uint32Array.from([...set].sort((a, b) => a - b));
}

/** Bytes of a partial reply: 24 header + 16 + positions (padded to 8) + c0 at them + c1 + 8 checksum. */
export function replyBytes(n: number, limbs: number, count: number): number {
  return 24 + 16 + 4 * count + (count % 2 ? 4 : 0) + 8 * limbs * count + 8 * limbs * n + 8;
}

/** A copy of serialised bytes with `edit` applied and the checksum recomputed (a well-formed lie). */
export function reseal(bytes: Uint8Array, edit: (dv: DataView) => void): Uint8Array {
  const out = Uint8Array.from(bytes);
  const dv = new DataView(out.buffer);
  edit(dv);
  dv.setBigUint64(out.length - 8, objectChecksum(dv.getUint16(4, true), out.subarray(0, out.length - 8)), true);
  return out;
}

/** `count` integers in [-amp, amp] (Math.random: test data), then zeros up to n. */
export function randomInts(n: number, count: number, amp: number): Float64Array {
  const v = new Float64Array(n);
  for (let j = 0; j < count; j++) v[j] = Math.floor(Math.random() * (2 * amp + 1)) - amp;
  return v;
}

/** The option sets sanitizeProducts is checked on (CPU against the composition, CUDA against the CPU). */
export function sanitizeCases(n: number): Array<{ name: string; P: number; options: () => SanitizeOptions }> {
  const read = (P: number, count: number) => Array.from({ length: P }, () => randomPositions(n, count));
  return [
    { name: 'two-round round 1: maskAll, shares at the read rows, partial at them, one rescale', P: 3, options: () => { const r = read(3, 20); return { maskAll: true, keep: r, returnMaskAt: r, rescale: 1, format: 'partial' }; } },
    { name: 'last round: read flooded (70 bits), partial, one rescale', P: 2, options: () => ({ read: read(2, 64), floodBits: 70, rescale: 1, format: 'partial' }) },
    { name: 'read without flooding, partial, no rescale', P: 1, options: () => ({ read: read(1, 5), rescale: 0, format: 'partial' }) },
    { name: 'read flooded (50 bits), full, two rescales', P: 2, options: () => ({ read: read(2, 33), floodBits: 50, rescale: 2, format: 'full' }) },
    { name: 'maskAll, full, shares returned, no rescale', P: 1, options: () => ({ maskAll: true, returnMaskAt: read(1, 7), format: 'full' }) },
    { name: 'read flooded, keep elsewhere, shares at other positions, two rescales, partial', P: 2, options: () => ({ read: read(2, 9), floodBits: 40, keep: read(2, 12), returnMaskAt: read(2, 3), rescale: 2, format: 'partial' }) },
  ];
}
