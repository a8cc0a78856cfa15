/**
 * The private protocols at one site, on the CPU: the packings against float64 negacyclic products,
 * then the whole exchange (client and server objects, no network) against the float64 LoRA delta,
 * for both protocols, fresh random inputs each run.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Ckks } from '../../src/engine/ckks/ckks';
import type { LoraPair } from '../../src/pipeline/adapter';
import { loraDeltaReference } from '../../src/pipeline/adapter';
import {
  automorphism, negacyclicProduct, oneRoundLayout, packA, packAStrided, packB, packBStrided, packInput, readIndex1, readPositions, twoRoundLayout,
} from '../../src/private/layout';
import { OneRoundClient, OneRoundServer, traceSteps } from '../../src/private/one-round';
import { modulusFacts, planSites, type PrivateParams } from '../../src/private/params';
import { makeSite, sitePublic } from '../../src/private/sites';
import { TwoRoundClient, TwoRoundServer } from '../../src/private/two-round';
import { RnsWords } from '../../src/private/words';

function randomPair(module: 'q_proj' | 'v_proj', inDim: number, outDim: number, rank: number, scale = 1): LoraPair {
  const a = new Float32Array(rank * inDim).map(() => (Math.random() * 2 - 1) / Math.sqrt(inDim));
  const b = new Float32Array(outDim * rank).map(() => ((Math.random() * 2 - 1) * scale) / Math.sqrt(rank));
  return { layer: 0, module, rank, inDim, outDim, a, b };
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

describe('private packings (float64)', () => {
  const pairs = [randomPair('q_proj', 48, 48, 4), randomPair('v_proj', 48, 16, 4)];
  const site = makeSite(0, 0, pairs, 1);
  const x = Float64Array.from({ length: 48 }, () => Math.random() * 2 - 1);
  const xi = packInput(twoRoundLayout(site.shape, 512), x);

  it('two-round: the read coefficients hold A x and B u exactly', () => {
    const L = twoRoundLayout(site.shape, 512);
    let row = 0;
    for (let p = 0; p < L.products1; p++) {
      const prod = negacyclicProduct(xi, packA(L, site.aInt, p));
      for (let k = 0; k < Math.min(L.rows1, L.shape.rank - p * L.rows1); k++, row++) {
        let want = 0;
        for (let j = 0; j < 48; j++) want += site.aInt[row * 48 + j] * x[j];
        expect(prod[readIndex1(L, k)]).toBeCloseTo(want, 6);
      }
    }
    const u = Float64Array.from({ length: L.polyN }, (_, i) => (i < L.shape.rank ? Math.random() * 2 - 1 : 0));
    let out = 0;
    for (let p = 0; p < L.products2; p++) {
      const prod = negacyclicProduct(u, packB(L, site.bInt, p));
      for (const pos of readPositions(L, p)) {
        let want = 0;
        for (let i = 0; i < L.shape.rank; i++) want += site.bInt[out * L.shape.rank + i] * u[i];
        expect(prod[pos]).toBeCloseTo(want, 6);
        out++;
      }
    }
    expect(out).toBe(site.shape.outDim);
  });

  it('one-round: the trace keeps exactly the multiples of the stride, then B lands on 0..outDim-1', () => {
    const L = oneRoundLayout(site.shape, 512);
    expect(L.stride).toBe(64);
    let prod = negacyclicProduct(xi, packAStrided(L, site.aInt));
    for (const g of L.traceElements) {
      const s = automorphism(prod, g);
      prod = prod.map((v, i) => v + s[i]);
    }
    for (let c = 0; c < L.polyN; c++) {
      if (c % L.stride !== 0) {
        expect(Math.abs(prod[c])).toBeLessThan(1e-6);
        continue;
      }
      const i = c / L.stride;
      if (i >= site.shape.rank) continue;
      let want = 0;
      for (let j = 0; j < 48; j++) want += site.aInt[i * 48 + j] * x[j];
      expect(prod[c] / L.stride).toBeCloseTo(want, 5);
    }
    const final = negacyclicProduct(prod, packBStrided(L, site.bInt, 0));
    for (let k = 0; k < site.shape.outDim; k++) {
      let want = 0;
      for (let i = 0; i < site.shape.rank; i++) want += site.bInt[k * site.shape.rank + i] * (prod[i * L.stride] / L.stride);
      expect(final[k] / L.stride).toBeCloseTo(want, 3);
    }
  });
});

describe('private protocols under CKKS (CPU)', () => {
  const inDim = 64;
  const pairs = [randomPair('q_proj', inDim, 64, 8), randomPair('v_proj', inDim, 32, 8)];
  const scaling = 2;
  const site = makeSite(0, 3, pairs, scaling);
  const reference = (x: Float64Array) => {
    const q = loraDeltaReference(pairs[0], scaling, x);
    const v = loraDeltaReference(pairs[1], scaling, x);
    return Float64Array.from([...q, ...v]);
  };

  for (const protocol of ['two-round', 'one-round'] as const) {
    it(`${protocol}: the client reads scaling * B A x within 1e-3 of float64 (lambda 40)`, async () => {
      const ckksParams = protocol === 'two-round' ? { polyN: 8192, primeBits: [60, 60, 60] } : { polyN: 16384, primeBits: [60, 60, 60], specialPrimeBits: 60 };
      const params: PrivateParams = { protocol, placement: 'layers', expert: 'e', floodBits: 40, ckks: ckksParams };
      const client = Ckks.create({ ...ckksParams, backend: 'cpu' });
      const server = Ckks.create({ ...ckksParams, backend: 'cpu' });
      const { secretKey, publicKey } = client.generateKeys();
      const pk = server.deserializePublicKey(client.serialize(publicKey));
      const [plan] = planSites(params, [sitePublic(site)], modulusFacts(client));
      const moduli = client.info().moduli;
      for (let trial = 0; trial < 2; trial++) {
        const x = Float64Array.from({ length: inDim }, () => (Math.random() * 2 - 1) * 3);
        let got: Float64Array;
        if (protocol === 'two-round') {
          const c = new TwoRoundClient(client, secretKey, plan.site, plan.layout as never, plan.budget, moduli);
          const s = new TwoRoundServer(server, pk, site, plan.layout as never, plan.budget, moduli);
          const r1 = c.round1(x);
          const a1 = await s.round1(r1.request);
          const r2 = await c.round2(a1.replies);
          got = await c.finish(await s.round2(r2, a1.share), r1.xShift);
          s.dispose();
        } else {
          const gk = await client.generateGaloisKeys(secretKey, traceSteps(plan.layout as never));
          const sgk = server.deserializeGaloisKeys(client.serialize(gk));
          const c = new OneRoundClient(client, secretKey, plan.site, plan.layout as never, plan.budget, moduli);
          const s = new OneRoundServer(server, pk, sgk, site, plan.layout as never, plan.budget, moduli);
          const r = c.request(x);
          got = await c.finish(await s.answer(r.request), r.xShift);
          s.dispose();
        }
        expect(got.length).toBe(96);
        expect(relErr(got, reference(x))).toBeLessThan(1e-3);
      }
      client.dispose();
      server.dispose();
    });
  }
});

describe('the round-1 share arithmetic (RnsWords.divRound)', () => {
  it('equals round(m / q_top) mod q_i computed by CRT composition, for random m and the edges of [0, Q)', () => {
    const moduli = Ckks.create({ polyN: 8192, primeBits: [60, 60, 60], backend: 'cpu' }).info().moduli;
    const rns = new RnsWords(moduli, 8192);
    const Q = moduli.reduce((a, b) => a * b, 1n);
    const top = moduli[2];
    const reference = (m: bigint) => {
      const r = (m + top / 2n) / top; // the integer rounding of m / q_top, m in [0, Q)
      return moduli.slice(0, 2).map((q) => r % q);
    };
    const randomBig = () => {
      const words = randomBytes(32);
      let v = 0n;
      for (const b of words) v = (v << 8n) | BigInt(b);
      return v % Q;
    };
    const ms = [0n, 1n, top / 2n, top / 2n + 1n, top - 1n, top, Q - 1n, Q - top / 2n, Q - top / 2n - 1n];
    for (let i = 0; i < 500; i++) ms.push(randomBig());
    for (const m of ms) expect(rns.divRound(moduli.map((q) => m % q))).toEqual(reference(m));
  });
});
