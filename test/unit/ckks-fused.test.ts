/**
 * The fused operations of the private protocols on the CPU backend (native/src/ckks/private_ops.h):
 *  - partial replies: decryptReply equals the full decryption at the positions (residues and
 *    values), the bytes carry c0 at those positions only (exact size), every corrupt or foreign
 *    byte string is refused with ERR_TENSAFE_FORMAT, positions are checked;
 *  - sanitizeProducts equals the composition of the single operations word for word in seeded mode
 *    (every option: read + flooding, read without, maskAll + shares, keep, rescales, both formats),
 *    and what it masks is uniform while what it keeps is the product;
 *  - traceRotations equals the rotate-and-add loop; decryptReplies equals decryptReply;
 *  - reencryptReplies equals decryptReplies + plaintextFromWords + encryptSymmetric + serialize;
 *  - the `timings` option reports phases and changes no word;
 *  - the work runs off the JS thread: the event loop keeps ticking during a long sanitizeProducts,
 *    and handles disposed while it runs do not disturb it.
 * Inputs are fresh random values each run (OS randomness; seeds drawn at random).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import type { Ciphertext, Plaintext, SecretKey } from '../../src/engine/ckks/handles';
import type { SanitizeOptions } from '../../src/engine/ckks/native-api';
import { chiSquare, chiSquareLimit } from '../helpers/ckks-reference';
import { composedSanitize, composedTrace, gatherWords, randomInts, randomPositions, replyBytes, reseal, sanitizeCases } from '../helpers/ckks-fused';

const randomSeed = (): bigint => BigInt('0x' + randomBytes(32).toString('hex'));
const bytesEqual = (a: Uint8Array, b: Uint8Array) => expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);

function randomResidues(moduli: bigint[], limbs: number, n: number): BigUint64Array {
  const raw = new BigUint64Array(randomBytes(8 * limbs * n).buffer);
  const w = new BigUint64Array(limbs * n);
  for (let l = 0; l < limbs; l++) for (let j = 0; j < n; j++) w[l * n + j] = raw[l * n + j] % moduli[l];
  return w;
}

const PRIVATE = { polyN: 8192, primeBits: [60, 60, 60] };

describe('partial replies (serializeReply / decryptReply)', () => {
  const c = Ckks.create({ ...PRIVATE, backend: 'cpu' });
  const { polyN: n, moduli } = c.info();
  const sk = c.generateSecretKey();

  it('decrypt at the positions = the full decryption there (residues and values), at every level', () => {
    for (const limbs of [3, 2, 1]) {
      for (const compact of [false, true]) {
        const pt = c.plaintextFromWords(randomResidues(moduli, limbs, n), { limbs, scale: 2 ** 20 });
        const ct = c.encryptSymmetric(pt, sk, { compact });
        const full = c.decrypt(ct, sk);
        const words = c.plaintextWords(full);
        const values = c.decodeCoefficients(full);
        for (const count of [1, 2, 37, 1000]) {
          const pos = randomPositions(n, count);
          const bytes = c.serializeReply(ct, pos);
          expect(bytes.length).toBe(replyBytes(n, limbs, count)); // c0 at the positions only, c1 whole
          const r = c.decryptReply(bytes, sk);
          expect(Array.from(r.positions)).toEqual(Array.from(pos));
          expect(r.limbs).toBe(limbs);
          expect(r.scale).toBe(2 ** 20);
          expect(r.words).toEqual(gatherWords(words, limbs, n, pos));
          expect(r.values).toEqual(Float64Array.from(pos, (p) => values[p]));
        }
      }
    }
  });

  it('no positions and every position; about half the bytes of a full ciphertext', () => {
    const ct = c.encryptSymmetric(c.plaintextFromWords(randomResidues(moduli, 2, n), { limbs: 2 }), sk);
    const none = c.decryptReply(c.serializeReply(ct, new Uint32Array(0)), sk);
    expect(none.words.length).toBe(0);
    expect(none.values.length).toBe(0);
    const all = Uint32Array.from({ length: n }, (_, j) => j);
    const r = c.decryptReply(c.serializeReply(ct, all), sk);
    expect(r.words).toEqual(c.plaintextWords(c.decrypt(ct, sk)));
    const half = c.serializeReply(ct, randomPositions(n, 64)).length / c.serialize(ct).length;
    expect(half).toBeGreaterThan(0.5);
    expect(half).toBeLessThan(0.51);
  });

  it('bad bytes are ERR_TENSAFE_FORMAT naming what is wrong; positions are checked', () => {
    const ct = c.encryptSymmetric(c.plaintextFromWords(randomResidues(moduli, 2, n), { limbs: 2 }), sk);
    const pos = Uint32Array.from([3, 10, 11]);
    const good = c.serializeReply(ct, pos);
    const format = (bytes: Uint8Array, message: RegExp) => {
      let err: (Error & { code?: string }) | undefined;
      try {
        c.decryptReply(bytes, sk);
      } catch (e) {
        err = e as Error & { code?: string };
      }
      expect(err?.code).toBe('ERR_TENSAFE_FORMAT');
      expect(err?.message).toMatch(message);
    };
    format(c.serialize(ct), /these bytes hold a ciphertext, expected a partial reply/);
    expect(() => c.deserializeCiphertext(good)).toThrow(/these bytes hold a partial reply, expected a ciphertext/);
    format(good.subarray(0, good.length - 100), /length mismatch|checksum|truncated/);
    format(good.subarray(0, 20), /too short/);
    const flipped = Uint8Array.from(good);
    flipped[60] ^= 1;
    format(flipped, /checksum mismatch/);
    const other = Ckks.create({ polyN: 8192, primeBits: [60, 60, 50], backend: 'cpu' });
    let foreign: unknown;
    try {
      other.decryptReply(good, other.generateSecretKey());
    } catch (e) {
      foreign = e;
    }
    expect(foreign).toMatchObject({ code: 'ERR_TENSAFE_FORMAT', message: expect.stringMatching(/fingerprint mismatch/) });
    other.dispose();
    // well-formed lies (checksum recomputed): body offset 24 = limbs, 28 = count, 32 = scale, 40 = positions
    format(reseal(good, (dv) => dv.setUint32(24, 4, true)), /bad prime count/);
    format(reseal(good, (dv) => dv.setUint32(28, n + 1, true)), /more positions than polyN/);
    format(reseal(good, (dv) => dv.setUint32(28, 2, true)), /length mismatch/);
    format(reseal(good, (dv) => dv.setFloat64(32, -1, true)), /invalid scale/);
    format(reseal(good, (dv) => dv.setUint32(44, 3, true)), /strictly increasing/); // 3, 3, 11
    format(reseal(good, (dv) => dv.setUint32(48, n, true)), /strictly increasing and below polyN/);
    format(reseal(good, (dv) => dv.setUint32(52, 1, true)), /bad padding/);
    format(reseal(good, (dv) => dv.setBigUint64(56, moduli[0], true)), /not reduced/); // first c0 word = q_0
    format(reseal(good, (dv) => dv.setBigUint64(good.length - 16, moduli[1], true)), /not reduced/); // last c1 word
    // positions of serializeReply
    expect(() => c.serializeReply(ct, [1, 2] as never)).toThrow(/positions must be a Uint32Array/);
    expect(() => c.serializeReply(ct, Uint32Array.from([1, 1]))).toThrow(/positions must be strictly increasing: positions\[1\] = 1 follows 1/);
    expect(() => c.serializeReply(ct, Uint32Array.from([5, n]))).toThrow(new RegExp(`positions\\[1\\] = ${n} is not below polyN = ${n}`));
    expect(() => c.serializeReply(ct, Uint32Array.from([5, n]))).toThrow(RangeError);
  });
});

/** The same keys, input and plaintexts on two seeded contexts of one seed (same call sequence). */
function seededPair(seed: bigint, params: { polyN: number; primeBits: number[]; specialPrimeBits?: number }) {
  const make = () => {
    const c = Ckks.create({ ...params, seed, backend: 'cpu' });
    const { secretKey, publicKey } = c.generateKeys();
    return { c, sk: secretKey, pk: publicKey };
  };
  return [make(), make()];
}

