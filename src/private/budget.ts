/**
 * Noise budget of the private protocols: how large the noise flooding must be, which input scale
 * the client may use without overflowing the modulus, and the precision that leaves. Every bound
 * here is a worst case over the public quantities (SitePublic, the CKKS parameters); the argument
 * that uses them is in src/server/PROTOCOL.md ("What each party learns").
 *
 * Units: integers of the plaintext ring before the final rescale. E = 19 is the bound of the
 * engine's discrete Gaussian (sigma 3.2 clipped at 6 sigma, native/src/ckks/sampling.h); ternary
 * secrets and rerandomisers have L1 norm <= N.
 *
 * Terms the client could know or that depend on the adapter (they must be flooded):
 *  two-round, at a read coefficient of round 2:
 *    b1 * E * rows1 * a1       the client's round-1 encryption noise through the other rows of A_p
 *                              (its own row is the input x + e/2^xShift, a query it could make)
 *    b1 * (2N + 1) * E         the server's round-1 rerandomisation noise, multiplied by B
 *    E * rows2 * b1            the client's round-2 encryption noise through B_p
 *  one-round, at a read coefficient:
 *    S * b1 * E * rank * a1    the client's encryption noise through A, traced (x S)
 *    outB * b1 * S * ks        key-switching noise of the trace (it involves the client's key errors)
 *      with ks = L * N * (qmax / 2) * E / P + N + 1 per automorphism, summed over the trace (<= S ks)
 * Flooding adds an integer drawn uniformly from [-2^lambda beta, 2^lambda beta] to each read
 * coefficient: the statistical distance to a distribution independent of the terms is
 * <= 2^-lambda per coefficient.
 */
import type { OneRoundLayout, SiteLayout, TwoRoundLayout } from './layout';
import type { SitePublic } from './sites';

export const GAUSSIAN_BOUND = 19;

export interface ModulusFacts {
  polyN: number;
  /** log2 of each ciphertext prime, q_0 first. */
  primeLog2: number[];
  /** log2 of the special prime (one-round), else null. */
  specialLog2: number | null;
}

export interface SiteBudget {
  /** log2 of beta, the bound of the terms that must be flooded. */
  betaLog2: number;
  /** log2 of the flooding bound 2^lambda * beta (-Infinity when lambda is off). */
  floodLog2: number;
  /** log2 of the largest |value| at a read coefficient for input scale 2^xShift and |x| <= 2^xMaxLog2, without xShift. */
  valueLog2PerX: number;
  /** Limbs dropped by rescaling before the last result is sent. */
  dropLimbs: number;
  /** The largest input scale exponent that cannot overflow for |x| <= 1 (subtract log2 max|x|). */
  xShiftMax: number;
  /** log2 of the expected noise over a typical value (a rough guide; precision is measured). */
  relativeErrorLog2: number;
}

const log2 = Math.log2;
function log2Sum(...terms: number[]): number {
  // log2(sum 2^t) without overflow
  const m = Math.max(...terms);
  if (!Number.isFinite(m)) return m;
  return m + log2(terms.reduce((s, t) => s + 2 ** (t - m), 0));
}

/** log2 of (Q/2) minus a safety bit, for `limbs` primes. */
function headroom(m: ModulusFacts, limbs: number): number {
  return m.primeLog2.slice(0, limbs).reduce((s, b) => s + b, 0) - 2;
}

/**
 * The budget of a site. `lambda` = 0 turns flooding off (insecure against a curious client: for
 * measuring what flooding costs).
 */
export function siteBudget(site: SitePublic, layout: SiteLayout, modulus: ModulusFacts, lambda: number): SiteBudget {
  const E = log2(GAUSSIAN_BOUND);
  const N = modulus.polyN;
  const L = modulus.primeLog2.length;
  const a1 = site.aRowL1Bits;
  const b1 = site.bRowL1Bits;
  let beta: number;
  let valuePerX: number;
  if (layout.protocol === 'two-round') {
    const T = layout as TwoRoundLayout;
    beta = log2Sum(b1 + E + log2(T.rows1) + a1, b1 + log2(2 * N + 1) + E, E + log2(T.rows2) + b1);
    // |B_int (v + eta)| <= b1 * (a1 * 2^xShift * |x|max + |eta|); the eta part is inside beta.
    valuePerX = b1 + a1;
  } else {
    const O = layout as OneRoundLayout;
    const S = log2(O.stride);
    if (modulus.specialLog2 === null) throw new RangeError('one-round needs a special prime (specialPrimeBits) for its Galois keys');
    const qmax = Math.max(...modulus.primeLog2);
    const ks = log2Sum(log2(L) + log2(N) + qmax - 1 + E - modulus.specialLog2, log2(N + 1));
    const outB = log2(Math.min(O.stride, site.shape.outDim));
    beta = log2Sum(S + b1 + E + log2(site.shape.rank) + a1, outB + b1 + S + ks);
    valuePerX = S + b1 + a1;
  }
  const flood = lambda > 0 ? beta + lambda : -Infinity;
  // value + flood + beta < Q/2: solve for xShift with |x| <= 1.
  const room = headroom(modulus, L);
  const rest = log2Sum(flood, beta);
  if (rest >= room) {
    throw new RangeError(
      `private parameters too small: flooding 2^${flood.toFixed(1)} (lambda ${lambda}) does not fit the modulus ` +
        `(2^${room.toFixed(0)}); add a prime (primeBits) or lower floodBits`,
    );
  }
  // 2^(valuePerX + xShift) <= 2^room - 2^rest
  const xShiftMax = Math.floor(log2(2 ** room - 2 ** rest) - valuePerX);
  // Drop limbs (rescale) before sending while a typical value (about 2^-16 of the worst case: the
  // L1 bounds are sums of magnitudes) stays 2^30 above the rescale rounding (~N in the new units).
  const typical = xShiftMax + valuePerX - 16;
  let dropLimbs = 0;
  while (dropLimbs < L - 1) {
    const dropped = modulus.primeLog2.slice(L - 1 - dropLimbs, L).reduce((s, b) => s + b, 0);
    if (typical - dropped < log2(N + 1) + 30) break;
    dropLimbs++;
  }
  const noise = log2Sum(flood, beta, dropLimbs ? modulus.primeLog2.slice(L - dropLimbs).reduce((s, b) => s + b, 0) + log2(N + 1) : -Infinity);
  return { betaLog2: beta, floodLog2: flood, valueLog2PerX: valuePerX, dropLimbs, xShiftMax, relativeErrorLog2: noise - typical };
}

/** The input scale exponent the client uses for an input of max |x| = xMax. */
export function inputShift(budget: SiteBudget, xMax: number): number {
  const lx = xMax > 0 && Number.isFinite(xMax) ? Math.ceil(log2(xMax)) : 0;
  return budget.xShiftMax - Math.max(lx, 0);
}
