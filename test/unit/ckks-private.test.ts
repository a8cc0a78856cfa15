/**
 * The CKKS primitives of the private (client-key) mode on the CPU backend: plaintexts from and
 * to raw residues, caller-visible samples (masks, flooding noise), compact symmetric
 * encryption, rerandomisation, rotate as an automorphism of the coefficients, and the
 * native-owned parameter rules. Each is checked against an independent reference (BigInt
 * re-derivations of the documented layouts, float64, statistics on fresh OS-seeded draws).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import { native } from '../../src/engine/native';
import {
  centred,
  chachaWords,
  chiSquare,
  chiSquareLimit,
  refCentered,
  refUniform128,
  refUniformExact,
  objectChecksum,
  resum,
  seedKey,
} from '../helpers/ckks-reference';

function randomSeed(): bigint {
  return BigInt('0x' + randomBytes(32).toString('hex'));
}
/** Uniform bigint below q from OS randomness (test inputs). */
function randomBelow(q: bigint): bigint {
  for (;;) {
    const v = BigInt('0x' + randomBytes(8).toString('hex')) & ((1n << BigInt(q.toString(2).length)) - 1n);
    if (v < q) return v;
  }
}
/** Residues (limb-major) of integer coefficients. */
function residues(coeffs: bigint[], moduli: bigint[]): BigUint64Array {
  const n = coeffs.length;
  const out = new BigUint64Array(moduli.length * n);
  moduli.forEach((q, i) => coeffs.forEach((c, j) => (out[i * n + j] = ((c % q) + q) % q)));
  return out;
}
function randomInts(n: number, amp: number): bigint[] {
  return Array.from({ length: n }, () => BigInt(Math.floor(Math.random() * (2 * amp + 1)) - amp));
}

describe('plaintextFromWords / plaintextWords', () => {
  const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
  const { moduli, polyN: n } = c.info();

  it('round trips random residues at every level', () => {
    for (const limbs of [1, 2]) {
      const w = new BigUint64Array(limbs * n);
      for (let i = 0; i < limbs; i++) for (let j = 0; j < n; j++) w[i * n + j] = randomBelow(moduli[i]);
      const pt = c.plaintextFromWords(w, { limbs });
      expect(pt.limbs).toBe(limbs);
      expect(pt.scale).toBe(1);
      expect(pt.encoding).toBe('coefficients');
      expect(c.plaintextWords(pt)).toEqual(w);
    }
  });

  it('lands in the NTT domain: equals encodeCoefficients of the same integers, and multiplies negacyclically', () => {
    const ints = randomInts(n, 1000);
    const pt = c.plaintextFromWords(residues(ints, moduli), { limbs: 2 });
    const ref = c.encodeCoefficients(Float64Array.from(ints, Number), { scale: 1 });
    expect(Buffer.from(c.serialize(pt)).equals(Buffer.from(c.serialize(ref)))).toBe(true);
    // m * X^k under encryption: coefficient j moves to j + k, negated past N (X^N = -1)
    const k = 1 + Math.floor(Math.random() * (n - 1));
    const mono = new Array<bigint>(n).fill(0n);
    mono[k] = 1n;
    const { secretKey, publicKey } = c.generateKeys();
    const delta = 2 ** 30;
    const x = randomInts(n, 50);
    const ct = c.encrypt(c.plaintextFromWords(residues(x.map((v) => v * BigInt(delta)), moduli), { limbs: 2, scale: delta }), publicKey);
    const prod = c.multiplyPlain(ct, c.plaintextFromWords(residues(mono, moduli), { limbs: 2 }));
    expect(prod.scale).toBe(delta);
    const got = c.decodeCoefficients(c.decrypt(prod, secretKey));
    for (let j = 0; j < n; j++) {
      const want = j >= k ? Number(x[j - k]) : -Number(x[j - k + n]);
      expect(Math.round(got[j]) + 0).toBe(want + 0); // + 0: -0 and 0 are the same integer
    }
  });

  it('plaintextWords of an encoding are its rounded scaled coefficients; scale and encoding are kept', () => {
    const pt = c.encodeCoefficients([1.5, -2.25, 3], { scale: 2 ** 20 });
    const w = c.plaintextWords(pt);
    expect(w.length).toBe(2 * n);
    expect(w[0]).toBe(BigInt(1.5 * 2 ** 20));
    expect(w[1]).toBe(moduli[0] - BigInt(2.25 * 2 ** 20));
    expect(w[n + 2]).toBe(BigInt(3 * 2 ** 20));
    const back = c.plaintextFromWords(w, { limbs: 2, scale: 2 ** 20, encoding: 'slots' });
    expect(back.encoding).toBe('slots');
    expect(back.scale).toBe(2 ** 20);
    expect(c.decodeCoefficients(back).subarray(0, 3)).toEqual(Float64Array.from([1.5, -2.25, 3]));
  });

  it('refuses words out of range (naming the index), wrong lengths and bad options', () => {
    const w = new BigUint64Array(2 * n);
    w[n + 5] = moduli[1];
    expect(() => c.plaintextFromWords(w, { limbs: 2 })).toThrow(new RegExp(`words\\[${n + 5}\\].*not below its prime q_1`));
    try {
      c.plaintextFromWords(w, { limbs: 2 });
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError);
    }
    w[n + 5] = 0n;
    expect(() => c.plaintextFromWords(w, { limbs: 1 })).toThrow(/limbs \* polyN = 8192/);
    expect(() => c.plaintextFromWords(w, { limbs: 3 })).toThrow(/options.limbs must be in \[1, 2\]/);
    expect(() => c.plaintextFromWords(w, {} as never)).toThrow(TypeError);
    expect(() => c.plaintextFromWords(new Float64Array(2 * n) as never, { limbs: 2 })).toThrow(TypeError);
    expect(() => c.plaintextFromWords(w, { limbs: 2, encoding: 'ntt' as never })).toThrow(/options.encoding/);
    expect(() => c.plaintextFromWords(w, { limbs: 2, scale: 0.5 })).toThrow(/options.scale/);
    const other = Ckks.create({ polyN: 8192, backend: 'cpu' });
    expect(() => other.plaintextWords(c.plaintextFromWords(w, { limbs: 2 }))).toThrow(/another CKKS context/);
  });
});

