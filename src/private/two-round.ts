/**
 * The `two-round` private protocol for one site (no rotations, no Galois keys): additive shares of
 * A x mod Q between the rounds. Written for any CKKS backend of the engine (CPU or CUDA contexts
 * give the same words); the argument of who learns what is in src/server/PROTOCOL.md.
 *
 *   client                                         server (A_int, B_int, public key of the client)
 *   X = x 2^xShift in coefficients
 *   ct_x = Enc_s(X) (compact)        --- r1 --->   for p < products1:
 *                                                     c_p = ct_x * A_p                    (coefficient o_k: v = A_int x_int + noise)
 *                                                     c_p += M_p, M_p uniform mod Q        (every coefficient: a one-time pad)
 *                                                     c_p = rerandomise(c_p)               (fresh c1: A cannot be divided out)
 *                                   <--- r1' ---     keeps m = M_p at the read coefficients (its share)
 *   u = Dec(c_p) at o_k: u = v + m mod Q  (uniform: the client learns nothing)
 *   ct_u = Enc_s(sum_i u_i t^i)      --- r2 --->   d = ct_u - sum_i m_i t^i                (now encrypts v)
 *                                                  for p < products2:
 *                                                     c_p = d * B_p                        (coefficient k: B_int v)
 *                                                     read coefficients += flood (uniform, +-2^lambda beta)
 *                                                     other coefficients += uniform mask
 *                                                     rerandomise, rescale (drop limbs)
 *   delta = Dec(c_p) at the read       <--- r2' ---
 *           coefficients / 2^(xShift + aShift + bShift)
 *
 * Both rounds work modulo the same Q (all limbs): the shares must be subtracted exactly.
 *
 * Every reply is a partial one (Ckks.serializeReply): c0 only at the coefficients the client
 * reads, c1 whole; the server's work per round is one Ckks.sanitizeProducts call, off the JS
 * thread; the client's round 2 is one Ckks.reencryptReplies call (decrypt, share words,
 * re-encryption) and its last step one Ckks.decryptReplies call.
 */
import type { Ckks } from '../engine/ckks/ckks';
import type { Ciphertext, Plaintext, PublicKey, SecretKey } from '../engine/ckks/handles';
import type { DecryptedReply, SanitizeOptions } from '../engine/ckks/native-api';
import { inputShift, type SiteBudget } from './budget';
import { packA, packB, packInput, readPositions, readPositions1, rowsOf1, type SiteLayout, type TwoRoundLayout } from './layout';
import type { SitePrivate, SitePublic } from './sites';
import { addNativePhases, stopwatch, type PhaseLog } from './phase-log';
import { RnsWords } from './words';

/** Disposes handles even when a step throws. */
function disposeAll(xs: Array<{ dispose(): void } | undefined>): void {
  for (const x of xs) x?.dispose();
}

export interface ClientRound1 {
  /** Serialised compact ciphertext of the input. */
  request: Uint8Array;
  xShift: number;
}

/** The key holder's side of the two-round protocol at one site. */
export class TwoRoundClient {
  private readonly rns: RnsWords;
  constructor(
    private readonly ckks: Ckks,
    private readonly secretKey: SecretKey,
    readonly site: SitePublic,
    readonly layout: TwoRoundLayout,
    readonly budget: SiteBudget,
    moduli: readonly bigint[],
  ) {
    this.rns = new RnsWords(moduli, layout.polyN);
  }

  /** Encrypts the site's input. xMax defaults to max |x|. */
  round1(x: ArrayLike<number>, xMax?: number, phases?: PhaseLog): ClientRound1 {
    return encryptInput(this.ckks, this.secretKey, this.layout, this.budget, this.rns.limbs, x, xMax, phases);
  }

  /**
   * From the server's masked products, the client's share u, re-encrypted for round 2 (L - 1
   * primes): one native call off the JS thread (Ckks.reencryptReplies: decrypt at the read
   * coefficients, check them, u_k at coefficient k, compact encryption, serialisation).
   */
  async round2(replies: Uint8Array[], phases?: PhaseLog): Promise<Uint8Array> {
    const L = this.layout;
    if (replies.length !== L.products1) throw new RangeError(`round 1 reply must hold ${L.products1} ciphertexts, got ${replies.length}`);
    const expect = Array.from({ length: L.products1 }, (_, p) => readPositions1(L, p));
    const lap = stopwatch(phases);
    const { request, timings } = await this.ckks.reencryptReplies(replies, this.secretKey, { expect, limbs: this.rns.limbs - 1, timings: phases !== undefined });
    lap('reencrypt');
    addNativePhases(phases, 'reencrypt', timings);
    return request;
  }

