import { describe, expect, it } from 'vitest';
import { native } from '../../src/engine/native';
import { NttPlan, generateNttPrimes, isPrime } from '../../src/engine/ntt';

// ---- small BigInt / Number references ----------------------------------------------------

function randomBelow(q: bigint): bigint {
  // 64 random bits from Math.random pieces, reduced (test data only).
  const hi = BigInt(Math.floor(Math.random() * 2 ** 32));
  const lo = BigInt(Math.floor(Math.random() * 2 ** 32));
  return ((hi << 32n) | lo) % q;
}

function randomPoly(n: number, moduli: bigint[]): BigUint64Array {
  const a = new BigUint64Array(n * moduli.length);
  moduli.forEach((q, l) => {
    for (let j = 0; j < n; j++) a[l * n + j] = randomBelow(q);
  });
  return a;
}

function powMod(b: bigint, e: bigint, q: bigint): bigint {
  let r = 1n;
  b %= q;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % q;
    b = (b * b) % q;
    e >>= 1n;
  }
  return r;
}

/** Coefficient k of a*b in Z_q[X]/(X^n+1), O(n). */
function negacyclicCoeff(a: BigUint64Array, b: BigUint64Array, off: number, n: number, q: bigint, k: number): bigint {
  let acc = 0n;
  for (let i = 0; i < n; i++) {
    const j = k - i;
    if (j >= 0) acc += a[off + i] * b[off + j];
    else acc -= a[off + i] * b[off + j + n];
  }
  return ((acc % q) + q) % q;
}

/** Pointwise product of two NTT-domain arrays (limb-major). */
function pointwise(x: BigUint64Array, y: BigUint64Array, n: number, moduli: bigint[]): BigUint64Array {
  const out = new BigUint64Array(x.length);
  moduli.forEach((q, l) => {
    for (let j = 0; j < n; j++) out[l * n + j] = (x[l * n + j] * y[l * n + j]) % q;
  });
  return out;
}

function bitrev(x: number, bits: number): number {
  let r = 0;
  for (let i = 0; i < bits; i++) {
    r = (r << 1) | (x & 1);
    x >>= 1;
  }
  return r;
}

function smallPlan(n: number, moduli: bigint[]) {
  return new (native().NttPlanCpu)({ n, moduli, testingSmallN: true });
}

// ---- primes ----------------------------------------------------------------------------------

describe('primality (deterministic Miller-Rabin)', () => {
  const primes = [2n, 3n, 5n, 37n, 41n, 1000000007n, 2147483647n, 2305843009213693951n, 18446744073709551557n,
    4294967291n, 1152921504606830593n];
  const composites = [0n, 1n, 4n, 561n, 1105n, 1729n, 2465n, 2821n, 6601n, 8911n, 41041n, 825265n, 321197185n,
    5394826801n, 232250619601n, 9746347772161n, // Carmichael numbers
    2047n, 1373653n, 25326001n, 3215031751n, 2152302898747n, 3474749660383n, 341550071728321n,
    3825123056546413051n, // strong pseudoprimes to the first 1..9 prime bases
    4611686014132420609n, 4294967291n * 4294967279n, 18446744073709551615n];

  it('accepts known primes and rejects Carmichael numbers and strong pseudoprimes', () => {
    for (const p of primes) expect(isPrime(p), `${p}`).toBe(true);
    for (const c of composites) expect(isPrime(c), `${c}`).toBe(false);
  });

  it('agrees with trial division on random small numbers', () => {
    const trial = (n: number) => {
      if (n < 2) return false;
      for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
      return true;
    };
    for (let i = 0; i < 2000; i++) {
      const n = Math.floor(Math.random() * 1e7);
      expect(isPrime(BigInt(n)), `${n}`).toBe(trial(n));
    }
  });

  it('generates NTT-friendly primes, largest first, deterministic', () => {
    for (const [n, bits] of [[4096, 60], [16384, 40], [65536, 61], [8192, 30]] as const) {
      const ps = generateNttPrimes(n, bits, 4);
      expect(ps).toEqual(generateNttPrimes(n, bits, 4));
      for (let i = 0; i < ps.length; i++) {
        const q = ps[i];
        expect(isPrime(q)).toBe(true);
        expect(q % BigInt(2 * n)).toBe(1n);
        expect(q < 1n << BigInt(bits) && q > 1n << BigInt(bits - 1)).toBe(true);
        if (i > 0) expect(q < ps[i - 1]).toBe(true);
      }
      // nothing prime = 1 mod 2n lies between the first prime and 2^bits
      for (let c = ps[0] + BigInt(2 * n); c < 1n << BigInt(bits); c += BigInt(2 * n)) expect(isPrime(c)).toBe(false);
    }
    expect(() => generateNttPrimes(4096, 62, 1)).toThrow(RangeError);
    expect(() => generateNttPrimes(4095, 60, 1)).toThrow(/power of two/);
  });
});

