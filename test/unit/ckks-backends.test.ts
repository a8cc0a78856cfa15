/**
 * One binding over both CKKS engines, CPU half (runs in CI): the shared table of bad options
 * (test/helpers/ckks-cases.ts) gives the documented error on CkksContextCpu and the very same
 * error on CkksContextCuda, which reads and checks options before it needs a GPU (without one,
 * valid options end in ERR_TENSAFE_BACKEND); the bad-call table on the CPU context; handles
 * of one family that know their backend; dispose of a context releasing its handles;
 * Symbol.dispose; the HE-LoRA benchmark's result shape.
 */
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import { native } from '../../src/engine/native';
import { noGpu } from '../helpers/gpu';
import { CALL_CASES, CALL_CASE_OPTIONS, GOOD_OPTIONS, OPTION_CASES, describeError, errorOf, expectError } from '../helpers/ckks-cases';

const construct = (cls: string, options: unknown) => () => new (native()[cls])(options);

describe('bad options: the same error on CkksContextCpu and CkksContextCuda', () => {
  for (const c of OPTION_CASES) {
    it(c.name, async () => {
      const cpu = await errorOf(construct('CkksContextCpu', c.options));
      expectError(cpu, c.error, expect as never);
      const cuda = await errorOf(construct('CkksContextCuda', c.options));
      expect(cuda).toEqual(cpu);
    });
  }

  it('valid options are accepted by both ({ key: undefined } is absent on both)', () => {
    for (const options of GOOD_OPTIONS) {
      const cpu = new (native().CkksContextCpu)(options);
      expect(cpu.info().backend).toBe('cpu');
      cpu.dispose();
      if (noGpu) expect(describeError((() => { try { new (native().CkksContextCuda)(options); } catch (e) { return e; } })()).code).toBe('ERR_TENSAFE_BACKEND');
    }
    const absent = Ckks.create({ polyN: 8192, seed: undefined, backend: 'cpu' }).info();
    expect(absent.seeded).toBe(false);
    expect(absent.insecure).toBe(false);
  });
});

describe('bad calls on the CPU context (the CUDA half runs the same table on the GPU)', () => {
  const c = Ckks.create({ ...CALL_CASE_OPTIONS, backend: 'cpu' });
  for (const k of CALL_CASES) {
    it(k.name, async () => {
      expectError(await errorOf(() => k.call(c)), k.error, expect as never);
    });
  }
});

describe('one handle family; a context releases what it made', () => {
  it('handles report their backend, have one class per kind, and refuse another backend clearly', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const { secretKey, publicKey } = c.generateKeys();
    const pt = c.encode([1, 2]);
    const ct = c.encrypt(pt, publicKey);
    for (const h of [secretKey, publicKey, pt, ct]) expect(h.backend).toBe('cpu');
    expect(ct.native.constructor.name).toBe('CkksCiphertext');
    expect(pt.native.constructor.name).toBe('CkksPlaintext');
    expect(secretKey.native.constructor.name).toBe('CkksSecretKey');
    // a handle of one kind where another is expected
    expect(() => c.decrypt(pt as never, secretKey)).toThrow(/ciphertext must be a Ciphertext of this cpu context/);
    // a handle that claims another backend: the CUDA context would see this CPU handle so
    // (checked on the GPU in test/gpu/ckks-backends.test.ts); here the CPU side of the message
    expect(() => c.decrypt(ct, publicKey as never)).toThrow(TypeError);
  });

  it('dispose() of a context disposes every handle it made; Symbol.dispose does the same', async () => {
    const c = Ckks.create({ polyN: 8192, specialPrimeBits: 60, backend: 'cpu' });
    const { secretKey, publicKey } = c.generateKeys();
    const gk = await c.generateGaloisKeys(secretKey, [1]);
    const pt = c.encode([1, 2]);
    const ct = c.encrypt(pt, publicKey);
    const bytes = c.serialize(ct);
    const made = [secretKey, publicKey, gk, pt, ct, ...c.decryptBatch([ct, ct], secretKey)];
    const early = c.encode([3]);
    early[Symbol.dispose]();
    expect(early.disposed).toBe(true);
    c[Symbol.dispose]();
    expect(c.disposed).toBe(true);
    for (const h of made) expect(h.disposed).toBe(true);
    expect(() => ct.limbs).toThrow(expect.objectContaining({ code: 'ERR_TENSAFE_DISPOSED' }));
    // bytes survive; another context reads them
    const other = Ckks.create({ polyN: 8192, specialPrimeBits: 60, backend: 'cpu' });
    expect(other.deserializeCiphertext(bytes).limbs).toBe(2);
    // a Galois key generation in flight when its context goes away rejects clearly
    const d = Ckks.create({ polyN: 8192, specialPrimeBits: 60, backend: 'cpu' });
    const pending = d.generateGaloisKeys(d.generateSecretKey(), [1, 2, 3]);
    d.dispose();
    await expect(pending).rejects.toThrow(/CkksContextCpu has been disposed/);
  });

  it('`using` disposes a context (and so what it made) at the end of the block', () => {
    let ct: ReturnType<Ckks['encrypt']>;
    let pt: ReturnType<Ckks['encode']>;
    {
      using c = Ckks.create({ polyN: 8192, backend: 'cpu' });
      using sk = c.generateSecretKey();
      pt = c.encode([1]);
      ct = c.encryptSymmetric(pt, sk);
      expect(ct.disposed).toBe(false);
    }
    expect(ct.disposed).toBe(true);
    expect(pt.disposed).toBe(true);
  });

  it('handles made by one context cannot be used by a context that was disposed', () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    const pt = c.encode([1]);
    c.dispose();
    expect(() => c.encode([1])).toThrow(/CkksContextCpu has been disposed/);
    expect(pt.disposed).toBe(true);
  });
});

