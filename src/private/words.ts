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

  /** Residues of entry `k` of a limbs x count table (limb-major), e.g. a decrypted reply or a returned mask. */
  entry(table: BigUint64Array, k: number, count: number, limbs = table.length / count): bigint[] {
    const out: bigint[] = [];
    for (let l = 0; l < limbs; l++) out.push(table[l * count + k]);
    return out;
  }

  set(words: BigUint64Array, pos: number, residues: readonly bigint[]): void {
    for (let l = 0; l < residues.length; l++) words[l * this.n + pos] = residues[l];
  }

  /**
   * round(m / q_top) mod (q_0 ... q_{L-2}) for m in [0, Q) given by its L residues: the share after
   * round 1's rescale by the top prime. Computed in RNS without composing m: with h = (q_top - 1)/2
   * and X = m + h, round(m / q_top) = floor(X / q_top) = (X - (X mod q_top)) / q_top exactly, so
   * modulo q_i it is ((m_i + h) - t) * q_top^-1 with t = (m_top + h) mod q_top.
   */
  divRound(residues: readonly bigint[]): bigint[] {
    const L = residues.length;
    const top = this.moduli[L - 1];
    const h = top / 2n;
    const t = (residues[L - 1] + h) % top;
    const inv = this.topInverses(L);
    const out: bigint[] = [];
    for (let i = 0; i < L - 1; i++) {
      const q = this.moduli[i];
      out.push(((((residues[i] + h - (t % q)) % q) + q) % q * inv[i]) % q);
    }
    return out;
  }

  private readonly inverses = new Map<number, bigint[]>();
  /** q_{L-1}^-1 mod q_i for i < L - 1 (cached per L). */
  private topInverses(L: number): bigint[] {
    let inv = this.inverses.get(L);
    if (!inv) {
      const top = this.moduli[L - 1];
      inv = this.moduli.slice(0, L - 1).map((q) => modInverse(top % q, q));
      this.inverses.set(L, inv);
    }
    return inv;
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