describe('sampleWords', () => {
  it('uniform: exactly the documented rejection sampler (seeded), in range, fresh per call', () => {
    const seed = randomSeed();
    const c = Ckks.create({ polyN: 8192, seed, backend: 'cpu' });
    const { moduli } = c.info();
    const count = 5000;
    const w = c.sampleWords({ limbs: 2, count, distribution: 'uniform' });
    expect(w.length).toBe(2 * count);
    // the first sampling call of a fresh context takes stream id 1
    const ref = refUniformExact(seedKey(seed), 1n, moduli, count);
    expect(Array.from(w)).toEqual(ref);
    // the next call draws a new stream
    const w2 = c.sampleWords({ limbs: 2, count, distribution: 'uniform' });
    expect(Array.from(w2)).toEqual(refUniformExact(seedKey(seed), 2n, moduli, count));
    // same seed, same words; OS-seeded contexts never repeat
    expect(Ckks.create({ polyN: 8192, seed, backend: 'cpu' }).sampleWords({ limbs: 2, count, distribution: 'uniform' })).toEqual(w);
    const os = Ckks.create({ polyN: 8192, backend: 'cpu' });
    expect(os.sampleWords({ limbs: 1, count: 64, distribution: 'uniform' })).not.toEqual(os.sampleWords({ limbs: 1, count: 64, distribution: 'uniform' }));
  });

  it('the rejection branches: moduli near 2^64 (uniform) and M = 2^127 + 1 (centered) reject often', () => {
    const key = new Uint8Array(randomBytes(32));
    const moduli = [3n * 2n ** 62n + 1n, 2n ** 63n + 29n, 1000003n]; // ~25%, ~50%, ~0% rejected
    const got = native().ckksTesting.sampleUniformExact(key, 9n, moduli, 4000);
    expect(Array.from(got)).toEqual(refUniformExact(key, 9n, moduli, 4000));
    // rejection happened: "w mod q" of the raw words differs
    const raw = chachaWords(key, 9n, 0n, 4000);
    expect(Array.from(raw, (x) => x % moduli[0])).not.toEqual(Array.from(got.subarray(0, 4000)));
    // values above the largest multiple of q would bias [0, 2^64 mod q): none is kept
    const wide = native().ckksTesting.sampleCentered(key, 10n, [2n ** 63n + 29n], 3000, 126);
    expect(Array.from(wide)).toEqual(refCentered(key, 10n, [2n ** 63n + 29n], 3000, 126).words);
    const c = Ckks.create({ polyN: 8192, primeBits: [60, 60, 60], seed: 5n, backend: 'cpu' });
    const w = c.sampleWords({ limbs: 3, count: 1000, distribution: 'centered', bits: 126 });
    expect(Array.from(w)).toEqual(refCentered(seedKey(5n), 1n, c.info().moduli, 1000, 126).words);
    expect(() => native().ckksTesting.sampleUniformExact(key, 0n, [4n], 1)).toThrow(/odd/);
  });

  it('uniform: chi-square over 64 bins per prime, limbs independent (OS-seeded)', () => {
    const c = Ckks.create({ polyN: 8192, primeBits: [60, 40, 20], backend: 'cpu' });
    const { moduli } = c.info();
    const count = 64 * 400;
    const w = c.sampleWords({ limbs: 3, count, distribution: 'uniform' });
    moduli.forEach((q, i) => {
      const bins = new Array<number>(64).fill(0);
      for (let j = 0; j < count; j++) {
        const v = w[i * count + j];
        expect(v < q).toBe(true);
        bins[Number((v * 64n) / q)]++;
      }
      expect(chiSquare(bins)).toBeLessThan(chiSquareLimit(63));
    });
    // limbs are independent: the 20-bit residues are not a function of the 60-bit ones
    let same = 0;
    for (let j = 0; j < count; j++) if (w[j] % moduli[2] === w[2 * count + j]) same++;
    expect(same).toBeLessThan(10);
  });

  it('centered: exactly uniform on [-2^bits, 2^bits], one integer per position in every limb', () => {
    const seed = randomSeed();
    const c = Ckks.create({ polyN: 8192, seed, backend: 'cpu' });
    const { moduli } = c.info();
    const count = 17 * 600;
    const w = c.sampleWords({ limbs: 2, count, distribution: 'centered', bits: 3 });
    const ref = refCentered(seedKey(seed), 1n, moduli, count, 3);
    expect(Array.from(w)).toEqual(ref.words);
    const bins = new Array<number>(17).fill(0);
    for (let j = 0; j < count; j++) {
      const e0 = centred(w[j], moduli[0]);
      expect(centred(w[count + j], moduli[1])).toBe(e0); // the same integer in both limbs
      expect(e0 >= -8n && e0 <= 8n).toBe(true);
      bins[Number(e0) + 8]++;
    }
    expect(Math.min(...bins)).toBeGreaterThan(0); // both ends reached
    expect(chiSquare(bins)).toBeLessThan(chiSquareLimit(16));
  });

  it('centered: wide flooding noise (80 bits over [60, 40]) reconstructs by CRT within the bound; moments match', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const [q0, q1] = c.info().moduli;
    const count = 20000;
    const bits = 80;
    const w = c.sampleWords({ limbs: 2, count, distribution: 'centered', bits });
    const Q = q0 * q1;
    // CRT: x = a0 + q0 * ((a1 - a0) * q0^-1 mod q1)
    const inv = (a: bigint, m: bigint) => {
      let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
      while (r1) {
        const t = r0 / r1;
        [r0, r1, s0, s1] = [r1, r0 - t * r1, s1, s0 - t * s1];
      }
      return ((s0 % m) + m) % m;
    };
    const q0inv = inv(q0, q1);
    const bound = 1n << BigInt(bits);
    let sum = 0;
    let sq = 0;
    let neg = 0;
    for (let j = 0; j < count; j++) {
      const a0 = w[j];
      const a1 = w[count + j];
      const x = centred(a0 + q0 * ((((a1 - (a0 % q1)) % q1) + q1) % q1 * q0inv % q1), Q);
      expect(x >= -bound && x <= bound).toBe(true);
      const f = Number(x) / Number(bound);
      sum += f;
      sq += f * f;
      if (x < 0n) neg++;
    }
    // uniform on [-1, 1]: mean 0 (sd 1/sqrt(3n)), second moment 1/3 (sd ~ 0.3/sqrt(n))
    expect(Math.abs(sum / count)).toBeLessThan(6 / Math.sqrt(3 * count));
    expect(Math.abs(sq / count - 1 / 3)).toBeLessThan(6 * 0.3 / Math.sqrt(count));
    expect(Math.abs(neg / count - 0.5)).toBeLessThan(6 * 0.5 / Math.sqrt(count));
  });

  it('refuses bad options with errors naming them', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    expect(() => c.sampleWords({ limbs: 2, count: 8, distribution: 'centered' })).toThrow(/options.bits is required/);
    expect(() => c.sampleWords({ limbs: 2, count: 8, distribution: 'uniform', bits: 3 })).toThrow(/'centered' only/);
    expect(() => c.sampleWords({ limbs: 2, count: 8, distribution: 'centered', bits: 99 })).toThrow(/options.bits/);
    expect(() => c.sampleWords({ limbs: 1, count: 8, distribution: 'centered', bits: 59 })).toThrow(/options.bits/);
    expect(c.sampleWords({ limbs: 1, count: 8, distribution: 'centered', bits: 58 }).length).toBe(8);
    expect(() => c.sampleWords({ limbs: 2, count: 0, distribution: 'uniform' })).toThrow(/options.count/);
    expect(() => c.sampleWords({ limbs: 3, count: 8, distribution: 'uniform' })).toThrow(/options.limbs/);
    expect(() => c.sampleWords({ limbs: 2, count: 8, distribution: 'gaussian' as never })).toThrow(/options.distribution/);
    expect(() => c.sampleWords({ limbs: 2, count: 2 ** 22 + 1, distribution: 'uniform' })).toThrow(/options.count/);
    expect(() => c.sampleWords(undefined as never)).toThrow(TypeError);
  });
});

