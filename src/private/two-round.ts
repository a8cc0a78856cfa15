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
 */
import type { Ckks } from '../engine/ckks/ckks';
import type { Ciphertext, Plaintext, PublicKey, SecretKey } from '../engine/ckks/handles';
import { inputShift, type SiteBudget } from './budget';
import { packA, packB, packInput, readPositions, readPositions1, rowsOf1, type SiteLayout, type TwoRoundLayout } from './layout';
import type { SitePrivate, SitePublic } from './sites';
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
  round1(x: ArrayLike<number>, xMax?: number): ClientRound1 {
    return encryptInput(this.ckks, this.secretKey, this.layout, this.budget, this.rns.limbs, x, xMax);
  }

  /** From the server's masked products, the client's share u, re-encrypted for round 2 (L - 1 primes). */
  round2(replies: Uint8Array[]): Uint8Array {
    const L = this.layout;
    const limbs = this.rns.limbs - 1;
    if (replies.length !== L.products1) throw new RangeError(`round 1 reply must hold ${L.products1} ciphertexts, got ${replies.length}`);
    const u = this.rns.zeros(limbs);
    let row = 0;
    for (let p = 0; p < L.products1; p++) {
      const ct = this.ckks.deserializeCiphertext(replies[p]);
      let pt: Plaintext | undefined;
      try {
        if (ct.limbs !== limbs) throw new RangeError(`round 1 reply ${p} has ${ct.limbs} primes, expected ${limbs}`);
        pt = this.ckks.decrypt(ct, this.secretKey);
        const words = this.ckks.plaintextWords(pt);
        for (const pos of readPositions1(L, p)) this.rns.set(u, row++, this.rns.get(words, pos, limbs));
      } finally {
        disposeAll([pt, ct]);
      }
    }
    const pt = this.ckks.plaintextFromWords(u, { limbs, scale: 1, encoding: 'coefficients' });
    try {
      const ct = this.ckks.encryptSymmetric(pt, this.secretKey, { compact: true });
      try {
        return this.ckks.serialize(ct);
      } finally {
        ct.dispose();
      }
    } finally {
      pt.dispose();
    }
  }

  /** The site's outputs (outDim values, module slices in order) from the round-2 replies. */
  finish(replies: Uint8Array[], xShift: number): Float64Array {
    return readOutputs(this.ckks, this.secretKey, this.layout, replies, 2 ** -(xShift + this.site.aShift + this.site.bShift + this.budget.unitLog2));
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
): { request: Uint8Array; xShift: number } {
  let m = xMax ?? 0;
  if (xMax === undefined) for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j]));
  const xShift = inputShift(budget, m);
  const v = packInput(layout, x);
  const f = 2 ** xShift;
  for (let j = 0; j < v.length; j++) v[j] *= f;
  const pt = ckks.encodeCoefficients(v, { limbs, scale: 1 });
  try {
    const ct = ckks.encryptSymmetric(pt, secretKey, { compact: true });
    try {
      return { request: ckks.serialize(ct), xShift };
    } finally {
      ct.dispose();
    }
  } finally {
    pt.dispose();
  }
}

/** Decrypts the last round's replies and reads the site's outputs, each times `unit`. */
export function readOutputs(ckks: Ckks, secretKey: SecretKey, layout: SiteLayout, replies: Uint8Array[], unit: number): Float64Array {
  if (replies.length !== layout.products2) throw new RangeError(`the reply must hold ${layout.products2} ciphertexts, got ${replies.length}`);
  const out = new Float64Array(layout.shape.outDim);
  let k = 0;
  for (let p = 0; p < layout.products2; p++) {
    const ct = ckks.deserializeCiphertext(replies[p]);
    let pt: Plaintext | undefined;
    try {
      pt = ckks.decrypt(ct, secretKey);
      const values = ckks.decodeCoefficients(pt);
      for (const pos of readPositions(layout, p)) out[k++] = values[pos] * unit;
    } finally {
      disposeAll([pt, ct]);
    }
  }
  return out;
}

/** The server's share of a round-1 answer: m at the read coefficients, one residue list per row. */
export type ServerShare = bigint[][];

