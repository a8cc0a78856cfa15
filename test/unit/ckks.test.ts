import { afterAll, describe, expect, it } from 'vitest';
import { Ckks, type Ciphertext, type PublicKey, type SecretKey } from '../../src/engine/ckks';
import { native } from '../../src/engine/native';

function rand(n: number, amp = 1): Float64Array {
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = (Math.random() * 2 - 1) * amp;
  return v;
}
function maxErr(a: ArrayLike<number>, b: ArrayLike<number>, n = b.length): number {
  let e = 0;
  for (let i = 0; i < n; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
}
/** Precision in bits: -log2(max abs error / max abs value). */
function bits(err: number, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]));
  return -Math.log2(err / m);
}
const report: Record<string, number> = {};

afterAll(() => {
  // eslint-disable-next-line no-console
  console.log('CKKS precision (bits, relative to max |value|):', JSON.stringify(report));
});

describe('CKKS parameters and the 128-bit security table', () => {
  it('picks deterministic NTT-friendly primes and reports the bound', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const i = c.info();
    expect(i.moduli).toHaveLength(2);
    expect(i.moduli[0] < 1n << 60n && i.moduli[0] > 1n << 59n).toBe(true);
    expect(i.moduli[1] < 1n << 40n && i.moduli[1] > 1n << 39n).toBe(true);
    for (const q of i.moduli) expect(q % 16384n).toBe(1n);
    expect(i.maxLogQP128).toBe(218);
    expect(i.insecure).toBe(false);
    expect(i.seeded).toBe(false);
    expect(i.specialModulus).toBeNull();
    expect(Ckks.create({ polyN: 8192, backend: 'cpu' }).info().fingerprint).toBe(i.fingerprint);
    const s = Ckks.create({ polyN: 8192, specialPrimeBits: 60, backend: 'cpu' }).info();
    expect(s.specialModulus).not.toBeNull();
    expect(s.moduli).not.toContain(s.specialModulus);
    expect(s.fingerprint).not.toBe(i.fingerprint);
  });

  it('refuses an insecure set unless allowInsecure, which is then reported', () => {
    const bad = { polyN: 4096, primeBits: [60, 40], specialPrimeBits: 60, backend: 'cpu' as const };
    expect(() => Ckks.create(bad)).toThrow(/128-bit security/);
    try {
      Ckks.create(bad);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ERR_TENSAFE_INSECURE');
    }
    const ok = Ckks.create({ ...bad, allowInsecure: true }).info();
    expect(ok.insecure).toBe(true);
    expect(ok.belowSecurityBound).toBe(true);
    expect(ok.logQP).toBeGreaterThan(ok.maxLogQP128);
    expect(() => Ckks.create({ polyN: 8192, primeBits: [60, 60, 60, 40], backend: 'cpu' })).toThrow(/security/);
    expect(Ckks.create({ polyN: 16384, primeBits: [60, 60, 60, 60, 60, 60, 60], backend: 'cpu' }).info().insecure).toBe(false);
  });

  it('validates polyN, primeBits, scaleBits', () => {
    expect(() => Ckks.create({ polyN: 2048, backend: 'cpu' })).toThrow(/polyN/);
    expect(() => Ckks.create({ polyN: 10000, backend: 'cpu' })).toThrow(/polyN/);
    expect(() => Ckks.create({ polyN: 8192, primeBits: [61], backend: 'cpu' })).toThrow(/primeBits\[0\]/);
    expect(() => Ckks.create({ polyN: 8192, primeBits: [], backend: 'cpu' })).toThrow(/primeBits/);
    expect(() => Ckks.create({ polyN: 8192, scaleBits: 0, backend: 'cpu' })).toThrow(/scaleBits/);
    expect(() => Ckks.create({ polyN: 8192, seed: -1n, backend: 'cpu' })).toThrow(/seed/);
    expect(() => Ckks.create({ polyN: 8192, specialPrimeBits: 50, backend: 'cpu' })).toThrow(/specialPrimeBits/);
    expect(() => Ckks.create({ polyN: 8192, seed: 1n << 256n, backend: 'cpu' })).toThrow(/seed/);
  });
});