describe('compact symmetric encryption', () => {
  it('writes the seed instead of c1, expands back to the same words, and decrypts', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const sk = c.generateSecretKey();
    const x = Float64Array.from({ length: 4096 }, () => Math.random() * 2 - 1);
    const pt = c.encode(x);
    const ct = c.encryptSymmetric(pt, sk, { compact: true });
    expect(ct.compact).toBe(true);
    const full = c.encryptSymmetric(pt, sk);
    expect(full.compact).toBe(false);
    const bytes = c.serialize(ct);
    const fullBytes = c.serialize(full);
    expect(bytes.length).toBe(fullBytes.length - 2 * 8192 * 8 + 40);
    expect(bytes.length / fullBytes.length).toBeLessThan(0.51);
    const back = c.deserializeCiphertext(bytes);
    expect(back.compact).toBe(true);
    expect(c.ciphertextWords(back)).toEqual(c.ciphertextWords(ct));
    expect(Buffer.from(c.serialize(back)).equals(Buffer.from(bytes))).toBe(true);
    const d = c.decode(c.decrypt(back, sk));
    for (let i = 0; i < x.length; i++) expect(Math.abs(d[i] - x[i])).toBeLessThan(1e-6);
    // every compact encryption has its own seed
    const w1 = c.ciphertextWords(c.encryptSymmetric(pt, sk, { compact: true }));
    const w2 = c.ciphertextWords(c.encryptSymmetric(pt, sk, { compact: true }));
    expect(Buffer.from(w1.buffer, 2 * 8192 * 8).equals(Buffer.from(w2.buffer, 2 * 8192 * 8))).toBe(false);
    expect(() => c.encryptSymmetric(pt, sk, { compact: 1 as never })).toThrow(/options.compact/);
  });

  it('seeded: the seed is the context stream word layout and c1 its documented expansion', () => {
    const seed = randomSeed();
    const c = Ckks.create({ polyN: 8192, primeBits: [50, 40, 30], seed, backend: 'cpu' });
    const { moduli, polyN: n } = c.info();
    const sk = c.generateSecretKey(); // stream 1
    const ct = c.encryptSymmetric(c.encode([1, 2, 3], { limbs: 2 }), sk, { compact: true }); // stream 2
    const bytes = c.serialize(ct);
    // header 24 bytes, then limbs, size, scale, form, padding (24 bytes), then the seed
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    expect(view.getUint16(4, true)).toBe(4); // compact, word checksum
    const stored = bytes.slice(48, 80);
    const expected = new Uint8Array(chachaWords(seedKey(seed), 2n, 0n, 4).buffer);
    expect(Buffer.from(stored).equals(Buffer.from(expected))).toBe(true);
    const c1 = Array.from(c.ciphertextWords(ct).subarray(2 * n));
    expect(c1).toEqual(refUniform128(stored, 0n, moduli.slice(0, 2), n));
    // the same calls on a context of the same seed give the same bytes
    const again = Ckks.create({ polyN: 8192, primeBits: [50, 40, 30], seed, backend: 'cpu' });
    const sk2 = again.generateSecretKey();
    expect(Buffer.from(again.serialize(again.encryptSymmetric(again.encode([1, 2, 3], { limbs: 2 }), sk2, { compact: true }))).equals(Buffer.from(bytes))).toBe(true);
  });

  it('operations that keep c1 keep the seed; all others drop it', async () => {
    const c = Ckks.create({ polyN: 8192, primeBits: [60, 40, 40], specialPrimeBits: 60, backend: 'cpu' });
    const { secretKey: sk, publicKey: pk } = c.generateKeys();
    const gk = await c.generateGaloisKeys(sk, [1]);
    const pt = c.encode([0.5, -1, 2]);
    const ct = c.encryptSymmetric(pt, sk, { compact: true });
    const roundTrip = (x: ReturnType<Ckks['add']>) => {
      const y = c.deserializeCiphertext(c.serialize(x));
      expect(c.ciphertextWords(y)).toEqual(c.ciphertextWords(x));
      return y;
    };
    const plus = c.addPlain(ct, pt);
    expect(plus.compact).toBe(true);
    roundTrip(plus);
    const low = c.modSwitch(ct);
    expect(low.compact).toBe(true);
    expect(roundTrip(low).limbs).toBe(2);
    expect(c.modSwitch(low).compact).toBe(true);
    expect(c.rotate(ct, 0, gk).compact).toBe(true);
    for (const dropped of [
      c.add(ct, ct),
      c.sub(ct, c.encryptSymmetric(pt, sk)),
      c.multiplyPlain(ct, pt),
      c.rescale(c.multiplyPlain(ct, pt)),
      c.rotate(ct, 1, gk),
      c.rerandomize(ct, pk),
    ]) {
      expect(dropped.compact).toBe(false);
      roundTrip(dropped);
    }
  });

  it('refuses corrupt compact bytes and the compact versions (2, 4) for other objects', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const sk = c.generateSecretKey();
    const bytes = c.serialize(c.encryptSymmetric(c.encode([1]), sk, { compact: true }));
    const flip = bytes.slice();
    flip[60] ^= 1; // in the seed
    expect(() => c.deserializeCiphertext(flip)).toThrow(/checksum/);
    const form = bytes.slice();
    form[40] = 7;
    expect(() => c.deserializeCiphertext(resum(form))).toThrow(/unknown form/);
    expect(() => c.deserializeCiphertext(resum(bytes.slice(0, bytes.length - 16)))).toThrow(/length|truncated/);
    const pt = c.serialize(c.encode([1]));
    for (const compact of [2, 4]) {
      const v = pt.slice();
      v[4] = compact;
      expect(() => c.deserializePlaintext(resum(v))).toThrow(new RegExp(`version ${compact} for a plaintext`));
    }
    for (const unknown of [0, 5]) {
      const v = pt.slice();
      v[4] = unknown;
      expect(() => c.deserializePlaintext(resum(v))).toThrow(new RegExp(`unsupported format version ${unknown}`));
    }
  });

  it('writes versions 3 and 4 (word checksum) and still reads 1 and 2 (FNV-1a), refusing a checksum of the other kind', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const sk = c.generateSecretKey();
    const full = c.encryptSymmetric(c.encode([1, -2]), sk);
    const compact = c.encryptSymmetric(c.encode([1, -2]), sk, { compact: true });
    for (const [ct, now, old] of [[full, 3, 1], [compact, 4, 2]] as const) {
      const bytes = c.serialize(ct);
      const dv = new DataView(bytes.buffer, bytes.byteOffset);
      expect(dv.getUint16(4, true)).toBe(now);
      // the checksum is the documented word checksum of everything before it
      expect(dv.getBigUint64(bytes.length - 8, true)).toBe(objectChecksum(now, bytes.subarray(0, bytes.length - 8)));
      // the same body under the old version and its FNV-1a checksum: the same ciphertext
      const legacy = bytes.slice();
      legacy[4] = old;
      const back = c.deserializeCiphertext(resum(legacy));
      expect(c.ciphertextWords(back)).toEqual(c.ciphertextWords(ct));
      // a version whose checksum does not match its kind is refused
      const wrongSum = bytes.slice();
      wrongSum[4] = old;
      expect(() => c.deserializeCiphertext(wrongSum)).toThrow(/checksum/);
      // every single flipped bit of the body is caught
      for (const at of [30, 40, bytes.length - 9, Math.floor(bytes.length / 2)]) {
        const flip = bytes.slice();
        flip[at] ^= 0x80;
        expect(() => c.deserializeCiphertext(flip)).toThrow(/checksum|corrupt/);
      }
    }
  });
});

