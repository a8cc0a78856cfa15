/**
 * The fused operations of the private protocols on CkksContextCuda against CkksContextCpu, word
 * for word in seeded mode (both contexts get the same fresh random seed and the same call
 * sequence, so they take the same stream ids): serializeReply bytes and decryptReply results
 * (either engine decrypts the other's bytes), sanitizeProducts replies and masks for every option
 * set of test/helpers/ckks-fused.ts (masks and flooding sampled on the device, also under heavy
 * rejection), traceRotations, decryptReplies, reencryptReplies. The GPU context poisons new
 * allocations, so an output word a kernel leaves unwritten cannot pass.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks';
import { loraDeltaReference, type LoraPair } from '../../src/pipeline/adapter';
import { OneRoundClient, OneRoundServer, traceSteps } from '../../src/private/one-round';
import { modulusFacts, planSites, type PrivateParams } from '../../src/private/params';
import { makeSite, sitePublic } from '../../src/private/sites';
import { TwoRoundClient, TwoRoundServer } from '../../src/private/two-round';
import type { OneRoundLayout, TwoRoundLayout } from '../../src/private/layout';
import { randomInts, randomPositions, sanitizeCases } from '../helpers/ckks-fused';
import { noGpu } from '../helpers/gpu';

const randomSeed = (): bigint => BigInt('0x' + randomBytes(32).toString('hex'));
const same = (a: Uint8Array | BigUint64Array, b: Uint8Array | BigUint64Array) =>
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);

function randomResidues(moduli: bigint[], limbs: number, n: number): BigUint64Array {
  const raw = new BigUint64Array(randomBytes(8 * limbs * n).buffer);
  const w = new BigUint64Array(limbs * n);
  for (let l = 0; l < limbs; l++) for (let j = 0; j < n; j++) w[l * n + j] = raw[l * n + j] % moduli[l];
  return w;
}

type Params = { polyN: number; primeBits: number[]; specialPrimeBits?: number };
function pair(params: Params) {
  const seed = randomSeed();
  const make = (backend: 'cpu' | 'cuda') => {
    const c = Ckks.create({ ...params, seed, backend });
    if (backend === 'cuda') (c as unknown as { ctx: { setPoison(on: boolean): void } }).ctx.setPoison(true);
    const { secretKey, publicKey } = c.generateKeys();
    return { c, sk: secretKey, pk: publicKey };
  };
  return { cpu: make('cpu'), gpu: make('cuda') };
}

const PARAMS: Params[] = [
  { polyN: 8192, primeBits: [50, 50, 50], specialPrimeBits: 50 },
  { polyN: 16384, primeBits: [60, 60, 60], specialPrimeBits: 60 },
];

describe.skipIf(noGpu)('fused private-protocol ops: CUDA equals CPU word for word (seeded)', () => {
  for (const params of PARAMS) {
    const n = params.polyN;

    it(`polyN ${n}: serializeReply / decryptReply / decryptReplies`, async () => {
      const { cpu, gpu } = pair(params);
      const { moduli } = cpu.c.info();
      const bytes: Uint8Array[] = [];
      for (const limbs of [3, 2, 1]) {
        const w = randomResidues(moduli, limbs, n);
        const ctC = cpu.c.encryptSymmetric(cpu.c.plaintextFromWords(w, { limbs, scale: 2 ** 20 }), cpu.sk);
        const ctG = gpu.c.encryptSymmetric(gpu.c.plaintextFromWords(w, { limbs, scale: 2 ** 20 }), gpu.sk);
        same(gpu.c.ciphertextWords(ctG), cpu.c.ciphertextWords(ctC));
        for (const count of [0, 1, 37, 1000, n]) {
          const pos = count === n ? Uint32Array.from({ length: n }, (_, j) => j) : randomPositions(n, count);
          const bC = cpu.c.serializeReply(ctC, pos);
          const bG = gpu.c.serializeReply(ctG, pos);
          same(bG, bC);
          const rC = cpu.c.decryptReply(bC, cpu.sk);
          expect(gpu.c.decryptReply(bC, gpu.sk)).toEqual(rC);
          if (count === 1000) bytes.push(bC);
        }
      }
      const all = await gpu.c.decryptReplies(bytes, gpu.sk);
      expect(all).toEqual(await cpu.c.decryptReplies(bytes, cpu.sk));
      expect(() => gpu.c.serializeReply(gpu.c.encryptSymmetric(gpu.c.encode([1]), gpu.sk), Uint32Array.from([2, 1]))).toThrow(/strictly increasing/);
      cpu.c.dispose();
      gpu.c.dispose();
    });

    for (const k of sanitizeCases(n)) {
      it(`polyN ${n}: sanitizeProducts, ${k.name}`, async () => {
        const { cpu, gpu } = pair(params);
        const xs = randomInts(n, 300, 1 << 20);
        const as = Array.from({ length: k.P }, () => randomInts(n, n, 1 << 10));
        const make = (s: typeof cpu) => ({
          ct: s.c.encryptSymmetric(s.c.encodeCoefficients(xs, { scale: 1 }), s.sk, { compact: true }),
          pts: as.map((a) => s.c.encodeCoefficients(a, { scale: 1 })),
        });
        const ic = make(cpu);
        const ig = make(gpu);
        same(gpu.c.ciphertextWords(ig.ct), cpu.c.ciphertextWords(ic.ct));
        const o = k.options();
        const rc = await cpu.c.sanitizeProducts(ic.ct, ic.pts, cpu.pk, o);
        const rg = await gpu.c.sanitizeProducts(ig.ct, ig.pts, gpu.pk, o);
        expect(rg.replies.length).toBe(k.P);
        rg.replies.forEach((r, p) => same(r, rc.replies[p]));
        expect(rg.masks).toEqual(rc.masks);
        // the same stream ids were taken
        same(gpu.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }), cpu.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }));
        cpu.c.dispose();
        gpu.c.dispose();
      });
    }

    it(`polyN ${n}: traceRotations`, async () => {
      const { cpu, gpu } = pair(params);
      const steps = [cpu.c.galoisStep(1 + (2 * n) / 16), cpu.c.galoisStep(1 + (2 * n) / 8), 0, 3];
      const keySteps = steps.filter((s) => s !== 0);
      const gkC = await cpu.c.generateGaloisKeys(cpu.sk, keySteps);
      const gkG = await gpu.c.generateGaloisKeys(gpu.sk, keySteps);
      const xs = randomInts(n, n, 1 << 20);
      const ctC = cpu.c.encryptSymmetric(cpu.c.encodeCoefficients(xs, { scale: 1 }), cpu.sk);
      const ctG = gpu.c.encryptSymmetric(gpu.c.encodeCoefficients(xs, { scale: 1 }), gpu.sk);
      const tC = await cpu.c.traceRotations(ctC, steps, gkC);
      const tG = await gpu.c.traceRotations(ctG, steps, gkG);
      same(gpu.c.ciphertextWords(tG), cpu.c.ciphertextWords(tC));
      await expect(gpu.c.traceRotations(ctG, [7], gkG)).rejects.toThrow(/no rotation key for steps = 7/);
      cpu.c.dispose();
      gpu.c.dispose();
    });
  }

  it('device samplers under heavy rejection: flooding 126 bits (about half the candidates rejected), 1 bit, whole-ring read sets', async () => {
    const n = 8192;
    for (const floodBits of [126, 1, 63]) {
      const { cpu, gpu } = pair({ polyN: n, primeBits: [60, 60, 60] });
      const xs = randomInts(n, 512, 1000);
      const as = Array.from({ length: 3 }, () => randomInts(n, 512, 1000));
      const read = [randomPositions(n, 4000), Uint32Array.from({ length: n }, (_, j) => j), randomPositions(n, 1)];
      const run = async (s: typeof cpu) => {
        const ct = s.c.encryptSymmetric(s.c.encodeCoefficients(xs, { scale: 1 }), s.sk, { compact: true });
        const pts = as.map((a) => s.c.encodeCoefficients(a, { scale: 1 }));
        return s.c.sanitizeProducts(ct, pts, s.pk, { read, floodBits, rescale: 1, format: 'full', returnMaskAt: read });
      };
      const rc = await run(cpu);
      const rg = await run(gpu);
      rg.replies.forEach((r, p) => same(r, rc.replies[p]));
      expect(rg.masks).toEqual(rc.masks);
      same(gpu.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }), cpu.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }));
      cpu.c.dispose();
      gpu.c.dispose();
    }
  });

  it('reencryptReplies (decrypt, U, compact encryption on the device) and batched decryptReplies: the CPU bytes', async () => {
    const n = 8192;
    const { cpu, gpu } = pair({ polyN: n, primeBits: [60, 60, 60] });
    const { moduli } = cpu.c.info();
    const limbs = 2;
    const positions = [randomPositions(n, 5), randomPositions(n, 400), randomPositions(n, 1), randomPositions(n, 27)];
    const words = positions.map(() => randomResidues(moduli, limbs, n));
    const make = (s: typeof cpu) => words.map((w, p) => s.c.serializeReply(s.c.encryptSymmetric(s.c.plaintextFromWords(w, { limbs, scale: 1 }), s.sk), positions[p]));
    const bytes = make(cpu);
    make(gpu).forEach((b, p) => same(b, bytes[p]));
    // same prime count in every reply: the batched device path
    expect(await gpu.c.decryptReplies(bytes, gpu.sk)).toEqual(await cpu.c.decryptReplies(bytes, cpu.sk));
    const rg = await gpu.c.reencryptReplies(bytes, gpu.sk, { expect: positions, limbs, timings: true });
    const rc = await cpu.c.reencryptReplies(bytes, cpu.sk, { expect: positions, limbs });
    same(rg.request, rc.request);
    expect(Object.keys(rg.timings ?? {})).toEqual(['parse', 'device', 'serialize']);
    await expect(gpu.c.reencryptReplies(bytes, gpu.sk, { expect: positions, limbs: 3 })).rejects.toThrow(/reply 0 has 2 primes, expected 3/);
    await expect(gpu.c.reencryptReplies(bytes, gpu.sk, { expect: positions.map((p, i) => (i === 1 ? p.slice(1) : p)) })).rejects.toThrow(/reply 1 carries coefficients/);
    same(gpu.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }), cpu.c.sampleWords({ limbs: 1, count: 8, distribution: 'uniform' }));
    // timings change no word
    const xs = randomInts(n, 300, 1 << 20);
    const as = Array.from({ length: 2 }, () => randomInts(n, n, 1 << 10));
    const read = as.map(() => randomPositions(n, 64));
    const sanitize = async (s: typeof cpu, timings: boolean) => {
      const ct = s.c.encryptSymmetric(s.c.encodeCoefficients(xs, { scale: 1 }), s.sk, { compact: true });
      return s.c.sanitizeProducts(ct, as.map((a) => s.c.encodeCoefficients(a, { scale: 1 })), s.pk, { read, floodBits: 40, rescale: 1, format: 'partial', timings });
    };
    const sg = await sanitize(gpu, true);
    const sc = await sanitize(cpu, false);
    sg.replies.forEach((r, p) => same(r, sc.replies[p]));
    expect(Object.keys(sg.timings ?? {})).toEqual(['host_prepare', 'host_enqueue', 'device', 'serialize']);
    const dg = await gpu.c.decryptReplies(sg.replies, gpu.sk, { timings: true });
    expect(Object.keys(dg.timings ?? {})).toEqual(['parse', 'device', 'finish']);
    expect([...dg]).toEqual([...(await cpu.c.decryptReplies(sc.replies, cpu.sk))]);
    cpu.c.dispose();
    gpu.c.dispose();
  });

  it('more products than one batched launch takes (65): still the CPU words', async () => {
    const n = 8192;
    const { cpu, gpu } = pair({ polyN: n, primeBits: [60, 60, 60] });
    const xs = randomInts(n, 512, 1000);
    const as = Array.from({ length: 65 }, () => randomInts(n, 512, 1000));
    const read = as.map(() => randomPositions(n, 16));
    const run = async (s: typeof cpu) => {
      const ct = s.c.encryptSymmetric(s.c.encodeCoefficients(xs, { scale: 1 }), s.sk, { compact: true });
      const pts = as.map((a) => s.c.encodeCoefficients(a, { scale: 1 }));
      return s.c.sanitizeProducts(ct, pts, s.pk, { read, floodBits: 20, rescale: 1, format: 'partial', returnMaskAt: read });
    };
    const rc = await run(cpu);
    const rg = await run(gpu);
    rg.replies.forEach((r, p) => same(r, rc.replies[p]));
    expect(rg.masks).toEqual(rc.masks);
    cpu.c.dispose();
    gpu.c.dispose();
  });

  for (const protocol of ['two-round', 'one-round'] as const) {
    it(`${protocol} with the server on CUDA and the client on the CPU: scaling * B A x within 1e-3 of float64`, async () => {
      const inDim = 64;
      const pair = (module: 'q_proj' | 'v_proj', outDim: number): LoraPair => ({
        layer: 0, module, rank: 8, inDim, outDim,
        a: new Float32Array(8 * inDim).map(() => (Math.random() * 2 - 1) / Math.sqrt(inDim)),
        b: new Float32Array(outDim * 8).map(() => (Math.random() * 2 - 1) / Math.sqrt(8)),
      });
      const pairs = [pair('q_proj', 64), pair('v_proj', 32)];
      const site = makeSite(0, 0, pairs, 2);
      const ckksParams = protocol === 'two-round' ? { polyN: 8192, primeBits: [60, 60, 60] } : { polyN: 16384, primeBits: [60, 60, 60], specialPrimeBits: 60 };
      const params: PrivateParams = { protocol, placement: 'layers', expert: 'e', floodBits: 40, ckks: ckksParams };
      const client = Ckks.create({ ...ckksParams, backend: 'cpu' });
      const server = Ckks.create({ ...ckksParams, backend: 'cuda' });
      const { secretKey, publicKey } = client.generateKeys();
      const pk = server.deserializePublicKey(client.serialize(publicKey));
      const [plan] = planSites(params, [sitePublic(site)], modulusFacts(client));
      const moduli = client.info().moduli;
      const x = Float64Array.from({ length: inDim }, () => (Math.random() * 2 - 1) * 3);
      const want = Float64Array.from([...loraDeltaReference(pairs[0], 2, x), ...loraDeltaReference(pairs[1], 2, x)]);
      let got: Float64Array;
      if (protocol === 'two-round') {
        const c = new TwoRoundClient(client, secretKey, plan.site, plan.layout as TwoRoundLayout, plan.budget, moduli);
        const s = new TwoRoundServer(server, pk, site, plan.layout as TwoRoundLayout, plan.budget, moduli);
        const r1 = c.round1(x);
        const a1 = await s.round1(r1.request);
        got = await c.finish(await s.round2(await c.round2(a1.replies), a1.share), r1.xShift);
        s.dispose();
      } else {
        const gk = await client.generateGaloisKeys(secretKey, traceSteps(plan.layout as OneRoundLayout));
        const c = new OneRoundClient(client, secretKey, plan.site, plan.layout as OneRoundLayout, plan.budget, moduli);
        const s = new OneRoundServer(server, pk, server.deserializeGaloisKeys(client.serialize(gk)), site, plan.layout as OneRoundLayout, plan.budget, moduli);
        const r = c.request(x);
        got = await c.finish(await s.answer(r.request), r.xShift);
        s.dispose();
      }
      let num = 0;
      let den = 0;
      want.forEach((w, i) => {
        num += (got[i] - w) ** 2;
        den += w ** 2;
      });
      expect(Math.sqrt(num / den)).toBeLessThan(1e-3);
      client.dispose();
      server.dispose();
    });
  }
});