describe('CKKS encoder', () => {
  it('slot round trip: error below 2^-30 relative at scale 2^40 (N = 8192, 16384, 32768)', () => {
    for (const polyN of [8192, 16384, 32768]) {
      const c = Ckks.create({ polyN, backend: 'cpu' });
      const v = rand(polyN / 2, 4);
      const d = c.decode(c.encode(v));
      const b = bits(maxErr(d, v), v);
      report[`encode_decode_${polyN}`] = b;
      expect(b).toBeGreaterThan(30);
    }
  });

  it('places slot j at zeta^(5^j mod 2N): checked by evaluating the coefficients naively', () => {
    const polyN = 8192;
    const c = Ckks.create({ polyN, backend: 'cpu' });
    const v = rand(polyN / 2);
    const m = c.decodeCoefficients(c.encode(v));
    for (const j of [0, 1, 2, 17, 1000, polyN / 2 - 1]) {
      let e = 1n;
      for (let k = 0; k < j; k++) e = (e * 5n) % BigInt(2 * polyN);
      const ang = (Math.PI * Number(e)) / polyN;
      let re = 0;
      for (let i = 0; i < polyN; i++) re += m[i] * Math.cos(ang * i);
      expect(Math.abs(re - v[j])).toBeLessThan(1e-7);
    }
  });

  it('coefficient encoding round trip, fewer limbs, custom scale', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const v = rand(8192, 100);
    const p = c.encodeCoefficients(v, { limbs: 1, scale: 2 ** 30 });
    expect(p.limbs).toBe(1);
    expect(p.encoding).toBe('coefficients');
    const d = c.decodeCoefficients(p);
    expect(maxErr(d, v)).toBeLessThan(2 ** -29 * 100);
    // shorter input pads with zeros
    const s = c.decodeCoefficients(c.encodeCoefficients([1.5, -2.25]));
    expect(s[0]).toBeCloseTo(1.5, 9);
    expect(s[1]).toBeCloseTo(-2.25, 9);
    expect(maxErr(s.subarray(2), new Float64Array(8190))).toBeLessThan(1e-9);
  });

  it('CRT composition is exact to double precision up to 2^98 on two primes (both signs)', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const v = Float64Array.from({ length: 8192 }, (_, i) => (i % 2 ? -1 : 1) * 2 ** (i % 58) * (1 + Math.random()));
    const d = c.decodeCoefficients(c.encodeCoefficients(v, { scale: 2 ** 40 }));
    for (let i = 0; i < v.length; i++) expect(Math.abs(d[i] - v[i])).toBeLessThanOrEqual(Math.abs(v[i]) * 2 ** -50 + 2 ** -40);
  });

  it('large scales (values * scale above 2^63) still encode exactly enough', () => {
    const c = Ckks.create({ polyN: 8192, primeBits: [60, 60, 60], backend: 'cpu' });
    const v = rand(4096, 1);
    const d = c.decode(c.encode(v, { scale: 2 ** 70 }));
    expect(bits(maxErr(d, v), v)).toBeGreaterThan(45);
  });
});