describe('rerandomize', () => {
  it('adds a fresh encryption of zero at the same level and scale; c1 changes, the value does not', () => {
    const c = Ckks.create({ polyN: 8192, primeBits: [60, 40, 40], backend: 'cpu' });
    const { secretKey: sk, publicKey: pk } = c.generateKeys();
    const x = Float64Array.from({ length: 4096 }, () => Math.random() * 2 - 1);
    for (const ct of [c.encrypt(c.encode(x), pk), c.modSwitch(c.encryptSymmetric(c.encode(x), sk))]) {
      const r = c.rerandomize(ct, pk);
      expect(r.limbs).toBe(ct.limbs);
      expect(r.scale).toBe(ct.scale);
      const d = c.decode(c.decrypt(r, sk));
      for (let i = 0; i < x.length; i++) expect(Math.abs(d[i] - x[i])).toBeLessThan(1e-5);
      // the difference is an encryption of zero: tiny after decryption (noise / scale)
      const z = c.decode(c.decrypt(c.sub(r, ct), sk));
      expect(Math.max(...Array.from(z, Math.abs))).toBeLessThan(1e-6);
      // c1' - c1 = a*u + e1 looks uniform: chi-square over 32 bins of limb 0
      const n = 8192;
      const w0 = c.ciphertextWords(ct);
      const w1 = c.ciphertextWords(r);
      const l = ct.limbs;
      const q = c.info().moduli[0];
      const bins = new Array<number>(32).fill(0);
      for (let j = 0; j < n; j++) {
        const diff = (w1[l * n + j] - w0[l * n + j] + q) % q;
        bins[Number((diff * 32n) / q)]++;
      }
      expect(chiSquare(bins)).toBeLessThan(chiSquareLimit(31));
      // two rerandomisations differ
      expect(c.ciphertextWords(c.rerandomize(ct, pk))).not.toEqual(w1);
    }
    const other = Ckks.create({ polyN: 8192, primeBits: [60, 40, 40], backend: 'cpu' });
    expect(() => other.rerandomize(other.encrypt(other.encode([1]), other.generateKeys().publicKey), pk)).toThrow(/another CKKS context/);
    expect(() => c.rerandomize(c.encode([1]) as never, pk)).toThrow(TypeError);
  });
});