  /** The site's outputs (outDim values, module slices in order) from the round-2 replies. */
  finish(replies: Uint8Array[], xShift: number, phases?: PhaseLog): Promise<Float64Array> {
    return readOutputs(this.ckks, this.secretKey, this.layout, replies, 2 ** -(xShift + this.site.aShift + this.site.bShift + this.budget.unitLog2), phases);
  }
}

/** Encrypts a site input x * 2^xShift in coefficients (compact, scale 1: the scale field must not reveal xShift). */
export function encryptInput(
  ckks: Ckks,
  secretKey: SecretKey,
  layout: SiteLayout,
  budget: SiteBudget,
  limbs: number,
  x: ArrayLike<number>,
  xMax?: number,
  phases?: PhaseLog,
): { request: Uint8Array; xShift: number } {
  const lap = stopwatch(phases);
  let m = xMax ?? 0;
  if (xMax === undefined) for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j]));
  const xShift = inputShift(budget, m);
  const v = packInput(layout, x);
  const f = 2 ** xShift;
  for (let j = 0; j < v.length; j++) v[j] *= f;
  lap('pack');
  const pt = ckks.encodeCoefficients(v, { limbs, scale: 1 });
  try {
    const ct = ckks.encryptSymmetric(pt, secretKey, { compact: true });
    lap('encrypt');
    try {
      const request = ckks.serialize(ct);
      lap('serialize');
      return { request, xShift };
    } finally {
      ct.dispose();
    }
  } finally {
    pt.dispose();
  }
}

/** A reply must carry exactly the coefficients the client reads there; returns their count. */
function checkReplyPositions(d: DecryptedReply, want: Uint32Array, what: string): number {
  if (d.positions.length !== want.length || d.positions.some((p, k) => p !== want[k])) {
    throw new RangeError(`${what} carries coefficients [${d.positions.slice(0, 4).join(', ')}...] instead of the ${want.length} the client reads`);
  }
  return want.length;
}

/** Decrypts the last round's partial replies (off the JS thread) and reads the site's outputs, each times `unit`. */
export async function readOutputs(ckks: Ckks, secretKey: SecretKey, layout: SiteLayout, replies: Uint8Array[], unit: number, phases?: PhaseLog): Promise<Float64Array> {
  if (replies.length !== layout.products2) throw new RangeError(`the reply must hold ${layout.products2} ciphertexts, got ${replies.length}`);
  const lap = stopwatch(phases);
  const decrypted = await ckks.decryptReplies(replies, secretKey, phases ? { timings: true } : undefined);
  lap('decrypt');
  addNativePhases(phases, 'decrypt', decrypted.timings);
  const out = new Float64Array(layout.shape.outDim);
  let k = 0;
  decrypted.forEach((d, p) => {
    const count = checkReplyPositions(d, readPositions(layout, p), `reply ${p}`);
    for (let i = 0; i < count; i++) out[k++] = d.values[i] * unit;
  });
  lap('read');
  return out;
}

/** The server's share of a round-1 answer: m at the read coefficients, one residue list per row. */
export type ServerShare = bigint[][];

/** The adapter holder's side of the two-round protocol at one site (no secret key). */
export class TwoRoundServer {
  private readonly rns: RnsWords;
  private readonly aPlain: Plaintext[] = [];
  private readonly bPlain: Plaintext[] = [];
  /** Round 1's reply (and share) positions and the last round's options: fixed per site. */
  private readonly keep1: Uint32Array[];
  private readonly last: SanitizeOptions;
  private disposed = false;