describe('CKKS encryption and evaluator against float64', () => {
  const c = Ckks.create({ polyN: 16384, specialPrimeBits: 60, backend: 'cpu' });
  const slots = 8192;
  const sk: SecretKey = c.generateSecretKey();
  const pk: PublicKey = c.generatePublicKey(sk);
  const x = rand(slots, 2);
  const y = rand(slots, 2);
  const cx: Ciphertext = c.encrypt(c.encode(x), pk);
  const cy: Ciphertext = c.encryptSymmetric(c.encode(y), sk);

  it('public-key and symmetric encryption decrypt to the input', () => {
    const dx = c.decode(c.decrypt(cx, sk));
    const dy = c.decode(c.decrypt(cy, sk));
    report.encrypt_decrypt_pk = bits(maxErr(dx, x), x);
    report.encrypt_decrypt_sym = bits(maxErr(dy, y), y);
    expect(report.encrypt_decrypt_pk).toBeGreaterThan(20);
    expect(report.encrypt_decrypt_sym).toBeGreaterThan(25);
    expect(cx.limbs).toBe(2);
    expect(cx.size).toBe(2);
    // two encryptions of the same plaintext differ (fresh randomness)
    const p = c.encode(x);
    const w1 = c.ciphertextWords(c.encrypt(p, pk));
    const w2 = c.ciphertextWords(c.encrypt(p, pk));
    expect(Buffer.from(w1.buffer).equals(Buffer.from(w2.buffer))).toBe(false);
  });

  it('a wrong secret key does not decrypt', () => {
    const other = c.generateSecretKey();
    const d = c.decode(c.decrypt(cx, other));
    expect(maxErr(d, x)).toBeGreaterThan(1);
  });

  it('add, sub, addPlain', () => {
    const s = c.decode(c.decrypt(c.add(cx, cy), sk));
    const d = c.decode(c.decrypt(c.sub(cx, cy), sk));
    const ap = c.decode(c.decrypt(c.addPlain(cx, c.encode(y)), sk));
    const xs = x.map((v, i) => v + y[i]);
    const xd = x.map((v, i) => v - y[i]);
    report.add = bits(maxErr(s, xs), xs);
    report.sub = bits(maxErr(d, xd), xd);
    expect(report.add).toBeGreaterThan(20);
    expect(report.sub).toBeGreaterThan(20);
    expect(bits(maxErr(ap, xs), xs)).toBeGreaterThan(20);
  });

  it('multiplyPlain, then rescale, then modSwitch-free decrypt', () => {
    const m = c.multiplyPlain(cx, c.encode(y));
    expect(m.scale).toBe(2 ** 80);
    const xy = x.map((v, i) => v * y[i]);
    const dm = c.decode(c.decrypt(m, sk));
    report.multiply_plain = bits(maxErr(dm, xy), xy);
    expect(report.multiply_plain).toBeGreaterThan(20);
    const r = c.rescale(m);
    expect(r.limbs).toBe(1);
    expect(r.scale / 2 ** 40).toBeCloseTo(1, 4);
    const dr = c.decode(c.decrypt(r, sk));
    report.rescale = bits(maxErr(dr, xy), xy);
    expect(report.rescale).toBeGreaterThan(20);
  });

  it('prepareMultiplier (Shoup companions) leaves products word for word the same', () => {
    const p = c.encode(y);
    const before = c.ciphertextWords(c.multiplyPlain(cx, p));
    c.prepareMultiplier(p);
    const after = c.ciphertextWords(c.multiplyPlain(cx, p));
    expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    // a re-imported key (companions rebuilt on import) decrypts word for word the same
    const again = c.importSecretKey(c.exportSecretKey(sk));
    expect(c.decode(c.decrypt(cx, again))).toEqual(c.decode(c.decrypt(cx, sk)));
  });

  it('modSwitch keeps the value and the scale', () => {
    const m = c.modSwitch(cx);
    expect(m.limbs).toBe(1);
    expect(m.scale).toBe(cx.scale);
    const d = c.decode(c.decrypt(m, sk));
    report.mod_switch = bits(maxErr(d, x), x);
    expect(report.mod_switch).toBeGreaterThan(20);
    expect(() => c.modSwitch(m)).toThrow(/one prime/);
    expect(() => c.rescale(m)).toThrow(/one prime/);
    expect(() => c.add(m, cx)).toThrow(/different levels/);
  });

  it('rotations by several steps, at both levels', async () => {
    const steps = [1, 2, 7, 100, -1, -33];
    const gk = await c.generateGaloisKeys(sk, steps);
    expect(gk.steps).toEqual(steps);
    for (const s of steps) {
      const d = c.decode(c.decrypt(c.rotate(cx, s, gk), sk));
      const ref = Float64Array.from({ length: slots }, (_, i) => x[(((i + s) % slots) + slots) % slots]);
      const b = bits(maxErr(d, ref), ref);
      report[`rotate_${s}`] = b;
      expect(b).toBeGreaterThan(18);
    }
    const low = c.modSwitch(cx);
    const d = c.decode(c.decrypt(c.rotate(low, 2, gk), sk));
    const ref = Float64Array.from({ length: slots }, (_, i) => x[(i + 2) % slots]);
    expect(bits(maxErr(d, ref), ref)).toBeGreaterThan(18);
    expect(() => c.rotate(cx, 3, gk)).toThrow(/no rotation key/);
    // rotation composes: 1 then 1 = 2
    const twice = c.decode(c.decrypt(c.rotate(c.rotate(cx, 1, gk), 1, gk), sk));
    const ref2 = Float64Array.from({ length: slots }, (_, i) => x[(i + 2) % slots]);
    expect(bits(maxErr(twice, ref2), ref2)).toBeGreaterThan(17);
  });

  it('decryptBatch equals one-by-one decryption', () => {
    const cts = [cx, cy, c.add(cx, cy)];
    const batch = c.decryptBatch(cts, sk);
    cts.forEach((ct, i) => {
      expect(maxErr(c.decode(batch[i]), c.decode(c.decrypt(ct, sk)))).toBe(0);
    });
    expect(c.decryptBatch([], sk)).toEqual([]);
  });

  it('rotations need a special prime', async () => {
    const plain = Ckks.create({ polyN: 8192, backend: 'cpu' });
    await expect(plain.generateGaloisKeys(plain.generateSecretKey(), [1])).rejects.toThrow(/special prime/);
  });
});

