/**
 * Residue-word helpers of the private protocols: plaintexts built from RNS words (masks, shares,
 * flooding noise) and words read back from decryptions. Words are limb-major BigUint64Arrays
 * (limbs * N), as Ckks.plaintextFromWords / plaintextWords take and give them.
 */
export class RnsWords {
  constructor(
    readonly moduli: readonly bigint[],
    readonly n: number,
  ) {}

  get limbs(): number {
    return this.moduli.length;
  }

  zeros(limbs = this.limbs): BigUint64Array {
    return new BigUint64Array(limbs * this.n);
  }

  /** Residues of coefficient `pos` (one per limb) from limb-major words. */
  get(words: BigUint64Array, pos: number, limbs = this.limbs): bigint[] {
    const out: bigint[] = [];
    for (let l = 0; l < limbs; l++) out.push(words[l * this.n + pos]);
    return out;
  }

  set(words: BigUint64Array, pos: number, residues: readonly bigint[]): void {
    for (let l = 0; l < residues.length; l++) words[l * this.n + pos] = residues[l];
  }

  /**
   * round(m / q_top) mod (q_0 ... q_{L-2}) for m given by its L residues: the share after round 1's
   * rescale by the top prime.
   */
  divRound(residues: readonly bigint[]): bigint[] {
    const L = residues.length;
    const Q = this.moduli.slice(0, L).reduce((p, q) => p * q, 1n);
    let m = 0n;
    for (let i = 0; i < L; i++) {
      const qi = this.moduli[i];
      const Mi = Q / qi;
      m = (m + residues[i] * Mi * modInverse(Mi % qi, qi)) % Q;
    }
    const top = this.moduli[L - 1];
    const r = (m + top / 2n) / top;
    return this.moduli.slice(0, L - 1).map((q) => r % q);
  }

  /** -r mod q per limb. */
  negate(residues: readonly bigint[]): bigint[] {
    return residues.map((r, l) => (r === 0n ? 0n : this.moduli[l] - r));
  }

  /** Copies the residues at `positions` (a limbs x positions.length table, position-major). */
  gather(words: BigUint64Array, positions: ArrayLike<number>, limbs = this.limbs): bigint[][] {
    const out: bigint[][] = [];
    for (let k = 0; k < positions.length; k++) out.push(this.get(words, positions[k], limbs));
    return out;
  }
}

/** a^-1 mod p for prime p (Fermat). */
export function modInverse(a: bigint, p: bigint): bigint {
  let r = 1n;
  let b = ((a % p) + p) % p;
  let e = p - 2n;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % p;
    b = (b * b) % p;
    e >>= 1n;
  }
  return r;
}
