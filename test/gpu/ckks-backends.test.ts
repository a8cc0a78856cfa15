/**
 * One binding over both CKKS engines, CUDA half: the shared tables of bad options and bad calls
 * (test/helpers/ckks-cases.ts) give the same error class, code and message on the CPU and the
 * CUDA context (up to the backend's own name), valid options give the same info(), a handle of
 * one backend passed to the other is a TypeError naming both, disposing a CUDA context disposes
 * its handles, and the HE-LoRA benchmark has one result shape (the CUDA run says that it does
 * not stream).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import { native } from '../../src/engine/native';
import { noGpu } from '../helpers/gpu';
import { CALL_CASES, CALL_CASE_OPTIONS, GOOD_OPTIONS, OPTION_CASES, errorOf, expectError } from '../helpers/ckks-cases';

/** The backend's own words, so that the rest of two messages can be compared. */
function neutral(e: Awaited<ReturnType<typeof errorOf>>) {
  return { ...e, message: e.message.replace(/CkksContextCuda|CkksContextCpu/g, 'CkksContext*').replace(/\b(cpu|cuda)\b/g, '*') };
}

describe.skipIf(noGpu)('CPU and CUDA CKKS contexts: the same errors and the same info()', () => {
  for (const c of OPTION_CASES) {
    it(`options: ${c.name}`, async () => {
      const cpu = await errorOf(() => new (native().CkksContextCpu)(c.options));
      const cuda = await errorOf(() => new (native().CkksContextCuda)(c.options));
      expectError(cuda, c.error, expect as never);
      expect(cuda).toEqual(cpu);
    });
  }

  it('valid options: info() equal but for the backend', () => {
    for (const options of GOOD_OPTIONS) {
      const { backend: b1, ...cpu } = new (native().CkksContextCpu)(options).info();
      const { backend: b2, ...cuda } = new (native().CkksContextCuda)(options).info();
      expect([b1, b2]).toEqual(['cpu', 'cuda']);
      expect(cuda).toEqual(cpu);
    }
  });

  // Made in beforeAll: the suite's body also runs (to list skipped tests) on machines without a GPU.
  let cpu: Ckks;
  let cuda: Ckks;
  beforeAll(() => {
    cpu = Ckks.create({ ...CALL_CASE_OPTIONS, backend: 'cpu' });
    cuda = Ckks.create({ ...CALL_CASE_OPTIONS, backend: 'cuda' });
  });
  for (const k of CALL_CASES) {
    it(`calls: ${k.name}`, async () => {
      const g = await errorOf(() => k.call(cuda));
      expectError(g, k.error, expect as never);
      expect(neutral(g)).toEqual(neutral(await errorOf(() => k.call(cpu))));
    });
  }

  it('a handle of one backend passed to the other is a TypeError naming both', () => {
    const a = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const b = Ckks.create({ polyN: 8192, backend: 'cuda' });
    const { publicKey: pkA } = a.generateKeys();
    const { secretKey: skB } = b.generateKeys();
    const ctA = a.encrypt(a.encode([1]), pkA);
    expect(ctA.backend).toBe('cpu');
    expect(skB.backend).toBe('cuda');
    expect(() => b.decrypt(ctA, skB)).toThrow(/ciphertext is a Ciphertext of the cpu backend; this context runs on cuda/);
    expect(() => a.encrypt(a.encode([1]), b.generatePublicKey(skB))).toThrow(/publicKey is a PublicKey of the cuda backend; this context runs on cpu/);
    try {
      b.decrypt(ctA, skB);
    } catch (e) {
      expect(e).toBeInstanceOf(TypeError);
      expect((e as NodeJS.ErrnoException).code).toBe('ERR_TENSAFE_ARG_TYPE');
    }
    // the handle classes are shared
    expect(ctA.native.constructor).toBe(b.encrypt(b.encode([1]), b.generatePublicKey(skB)).native.constructor);
  });

  it('disposing a CUDA context disposes every handle it made (device memory freed at once)', async () => {
    const c = Ckks.create({ polyN: 8192, specialPrimeBits: 60, backend: 'cuda' });
    const { secretKey, publicKey } = c.generateKeys();
    const gk = await c.generateGaloisKeys(secretKey, [1]);
    const ct = c.encrypt(c.encode([1, 2]), publicKey);
    const made = [secretKey, publicKey, gk, ct, c.decrypt(ct, secretKey), c.rotate(ct, 1, gk)];
    c[Symbol.dispose]();
    for (const h of made) expect(h.disposed).toBe(true);
    expect(() => ct.limbs).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
  });

  it('HE-LoRA benchmark: one result shape; the CUDA engine says it ran staged when asked to stream', async () => {
    for (const pipeline of ['staged', 'streamed'] as const) {
      const t = await cuda.benchmarkHeLora({ d: 256, r: 8, iterations: 3, pipeline });
      const c = await cpu.benchmarkHeLora({ d: 256, r: 8, iterations: 1, pipeline });
      expect(Object.keys(t).sort()).toEqual(Object.keys(c).sort());
      expect(Object.keys(t.medianUs).sort()).toEqual(Object.keys(c.medianUs).sort());
      expect(t.requestedPipeline).toBe(pipeline);
      expect(t.pipeline).toBe('staged');
      expect(t.graphs).toBe(true);
      expect(t.maxAbsError).toBeLessThan(1e-3);
      if (pipeline === 'streamed') expect(t.note).toMatch(/does not stream/);
      else expect(t.note).toBeNull();
    }
  });
});