// ---- transforms ---------------------------------------------------------------------------------

describe('NTT (CPU) against naive negacyclic convolution', () => {
  it('N = 4096, 26-bit prime: every coefficient of forward * forward -> inverse equals the O(N^2) product', () => {
    const n = 4096;
    const q = generateNttPrimes(n, 26, 1)[0];
    const qn = Number(q);
    const plan = NttPlan.create({ n, moduli: [q], backend: 'cpu' });
    const a = randomPoly(n, [q]);
    const b = randomPoly(n, [q]);
    const c = plan.inverseSync(pointwise(plan.forwardSync(a), plan.forwardSync(b), n, [q]));
    // Products of 26-bit residues are below 2^52: exact in float64.
    const an = Array.from(a, Number);
    const bn = Array.from(b, Number);
    for (let k = 0; k < n; k++) {
      let acc = 0;
      for (let i = 0; i <= k; i++) acc = (acc + an[i] * bn[k - i]) % qn;
      for (let i = k + 1; i < n; i++) acc = (acc - ((an[i] * bn[k - i + n]) % qn) + qn) % qn;
      if (Number(c[k]) !== acc) throw new Error(`coefficient ${k}: ${c[k]} != ${acc}`);
    }
    plan.dispose();
  });

  it('N = 4096, 4 limbs of 60-bit primes: random coefficients match the BigInt naive product', async () => {
    const n = 4096;
    const moduli = generateNttPrimes(n, 60, 4);
    const plan = NttPlan.create({ n, moduli, backend: 'cpu' });
    const a = randomPoly(n, moduli);
    const b = randomPoly(n, moduli);
    const c = await plan.inverse(pointwise(await plan.forward(a), await plan.forward(b), n, moduli));
    moduli.forEach((q, l) => {
      for (let s = 0; s < 24; s++) {
        const k = s < 2 ? s * (n - 1) : Math.floor(Math.random() * n);
        expect(c[l * n + k]).toBe(negacyclicCoeff(a, b, l * n, n, q, k));
      }
    });
    plan.dispose();
  });

  it('small internal sizes (n = 2..256, 61-bit primes): the whole product matches', () => {
    for (const n of [2, 4, 8, 64, 256]) {
      const moduli = generateNttPrimes(n, 61, 2);
      const plan = smallPlan(n, moduli);
      const a = randomPoly(n, moduli);
      const b = randomPoly(n, moduli);
      const c = plan.inverseSync(pointwise(plan.forwardSync(a), plan.forwardSync(b), n, moduli));
      moduli.forEach((q, l) => {
        for (let k = 0; k < n; k++) expect(c[l * n + k]).toBe(negacyclicCoeff(a, b, l * n, n, q, k));
      });
      plan.dispose();
    }
  });

  it('forward output is A[bitrev(i)] = a(psi^(2i+1)) with psi the minimal primitive 2n-th root', () => {
    const n = 64;
    const q = generateNttPrimes(n, 40, 1)[0];
    // minimal primitive 2n-th root, by brute force over the odd powers of one root
    let g = 0n;
    for (let x = 2n; g === 0n; x++) {
      const c = powMod(x, (q - 1n) / BigInt(2 * n), q);
      if (powMod(c, BigInt(n), q) === q - 1n) g = c;
    }
    let psi = g;
    for (let k = 1n; k < BigInt(2 * n); k += 2n) {
      const r = powMod(g, k, q);
      if (r < psi) psi = r;
    }
    const plan = smallPlan(n, [q]);
    const a = randomPoly(n, [q]);
    const A = plan.forwardSync(a);
    for (let i = 0; i < n; i++) {
      const x = powMod(psi, BigInt(2 * i + 1), q);
      let v = 0n;
      for (let j = n - 1; j >= 0; j--) v = (v * x + a[j]) % q;
      expect(A[bitrev(i, 6)]).toBe(v);
    }
  });

  it('inverse(forward(x)) = x for N = 2^12..2^16 and 1..4 limbs; outputs fully reduced', async () => {
    for (let logn = 12; logn <= 16; logn++) {
      const n = 2 ** logn;
      for (const limbs of [1, 2, 3, 4]) {
        const moduli = generateNttPrimes(n, limbs % 2 ? 61 : 50, limbs);
        const plan = NttPlan.create({ n, moduli, backend: 'cpu' });
        const x = randomPoly(n, moduli);
        const f = await plan.forward(x);
        moduli.forEach((q, l) => {
          for (let j = 0; j < n; j += 97) expect(f[l * n + j] < q).toBe(true);
        });
        const y = await plan.inverse(f);
        expect(Buffer.from(y.buffer).equals(Buffer.from(x.buffer))).toBe(true);
        plan.dispose();
      }
    }
  });

  it('handles the extreme words 0 and q-1', () => {
    const n = 4096;
    const moduli = generateNttPrimes(n, 61, 2);
    const plan = NttPlan.create({ n, moduli, backend: 'cpu' });
    const x = new BigUint64Array(2 * n);
    moduli.forEach((q, l) => x.fill(q - 1n, l * n, (l + 1) * n));
    expect(plan.inverseSync(plan.forwardSync(x))).toEqual(x);
    const z = new BigUint64Array(2 * n);
    expect(plan.forwardSync(z)).toEqual(z);
  });

  it('benchmark reports native timings', async () => {
    const plan = NttPlan.create({ n: 4096, moduli: generateNttPrimes(4096, 60, 2), backend: 'cpu' });
    const t = await plan.benchmark({ direction: 'forward', iterations: 5 });
    expect(t.runs).toBe(5);
    expect(t.minUs).toBeGreaterThan(0);
    expect(t.minUs).toBeLessThanOrEqual(t.medianUs);
    expect(t.medianUs).toBeLessThanOrEqual(t.maxUs);
  });
});

