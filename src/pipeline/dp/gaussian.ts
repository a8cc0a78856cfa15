/**
 * Calibrating the Gaussian mechanism M(x) = f(x) + N(0, sigma^2 I) for (epsilon, delta)-DP,
 * given the L2 sensitivity Delta of f.
 *
 *  - classic (Dwork & Roth, Thm A.1): sigma = Delta * sqrt(2 ln(1.25/delta)) / epsilon; proven
 *    for epsilon < 1 only, and loose.
 *  - analytic (Balle & Wang, ICML 2018, Thm 8): the smallest sigma such that
 *        Phi(Delta/(2 sigma) - epsilon sigma/Delta) - e^epsilon Phi(-Delta/(2 sigma) - epsilon sigma/Delta) <= delta,
 *    the exact privacy profile of the Gaussian mechanism, solved by bisection (the left side
 *    decreases in sigma). About 3.73 at epsilon = 1, delta = 1e-5, Delta = 1.
 *  - original: the demonstrator's calibration, the classic formula with C = 1 used as the
 *    sensitivity (4.8448 at epsilon = 1, delta = 1e-5), whatever the clipping and the neighbour
 *    relation imply; kept only to reproduce its numbers.
 */
import { normalCdf } from './normal';

function checkTarget(epsilon: number, delta: number, sensitivity: number): void {
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon <= 0) throw new RangeError(`epsilon must be a finite number > 0, got ${epsilon}`);
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  if (typeof sensitivity !== 'number' || !Number.isFinite(sensitivity) || sensitivity <= 0) throw new RangeError(`sensitivity must be a finite number > 0, got ${sensitivity}`);
}

/**
 * The classic formula is proven for epsilon < 1 only (Dwork & Roth, Thm A.1): outside that
 * range its sigma is not known to give (epsilon, delta)-DP. Callers flag such calibrations; the
 * accountant's epsilon (computed from sigma, valid for any sigma) is then the honest figure.
 */
export const CLASSIC_EPSILON_LIMIT = 1;

export function classicFormulaInRange(epsilon: number): boolean {
  return epsilon > 0 && epsilon < CLASSIC_EPSILON_LIMIT;
}

export function classicGaussianSigma(epsilon: number, delta: number, sensitivity: number): number {
  checkTarget(epsilon, delta, sensitivity);
  return (sensitivity * Math.sqrt(2 * Math.log(1.25 / delta))) / epsilon;
}

/** The exact delta the Gaussian mechanism with this sigma achieves at this epsilon. */
export function gaussianDelta(sigma: number, epsilon: number, sensitivity: number): number {
  const a = sensitivity / (2 * sigma);
  const b = (epsilon * sigma) / sensitivity;
  // e^eps * Phi(-a - b) may overflow for huge eps while Phi underflows: combine in logs then.
  const second = Math.exp(epsilon) * normalCdf(-a - b);
  const d = normalCdf(a - b) - (Number.isFinite(second) ? second : 0);
  return Math.max(0, d);
}

export function analyticGaussianSigma(epsilon: number, delta: number, sensitivity: number): number {
  checkTarget(epsilon, delta, sensitivity);
  // Bracket: delta(sigma) decreases in sigma; grow hi until it satisfies the target.
  let lo = 0;
  let hi = sensitivity;
  while (gaussianDelta(hi, epsilon, sensitivity) > delta) {
    lo = hi;
    hi *= 2;
    if (hi > 1e12 * sensitivity) throw new RangeError(`analytic Gaussian: no sigma found for epsilon=${epsilon}, delta=${delta}`);
  }
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (gaussianDelta(mid, epsilon, sensitivity) > delta) lo = mid;
    else hi = mid;
  }
  return hi; // the side that satisfies the guarantee
}

/** The original demonstrator's sigma: classic formula with its clip norm C as sensitivity (C = 1). */
export function originalSigma(epsilon: number, delta: number, clipNorm = 1): number {
  return classicGaussianSigma(epsilon, delta, clipNorm);
}
