/**
 * CkksContextCuda against CkksContextCpu.
 *
 * Seeded mode: both contexts get the same (fresh random) seed and the same sequence of calls,
 * so every operation must return the same words (encrypt, encryptSymmetric, multiplyPlain,
 * add/sub/addPlain, rescale, modSwitch, rotate, decrypt, decryptBatch). Inputs are moved from
 * the CPU context to the GPU one by serialisation, so both start from identical words.
 * Encoding and decoding go through floating point (FMA contraction differs between the
 * compilers), so they are compared within float tolerance. The GPU context poisons every new
 * device allocation, so a kernel that leaves an output word unwritten cannot pass.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { noGpu } from '../helpers/gpu';
import { native } from '../../src/engine/native';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Ctx = any;

function randomSeed(): bigint {
  return BigInt('0x' + randomBytes(32).toString('hex'));
}

function randomValues(count: number, amplitude = 1): Float64Array {
  const v = new Float64Array(count);
  for (let i = 0; i < count; i++) v[i] = (Math.random() * 2 - 1) * amplitude;
  return v;
}

function firstMismatch(a: BigUint64Array, b: BigUint64Array): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function pair(options: Record<string, unknown>): { cpu: Ctx; gpu: Ctx } {
  const seed = randomSeed();
  const cpu = new (native().CkksContextCpu)({ ...options, seed });
  const gpu = new (native().CkksContextCuda)({ ...options, seed });
  gpu.setPoison(true);
  return { cpu, gpu };
}

/** Moves a CPU ciphertext / plaintext into the GPU context (same words). */
const toGpuCt = (cpu: Ctx, gpu: Ctx, ct: any) => gpu.deserializeCiphertext(cpu.serialize(ct));
const toGpuPt = (cpu: Ctx, gpu: Ctx, pt: any) => gpu.deserializePlaintext(cpu.serialize(pt));
const toCpuPt = (cpu: Ctx, gpu: Ctx, pt: any) => cpu.deserializePlaintext(gpu.serialize(pt));

const PARAMS = [
  { polyN: 8192, primeBits: [50, 40, 40], specialPrimeBits: 50 },
  { polyN: 16384, primeBits: [60, 40, 60], specialPrimeBits: 60 },
];