describe('CKKS deeper chains and the largest ring', () => {
  it('two ct x pt products with a rescale after each, at N = 16384 with [60, 40, 40]', () => {
    const c = Ckks.create({ polyN: 16384, primeBits: [60, 40, 40], backend: 'cpu' });
    const { secretKey, publicKey } = c.generateKeys();
    const x = rand(8192, 1);
    const y = rand(8192, 1);
    const z = rand(8192, 1);
    let ct = c.encrypt(c.encode(x), publicKey);
    ct = c.rescale(c.multiplyPlain(ct, c.encode(y)));
    expect(ct.limbs).toBe(2);
    ct = c.rescale(c.multiplyPlain(ct, c.encode(z, { limbs: 2 })));
    expect(ct.limbs).toBe(1);
    const ref = x.map((v, i) => v * y[i] * z[i]);
    const d = c.decode(c.decrypt(ct, secretKey));
    report.two_products_rescaled = bits(maxErr(d, ref), ref);
    expect(report.two_products_rescaled).toBeGreaterThan(12);
    // modSwitch a fresh ciphertext down to the product's level and add
    const fresh = c.modSwitch(c.modSwitch(c.encrypt(c.encode(x, { scale: ct.scale }), publicKey)));
    const sum = c.decode(c.decrypt(c.add(ct, fresh), secretKey));
    const refSum = ref.map((v, i) => v + x[i]);
    expect(bits(maxErr(sum, refSum), refSum)).toBeGreaterThan(12);
  });

  it('N = 65536: encode, encrypt, multiply, rotate round trip', async () => {
    const c = Ckks.create({ polyN: 65536, primeBits: [60, 40], specialPrimeBits: 60, backend: 'cpu' });
    const { secretKey, publicKey } = c.generateKeys();
    const x = rand(32768, 1);
    const ct = c.encrypt(c.encode(x), publicKey);
    const d = c.decode(c.decrypt(ct, secretKey));
    report.encrypt_decrypt_65536 = bits(maxErr(d, x), x);
    expect(report.encrypt_decrypt_65536).toBeGreaterThan(18);
    const gk = await c.generateGaloisKeys(secretKey, [3]);
    const r = c.decode(c.decrypt(c.rotate(ct, 3, gk), secretKey));
    const ref = Float64Array.from({ length: 32768 }, (_, i) => x[(i + 3) % 32768]);
    expect(bits(maxErr(r, ref), ref)).toBeGreaterThan(15);
  });
});