// ---- bad input ---------------------------------------------------------------------------------

describe('NTT bad input raises a JS error naming the problem', () => {
  const n = 4096;
  const moduli = generateNttPrimes(n, 60, 2);
  const make = (o: unknown) => () => NttPlan.create({ ...(o as object), backend: 'cpu' } as never);

  it('wrong N', () => {
    for (const bad of [4095, 2048, 131072, 0, -4096, 4096.5]) expect(make({ n: bad, moduli }), `${bad}`).toThrow(RangeError);
    expect(make({ n: 6144, moduli })).toThrow(/power of two/);
    expect(make({ n: NaN, moduli })).toThrow(/options\.n/);
    expect(make({ n: '4096', moduli })).toThrow(TypeError);
  });

  it('moduli that are not NTT-friendly primes', () => {
    expect(make({ n, moduli: [97n] })).toThrow(/not NTT-friendly/);
    // 1 mod 2n but composite
    let c = 8193n * 3n;
    while (c % 8192n !== 1n || isPrime(c)) c += 1n;
    expect(make({ n, moduli: [c] })).toThrow(/not prime/);
    // a prime = 1 mod 2n above 61 bits
    let big = (1n << 62n) + 1n;
    while (!isPrime(big)) big += 8192n;
    expect(make({ n, moduli: [big] })).toThrow(/61 bits/);
    expect(make({ n, moduli: [] })).toThrow(/moduli/);
    expect(make({ n, moduli: new Array(17).fill(moduli[0]) })).toThrow(/moduli/);
    expect(make({ n, moduli: [-5n] })).toThrow(/moduli/);
    expect(make({ n, moduli: 'x' })).toThrow(TypeError);
    expect(make({ n })).toThrow(/moduli/);
    expect(make({ n, moduli: [moduli[0], 97n] })).toThrow(/moduli\[1\]/);
  });

  it('arrays of the wrong length or type, and unreduced words', async () => {
    const plan = NttPlan.create({ n, moduli, backend: 'cpu' });
    expect(() => plan.forwardSync(new BigUint64Array(n))).toThrow(/8192/);
    expect(() => plan.forwardSync(new Float64Array(2 * n) as never)).toThrow(TypeError);
    expect(() => plan.inverseSync([1n, 2n] as never)).toThrow(/BigUint64Array/);
    expect(() => plan.forwardSync(undefined as never)).toThrow(/data/);
    const x = new BigUint64Array(2 * n);
    x[n + 5] = moduli[1];
    expect(() => plan.forwardSync(x)).toThrow(/data\[4101\].*not reduced/);
    await expect(plan.forward(x)).rejects.toThrow(/not reduced/);
    await expect(plan.inverse(new BigUint64Array(3))).rejects.toThrow(RangeError);
    await expect(plan.benchmark({ direction: 'sideways' as never })).rejects.toThrow(/direction/);
  });

  it('a disposed plan', async () => {
    const plan = NttPlan.create({ n, moduli, backend: 'cpu' });
    plan.dispose();
    expect(plan.disposed).toBe(true);
    expect(() => plan.forwardSync(new BigUint64Array(2 * n))).toThrow(/disposed/);
    await expect(plan.inverse(new BigUint64Array(2 * n))).rejects.toThrow(/disposed/);
    await expect(plan.benchmark({ direction: 'forward' })).rejects.toThrow(/disposed/);
    plan.dispose(); // idempotent
  });
});
