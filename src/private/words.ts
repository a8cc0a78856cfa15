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