describe('CKKS randomness', () => {
  it('ChaCha20 matches the RFC 7539 block test vector (section 2.3.2)', () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i);
    // RFC nonce 00000009 0000004a 00000000 with block counter 1 is, in the 64-bit counter /
    // 64-bit nonce layout: counter = 0x09000000_00000001, stream id = 0x4a000000.
    const counter = 0x0900000000000001n;
    const words: BigUint64Array = native().ckksTesting.chacha20Words(key, 0x4a000000n, counter * 8n, 8);
    const hex = Buffer.from(words.buffer).toString('hex');
    expect(hex).toBe(
      '10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e' +
        'd2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e',
    );
    // the 8-block vector path (64+ aligned words) gives the same first block
    const wide: BigUint64Array = native().ckksTesting.chacha20Words(key, 0x4a000000n, counter * 8n, 64);
    expect(Buffer.from(wide.buffer, 0, 64).toString('hex')).toBe(hex);
    // random access: windows starting mid-block or at other block groupings equal the same
    // words of a longer run (vector and scalar paths agree lane by lane)
    const all: BigUint64Array = native().ckksTesting.chacha20Words(key, 7n, 0n, 40000);
    for (const [start, len] of [[12345, 100], [8, 640], [3, 9000], [39936, 64]]) {
      const part: BigUint64Array = native().ckksTesting.chacha20Words(key, 7n, BigInt(start), len);
      expect(part).toEqual(all.subarray(start, start + len));
    }
    const scalarOnly = Array.from({ length: 80 }, (_, i) => native().ckksTesting.chacha20Words(key, 7n, BigInt(i * 7), 7));
    scalarOnly.forEach((w: BigUint64Array, i: number) => expect(w).toEqual(all.subarray(i * 7, i * 7 + 7)));
    expect(() => native().ckksTesting.chacha20Words(new Uint8Array(31), 0n, 0n, 1)).toThrow(/32 bytes/);
  });

  it('the Gaussian CDT is increasing and matches sigma 3.2', () => {
    const t: BigUint64Array = native().ckksTesting.gaussianCdt();
    expect(t.length).toBe(38);
    for (let i = 1; i < t.length; i++) expect(t[i] > t[i - 1]).toBe(true);
    // P(X <= 0) = 1/2 + P(0)/2 with P(0) = 1 / sum exp(-k^2 / (2 sigma^2))
    let z = 0;
    for (let k = -19; k <= 19; k++) z += Math.exp(-(k * k) / (2 * 3.2 * 3.2));
    expect(Number(t[19]) / 2 ** 64).toBeCloseTo(0.5 + 0.5 / z, 12);
  });

  it('error terms follow the discrete Gaussian (sigma 3.2, |e| <= 19)', () => {
    const c = Ckks.create({ polyN: 16384, primeBits: [50], scaleBits: 1, backend: 'cpu' });
    const sk = c.generateSecretKey();
    const zero = c.encodeCoefficients(new Float64Array(0), { scale: 1 });
    const e = c.decodeCoefficients(c.decrypt(c.encryptSymmetric(zero, sk), sk));
    let sum = 0;
    let sq = 0;
    let max = 0;
    for (const v of e) {
      expect(Number.isInteger(Math.round(v))).toBe(true);
      sum += v;
      sq += v * v;
      max = Math.max(max, Math.abs(v));
    }
    const mean = sum / e.length;
    const sd = Math.sqrt(sq / e.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.15);
    expect(Math.abs(sd - 3.2)).toBeLessThan(0.12);
    expect(max).toBeLessThanOrEqual(19);
  });

  it('seeded mode is deterministic and reported; OS mode is not', () => {
    const mk = (seed?: bigint) => Ckks.create({ polyN: 8192, seed, backend: 'cpu' });
    const run = (c: Ckks) => {
      const sk = c.generateSecretKey();
      const pk = c.generatePublicKey(sk);
      return Buffer.from(c.ciphertextWords(c.encrypt(c.encode([1, 2, 3]), pk)).buffer);
    };
    const a = mk(42n);
    expect(a.info().seeded).toBe(true);
    expect(a.info().insecure).toBe(true);
    expect(a.info().belowSecurityBound).toBe(false);
    expect(mk().info().insecure).toBe(false);
    expect(run(a).equals(run(mk(42n)))).toBe(true);
    expect(run(mk(42n)).equals(run(mk(43n)))).toBe(false);
    expect(run(mk()).equals(run(mk()))).toBe(false);
  });
});

