/**
 * The `one-round` private protocol for one site: the server cleans A x inside the ciphertext with
 * Galois automorphisms (keys supplied by the client at session setup), applies B and answers in the
 * same round. The argument of who learns what is in src/server/PROTOCOL.md.
 *
 *   client                                        server (A_int, B_int, public key, Galois keys)
 *   ct_x = Enc_s(x 2^xShift) (compact)  --->    c = ct_x * A_S               (coefficient i S: v_i = A_int[i] . x_int)
 *                                               c = Tr(c) = prod_j (1 + sigma_gj)(c)
 *                                                   (each sigma: a rotation with the client's key;
 *                                                    coefficients off the multiples of S vanish,
 *                                                    those on them are multiplied by S)
 *                                               for p < products2:
 *                                                  d_p = c * B_p               (coefficient k: S (B_int v)[p S + k])
 *                                                  flood the read coefficients, mask the others,
 *                                                  rerandomise, rescale
 *   delta = Dec(d_p)[k] / (S 2^(xShift+aShift+bShift))  <---
 *
 * The server's work is two fused calls off the JS thread (Ckks.traceRotations, then
 * Ckks.sanitizeProducts); the replies are partial (c0 at the read coefficients only).
 */
import type { Ckks } from '../engine/ckks/ckks';
import type { Ciphertext, GaloisKeys, Plaintext, PublicKey, SecretKey } from '../engine/ckks/handles';
import type { SanitizeOptions } from '../engine/ckks/native-api';
import type { SiteBudget } from './budget';
import { galoisStep, packAStrided, packBStrided, type OneRoundLayout } from './layout';
import { addNativePhases, stopwatch, type PhaseLog } from './phase-log';
import type { SitePrivate, SitePublic } from './sites';
import { encryptInput, lastRoundOptions, readOutputs } from './two-round';
import { RnsWords } from './words';

/** The rotation steps whose keys the server needs for a layout's trace. */
export function traceSteps(layout: OneRoundLayout): number[] {
  return layout.traceElements.map((g) => galoisStep(g, layout.polyN));
}

export class OneRoundClient {
  private readonly limbs: number;
  constructor(
    private readonly ckks: Ckks,
    private readonly secretKey: SecretKey,
    readonly site: SitePublic,
    readonly layout: OneRoundLayout,
    readonly budget: SiteBudget,
    moduli: readonly bigint[],
  ) {
    this.limbs = moduli.length;
  }

  request(x: ArrayLike<number>, xMax?: number, phases?: PhaseLog): { request: Uint8Array; xShift: number } {
    return encryptInput(this.ckks, this.secretKey, this.layout, this.budget, this.limbs, x, xMax, phases);
  }

  /** The trace multiplied every read value by the stride: divided out here. */
  finish(replies: Uint8Array[], xShift: number, phases?: PhaseLog): Promise<Float64Array> {
    return readOutputs(this.ckks, this.secretKey, this.layout, replies, 2 ** -(xShift + this.site.aShift + this.site.bShift + this.budget.unitLog2), phases);
  }
}

export class OneRoundServer {
  private readonly rns: RnsWords;
  private readonly aPlain: Plaintext;
  private readonly bPlain: Plaintext[] = [];
  private readonly steps: number[];
  private readonly last: SanitizeOptions;

  constructor(
    private readonly ckks: Ckks,
    private readonly publicKey: PublicKey,
    private readonly galoisKeys: GaloisKeys,
    readonly site: SitePrivate,
    readonly layout: OneRoundLayout,
    readonly budget: SiteBudget,
    moduli: readonly bigint[],
  ) {
    this.rns = new RnsWords(moduli, layout.polyN);
    this.steps = traceSteps(layout);
    this.last = lastRoundOptions(layout, budget);
    const have = new Set(galoisKeys.steps.map((s) => ((s % (layout.polyN / 2)) + layout.polyN / 2) % (layout.polyN / 2)));
    const missing = this.steps.filter((s) => !have.has(s));
    if (missing.length) throw new RangeError(`one-round: the client's Galois keys lack the trace steps ${missing.join(', ')}`);
    const limbs = this.rns.limbs;
    this.aPlain = ckks.encodeCoefficients(packAStrided(layout, site.aInt), { limbs, scale: 1 });
    ckks.prepareMultiplier(this.aPlain);
    try {
      for (let p = 0; p < layout.products2; p++) {
        const pt = ckks.encodeCoefficients(packBStrided(layout, site.bInt, p), { limbs, scale: 1 });
        ckks.prepareMultiplier(pt);
        this.bPlain.push(pt);
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  async answer(request: Uint8Array, phases?: PhaseLog): Promise<Uint8Array[]> {
    const lap = stopwatch(phases);
    const ct = this.ckks.deserializeCiphertext(request);
    lap('deserialize');
    const chain: Ciphertext[] = [];
    try {
      if (ct.limbs !== this.rns.limbs) throw new RangeError(`one-round: the ciphertext has ${ct.limbs} primes, the session ${this.rns.limbs}`);
      if (ct.scale !== 1) throw new RangeError(`one-round: the ciphertext's scale must be 1 (got ${ct.scale})`);
      chain.push(this.ckks.multiplyPlain(ct, this.aPlain));
      lap('product');
      chain.push(await this.ckks.traceRotations(chain[0], this.steps, this.galoisKeys));
      lap('trace');
      const { replies, timings } = await this.ckks.sanitizeProducts(chain[1], this.bPlain, this.publicKey, { ...this.last, timings: phases !== undefined });
      lap('sanitize');
      addNativePhases(phases, 'sanitize', timings);
      return replies;
    } finally {
      for (const x of chain) x.dispose();
      ct.dispose();
    }
  }

  dispose(): void {
    this.aPlain.dispose();
    for (const p of this.bPlain) p.dispose();
    this.bPlain.length = 0;
  }
}
