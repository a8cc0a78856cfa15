/**
 * Noise budget of the private protocols: how large the noise flooding must be, which input scale
 * the client may use without overflowing the modulus, and the precision that leaves. Every bound
 * here is a worst case over the public quantities (SitePublic, the CKKS parameters); the argument
 * that uses them is in src/server/PROTOCOL.md ("What each party learns").
 *
 * Units: integers of the plaintext ring of the last round, before its final rescale. E = 19 is the
 * bound of the engine's discrete Gaussian (sigma 3.2 clipped at 6 sigma, native/src/ckks/sampling.h);
 * ternary secrets and rerandomisers have L1 norm <= N.
 *
 * two-round: round 1 runs over all L primes and is rescaled once (by the top prime q_top) after its
 *   mask and rerandomisation, so round 2 works over the other L - 1 primes on v' = v / q_top. The
 *   rescale's rounding (at most (N + 1)/2, a function of the rerandomised, pseudorandom ciphertext
 *   only) and the share's rounding replace the round-1 noise, which shrinks by q_top. Terms at a read
 *   coefficient of round 2 that must be flooded (they depend on B, or the client could know them):
 *     b1 * ((N + 1)/2 + 1)                       the round-1 roundings, through B
 *     b1 * (E rows1 a1 + (2N + 1) E) / q_top     the round-1 noise (the client's error through the
 *                                                 other rows of A_p, the rerandomisation), through B
 *     E * rows2 * b1                             the client's round-2 encryption error through B_p
 * one-round, at a read coefficient:
 *     S * b1 * E * rank * a1                     the client's encryption error through A, traced (x S)
 *     outB * b1 * S * ks                         key-switching noise of the trace (it involves the
 *                                                 client's key errors), ks = L N (qmax/2) E / P + N + 1
 *                                                 per automorphism, summed over the trace (<= S ks)
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
  /** Primes of the last round (two-round: L - 1, after round 1's rescale; one-round: L). */
  lastLimbs: number;
  /** Limbs dropped by rescaling before the last result is sent. */
  dropLimbs: number;
  /** The largest input scale exponent that cannot overflow for |x| <= 1 (subtract log2 max|x|). */
  xShiftMax: number;
  /**
   * log2 of the factor between the last round's integers and B_int A_int x_int (two-round: v' = v /
   * q_top, so -log2 q_top; one-round: + log2 S). The client multiplies by 2^-unitLog2 and 2^-shifts.
   */
  unitLog2: number;
  /** log2 of the expected noise over a typical value (a rough guide; precision is measured). */
  relativeErrorLog2: number;
}

const log2 = Math.log2;
function log2Sum(...terms: number[]): number {
  const m = Math.max(...terms);
  if (!Number.isFinite(m)) return m;
  return m + log2(terms.reduce((s, t) => s + 2 ** (t - m), 0));
}

function sum(xs: number[]): number {
  return xs.reduce((s, b) => s + b, 0);
}

/** The engine draws flooding integers of up to 127 bits (Ckks.sampleWords 'centered', bits <= 126). */
export const MAX_FLOOD_BITS = 126;

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
  let valuePerX: number; // log2 of max |last-round value| per 2^xShift, |x| <= 1
  let lastLimbs: number;
  let unitLog2: number;
  let firstRoundRoom = Infinity; // two-round: v must also fit round 1's modulus
  if (layout.protocol === 'two-round') {
    const T = layout as TwoRoundLayout;
    if (L < 2) throw new RangeError('two-round needs at least 2 primes (round 1 is rescaled once before round 2)');
    const qTop = modulus.primeLog2[L - 1];
    beta = log2Sum(b1 + log2((N + 1) / 2 + 1), b1 + log2Sum(E + log2(T.rows1) + a1, log2(2 * N + 1) + E) - qTop, E + log2(T.rows2) + b1);
    valuePerX = b1 + a1 - qTop;
    lastLimbs = L - 1;
    unitLog2 = -qTop;
    firstRoundRoom = sum(modulus.primeLog2) - 2 - a1;
  } else {
    const O = layout as OneRoundLayout;
    const S = log2(O.stride);
    if (modulus.specialLog2 === null) throw new RangeError('one-round needs a special prime (specialPrimeBits) for its Galois keys');
    const qmax = Math.max(...modulus.primeLog2);
    const ks = log2Sum(log2(L) + log2(N) + qmax - 1 + E - modulus.specialLog2, log2(N + 1));
    const outB = log2(Math.min(O.stride, site.shape.outDim));
    beta = log2Sum(S + b1 + E + log2(site.shape.rank) + a1, outB + b1 + S + ks);
    valuePerX = S + b1 + a1;
    lastLimbs = L;
    unitLog2 = S;
  }
  const flood = lambda > 0 ? beta + lambda : -Infinity;
  if (Math.ceil(flood) > MAX_FLOOD_BITS) {
    throw new RangeError(`flooding 2^${flood.toFixed(1)} (lambda ${lambda} over beta 2^${beta.toFixed(1)}) exceeds the engine's 2^${MAX_FLOOD_BITS} flooding sampler; lower floodBits`);
  }
  // value + flood + beta < Q_last / 2, with a bit of margin.
  const room = sum(modulus.primeLog2.slice(0, lastLimbs)) - 2;
  const rest = log2Sum(flood, beta);
  if (rest >= room - 1) {
    throw new RangeError(
      `private parameters too small: flooding 2^${flood.toFixed(1)} (lambda ${lambda}) does not fit the modulus ` +
        `(2^${room.toFixed(0)}); add a prime (primeBits) or lower floodBits`,
    );
  }
  const xShiftMax = Math.floor(Math.min(log2(2 ** room - 2 ** rest) - valuePerX, firstRoundRoom));
  // Drop limbs (rescale) before sending while a typical value (about 2^-16 of the worst case: the
  // L1 bounds are sums of magnitudes) stays 2^20 above the rescale rounding (~N in the new units).
  const typical = xShiftMax + valuePerX - 16;
  let dropLimbs = 0;
  while (dropLimbs < lastLimbs - 1) {
    const dropped = sum(modulus.primeLog2.slice(lastLimbs - 1 - dropLimbs, lastLimbs));
    if (typical - dropped < log2(N + 1) + 20) break;
    dropLimbs++;
  }
  const droppedBits = sum(modulus.primeLog2.slice(lastLimbs - dropLimbs, lastLimbs));
  const noise = log2Sum(flood, beta, dropLimbs ? droppedBits + log2(N + 1) : -Infinity);
  return { betaLog2: beta, floodLog2: flood, lastLimbs, dropLimbs, xShiftMax, unitLog2, relativeErrorLog2: noise - typical };
}

/** The input scale exponent the client uses for an input of max |x| = xMax. */
export function inputShift(budget: SiteBudget, xMax: number): number {
  const lx = xMax > 0 && Number.isFinite(xMax) ? Math.ceil(log2(xMax)) : 0;
  return budget.xShiftMax - Math.max(lx, 0);
}