  constructor(
    private readonly ckks: Ckks,
    private readonly publicKey: PublicKey,
    readonly site: SitePrivate,
    readonly layout: TwoRoundLayout,
    readonly budget: SiteBudget,
    moduli: readonly bigint[],
  ) {
    this.rns = new RnsWords(moduli, layout.polyN);
    const limbs = this.rns.limbs;
    this.keep1 = Array.from({ length: layout.products1 }, (_, p) => readPositions1(layout, p));
    this.last = lastRoundOptions(layout, budget);
    try {
      for (let p = 0; p < layout.products1; p++) {
        const pt = ckks.encodeCoefficients(packA(layout, site.aInt, p), { limbs, scale: 1 });
        ckks.prepareMultiplier(pt);
        this.aPlain.push(pt);
      }
      for (let p = 0; p < layout.products2; p++) {
        const pt = ckks.encodeCoefficients(packB(layout, site.bInt, p), { limbs, scale: 1 });
        ckks.prepareMultiplier(pt);
        this.bPlain.push(pt);
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  private checkInput(ct: Ciphertext, what: string, limbs: number): void {
    if (ct.limbs !== limbs) throw new RangeError(`${what}: the ciphertext has ${ct.limbs} primes, expected ${limbs}`);
    if (ct.scale !== 1) throw new RangeError(`${what}: the ciphertext's scale must be 1 (got ${ct.scale})`);
  }

  /**
   * Masked, rerandomised products of the input with A, rescaled once (by the top prime) so that
   * round 2 runs over the other primes; the server keeps its share round(m / q_top). One fused
   * call off the JS thread: c = ct_x A_p + M_p (M_p uniform everywhere), rerandomise, rescale,
   * partial reply at the read coefficients (the only ones the client decrypts).
   */
  async round1(request: Uint8Array, phases?: PhaseLog): Promise<{ replies: Uint8Array[]; share: ServerShare }> {
    if (this.disposed) throw new Error('TwoRoundServer is disposed');
    const L = this.layout;
    const limbs = this.rns.limbs;
    const lap = stopwatch(phases);
    const ct = this.ckks.deserializeCiphertext(request);
    lap('deserialize');
    try {
      this.checkInput(ct, 'round 1', limbs);
      const keep = this.keep1;
      const { replies, masks, timings } = await this.ckks.sanitizeProducts(ct, this.aPlain, this.publicKey, { maskAll: true, keep, returnMaskAt: keep, rescale: 1, format: 'partial', timings: phases !== undefined });
      lap('sanitize');
      addNativePhases(phases, 'sanitize', timings);
      const share: ServerShare = [];
      keep.forEach((pos, p) => {
        for (let k = 0; k < pos.length; k++) share.push(this.rns.divRound(this.rns.entry((masks as BigUint64Array[])[p], k, pos.length, limbs)));
      });
      if (share.length !== L.shape.rank) throw new Error(`internal: ${share.length} shares for rank ${L.shape.rank}`);
      lap('share');
      return { replies, share };
    } finally {
      ct.dispose();
    }
  }

  /** B applied to the unmasked share, flooded, masked, rerandomised and rescaled (one fused call). */
  async round2(request: Uint8Array, share: ServerShare, phases?: PhaseLog): Promise<Uint8Array[]> {
    if (this.disposed) throw new Error('TwoRoundServer is disposed');
    const limbs = this.rns.limbs - 1;
    const lap = stopwatch(phases);
    const neg = this.rns.zeros(limbs);
    share.forEach((m, i) => this.rns.set(neg, i, this.rns.negate(m)));
    const ct = this.ckks.deserializeCiphertext(request);
    lap('deserialize');
    const negPt = this.ckks.plaintextFromWords(neg, { limbs, scale: 1, encoding: 'coefficients' });
    let v: Ciphertext | undefined;
    try {
      this.checkInput(ct, 'round 2', limbs);
      v = this.ckks.addPlain(ct, negPt);
      lap('unshare');
      const { replies, timings } = await this.ckks.sanitizeProducts(v, this.bPlain, this.publicKey, { ...this.last, timings: phases !== undefined });
      lap('sanitize');
      addNativePhases(phases, 'sanitize', timings);
      return replies;
    } finally {
      disposeAll([v, negPt, ct]);
    }
  }

  dispose(): void {
    this.disposed = true;
    disposeAll(this.aPlain);
    disposeAll(this.bPlain);
    this.aPlain.length = 0;
    this.bPlain.length = 0;
  }
}

/**
 * The last step of both protocols, for Ckks.sanitizeProducts: in product p, every coefficient the
 * client must not read masked (uniform), the read ones flooded (2^floodLog2 bound; left as they
 * are when the budget's flooding is off), then a fresh c1 (rerandomise) and `dropLimbs` rescales;
 * the reply carries c0 at the read coefficients only.
 */
export function lastRoundOptions(layout: SiteLayout, budget: SiteBudget): SanitizeOptions {
  return {
    read: Array.from({ length: layout.products2 }, (_, p) => readPositions(layout, p)),
    floodBits: Number.isFinite(budget.floodLog2) ? Math.ceil(budget.floodLog2) : 0,
    rescale: budget.dropLimbs,
    format: 'partial',
  };
}

/** Rows of round-1 product p (re-exported for the wire checks). */
export { rowsOf1 };
