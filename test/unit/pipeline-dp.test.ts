import { describe, expect, it } from 'vitest';
import {
  analyticGaussianSigma,
  classicGaussianSigma,
  clipL2,
  CsprngGaussian,
  erfc,
  gaussianDelta,
  l2Norm,
  normalCdf,
  originalSigma,
  PrivacyAccountant,
  resolveDp,
  zcdpEpsilon,
} from '../../src/pipeline/dp';

/** Hockey-stick divergence of N(0, s^2) vs N(D, s^2) at e^eps by Simpson integration: the definition of delta. */
function hockeyStick(sigma: number, eps: number, D: number): number {
  const pdf = (x: number, mu: number) => Math.exp(-((x - mu) ** 2) / (2 * sigma * sigma)) / (sigma * Math.sqrt(2 * Math.PI));
  const g = (x: number) => Math.max(0, pdf(x, 0) - Math.exp(eps) * pdf(x, D));
  const lo = -40 * sigma;
  const hi = D / 2 + 1; // integrand is 0 where the shifted density dominates (x > D/2 - eps s^2/D)
  const n = 400_000;
  const h = (hi - lo) / n;
  let s = g(lo) + g(hi);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * g(lo + i * h);
  return (s * h) / 3;
}

describe('normal CDF', () => {
  it('matches known values and symmetry', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 15);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 12);
    // erfc values from the closed form tables (Abramowitz & Stegun 7.1)
    expect(erfc(1)).toBeCloseTo(0.157299207050285, 14);
    expect(Math.abs(erfc(2) / 0.004677734981047266 - 1)).toBeLessThan(1e-11);
    expect(Math.abs(erfc(5) / 1.5374597944280349e-12 - 1)).toBeLessThan(1e-11);
    for (const x of [0.3, 1.7, 2.5, 4.2]) expect(normalCdf(x) + normalCdf(-x)).toBeCloseTo(1, 14);
  });
  it('is continuous across the series / continued-fraction switch', () => {
    const below = erfc(2 - 1e-12);
    const above = erfc(2);
    expect(Math.abs(below / above - 1)).toBeLessThan(1e-10);
  });
});

describe('Gaussian mechanism calibration', () => {
  it('classic formula and the original calibration (4.8448 at eps=1, delta=1e-5)', () => {
    expect(classicGaussianSigma(1, 1e-5, 1)).toBeCloseTo(Math.sqrt(2 * Math.log(1.25e5)), 12);
    expect(originalSigma(1, 1e-5)).toBeCloseTo(4.8448, 4);
    expect(classicGaussianSigma(0.5, 1e-6, 2)).toBeCloseTo((2 * Math.sqrt(2 * Math.log(1.25e6))) / 0.5, 12);
  });

  it('analytic sigma is about 3.73 at eps=1, delta=1e-5, sensitivity 1', () => {
    const s = analyticGaussianSigma(1, 1e-5, 1);
    expect(s).toBeGreaterThan(3.7);
    expect(s).toBeLessThan(3.76);
  });

  it('analytic sigma meets delta exactly, checked against the hockey-stick divergence by integration', () => {
    for (const [eps, delta, D] of [
      [1, 1e-5, 1],
      [0.5, 1e-6, 2],
      [3, 1e-5, 2],
    ] as const) {
      const s = analyticGaussianSigma(eps, delta, D);
      expect(gaussianDelta(s, eps, D) / delta).toBeCloseTo(1, 6);
      const integrated = hockeyStick(s, eps, D);
      expect(Math.abs(integrated / delta - 1)).toBeLessThan(1e-4);
      // a slightly smaller sigma violates the target
      expect(hockeyStick(s * 0.99, eps, D)).toBeGreaterThan(delta);
      // never worse than the classic calibration
      expect(s).toBeLessThan(classicGaussianSigma(eps, delta, D));
    }
  });

  it('scales linearly in the sensitivity', () => {
    expect(analyticGaussianSigma(1, 1e-5, 2) / analyticGaussianSigma(1, 1e-5, 1)).toBeCloseTo(2, 9);
  });

  it('rejects bad targets naming the parameter', () => {
    expect(() => analyticGaussianSigma(0, 1e-5, 1)).toThrow(/epsilon/);
    expect(() => analyticGaussianSigma(1, 1, 1)).toThrow(/delta/);
    expect(() => classicGaussianSigma(1, 1e-5, -1)).toThrow(/sensitivity/);
  });
});

describe('clipping and noise', () => {
  it('clips to the L2 norm and leaves short vectors alone', () => {
    const x = Float64Array.from({ length: 64 }, () => Math.random() * 10 - 5);
    const c = clipL2(x, 1);
    expect(l2Norm(c)).toBeCloseTo(1, 12);
    for (let i = 1; i < x.length; i++) expect(c[i] / c[0]).toBeCloseTo(x[i] / x[0], 9);
    const small = Float64Array.from([0.1, -0.2]);
    expect([...clipL2(small, 1)]).toEqual([0.1, -0.2]);
  });

  it('CSPRNG Gaussian has the right moments (fresh OS randomness each run)', () => {
    const g = new CsprngGaussian();
    const n = 200_000;
    const sigma = 3.7;
    const z = g.sample(n, sigma);
    let m = 0;
    let v = 0;
    let k4 = 0;
    for (const x of z) m += x;
    m /= n;
    for (const x of z) {
      v += (x - m) ** 2;
      k4 += (x - m) ** 4;
    }
    v /= n;
    k4 /= n;
    // 6 standard errors
    expect(Math.abs(m)).toBeLessThan((6 * sigma) / Math.sqrt(n));
    expect(Math.abs(v / sigma ** 2 - 1)).toBeLessThan(6 * Math.sqrt(2 / n));
    expect(Math.abs(k4 / v ** 2 - 3)).toBeLessThan(0.1);
    // P(|z| < sigma) = 0.6827
    const inside = z.filter((x) => Math.abs(x) < sigma).length / n;
    expect(Math.abs(inside - 0.682689492)).toBeLessThan(0.005);
    // two generators do not repeat each other
    expect(new CsprngGaussian().sample(4)[0]).not.toBe(new CsprngGaussian().sample(4)[0]);
  });
});