describe('rotate is the automorphism X -> X^(5^steps mod 2N) on coefficients', () => {
  const n = 8192;
  const c = Ckks.create({ polyN: n, specialPrimeBits: 60, backend: 'cpu' });
  const { moduli } = c.info();
  const sk = c.generateSecretKey();

  /** tau_g(m): coefficient j goes to j*g mod 2N, negated when that is >= N. */
  function automorphism(m: bigint[], g: number): bigint[] {
    const out = new Array<bigint>(n).fill(0n);
    for (let j = 0; j < n; j++) {
      const e = (j * g) % (2 * n);
      if (e < n) out[e] = m[j];
      else out[e - n] = -m[j];
    }
    return out;
  }

  it('galoisElement / galoisStep: 5^steps mod 2N and its discrete log (only for g = 1 mod 4)', () => {
    let g = 1;
    for (let j = 0; j < 40; j++) {
      expect(c.galoisElement(j)).toBe(g);
      expect(c.galoisStep(g)).toBe(j);
      g = (g * 5) % (2 * n);
    }
    expect(c.galoisElement(-1)).toBe(c.galoisElement(n / 2 - 1));
    for (let k = 2; k < 14; k++) expect(c.galoisElement(c.galoisStep(2 ** k + 1))).toBe(2 ** k + 1);
    expect(() => c.galoisStep(3)).toThrow(/not a power of 5/);
    expect(() => c.galoisStep(2 * n - 1)).toThrow(/not a power of 5/);
    expect(() => c.galoisStep(2)).toThrow(/not a power of 5/);
    expect(() => c.galoisStep(2 * n)).toThrow(RangeError);
    expect(() => c.galoisElement(n / 2)).toThrow(RangeError);
  });

  it('permutes (and negates) the coefficients exactly, for plain steps and for X -> X^(2^k + 1)', async () => {
    const steps = [1, 3, n / 2 - 1, -2, ...[2, 5, 9, 12].map((k) => c.galoisStep(2 ** k + 1))];
    steps.push(1 + Math.floor(Math.random() * (n / 2 - 1))); // any step has a key
    const gk = await c.generateGaloisKeys(sk, steps);
    const delta = 2 ** 30;
    const m = randomInts(n, 100);
    const pt = c.plaintextFromWords(residues(m.map((v) => v * BigInt(delta)), moduli), { limbs: 2, scale: delta });
    const ct = c.encryptSymmetric(pt, sk);
    for (const s of steps) {
      const want = automorphism(m, c.galoisElement(s));
      const got = c.decodeCoefficients(c.decrypt(c.rotate(ct, s, gk), sk));
      let worst = 0;
      for (let j = 0; j < n; j++) {
        expect(Math.round(got[j]) + 0).toBe(Number(want[j]) + 0);
        worst = Math.max(worst, Math.abs(got[j] - Number(want[j])));
      }
      expect(worst).toBeLessThan(1e-3);
    }
  });
});

