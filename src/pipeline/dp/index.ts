/**
 * Differential privacy of the HE input: clip, calibrate, add noise, account.
 * `resolveDp(options)` turns the user's DpOptions into the numbers the native step uses.
 */
import type { DpOptions } from '../types';
import { analyticGaussianSigma, classicFormulaInRange, classicGaussianSigma, originalSigma } from './gaussian';

export * from './accountant';
export * from './clip';
export * from './gaussian';
export * from './noise';
export * from './normal';

export const DP_DEFAULTS = { epsilon: 1, delta: 1e-5, clipNorm: 1, accountant: 'rdp' as const };

export interface ResolvedDp {
  mechanism: DpOptions['mechanism'];
  epsilon: number;
  delta: number;
  clipNorm: number;
  sensitivity: number;
  sigma: number;
  accountant: 'rdp' | 'zcdp';
  /**
   * False where sigma comes from the classic formula outside its proven range (epsilon >= 1:
   * 'classic' and 'original' there): the nominal epsilon is then a target, not a guarantee,
   * and only the accounted epsilon (GenerationSummary.privacy) is.
   */
  calibrationInRange: boolean;
}

/** Fills the defaults (epsilon 1, delta 1e-5, C 1, sensitivity 2C) and computes sigma. Null when DP is off. */
export function resolveDp(dp: DpOptions | undefined): ResolvedDp | null {
  if (!dp || dp.mechanism === 'off') return null;
  const epsilon = dp.epsilon ?? DP_DEFAULTS.epsilon;
  const delta = dp.delta ?? DP_DEFAULTS.delta;
  const accountant = dp.accountant ?? DP_DEFAULTS.accountant;
  if (dp.mechanism === 'original') {
    // The original clips to C = 1 and calibrates with C as the sensitivity. We still account
    // with the true replace-one sensitivity 2C, so the reported epsilon is honest.
    const clipNorm = dp.clipNorm ?? 1;
    return { mechanism: 'original', epsilon, delta, clipNorm, sensitivity: dp.sensitivity ?? 2 * clipNorm, sigma: originalSigma(epsilon, delta, clipNorm), accountant, calibrationInRange: classicFormulaInRange(epsilon) };
  }
  const clipNorm = dp.clipNorm ?? DP_DEFAULTS.clipNorm;
  const sensitivity = dp.sensitivity ?? 2 * clipNorm;
  const sigma = dp.mechanism === 'classic' ? classicGaussianSigma(epsilon, delta, sensitivity) : analyticGaussianSigma(epsilon, delta, sensitivity);
  const calibrationInRange = dp.mechanism === 'classic' ? classicFormulaInRange(epsilon) : true;
  return { mechanism: dp.mechanism, epsilon, delta, clipNorm, sensitivity, sigma, accountant, calibrationInRange };
}
