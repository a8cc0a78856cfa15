/**
 * The DP noise scale each calibration gives across epsilon (computed, not measured): the
 * original's (classic formula with C as the sensitivity), the classic Gaussian mechanism and
 * the analytic one (Balle & Wang), both at the replace-one sensitivity 2C.
 */
import { analyticGaussianSigma, classicFormulaInRange, classicGaussianSigma, originalSigma } from '../pipeline/dp/gaussian';

export interface SigmaRow {
  epsilon: number;
  mechanism: 'original' | 'classic' | 'analytic';
  sigma: number;
  sensitivity: number;
  delta: number;
  /** False where the classic formula is used outside its proven range (epsilon < 1): sigma is then not a guarantee. */
  in_range: boolean;
}

export function sigmaRows(o: { epsilons?: number[]; delta?: number; clipNorm?: number } = {}): SigmaRow[] {
  const epsilons = o.epsilons ?? [0.25, 0.5, 1, 2, 4, 8, 16];
  const delta = o.delta ?? 1e-5;
  const c = o.clipNorm ?? 1;
  return epsilons.flatMap((epsilon) => [
    { epsilon, mechanism: 'original' as const, sigma: originalSigma(epsilon, delta, c), sensitivity: c, delta, in_range: classicFormulaInRange(epsilon) },
    { epsilon, mechanism: 'classic' as const, sigma: classicGaussianSigma(epsilon, delta, 2 * c), sensitivity: 2 * c, delta, in_range: classicFormulaInRange(epsilon) },
    { epsilon, mechanism: 'analytic' as const, sigma: analyticGaussianSigma(epsilon, delta, 2 * c), sensitivity: 2 * c, delta, in_range: true },
  ]);
}