describe('accountant', () => {
  it('zCDP composes rho additively: eps = rho + 2 sqrt(rho ln(1/delta))', () => {
    const acc = new PrivacyAccountant('zcdp', 1e-5);
    const sigma = 4.0;
    const D = 2;
    acc.addGaussian(sigma, D, 16);
    const rho = (16 * D * D) / (2 * sigma * sigma);
    const s = acc.spent();
    expect(s.releases).toBe(16);
    expect(s.epsilon).toBeCloseTo(rho + 2 * Math.sqrt(rho * Math.log(1e5)), 12);
    expect(zcdpEpsilon(0.5, 1e-5)).toBeCloseTo(0.5 + 2 * Math.sqrt(0.5 * Math.log(1e5)), 12);
  });

  it('RDP with the Mironov conversion reaches the closed-form minimum c + 2 sqrt(c L)', () => {
    for (const [sigma, D, T] of [
      [3.73, 1, 1],
      [4.8448, 2, 64],
      [10, 2, 1000],
    ] as const) {
      const acc = new PrivacyAccountant('rdp', 1e-5, 'mironov');
      for (let t = 0; t < T; t++) acc.addGaussian(sigma, D);
      const c = (T * D * D) / (2 * sigma * sigma);
      const L = Math.log(1e5);
      const s = acc.spent();
      expect(s.epsilon).toBeCloseTo(c + 2 * Math.sqrt(c * L), 8);
      expect(s.alpha!).toBeCloseTo(1 + Math.sqrt(L / c), 3);
    }
  });

  it('the improved RDP conversion is tighter than Mironov and matches a brute-force grid', () => {
    const acc = new PrivacyAccountant('rdp', 1e-5, 'improved');
    acc.addGaussian(4.8448, 2, 32);
    const c = (32 * 4) / (2 * 4.8448 ** 2);
    let best = Infinity;
    for (let a = 1.0001; a < 200; a += 0.0005) {
      best = Math.min(best, c * a + Math.log((a - 1) / a) - (Math.log(1e-5) + Math.log(a)) / (a - 1));
    }
    const s = acc.spent();
    expect(s.epsilon).toBeCloseTo(best, 5);
    expect(s.epsilon).toBeLessThan(c + 2 * Math.sqrt(c * Math.log(1e5)));
  });

  it('per-token releases compose: 64 tokens cost far more than one', () => {
    const one = new PrivacyAccountant('rdp', 1e-5);
    one.addGaussian(analyticGaussianSigma(1, 1e-5, 2), 2);
    const many = new PrivacyAccountant('rdp', 1e-5);
    many.addGaussian(analyticGaussianSigma(1, 1e-5, 2), 2, 64);
    expect(one.spent().epsilon).toBeLessThan(1.3);
    expect(many.spent().epsilon).toBeGreaterThan(5 * one.spent().epsilon);
  });

  it('reports nothing spent before any release', () => {
    expect(new PrivacyAccountant('zcdp', 1e-5).spent().epsilon).toBe(0);
  });
});

describe('resolveDp', () => {
  it('defaults: sensitivity 2C, analytic sigma; original keeps its 4.8448', () => {
    expect(resolveDp({ mechanism: 'off' })).toBeNull();
    const a = resolveDp({ mechanism: 'analytic' })!;
    expect(a.sensitivity).toBe(2);
    expect(a.sigma).toBeCloseTo(analyticGaussianSigma(1, 1e-5, 2), 12);
    const o = resolveDp({ mechanism: 'original' })!;
    expect(o.sigma).toBeCloseTo(4.8448, 4);
    expect(o.sensitivity).toBe(2);
    const c = resolveDp({ mechanism: 'classic', clipNorm: 0.5, sensitivity: 0.5, epsilon: 2 })!;
    expect(c.sigma).toBeCloseTo(classicGaussianSigma(2, 1e-5, 0.5), 12);
    // the classic formula is proven for epsilon < 1 only: flagged outside (issue 16 item 4)
    expect(c.calibrationInRange).toBe(false);
    expect(resolveDp({ mechanism: 'classic', epsilon: 0.5 })!.calibrationInRange).toBe(true);
    expect(resolveDp({ mechanism: 'classic', epsilon: 1 })!.calibrationInRange).toBe(false);
    expect(o.calibrationInRange).toBe(false);
    expect(resolveDp({ mechanism: 'original', epsilon: 0.5 })!.calibrationInRange).toBe(true);
    expect(a.calibrationInRange).toBe(true);
    expect(resolveDp({ mechanism: 'analytic', epsilon: 8 })!.calibrationInRange).toBe(true);
  });
});
