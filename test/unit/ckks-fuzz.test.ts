/**
 * 10,000+ malformed calls into the CKKS API (wrong sizes and types, NaN, Inf, scale overflow,
 * mismatched contexts, disposed objects, corrupted bytes): every one must raise a JS error
 * with a message, none may crash the process, and the context must still work afterwards.
 */
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';

// Small deterministic PRNG so a failure can be replayed (test inputs only).
function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('CKKS fuzz: malformed calls raise JS errors, never crash', () => {
  it('10,000 malformed calls', async () => {
    const rnd = mulberry32(20261126);
    const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
    const c = Ckks.create({ polyN: 4096, primeBits: [30, 25], specialPrimeBits: 30, scaleBits: 20, backend: 'cpu' });
    const other = Ckks.create({ polyN: 4096, primeBits: [30, 25], specialPrimeBits: 30, scaleBits: 20, backend: 'cpu' });
    const { secretKey: sk, publicKey: pk } = c.generateKeys();
    const { secretKey: osk, publicKey: opk } = other.generateKeys();
    const gk = await c.generateGaloisKeys(sk, [1]);
    const x = Float64Array.from({ length: 2048 }, () => rnd() - 0.5);
    const pt = c.encode(x);
    const ct = c.encrypt(pt, pk);
    const low = c.modSwitch(ct);
    const opt = other.encode(x);
    const oct = other.encrypt(opt, opk);
    const dead = c.encrypt(pt, pk);
    dead.dispose();
    const deadPt = c.encode(x);
    deadPt.dispose();
    const foreign = Ckks.create({ polyN: 4096, backend: 'cpu' });
    const ctBytes = c.serialize(ct);
    const ptBytes = c.serialize(pt);
    const pkBytes = c.serialize(pk);
    const gkBytes = c.serialize(gk);
    const skBytes = c.exportSecretKey(sk);
    const junk = [undefined, null, 0, 1.5, NaN, 'x', {}, [], [1, 2], new Float32Array(4), new Uint8Array(3), () => 1, Symbol('s'), 10n];

    const notArrays = junk.filter((j) => !Array.isArray(j));
    const badArray = (limit: number): unknown => {
      const n = limit + 1 + Math.floor(rnd() * 5000);
      const kind = pick(['long', 'nan', 'inf', 'type', 'ninf']);
      if (kind === 'long') return new Float64Array(n);
      if (kind === 'type') return pick(notArrays);
      const a = new Float64Array(pick([1, 16, 2048]));
      a[Math.floor(rnd() * a.length)] = kind === 'nan' ? NaN : kind === 'inf' ? Infinity : -Infinity;
      return a;
    };
    const corrupt = (b: Uint8Array): Uint8Array => {
      const mode = pick(['flip', 'truncate', 'extend', 'garbage', 'header']);
      if (mode === 'truncate') return b.slice(0, Math.floor(rnd() * b.length));
      if (mode === 'extend') {
        const extra = 1 + Math.floor(rnd() * 16);
        const out = new Uint8Array(b.length + extra);
        out.set(b.subarray(0, 64));
        out.set(b.subarray(64), 64 + extra);
        return out;
      }
      if (mode === 'garbage') return Uint8Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256));
      const out = b.slice();
      const i = mode === 'header' ? Math.floor(rnd() * 32) : Math.floor(rnd() * out.length);
      out[i] ^= 1 << Math.floor(rnd() * 8);
      return out;
    };

    const cases: Array<[string, () => unknown]> = [
      ['encode bad array', () => c.encode(badArray(2048) as Float64Array)],
      ['encodeCoefficients bad array', () => c.encodeCoefficients(badArray(4096) as Float64Array)],
      ['encode scale overflow', () => c.encode(x, { scale: 2 ** (95 + Math.floor(rnd() * 200)) })],
      ['encode huge values', () => c.encode(Float64Array.from([1e30 * (1 + rnd())]))],
      ['encode bad scale', () => c.encode(x, { scale: pick([0, -1, NaN, Infinity, 0.5, '2' as never]) })],
      ['encode bad limbs', () => c.encode(x, { limbs: pick([0, 3, -1, 1.5, NaN, 100]) })],
      ['encode bad options', () => c.encode(x, pick([1, 'x', true]) as never)],
      ['encrypt mismatched', () => c.encrypt(pick([opt, pt]), pick([opk, pk]) === pk ? opk : opk)],
      ['encrypt wrong types', () => c.encrypt(pick(junk) as never, pk)],
      ['encrypt key as plaintext', () => c.encrypt(pk as never, pk)],
      ['encryptSymmetric other key', () => c.encryptSymmetric(pt, osk)],
      ['decrypt other key', () => c.decrypt(ct, osk)],
      ['decrypt other ciphertext', () => c.decrypt(oct, sk)],
      ['decrypt junk', () => c.decrypt(pick(junk) as never, sk)],
      ['decrypt disposed', () => c.decrypt(dead, sk)],
      ['decode disposed', () => c.decode(deadPt)],
      ['decode junk', () => c.decode(pick(junk) as never)],
      ['decryptBatch junk', () => c.decryptBatch(pick([[ct, pick(junk)], [oct], [dead], 'x']) as never, sk)],
      ['add mismatched', () => c.add(ct, pick([oct, low, dead]))],
      ['sub mismatched', () => c.sub(pick([oct, low, dead]), ct)],
      ['multiplyPlain mismatched', () => c.multiplyPlain(ct, pick([opt, deadPt, c.decrypt(low, sk)]))],
      ['multiplyPlain scale overflow', () => {
        let m = ct;
        for (let i = 0; i < 30; i++) m = c.multiplyPlain(m, pt);
        return m;
      }],
      ['rescale last level', () => c.rescale(pick([low, dead, oct]))],
      ['modSwitch last level', () => c.modSwitch(pick([low, dead]))],
      ['rotate bad steps', () => c.rotate(ct, pick([2, 5000, -5000, 1.5, NaN, 2 ** 40]) as number, gk)],
      ['rotate bad keys', () => c.rotate(ct, 1, pick(junk) as never)],
      ['rotate other context', () => other.rotate(oct, 1, gk)],
      ['galois keys bad steps', () => c.generateGaloisKeys(sk, pick([[], [1.5], ['a'], [99999], 'x']) as never)],
      ['deserialize corrupt ciphertext', () => c.deserializeCiphertext(corrupt(ctBytes))],
      ['deserialize corrupt plaintext', () => c.deserializePlaintext(corrupt(ptBytes))],
      ['deserialize corrupt public key', () => c.deserializePublicKey(corrupt(pkBytes))],
      ['deserialize corrupt galois keys', () => c.deserializeGaloisKeys(corrupt(gkBytes))],
      ['import corrupt secret key', () => c.importSecretKey(corrupt(skBytes))],
      ['deserialize wrong kind', () => c.deserializeCiphertext(pick([ptBytes, pkBytes, gkBytes, skBytes]))],
      ['deserialize foreign', () => foreign.deserializeCiphertext(ctBytes)],
      ['deserialize junk', () => c.deserializeCiphertext(pick(junk) as never)],
      ['serialize junk', () => c.serialize(pick([...junk, sk]) as never)],
      ['create bad options', () => Ckks.create(pick([{ polyN: 3000 }, { polyN: 4096, primeBits: [70] }, { polyN: 4096, scaleBits: 99 }, { polyN: 4096, primeBits: [60, 60] }, { polyN: 'big' }, null, { polyN: 4096, seed: -5n }]) as never)],
    ];

    const seen = new Map<string, number>();
    const times = new Map<string, number>();
    let calls = 0;
    for (let i = 0; i < 10000; i++) {
      const [name, fn] = cases[i % cases.length];
      let threw: unknown;
      const t0 = performance.now();
      try {
        const r = fn();
        if (r instanceof Promise) await r;
      } catch (e) {
        threw = e;
      }
      calls++;
      if (!(threw instanceof Error)) throw new Error(`case '${name}' (call ${i}) did not raise an Error`);
      expect(threw.message.length).toBeGreaterThan(5);
      seen.set(name, (seen.get(name) ?? 0) + 1);
      if (process.env.FUZZ_PROFILE) times.set(name, (times.get(name) ?? 0) + (performance.now() - t0));
    }
    // eslint-disable-next-line no-console
    if (process.env.FUZZ_PROFILE) console.log([...times].sort((a, b) => b[1] - a[1]).slice(0, 6));
    expect(calls).toBe(10000);
    expect(seen.size).toBe(cases.length);
    // the context still works
    const d = c.decode(c.decrypt(c.add(ct, ct), sk));
    // scale 2^20 on a 30-bit prime: fresh noise is about 1e-3 .. 1e-2 here
    expect(Math.abs(d[7] - 2 * x[7])).toBeLessThan(0.05);
  }, 120_000);
});