describe('native-owned rules: info(), the security table, the bounds', () => {
  it('info reports prime sizes and the 128-bit bound; the table and limits come from the addon', () => {
    const i = Ckks.create({ polyN: 16384, primeBits: [60, 40, 50], specialPrimeBits: 60, backend: 'cpu' }).info();
    expect(i.primeBits).toEqual([60, 40, 50]);
    expect(i.specialPrimeBits).toBe(60);
    expect(i.maxLogQP128).toBe(438);
    i.moduli.forEach((q, k) => expect(q.toString(2).length).toBe(i.primeBits[k]));
    expect(Ckks.create({ polyN: 8192, backend: 'cpu' }).info().specialPrimeBits).toBeNull();
    const t = Ckks.securityTable();
    expect(t).toEqual({ 1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881, 65536: 1747 });
    for (const [n, bound] of Object.entries(t)) {
      if (Number(n) < Ckks.limits().minPolyN) continue;
      expect(Ckks.create({ polyN: Number(n), primeBits: [20], backend: 'cpu' }).info().maxLogQP128).toBe(bound);
    }
    const lim = Ckks.limits();
    expect(lim).toMatchObject({ minPolyN: 4096, maxPolyN: 65536, minPrimeBits: 20, maxPrimeBits: 60 });
    expect(() => Ckks.create({ polyN: lim.minPolyN / 2, backend: 'cpu' })).toThrow(new RegExp(`\\[${lim.minPolyN}, ${lim.maxPolyN}\\]`));
    expect(Ckks.polyNs()).toEqual([4096, 8192, 16384, 32768, 65536]);
  });

  it('checkParameters: the checks of a context without one, with the same errors', () => {
    const bad = { polyN: 4096, primeBits: [60, 40], specialPrimeBits: 60 };
    let created: unknown;
    try {
      Ckks.create({ ...bad, backend: 'cpu' });
    } catch (e) {
      created = e;
    }
    let checked: unknown;
    try {
      Ckks.checkParameters(bad);
    } catch (e) {
      checked = e;
    }
    expect((checked as Error).message).toBe((created as Error).message);
    expect((checked as NodeJS.ErrnoException).code).toBe('ERR_TENSAFE_INSECURE');
    const facts = Ckks.checkParameters({ ...bad, allowInsecure: true });
    const info = Ckks.create({ ...bad, allowInsecure: true, backend: 'cpu' }).info();
    expect(facts).toEqual({ logQP: info.logQP, maxLogQP128: 109, belowSecurityBound: true });
    expect(Ckks.checkParameters({ polyN: 16384 }).belowSecurityBound).toBe(false);
    expect(() => Ckks.checkParameters({ polyN: 2048 })).toThrow(/options.polyN must be a power of two in \[4096, 65536\]/);
  });
});