describe('CKKS serialisation', () => {
  const c = Ckks.create({ polyN: 8192, specialPrimeBits: 60, backend: 'cpu' });
  const sk = c.generateSecretKey();
  const pk = c.generatePublicKey(sk);
  const x = rand(4096);
  const ct = c.encrypt(c.encode(x), pk);

  it('round trips ciphertexts, plaintexts, public keys, Galois keys and (explicitly) secret keys', async () => {
    const ct2 = c.deserializeCiphertext(c.serialize(ct));
    expect(c.ciphertextWords(ct2)).toEqual(c.ciphertextWords(ct));
    expect(ct2.scale).toBe(ct.scale);
    const pt = c.encode(x);
    const pt2 = c.deserializePlaintext(c.serialize(pt));
    expect(c.decode(pt2)).toEqual(c.decode(pt));
    const pk2 = c.deserializePublicKey(c.serialize(pk));
    expect(maxErr(c.decode(c.decrypt(c.encrypt(pt, pk2), sk)), x)).toBeLessThan(1e-5);
    const gk = await c.generateGaloisKeys(sk, [3]);
    const gk2 = c.deserializeGaloisKeys(c.serialize(gk));
    expect(gk2.steps).toEqual([3]);
    const rot = c.decode(c.decrypt(c.rotate(ct, 3, gk2), sk));
    expect(Math.abs(rot[0] - x[3])).toBeLessThan(1e-4);
    expect(() => c.serialize(sk as never)).toThrow(/exportSecretKey/);
    const sk2 = c.importSecretKey(c.exportSecretKey(sk));
    expect(maxErr(c.decode(c.decrypt(ct, sk2)), x)).toBeLessThan(1e-5);
    // a second context with the same parameters accepts the bytes
    const other = Ckks.create({ polyN: 8192, specialPrimeBits: 60, backend: 'cpu' });
    const moved = other.deserializeCiphertext(c.serialize(ct));
    expect(maxErr(other.decode(other.decrypt(moved, other.importSecretKey(c.exportSecretKey(sk)))), x)).toBeLessThan(1e-5);
  });

  it('refuses corrupt, truncated, foreign or mislabelled bytes', () => {
    const bytes = c.serialize(ct);
    const flip = bytes.slice();
    flip[100] ^= 1;
    expect(() => c.deserializeCiphertext(flip)).toThrow(/checksum|corrupt/);
    expect(() => c.deserializeCiphertext(bytes.subarray(0, bytes.length - 9))).toThrow(/length|checksum|truncated/);
    expect(() => c.deserializeCiphertext(new Uint8Array(10))).toThrow(/too short/);
    const magic = bytes.slice();
    magic[0] = 0;
    expect(() => c.deserializeCiphertext(magic)).toThrow(/magic/);
    expect(() => c.deserializePlaintext(bytes)).toThrow(/expected a plaintext/);
    const foreign = Ckks.create({ polyN: 8192, backend: 'cpu' });
    expect(() => foreign.deserializeCiphertext(bytes)).toThrow(/fingerprint/);
    try {
      c.deserializeCiphertext(flip);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ERR_TENSAFE_FORMAT');
    }
    expect(() => c.deserializeCiphertext('abc' as never)).toThrow(TypeError);
  });
});

describe('CKKS dispose', () => {
  it('disposed handles and contexts fail clearly', async () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const { secretKey, publicKey } = c.generateKeys();
    const pt = c.encode([1, 2]);
    const ct = c.encrypt(pt, publicKey);
    ct.dispose();
    expect(ct.disposed).toBe(true);
    expect(() => ct.limbs).toThrow(/disposed/);
    expect(() => c.decrypt(ct, secretKey)).toThrow(/Ciphertext has been disposed/);
    secretKey.dispose();
    expect(() => c.encryptSymmetric(pt, secretKey)).toThrow(/SecretKey has been disposed/);
    c.dispose();
    expect(c.disposed).toBe(true);
    expect(() => c.encode([1])).toThrow(/disposed/);
    expect(() => c.info()).toThrow(/disposed/);
    await expect(c.benchmarkOp('encode', 1)).rejects.toThrow(/disposed/);
    try {
      c.encode([1]);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ERR_TENSAFE_DISPOSED');
    }
  });
});

describe('CKKS HE-LoRA workload (native benchmark) computes A h', () => {
  it('d = 1536, r = 32 at N = 16384: 5 replicas, 7 products, small error', async () => {
    const c = Ckks.create({ polyN: 16384, backend: 'cpu' });
    const t = await c.benchmarkHeLora({ d: 1536, r: 32, iterations: 2 });
    expect(t.replicas).toBe(5);
    expect(t.products).toBe(7);
    expect(t.maxAbsError).toBeLessThan(1e-4);
    expect(t.medianUs.total).toBeGreaterThan(0);
    const o = await c.benchmarkOp('encrypt', 3);
    expect(o.runs).toBe(3);
  });
});