describe.skipIf(noGpu)('CkksContextCuda equals CkksContextCpu in seeded mode', () => {
  for (const params of PARAMS) {
    const label = `polyN ${params.polyN}`;
    const slots = params.polyN / 2;

    it(`${label}: keys, encrypt, encryptSymmetric, decrypt word for word`, () => {
      const { cpu, gpu } = pair(params);
      const skC = cpu.generateSecretKey();
      const skG = gpu.generateSecretKey();
      expect(Buffer.from(gpu.exportSecretKey(skG)).equals(Buffer.from(cpu.exportSecretKey(skC)))).toBe(true);
      const pkC = cpu.generatePublicKey(skC);
      const pkG = gpu.generatePublicKey(skG);
      expect(Buffer.from(gpu.serialize(pkG)).equals(Buffer.from(cpu.serialize(pkC)))).toBe(true);
      for (const limbs of [3, 2, 1]) {
        const ptC = cpu.encode(randomValues(slots), { limbs });
        const ptG = toGpuPt(cpu, gpu, ptC);
        const ctC = cpu.encrypt(ptC, pkC);
        const ctG = gpu.encrypt(ptG, pkG);
        expect(ctG.limbs).toBe(limbs);
        expect(firstMismatch(gpu.ciphertextWords(ctG), cpu.ciphertextWords(ctC))).toBe(-1);
        const csC = cpu.encryptSymmetric(ptC, skC);
        const csG = gpu.encryptSymmetric(ptG, skG);
        expect(firstMismatch(gpu.ciphertextWords(csG), cpu.ciphertextWords(csC))).toBe(-1);
        // decrypt: the plaintexts' serialised bytes carry the words
        const dC = cpu.decrypt(ctC, skC);
        const dG = gpu.decrypt(ctG, skG);
        expect(Buffer.from(gpu.serialize(dG)).equals(Buffer.from(cpu.serialize(dC)))).toBe(true);
        // decode of the decryption (GPU Garner + FFT) within float tolerance of the CPU's
        expect(maxAbsDiff(gpu.decode(dG), cpu.decode(dC))).toBeLessThan(1e-7);
      }
      cpu.dispose();
      gpu.dispose();
    });

    it(`${label}: evaluator ops word for word`, async () => {
      const { cpu, gpu } = pair(params);
      const sk = cpu.generateSecretKey();
      const pk = cpu.generatePublicKey(sk);
      const gk = await cpu.generateGaloisKeys(sk, [1, -3, 17]);
      const gkG = gpu.deserializeGaloisKeys(cpu.serialize(gk));
      const a = cpu.encrypt(cpu.encode(randomValues(slots)), pk);
      const b = cpu.encrypt(cpu.encode(randomValues(slots)), pk);
      const p = cpu.encode(randomValues(slots));
      const aG = toGpuCt(cpu, gpu, a);
      const bG = toGpuCt(cpu, gpu, b);
      const pG = toGpuPt(cpu, gpu, p);
      const same = (g: any, c: any) => expect(firstMismatch(gpu.ciphertextWords(g), cpu.ciphertextWords(c))).toBe(-1);
      same(aG, a);
      same(gpu.add(aG, bG), cpu.add(a, b));
      same(gpu.sub(aG, bG), cpu.sub(a, b));
      same(gpu.addPlain(aG, pG), cpu.addPlain(a, p));
      const mC = cpu.multiplyPlain(a, p);
      const mG = gpu.multiplyPlain(aG, pG);
      same(mG, mC);
      expect(mG.scale).toBe(mC.scale);
      const rC = cpu.rescale(mC);
      const rG = gpu.rescale(mG);
      same(rG, rC);
      expect(rG.limbs).toBe(2);
      expect(rG.scale).toBe(rC.scale);
      same(gpu.rescale(rG), cpu.rescale(rC));
      same(gpu.modSwitch(aG), cpu.modSwitch(a));
      for (const step of [1, -3, 17, 0]) {
        same(gpu.rotate(aG, step, gkG), cpu.rotate(a, step, gk));
        same(gpu.rotate(rG, step, gkG), cpu.rotate(rC, step, gk));
      }
      // batched decryption, mixed levels
      const cts = [aG, mG, rG, bG];
      const outG = gpu.decryptBatch(cts, gpu.importSecretKey(cpu.exportSecretKey(sk)));
      const outC = cpu.decryptBatch([a, mC, rC, b], sk);
      for (let i = 0; i < cts.length; i++)
        expect(Buffer.from(gpu.serialize(outG[i])).equals(Buffer.from(cpu.serialize(outC[i])))).toBe(true);
      cpu.dispose();
      gpu.dispose();
    });

    it(`${label}: encode / decode within float tolerance`, () => {
      const { cpu, gpu } = pair(params);
      const v = randomValues(slots);
      const ptG = gpu.encode(v);
      const ptC = cpu.encode(v);
      // GPU encoding decoded on the CPU and on the GPU
      expect(maxAbsDiff(cpu.decode(toCpuPt(cpu, gpu, ptG)), v)).toBeLessThan(1e-6);
      expect(maxAbsDiff(gpu.decode(ptG), cpu.decode(ptC))).toBeLessThan(1e-6);
      // same plaintext decoded by both backends
      // (both sides round in float64 through a 13..15-stage FFT: ~1e-8 apart at polyN 16384)
      expect(maxAbsDiff(gpu.decode(toGpuPt(cpu, gpu, ptC)), cpu.decode(ptC))).toBeLessThan(1e-7);
      // shorter vectors, other level and scale
      const w = randomValues(100, 50);
      const q = gpu.encode(w, { limbs: 2, scale: 2 ** 30 });
      expect(q.limbs).toBe(2);
      expect(q.encoding).toBe('slots');
      const back = gpu.decode(q);
      expect(maxAbsDiff(back.subarray(0, 100), w)).toBeLessThan(1e-4);
      expect(Math.max(...Array.from(back.subarray(100)).map(Math.abs))).toBeLessThan(1e-4);
      // coefficient encoding
      const c = randomValues(params.polyN, 3);
      const pc = gpu.encodeCoefficients(c);
      expect(pc.encoding).toBe('coefficients');
      expect(maxAbsDiff(gpu.decodeCoefficients(pc), c)).toBeLessThan(1e-9);
      const pcC = cpu.encodeCoefficients(c);
      expect(Buffer.from(gpu.serialize(pc)).equals(Buffer.from(cpu.serialize(pcC)))).toBe(true);
      // Garner's float64 sum cancels large terms: both backends round it (FMA placement differs)
      expect(maxAbsDiff(gpu.decodeCoefficients(toGpuPt(cpu, gpu, pcC)), cpu.decodeCoefficients(pcC))).toBeLessThan(1e-9);
      // end to end on the GPU alone: encrypt, multiply, rescale, decrypt, decode
      const sk = gpu.generateSecretKey();
      const pk = gpu.generatePublicKey(sk);
      const x = randomValues(slots);
      const y = randomValues(slots);
      // y at scale q_last, so that the rescale (which divides by q_last) returns to 2^40; with
      // y at 2^40 a 60-bit q_last would leave 2^20, too coarse for a 1e-4 check.
      const moduli = gpu.info().moduli as bigint[];
      const qLast = Number(moduli[moduli.length - 1]);
      const prod = gpu.rescale(gpu.multiplyPlain(gpu.encrypt(gpu.encode(x), pk), gpu.encode(y, { scale: qLast })));
      expect(prod.scale / 2 ** 40).toBeCloseTo(1, 9);
      const got = gpu.decode(gpu.decrypt(prod, sk));
      const want = x.map((xi, i) => xi * y[i]);
      expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
      cpu.dispose();
      gpu.dispose();
    });
  }

  it('HE-LoRA per-token benchmark runs on the GPU and is accurate', async () => {
    const gpu = new (native().CkksContextCuda)({ polyN: 16384, primeBits: [60, 40] });
    const t = await gpu.benchmarkHeLora({ d: 1536, r: 32, iterations: 5 });
    expect(t.runs).toBe(5);
    expect(t.replicas).toBe(5);
    expect(t.products).toBe(7);
    expect(t.maxAbsError).toBeLessThan(1e-3);
    expect(t.graphs).toBe(true); // the token's stages were captured and replayed as CUDA graphs
    for (const k of ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decode', 'extract_sum', 'total'])
      expect(t.medianUs[k]).toBeGreaterThan(0);
    const op = await gpu.benchmarkOp({ op: 'multiply_plain', iterations: 5 });
    expect(op.op).toBe('multiply_plain');
    expect(op.medianUs).toBeGreaterThan(0);
    gpu.dispose();
  });

  it('per-op CUDA-event timing is available to callers', () => {
    const gpu = new (native().CkksContextCuda)({ polyN: 8192, primeBits: [50, 40] });
    gpu.setTiming(true);
    const sk = gpu.generateSecretKey();
    const pk = gpu.generatePublicKey(sk);
    const ct = gpu.encrypt(gpu.encode(randomValues(16)), pk);
    gpu.decrypt(ct, sk);
    const t = gpu.drainTimings();
    expect(t.map((e: any) => e.op)).toEqual(['encode', 'encrypt', 'decrypt']);
    for (const e of t) expect(e.us).toBeGreaterThan(0);
    expect(gpu.drainTimings()).toEqual([]);
    gpu.dispose();
  });

  it('rejects foreign, disposed and mismatched handles with clear errors', () => {
    const { cpu, gpu } = pair({ polyN: 8192, primeBits: [50, 40] });
    const skC = cpu.generateSecretKey();
    const sk = gpu.generateSecretKey();
    const pk = gpu.generatePublicKey(sk);
    const ct = gpu.encrypt(gpu.encode(randomValues(8)), pk);
    expect(() => gpu.decrypt(ct, skC)).toThrow(TypeError); // a CPU handle
    expect(() => gpu.add(ct, gpu.modSwitch(ct))).toThrow(RangeError); // levels differ
    expect(() => gpu.rescale(gpu.modSwitch(ct))).toThrow(RangeError); // one prime left
    expect(() => gpu.encode(new Float64Array(5000))).toThrow(RangeError);
    expect(() => gpu.encode([1, 2] as unknown as Float64Array)).toThrow(TypeError);
    const other = new (native().CkksContextCuda)({ polyN: 8192, primeBits: [50, 40] });
    expect(() => other.decrypt(ct, other.generateSecretKey())).toThrow(/another CKKS context/);
    other.dispose();
    ct.dispose();
    expect(ct.disposed).toBe(true);
    expect(() => gpu.decrypt(ct, sk)).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
    gpu.dispose();
    expect(() => gpu.generateSecretKey()).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
    cpu.dispose();
  });
});

describe.skipIf(!noGpu)('CkksContextCuda without a usable GPU', () => {
  it('validates the parameters, then throws ERR_TENSAFE_BACKEND', () => {
    const Cls = native().CkksContextCuda;
    expect(typeof Cls).toBe('function');
    expect(() => new Cls({ polyN: 1000 })).toThrow(RangeError);
    expect(() => new Cls({ polyN: 16384 })).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_BACKEND' }));
  });
});
