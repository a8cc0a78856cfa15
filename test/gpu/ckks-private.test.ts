/**
 * The private-mode CKKS primitives on CkksContextCuda against CkksContextCpu, word for word in
 * seeded mode (both contexts get the same fresh random seed and the same call sequence, so
 * they draw the same stream ids): plaintextFromWords (NTT on the device), plaintextWords
 * (inverse NTT on the device), sampleWords, compact symmetric encryption and its
 * serialisation, the seed through addPlain / modSwitch, rerandomize, and the automorphism
 * that rotate applies to coefficients. The GPU context poisons new allocations, so an output
 * word a kernel leaves unwritten cannot pass.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import { noGpu } from '../helpers/gpu';

function randomSeed(): bigint {
  return BigInt('0x' + randomBytes(32).toString('hex'));
}
function randomResidues(moduli: bigint[], limbs: number, n: number): BigUint64Array {
  const w = new BigUint64Array(limbs * n);
  const raw = new BigUint64Array(randomBytes(8 * limbs * n).buffer);
  for (let i = 0; i < limbs; i++) for (let j = 0; j < n; j++) w[i * n + j] = raw[i * n + j] % moduli[i];
  return w;
}
const same = (a: Uint8Array | BigUint64Array, b: Uint8Array | BigUint64Array) =>
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);

function pair(options: { polyN: number; primeBits: number[]; specialPrimeBits?: number }): { cpu: Ckks; gpu: Ckks } {
  const seed = randomSeed();
  return { cpu: Ckks.create({ ...options, seed, backend: 'cpu' }), gpu: Ckks.create({ ...options, seed, backend: 'cuda' }) };
}

const PARAMS = [
  { polyN: 8192, primeBits: [50, 40, 40], specialPrimeBits: 50 },
  { polyN: 16384, primeBits: [60, 40, 60], specialPrimeBits: 60 },
];

describe.skipIf(noGpu)('private-mode primitives: CUDA equals CPU word for word (seeded)', () => {
  for (const params of PARAMS) {
    const n = params.polyN;
    const label = `polyN ${n}`;

    it(`${label}: info, plaintextFromWords, plaintextWords, sampleWords`, () => {
      const { cpu, gpu } = pair(params);
      const { backend: _b1, ...ic } = cpu.info();
      const { backend: _b2, ...ig } = gpu.info();
      expect(ig).toEqual(ic);
      expect(gpu.galoisElement(17)).toBe(cpu.galoisElement(17));
      expect(gpu.galoisStep(2 ** 5 + 1)).toBe(cpu.galoisStep(2 ** 5 + 1));
      const moduli = ic.moduli;
      for (const limbs of [3, 2, 1]) {
        const w = randomResidues(moduli, limbs, n);
        const pc = cpu.plaintextFromWords(w, { limbs, scale: 2 ** 20 });
        const pg = gpu.plaintextFromWords(w, { limbs, scale: 2 ** 20 });
        same(gpu.serialize(pg), cpu.serialize(pc)); // the device NTT equals the host one
        same(gpu.plaintextWords(pg), w); // and the device inverse undoes it
        same(gpu.plaintextWords(gpu.deserializePlaintext(cpu.serialize(pc))), cpu.plaintextWords(pc));
      }
      const bad = randomResidues(moduli, 2, n);
      bad[n + 3] = moduli[1];
      expect(() => gpu.plaintextFromWords(bad, { limbs: 2 })).toThrow(new RegExp(`words\\[${n + 3}\\]`));
      expect(() => gpu.plaintextFromWords(bad, { limbs: 1 })).toThrow(RangeError);
      for (const opts of [
        { limbs: 3, count: 5000, distribution: 'uniform' as const },
        { limbs: 2, count: n, distribution: 'centered' as const, bits: 70 },
        { limbs: 1, count: 33, distribution: 'centered' as const, bits: 3 },
      ])
        same(gpu.sampleWords(opts), cpu.sampleWords(opts));
      cpu.dispose();
      gpu.dispose();
    });

    it(`${label}: compact symmetric encryption, its bytes, the seed through addPlain / modSwitch, rerandomize`, async () => {
      const { cpu, gpu } = pair(params);
      const skC = cpu.generateSecretKey();
      const skG = gpu.generateSecretKey();
      const pkC = cpu.generatePublicKey(skC);
      const pkG = gpu.generatePublicKey(skG);
      const gkC = await cpu.generateGaloisKeys(skC, [1]);
      const gkG = await gpu.generateGaloisKeys(skG, [1]);
      const values = Float64Array.from({ length: n / 2 }, () => Math.random() * 2 - 1);
      for (const limbs of [3, 2]) {
        const ptC = cpu.encode(values, { limbs });
        const ptG = gpu.deserializePlaintext(cpu.serialize(ptC));
        const cC = cpu.encryptSymmetric(ptC, skC, { compact: true });
        const cG = gpu.encryptSymmetric(ptG, skG, { compact: true });
        expect(cG.compact).toBe(true);
        same(gpu.ciphertextWords(cG), cpu.ciphertextWords(cC));
        const bytes = cpu.serialize(cC);
        same(gpu.serialize(cG), bytes);
        const moved = gpu.deserializeCiphertext(bytes); // c1 expanded on the host, uploaded
        expect(moved.compact).toBe(true);
        same(gpu.ciphertextWords(moved), cpu.ciphertextWords(cC));
        const apC = cpu.addPlain(cC, ptC);
        const apG = gpu.addPlain(cG, ptG);
        expect(apG.compact).toBe(true);
        same(gpu.serialize(apG), cpu.serialize(apC));
        const msC = cpu.modSwitch(cC);
        const msG = gpu.modSwitch(cG);
        expect(msG.compact).toBe(true);
        same(gpu.serialize(msG), cpu.serialize(msC));
        expect(gpu.rotate(cG, 0, gkG).compact).toBe(true);
        expect(gpu.rotate(cG, 1, gkG).compact).toBe(false);
        same(gpu.ciphertextWords(gpu.rotate(cG, 1, gkG)), cpu.ciphertextWords(cpu.rotate(cC, 1, gkC)));
        expect(gpu.add(cG, cG).compact).toBe(false);
        // rerandomize: same stream, same words; the value survives
        const rC = cpu.rerandomize(cC, pkC);
        const rG = gpu.rerandomize(cG, pkG);
        expect(rG.compact).toBe(false);
        expect(rG.limbs).toBe(limbs);
        same(gpu.ciphertextWords(rG), cpu.ciphertextWords(rC));
        const d = gpu.decode(gpu.decrypt(rG, skG));
        for (let i = 0; i < values.length; i++) expect(Math.abs(d[i] - values[i])).toBeLessThan(1e-5);
        // non-compact symmetric encryption is unchanged by the option's default
        same(gpu.ciphertextWords(gpu.encryptSymmetric(ptG, skG)), cpu.ciphertextWords(cpu.encryptSymmetric(ptC, skC)));
      }
      cpu.dispose();
      gpu.dispose();
    });
  }

  it('rotate on the GPU is X -> X^(5^steps) on coefficients (and X -> X^(2^k + 1) is a rotation)', async () => {
    const n = 8192;
    const gpu = Ckks.create({ polyN: n, specialPrimeBits: 60, backend: 'cuda' });
    const { moduli } = gpu.info();
    const sk = gpu.generateSecretKey();
    const steps = [1, -2, gpu.galoisStep(2 ** 7 + 1)];
    const gk = await gpu.generateGaloisKeys(sk, steps);
    const delta = 2n ** 30n;
    const m = Array.from({ length: n }, () => BigInt(Math.floor(Math.random() * 201) - 100));
    const w = new BigUint64Array(2 * n);
    moduli.forEach((q, i) => m.forEach((c, j) => (w[i * n + j] = (((c * delta) % q) + q) % q)));
    const ct = gpu.encryptSymmetric(gpu.plaintextFromWords(w, { limbs: 2, scale: Number(delta) }), sk);
    for (const s of steps) {
      const g = gpu.galoisElement(s);
      const got = gpu.decodeCoefficients(gpu.decrypt(gpu.rotate(ct, s, gk), sk));
      for (let j = 0; j < n; j++) {
        const e = (j * g) % (2 * n);
        const want = e < n ? Number(m[j]) : -Number(m[j]);
        expect(Math.round(got[e % n]) + 0).toBe(want + 0);
      }
    }
    gpu.dispose();
  });
});