/** The adapter holder's side of the two-round protocol at one site (no secret key). */
export class TwoRoundServer {
  private readonly rns: RnsWords;
  private readonly aPlain: Plaintext[] = [];
  private readonly bPlain: Plaintext[] = [];
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
   * round 2 runs over the other primes; the server keeps its share round(m / q_top).
   */
  round1(request: Uint8Array): { replies: Uint8Array[]; share: ServerShare } {
    if (this.disposed) throw new Error('TwoRoundServer is disposed');
    const L = this.layout;
    const limbs = this.rns.limbs;
    const ct = this.ckks.deserializeCiphertext(request);
    const replies: Uint8Array[] = [];
    const share: ServerShare = [];
    try {
      this.checkInput(ct, 'round 1', limbs);
      for (let p = 0; p < L.products1; p++) {
        const mask = this.ckks.sampleWords({ limbs, count: L.polyN, distribution: 'uniform' });
        for (const pos of readPositions1(L, p)) share.push(this.rns.divRound(this.rns.get(mask, pos)));
        const mpt = this.ckks.plaintextFromWords(mask, { limbs, scale: 1, encoding: 'coefficients' });
        const chain: Ciphertext[] = [];
        try {
          chain.push(this.ckks.multiplyPlain(ct, this.aPlain[p]));
          chain.push(this.ckks.addPlain(chain[0], mpt));
          chain.push(this.ckks.rerandomize(chain[1], this.publicKey));
          chain.push(this.ckks.rescale(chain[2]));
          replies.push(this.ckks.serialize(chain[3]));
        } finally {
          disposeAll([...chain, mpt]);
        }
      }
      if (share.length !== L.shape.rank) throw new Error(`internal: ${share.length} shares for rank ${L.shape.rank}`);
      return { replies, share };
    } finally {
      ct.dispose();
    }
  }

  /** B applied to the unmasked share, flooded, masked, rerandomised and rescaled. */
  round2(request: Uint8Array, share: ServerShare): Uint8Array[] {
    if (this.disposed) throw new Error('TwoRoundServer is disposed');
    const L = this.layout;
    const limbs = this.rns.limbs - 1;
    const neg = this.rns.zeros(limbs);
    share.forEach((m, i) => this.rns.set(neg, i, this.rns.negate(m)));
    const ct = this.ckks.deserializeCiphertext(request);
    const negPt = this.ckks.plaintextFromWords(neg, { limbs, scale: 1, encoding: 'coefficients' });
    let v: Ciphertext | undefined;
    const replies: Uint8Array[] = [];
    try {
      this.checkInput(ct, 'round 2', limbs);
      v = this.ckks.addPlain(ct, negPt);
      for (let p = 0; p < L.products2; p++) replies.push(this.sanitisedProduct(v, this.bPlain[p], readPositions(L, p)));
      return replies;
    } finally {
      disposeAll([v, negPt, ct]);
    }
  }

  /** ct * pt, then flood at `keep`, uniform mask elsewhere, rerandomise, rescale. */
  private sanitisedProduct(ct: Ciphertext, pt: Plaintext, keep: Uint32Array): Uint8Array {
    return sanitisedProduct(this.ckks, this.publicKey, this.rns, this.budget, ct, pt, keep);
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
 * The last step of both protocols: the product ct * pt with every coefficient the client must not
 * read replaced by a uniform mask, the read ones flooded (2^floodLog2 bound; none when the budget's
 * flooding is off), then a fresh c1 (rerandomise) and `dropLimbs` rescales.
 */
export function sanitisedProduct(
  ckks: Ckks,
  publicKey: PublicKey,
  rns: RnsWords,
  budget: SiteBudget,
  ct: Ciphertext,
  pt: Plaintext,
  keep: Uint32Array,
): Uint8Array {
  const limbs = ct.limbs;
  const mask = ckks.sampleWords({ limbs, count: rns.n, distribution: 'uniform' });
  if (Number.isFinite(budget.floodLog2)) {
    const flood = ckks.sampleWords({ limbs, count: keep.length, distribution: 'centered', bits: Math.ceil(budget.floodLog2) });
    for (let k = 0; k < keep.length; k++) for (let l = 0; l < limbs; l++) mask[l * rns.n + keep[k]] = flood[l * keep.length + k];
  } else {
    for (let k = 0; k < keep.length; k++) for (let l = 0; l < limbs; l++) mask[l * rns.n + keep[k]] = 0n;
  }
  const mpt = ckks.plaintextFromWords(mask, { limbs, scale: ct.scale * pt.scale, encoding: 'coefficients' });
  const chain: Ciphertext[] = [];
  try {
    chain.push(ckks.multiplyPlain(ct, pt));
    chain.push(ckks.addPlain(chain[chain.length - 1], mpt));
    chain.push(ckks.rerandomize(chain[chain.length - 1], publicKey));
    for (let d = 0; d < budget.dropLimbs; d++) chain.push(ckks.rescale(chain[chain.length - 1]));
    return ckks.serialize(chain[chain.length - 1]);
  } finally {
    disposeAll(chain);
    mpt.dispose();
  }
}

/** Rows of round-1 product p (re-exported for the wire checks). */
export { rowsOf1 };
