/**
 * The DP noise scale each calibration gives across epsilon (computed, not measured): the
 * original's (classic formula with C as the sensitivity), the classic Gaussian mechanism and
 * the analytic one (Balle & Wang), both at the replace-one sensitivity 2C.
 */
import { analyticGaussianSigma, classicGaussianSigma, originalSigma } from '../pipeline/dp/gaussian';

export interface SigmaRow {
  epsilon: number;
  mechanism: 'original' | 'classic' | 'analytic';
  sigma: number;
  sensitivity: number;
  delta: number;
}

export function sigmaRows(o: { epsilons?: number[]; delta?: number; clipNorm?: number } = {}): SigmaRow[] {
  const epsilons = o.epsilons ?? [0.25, 0.5, 1, 2, 4, 8, 16];
  const delta = o.delta ?? 1e-5;
  const c = o.clipNorm ?? 1;
  return epsilons.flatMap((epsilon) => [
    { epsilon, mechanism: 'original' as const, sigma: originalSigma(epsilon, delta, c), sensitivity: c, delta },
    { epsilon, mechanism: 'classic' as const, sigma: classicGaussianSigma(epsilon, delta, 2 * c), sensitivity: 2 * c, delta },
    { epsilon, mechanism: 'analytic' as const, sigma: analyticGaussianSigma(epsilon, delta, 2 * c), sensitivity: 2 * c, delta },
  ]);
}
