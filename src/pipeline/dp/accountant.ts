/**
 * Composes the per-token DP releases of one request. Every generated token releases the
 * (encrypted, then decrypted) LoRA input h + N(0, sigma^2 I): one Gaussian mechanism of L2
 * sensitivity Delta per token, so a request of T tokens is T adaptive compositions, not one.
 *
 *  - 'zcdp' (Bun & Steinke 2016): a Gaussian release is rho = Delta^2 / (2 sigma^2)-zCDP; rho
 *    adds up under composition; (epsilon, delta) = (rho + 2 sqrt(rho ln(1/delta)), delta).
 *  - 'rdp' (Mironov 2017): a Gaussian release has RDP epsilon(alpha) = alpha Delta^2 / (2 sigma^2);
 *    curves add up; the conversion to (epsilon, delta) is minimised over alpha > 1. Two
 *    conversions: 'mironov' epsilon = rdp(alpha) + ln(1/delta)/(alpha - 1) (whose minimum for the
 *    Gaussian equals the zCDP formula), and 'improved' (Canonne, Kamath & Steinke 2020, Prop. 12;
 *    the one Opacus uses) epsilon = rdp(alpha) + ln((alpha-1)/alpha) - (ln delta + ln alpha)/(alpha-1),
 *    always at least as tight. 'improved' is the default.
 */

export type AccountantKind = 'rdp' | 'zcdp';
export type RdpConversion = 'mironov' | 'improved';

export interface PrivacySpent {
  epsilon: number;
  delta: number;
  accountant: string;
  releases: number;
  /** The RDP order that gave epsilon ('rdp' only). */
  alpha?: number;
}

export function zcdpEpsilon(rho: number, delta: number): number {
  return rho + 2 * Math.sqrt(rho * Math.log(1 / delta));
}

/** Minimises f over alpha in (1, 1e7] (f is unimodal in log(alpha - 1) for Gaussian curves). */
function minimiseOverAlpha(f: (alpha: number) => number): { alpha: number; value: number } {
  // golden-section search on t = ln(alpha - 1), with a coarse scan first to bracket the minimum
  let bestT = -10;
  let best = Infinity;
  for (let t = -10; t <= 16; t += 0.25) {
    const v = f(1 + Math.exp(t));
    if (v < best) {
      best = v;
      bestT = t;
    }
  }
  let a = bestT - 0.25;
  let b = bestT + 0.25;
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = f(1 + Math.exp(c));
  let fd = f(1 + Math.exp(d));
  for (let i = 0; i < 100; i++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = f(1 + Math.exp(c));
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = f(1 + Math.exp(d));
    }
  }
  const t = (a + b) / 2;
  const v = f(1 + Math.exp(t));
  return v <= best ? { alpha: 1 + Math.exp(t), value: v } : { alpha: 1 + Math.exp(bestT), value: best };
}

export class PrivacyAccountant {
  /** Sum over releases of Delta^2 / (2 sigma^2): the zCDP rho, and the RDP slope in alpha. */
  private rho = 0;
  private count = 0;

  constructor(
    readonly kind: AccountantKind,
    readonly delta: number,
    readonly conversion: RdpConversion = 'improved',
  ) {
    if (kind !== 'rdp' && kind !== 'zcdp') throw new RangeError(`accountant must be 'rdp' or 'zcdp', got ${JSON.stringify(kind)}`);
    if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
    if (conversion !== 'mironov' && conversion !== 'improved') throw new RangeError(`conversion must be 'mironov' or 'improved'`);
  }

  /** Records `count` Gaussian releases of noise sigma on a function of L2 sensitivity `sensitivity`. */
  addGaussian(sigma: number, sensitivity: number, count = 1): void {
    if (!(sigma > 0) || !Number.isFinite(sigma)) throw new RangeError(`sigma must be a finite number > 0, got ${sigma}`);
    if (!(sensitivity > 0) || !Number.isFinite(sensitivity)) throw new RangeError(`sensitivity must be a finite number > 0, got ${sensitivity}`);
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
    this.rho += (count * sensitivity * sensitivity) / (2 * sigma * sigma);
    this.count += count;
  }

  get releases(): number {
    return this.count;
  }

  /** RDP epsilon of the composition at order alpha. */
  rdp(alpha: number): number {
    return alpha * this.rho;
  }

  spent(): PrivacySpent {
    if (this.count === 0) return { epsilon: 0, delta: 0, accountant: this.kind, releases: 0 };
    const L = Math.log(1 / this.delta);
    if (this.kind === 'zcdp') return { epsilon: zcdpEpsilon(this.rho, this.delta), delta: this.delta, accountant: 'zcdp', releases: this.count };
    const lnDelta = Math.log(this.delta);
    const f =
      this.conversion === 'mironov'
        ? (a: number) => this.rdp(a) + L / (a - 1)
        : (a: number) => this.rdp(a) + Math.log((a - 1) / a) - (lnDelta + Math.log(a)) / (a - 1);
    const { alpha, value } = minimiseOverAlpha(f);
    return { epsilon: Math.max(0, value), delta: this.delta, accountant: `rdp-${this.conversion}`, releases: this.count, alpha };
  }
}