interface Inputs {
  ct: Ciphertext;
  pts: Plaintext[];
}
function inputs(c: Ckks, sk: SecretKey, xs: Float64Array, as: Float64Array[], prepare: boolean[]): Inputs {
  const ct = c.encryptSymmetric(c.encodeCoefficients(xs, { scale: 1 }), sk, { compact: true });
  const pts = as.map((a, i) => {
    const pt = c.encodeCoefficients(a, { scale: 1 });
    if (prepare[i]) c.prepareMultiplier(pt);
    return pt;
  });
  return { ct, pts };
}

describe('sanitizeProducts = the composition of the single operations (seeded, word for word)', () => {
  const n = PRIVATE.polyN;
  const cases = sanitizeCases(n);
  for (const k of cases) {
    it(k.name, async () => {
      const seed = randomSeed();
      const [A, B] = seededPair(seed, PRIVATE);
      const xs = randomInts(n, 300, 1 << 20);
      const as = Array.from({ length: k.P }, () => randomInts(n, n, 1 << 10));
      const prepare = as.map((_, i) => i % 2 === 0);
      const ia = inputs(A.c, A.sk, xs, as, prepare);
      const ib = inputs(B.c, B.sk, xs, as, prepare);
      const o = k.options();
      const fused = await A.c.sanitizeProducts(ia.ct, ia.pts, A.pk, o);
      const composed = composedSanitize(B.c, ib.ct, ib.pts, B.pk, o);
      expect(fused.replies.length).toBe(k.P);
      fused.replies.forEach((r, p) => bytesEqual(r, composed.replies[p]));
      if (o.returnMaskAt) {
        expect(fused.masks?.length).toBe(k.P);
        fused.masks?.forEach((m, p) => expect(m).toEqual(composed.masks?.[p]));
      } else {
        expect(fused.masks).toBeUndefined();
      }
      // and both took the same stream ids: the next sample agrees
      expect(A.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' })).toEqual(B.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }));
      A.c.dispose();
      B.c.dispose();
    });
  }

  it('what it computes (OS-seeded): masked coefficients uniform, kept ones the product plus flooding', async () => {
    const c = Ckks.create({ ...PRIVATE, backend: 'cpu' });
    const { moduli } = c.info();
    const { secretKey, publicKey } = c.generateKeys();
    const xs = randomInts(n, 64, 1000);
    const a = randomInts(n, 64, 1000);
    const ct = c.encryptSymmetric(c.encodeCoefficients(xs, { scale: 1 }), secretKey, { compact: true });
    const pt = c.encodeCoefficients(a, { scale: 1 });
    const r = randomPositions(n, 200);
    const floodBits = 30;
    const { replies } = await c.sanitizeProducts(ct, [pt], publicKey, { read: [r], floodBits, format: 'full' });
    const words = c.plaintextWords(c.decrypt(c.deserializeCiphertext(replies[0]), secretKey));
    // the exact negacyclic product of the integers
    const prod = new Float64Array(n);
    for (let i = 0; i < 64; i++) for (let j = 0; j < 64; j++) prod[i + j] += xs[i] * a[j];
    const q0 = moduli[0];
    const centred = (w: bigint) => (w > q0 / 2n ? Number(w - q0) : Number(w));
    const isRead = new Set(r);
    const off: bigint[] = [];
    let maxFlood = 0;
    for (let j = 0; j < n; j++) {
      if (isRead.has(j)) {
        const e = centred(words[j]) - prod[j];
        maxFlood = Math.max(maxFlood, Math.abs(e));
        expect(Math.abs(e)).toBeLessThan(2 ** floodBits + 2 ** 20); // flooding plus encryption noise through A
      } else {
        off.push(words[j]);
      }
    }
    expect(maxFlood).toBeGreaterThan(2 ** (floodBits - 4)); // the flooding is there
    const bins = new Array<number>(32).fill(0);
    for (const w of off) bins[Number((w * 32n) / q0)]++;
    expect(chiSquare(bins)).toBeLessThan(chiSquareLimit(31));
    c.dispose();
  });

  it('refuses bad options before any work (same checks as the bad-call table)', async () => {
    const c = Ckks.create({ ...PRIVATE, backend: 'cpu' });
    const { secretKey, publicKey } = c.generateKeys();
    const ct = c.encryptSymmetric(c.encodeCoefficients([1], { scale: 1 }), secretKey);
    const pt = c.encodeCoefficients([1], { scale: 1 });
    const r = [Uint32Array.from([1, 2])];
    await expect(c.sanitizeProducts(ct, [pt], publicKey, { read: r, format: 'partial', rescale: 3 })).rejects.toThrow(/options.rescale must be in \[0, 2\]/);
    await expect(c.sanitizeProducts(ct, [pt], publicKey, { format: 'full' })).rejects.toThrow(/options.read is required unless options.maskAll/);
    await expect(c.sanitizeProducts(ct, [pt], publicKey, { maskAll: true, format: 'partial' })).rejects.toThrow(/format 'partial' needs options.keep or options.read/);
    await expect(c.sanitizeProducts(ct, [pt], publicKey, { maskAll: true, floodBits: 3, format: 'full' })).rejects.toThrow(/floodBits needs options.read/);
    await expect(c.sanitizeProducts(ct, [pt], publicKey, { read: [Uint32Array.from([2, 1])], format: 'full' })).rejects.toThrow(/options.read\[0\] must be strictly increasing/);
    await expect(c.sanitizeProducts(ct, [pt, pt], publicKey, { read: r, format: 'full' })).rejects.toThrow(/options.read must hold one position list per plaintext \(2\), got 1/);
    await expect(c.sanitizeProducts(ct, [pt], publicKey, { read: r, format: 'fast' as never })).rejects.toThrow(/options.format must be one of/);
    await expect(c.sanitizeProducts(ct, [ct as never], publicKey, { read: r, format: 'full' })).rejects.toThrow(/plaintexts\[0\] must be a Plaintext/);
    await expect(c.sanitizeProducts(ct, [c.encodeCoefficients([1], { limbs: 1, scale: 1 })], publicKey, { read: r, format: 'full' })).rejects.toThrow(/plaintexts\[0\]: plaintext has fewer primes/);
    const disposed = c.encodeCoefficients([1], { scale: 1 });
    disposed.dispose();
    await expect(c.sanitizeProducts(ct, [disposed], publicKey, { read: r, format: 'full' })).rejects.toMatchObject({ code: 'ERR_TENSAFE_DISPOSED' });
    c.dispose();
  });
});

describe('traceRotations and decryptReplies', () => {
  it('traceRotations = c += rotate(c, step) for each step (seeded, word for word), off the JS thread', async () => {
    const seed = randomSeed();
    const params = { polyN: 8192, primeBits: [60, 60], specialPrimeBits: 60 };
    const [A, B] = seededPair(seed, params);
    const steps = [A.c.galoisStep(1 + 2 * 8192 / 16), A.c.galoisStep(1 + 2 * 8192 / 8), 0, 5];
    const gkA = await A.c.generateGaloisKeys(A.sk, steps.filter((s) => s !== 0));
    const gkB = await B.c.generateGaloisKeys(B.sk, steps.filter((s) => s !== 0));
    const xs = randomInts(8192, 8192, 1 << 20);
    const ctA = A.c.encryptSymmetric(A.c.encodeCoefficients(xs, { scale: 1 }), A.sk);
    const ctB = B.c.encryptSymmetric(B.c.encodeCoefficients(xs, { scale: 1 }), B.sk);
    const fused = await A.c.traceRotations(ctA, steps, gkA);
    const composed = composedTrace(B.c, ctB, steps, gkB);
    expect(fused.limbs).toBe(2);
    expect(A.c.ciphertextWords(fused)).toEqual(B.c.ciphertextWords(composed));
    await expect(A.c.traceRotations(ctA, [7], gkA)).rejects.toThrow(/no rotation key for steps = 7/);
    await expect(A.c.traceRotations(ctA, [], gkA)).rejects.toThrow(/steps must list 1..256 rotation steps/);
    // the context goes away while a trace runs: it rejects clearly
    const pending = A.c.traceRotations(ctA, steps, gkA);
    A.c.dispose();
    await expect(pending).rejects.toThrow(/CkksContextCpu has been disposed/);
    B.c.dispose();
  });

  it('decryptReplies = decryptReply of each, off the JS thread', async () => {
    const c = Ckks.create({ ...PRIVATE, backend: 'cpu' });
    const { moduli } = c.info();
    const sk = c.generateSecretKey();
    const bytes = [3, 2, 1].map((limbs) => c.serializeReply(c.encryptSymmetric(c.plaintextFromWords(randomResidues(moduli, limbs, 8192), { limbs }), sk), randomPositions(8192, 50 * limbs)));
    const all = await c.decryptReplies(bytes, sk);
    expect(all.length).toBe(3);
    all.forEach((r, i) => expect(r).toEqual(c.decryptReply(bytes[i], sk)));
    await expect(c.decryptReplies([bytes[0], new Uint8Array(50)], sk)).rejects.toMatchObject({ code: 'ERR_TENSAFE_FORMAT' });
    await expect(c.decryptReplies([], sk)).rejects.toThrow(/bytes must hold 1..4096 replies/);
    c.dispose();
  });
});

/** The composition reencryptReplies fuses: decrypt, U from the read words in order, compact encryption, serialise. */
async function composedReencrypt(c: Ckks, sk: SecretKey, bytes: Uint8Array[], limbs: number): Promise<Uint8Array> {
  const n = c.polyN;
  const u = new BigUint64Array(limbs * n);
  let row = 0;
  for (const d of await c.decryptReplies(bytes, sk)) {
    const count = d.positions.length;
    for (let k = 0; k < count; k++, row++) for (let l = 0; l < limbs; l++) u[l * n + row] = d.words[l * count + k];
  }
  const pt = c.plaintextFromWords(u, { limbs, scale: 1, encoding: 'coefficients' });
  const ct = c.encryptSymmetric(pt, sk, { compact: true });
  const out = c.serialize(ct);
  ct.dispose();
  pt.dispose();
  return out;
}

describe('reencryptReplies = decryptReplies + plaintextFromWords + encryptSymmetric(compact) + serialize (seeded)', () => {
  it('word for word, for replies of several sizes; errors before any stream id is taken', async () => {
    const seed = randomSeed();
    const [A, B] = seededPair(seed, PRIVATE);
    const n = PRIVATE.polyN;
    const { moduli } = A.c.info();
    const limbs = 2;
    const positions = [randomPositions(n, 5), randomPositions(n, 17), randomPositions(n, 1), randomPositions(n, 300)];
    const words = positions.map(() => randomResidues(moduli, limbs, n));
    // the same calls on both contexts (same stream ids); A's bytes serve both (same keys)
    const make = (s: typeof A) => words.map((w, p) => s.c.serializeReply(s.c.encryptSymmetric(s.c.plaintextFromWords(w, { limbs, scale: 1 }), s.sk), positions[p]));
    const bytes = make(A);
    make(B);
    const fused = await A.c.reencryptReplies(bytes, A.sk, { expect: positions, limbs, timings: true });
    const composed = await composedReencrypt(B.c, B.sk, bytes, limbs);
    bytesEqual(fused.request, composed);
    expect(new DataView(fused.request.buffer, fused.request.byteOffset).getUint16(4, true)).toBe(4); // compact
    expect(Object.keys(fused.timings ?? {})).toEqual(['decrypt', 'shares', 'encrypt', 'serialize']);
    for (const us of Object.values(fused.timings ?? {})) expect(us).toBeGreaterThanOrEqual(0);
    // errors: wrong positions, prime count, list count, bad bytes; none takes a stream id
    const wrong = positions.map((p, i) => (i === 1 ? p.slice(0, 16) : p));
    await expect(A.c.reencryptReplies(bytes, A.sk, { expect: wrong })).rejects.toThrow(/reply 1 carries coefficients \[.*\.\.\.\] instead of the 16 the client reads/);
    await expect(A.c.reencryptReplies(bytes, A.sk, { expect: positions, limbs: 3 })).rejects.toThrow(/reply 0 has 2 primes, expected 3/);
    await expect(A.c.reencryptReplies(bytes, A.sk, { expect: positions.slice(1) })).rejects.toThrow(/one position list per reply \(4\), got 3/);
    await expect(A.c.reencryptReplies([bytes[0], new Uint8Array(40)], A.sk, { expect: positions.slice(0, 2) })).rejects.toMatchObject({ code: 'ERR_TENSAFE_FORMAT' });
    await expect(A.c.reencryptReplies(bytes, A.sk, {} as never)).rejects.toThrow(/options.expect is required/);
    expect(A.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' })).toEqual(B.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }));
    A.c.dispose();
    B.c.dispose();
  });
});

describe('timings: per-phase native clocks that do not change the results (seeded)', () => {
  it('sanitizeProducts and decryptReplies report their phases; the words are those of a call without timings', async () => {
    const seed = randomSeed();
    const [A, B] = seededPair(seed, PRIVATE);
    const n = PRIVATE.polyN;
    const xs = randomInts(n, 300, 1 << 20);
    const as = Array.from({ length: 3 }, () => randomInts(n, n, 1 << 10));
    const read = as.map(() => randomPositions(n, 40));
    const o: SanitizeOptions = { read, floodBits: 40, rescale: 1, format: 'partial' };
    const ia = inputs(A.c, A.sk, xs, as, [true, false, true]);
    const ib = inputs(B.c, B.sk, xs, as, [true, false, true]);
    const timed = await A.c.sanitizeProducts(ia.ct, ia.pts, A.pk, { ...o, timings: true });
    const plain = await B.c.sanitizeProducts(ib.ct, ib.pts, B.pk, o);
    timed.replies.forEach((r, p) => bytesEqual(r, plain.replies[p]));
    expect(plain.timings).toBeUndefined();
    expect(Object.keys(timed.timings ?? {})).toEqual(['mask_sample', 'product', 'mask_rerandomize', 'rescale', 'serialize', 'wall']);
    expect(timed.timings?.wall).toBeGreaterThan(0);
    const dt = await A.c.decryptReplies(timed.replies, A.sk, { timings: true });
    const dp = await B.c.decryptReplies(plain.replies, B.sk);
    expect(dt.timings?.decrypt).toBeGreaterThan(0);
    expect(dp.timings).toBeUndefined();
    expect([...dt]).toEqual([...dp]);
    await expect(A.c.decryptReplies(timed.replies, A.sk, { timings: 'yes' } as never)).rejects.toThrow(/options.timings/);
    A.c.dispose();
    B.c.dispose();
  });
});

describe('off the JS thread', () => {
  it('the event loop keeps ticking during a long sanitizeProducts; inputs disposed meanwhile do not matter', async () => {
    const c = Ckks.create({ polyN: 32768, primeBits: [60, 60, 60], backend: 'cpu' });
    const n = 32768;
    const { secretKey, publicKey } = c.generateKeys();
    const xs = randomInts(n, 512, 1000);
    const ct = c.encryptSymmetric(c.encodeCoefficients(xs, { scale: 1 }), secretKey, { compact: true });
    const pts = Array.from({ length: 12 }, () => c.encodeCoefficients(randomInts(n, 512, 1000), { scale: 1 }));
    const read = pts.map(() => randomPositions(n, 16));
    const options: SanitizeOptions = { read, floodBits: 20, rescale: 1, format: 'partial' };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    const t0 = performance.now();
    const pending = c.sanitizeProducts(ct, pts, publicKey, options);
    const ticksAtCall = ticks;
    // the caller may drop its handles at once: the work holds its inputs
    ct.dispose();
    for (const p of pts) p.dispose();
    const { replies } = await pending;
    const ms = performance.now() - t0;
    clearInterval(timer);
    expect(ticksAtCall).toBe(0); // the call itself returned at once
    expect(ms).toBeGreaterThan(20);
    expect(ticks).toBeGreaterThanOrEqual(3);
    expect(replies.length).toBe(12);
    const r0 = c.decryptReply(replies[0], secretKey);
    expect(r0.limbs).toBe(2);
    expect(Array.from(r0.positions)).toEqual(Array.from(read[0]));
    c.dispose();
  });
});