describe('host memory of CKKS objects is reported to V8', () => {
  const external = (): number => native().ckksTesting.externalMemory();
  // V8 also counts the ArrayBuffers of the call arguments (a few bytes here and there).
  const near = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThan(4096);

  it('ciphertexts and keys add their bytes; dispose, context dispose and collection return them', async () => {
    const v8 = await import('node:v8');
    const vm = await import('node:vm');
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // Other tests' dropped handles return their bytes when collected: collect them first.
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    await settle();
    const c = Ckks.create({ polyN: 65536, backend: 'cpu' });
    const n = 65536;
    const base = external();
    const sk = c.generateSecretKey(); // 2 limbs, with Shoup companions
    near(external() - base, 2 * 2 * n * 8);
    const pt = c.encode([1]);
    near(external() - base, 4 * n * 8 + 2 * n * 8);
    const cts = Array.from({ length: 3 }, () => c.encryptSymmetric(pt, sk));
    near(external() - base, 6 * n * 8 + 3 * 4 * n * 8);
    cts[0].dispose();
    cts[0].dispose(); // twice is harmless
    near(external() - base, 6 * n * 8 + 2 * 4 * n * 8);
    c.prepareMultiplier(pt); // Shoup companions double the plaintext
    near(external() - base, 8 * n * 8 + 2 * 4 * n * 8);
    // a handle collected without dispose() returns its bytes too
    await settle();
    const before = external();
    (() => {
      c.encryptSymmetric(pt, sk); // dropped at once
    })();
    near(external() - before, 4 * n * 8);
    await settle();
    near(external(), before);
    c.dispose();
    near(external(), base);
  });
});

describe('the HE-LoRA benchmark reports how its stages ran', () => {
  it('staged and streamed on the CPU: the same shape, the pipeline that ran, no note', async () => {
    const c = Ckks.create({ polyN: 8192, backend: 'cpu' });
    for (const pipeline of ['staged', 'streamed'] as const) {
      const t = await c.benchmarkHeLora({ d: 256, r: 8, iterations: 2, pipeline });
      expect(t.pipeline).toBe(pipeline);
      expect(t.requestedPipeline).toBe(pipeline);
      expect(t.note).toBeNull();
      expect(t.graphs).toBe(false);
      expect(t.replicas).toBe(8);
      expect(t.products).toBe(1);
      expect(t.maxAbsError).toBeLessThan(1e-4);
      const stages = ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'decode', 'extract_sum'] as const;
      const sum = stages.reduce((s, k) => s + t.medianUs[k], 0);
      for (const k of stages) expect(t.medianUs[k]).toBeGreaterThanOrEqual(0);
      expect(t.medianUs.total).toBeGreaterThan(0);
      // medians of parts need not add up to the median of wholes, but they are of its size
      expect(sum).toBeGreaterThan(0.3 * t.medianUs.total);
      expect(sum).toBeLessThan(3 * t.medianUs.total);
    }
  });
});
