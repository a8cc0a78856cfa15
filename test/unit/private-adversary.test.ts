/**
 * The privacy claims of the private mode, tested as an adversary would (CPU). The written argument
 * is src/server/PROTOCOL.md ("What each party learns").
 *
 * Curious client (holds the key, decrypts everything it receives):
 *  - every coefficient of a round-1 reply and every non-read coefficient of a last-round reply is
 *    uniform mod q (chi-square) and uncorrelated with what the server computed there (the products
 *    of x with A, B's cross terms);
 *  - at the read coefficients the value differs from the exact B_int A_int x_int only by the
 *    flooding noise: |error| <= 2^floodLog2 + beta + rounding, spread uniformly over that range;
 *  - the c1 of a reply is rerandomised: dividing it by the request's c1 does not give A (it does
 *    without rerandomisation: the attack the rerandomisation stops).
 * Curious server (sees every byte the client sends):
 *  - every blob is public material or a ciphertext of the session's parameters; the control JSON
 *    carries parameters only; equal inputs never give equal frames; ciphertext words look uniform;
 *  - the server's retained state is its own shares (drawn before it saw the input) and counters;
 *    nothing it logs holds activations.
 * False-failure rates: chi-square thresholds at p < 1e-6, correlation bounds at 6 standard errors.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Ckks } from '../../src/engine/ckks/ckks';
import { Model } from '../../src/engine/model';
import type { LoraPair } from '../../src/pipeline/adapter';
import { ExpertSet, writeSyntheticExperts } from '../../src/pipeline/experts';
import { PrivateClient } from '../../src/private/client';
import { negacyclicProduct, packA, packInput, readPositions, readPositions1, type TwoRoundLayout, type OneRoundLayout } from '../../src/private/layout';
import { OneRoundClient, OneRoundServer, traceSteps } from '../../src/private/one-round';
import { modulusFacts, planSites, type PrivateParams } from '../../src/private/params';
import { makeSite, sitePublic, type SitePrivate } from '../../src/private/sites';
import { TwoRoundClient, TwoRoundServer } from '../../src/private/two-round';
import { FrameType, parseFrame } from '../../src/private/wire';
import { startPrivateServer } from '../../src/server/private-server';

function randomPair(module: 'q_proj' | 'v_proj', inDim: number, outDim: number, rank: number): LoraPair {
  const a = new Float32Array(rank * inDim).map(() => (Math.random() * 2 - 1) / Math.sqrt(inDim));
  const b = new Float32Array(outDim * rank).map(() => (Math.random() * 2 - 1) / Math.sqrt(rank));
  return { layer: 0, module, rank, inDim, outDim, a, b };
}

/** Chi-square statistic of the top 4 bits of residues mod q (16 bins, uniform expected). */
function chiSquare(residues: bigint[], q: bigint): number {
  const bins = new Array(16).fill(0);
  for (const r of residues) bins[Number((r * 16n) / q)]++;
  const e = residues.length / 16;
  return bins.reduce((s, c) => s + (c - e) ** 2 / e, 0);
}
// chi-square with 15 degrees of freedom: P(X > 60) ~ 2e-7
const CHI2_MAX = 60;

function pearson(a: number[], b: number[]): number {
  const n = a.length;
  const ma = a.reduce((s, v) => s + v, 0) / n;
  const mb = b.reduce((s, v) => s + v, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** CRT of limb residues to the centred integer mod prod(moduli). */
function crt(res: bigint[], moduli: bigint[]): bigint {
  const Q = moduli.reduce((p, q) => p * q, 1n);
  let x = 0n;
  for (let i = 0; i < res.length; i++) {
    const Mi = Q / moduli[i];
    let inv = 1n, base = Mi % moduli[i], e = moduli[i] - 2n;
    while (e > 0n) {
      if (e & 1n) inv = (inv * base) % moduli[i];
      base = (base * base) % moduli[i];
      e >>= 1n;
    }
    x = (x + res[i] * Mi * inv) % Q;
  }
  return x > Q / 2n ? x - Q : x;
}

/** Exact integers of the site computation: v = A_int x_int, delta = B_int v (BigInt). */
function exactInts(site: SitePrivate, x: Float64Array, xShift: number): { v: bigint[]; delta: bigint[] } {
  const { inDim, rank, outDim } = site.shape;
  const xi = Array.from(x, (t) => BigInt(Math.round(t * 2 ** Math.min(xShift, 52))) * 2n ** BigInt(Math.max(0, xShift - 52)));
  const v: bigint[] = [];
  for (let i = 0; i < rank; i++) {
    let s = 0n;
    for (let j = 0; j < inDim; j++) s += BigInt(site.aInt[i * inDim + j]) * xi[j];
    v.push(s);
  }
  const delta: bigint[] = [];
  for (let k = 0; k < outDim; k++) {
    let s = 0n;
    for (let i = 0; i < rank; i++) s += BigInt(site.bInt[k * rank + i]) * v[i];
    delta.push(s);
  }
  return { v, delta };
}

const inDim = 64;
const pairs = [randomPair('q_proj', inDim, 64, 8), randomPair('v_proj', inDim, 32, 8)];
const site = makeSite(0, 0, pairs, 2);

function setup(protocol: 'two-round' | 'one-round', floodBits = 40) {
  const ckksParams = protocol === 'two-round' ? { polyN: 8192, primeBits: [60, 60, 60] } : { polyN: 16384, primeBits: [60, 60, 60], specialPrimeBits: 60 };
  const params: PrivateParams = { protocol, placement: 'layers', expert: 'e', floodBits, ckks: ckksParams };
  const client = Ckks.create({ ...ckksParams, backend: 'cpu' });
  const server = Ckks.create({ ...ckksParams, backend: 'cpu' });
  const { secretKey, publicKey } = client.generateKeys();
  const pk = server.deserializePublicKey(client.serialize(publicKey));
  const [plan] = planSites(params, [sitePublic(site)], modulusFacts(client));
  return { client, server, secretKey, pk, plan, moduli: client.info().moduli };
}

describe('a curious client', () => {
  it('two-round: round-1 replies are uniform everywhere and uncorrelated with x * A', () => {
    const { client, server, secretKey, pk, plan, moduli } = setup('two-round');
    const L = plan.layout as TwoRoundLayout;
    const c = new TwoRoundClient(client, secretKey, plan.site, L, plan.budget, moduli);
    const s = new TwoRoundServer(server, pk, site, L, plan.budget, moduli);
    const residues: bigint[] = [];
    const fractions: number[] = [];
    const truth: number[] = [];
    for (let q = 0; q < 3; q++) {
      const x = Float64Array.from({ length: inDim }, () => Math.random() * 2 - 1);
      const r1 = c.round1(x);
      const { replies } = s.round1(r1.request);
      for (let p = 0; p < L.products1; p++) {
        const pt = client.decrypt(client.deserializeCiphertext(replies[p]), secretKey);
        const words = client.plaintextWords(pt);
        const plain = negacyclicProduct(packInput(L, x), packA(L, site.aInt, p));
        for (let j = 0; j < L.polyN; j++) {
          residues.push(words[j]);
          fractions.push(Number(words[j]) / Number(moduli[0]));
          truth.push(plain[j]);
        }
      }
    }
    expect(chiSquare(residues, moduli[0])).toBeLessThan(CHI2_MAX);
    expect(Math.abs(pearson(fractions, truth))).toBeLessThan(6 / Math.sqrt(fractions.length));
    s.dispose();
    client.dispose();
    server.dispose();
  });

  for (const protocol of ['two-round', 'one-round'] as const) {
    it(`${protocol}: last-round replies are uniform off the read coefficients and exact up to the flooding on them`, async () => {
      const { client, server, secretKey, pk, plan, moduli } = setup(protocol);
      const L = plan.layout;
      let finish: (x: Float64Array) => { replies: Uint8Array[]; xShift: number };
      let dispose: () => void;
      if (protocol === 'two-round') {
        const c = new TwoRoundClient(client, secretKey, plan.site, L as TwoRoundLayout, plan.budget, moduli);
        const s = new TwoRoundServer(server, pk, site, L as TwoRoundLayout, plan.budget, moduli);
        finish = (x) => {
          const r1 = c.round1(x);
          const a1 = s.round1(r1.request);
          return { replies: s.round2(c.round2(a1.replies), a1.share), xShift: r1.xShift };
        };
        dispose = () => s.dispose();
      } else {
        const gk = await client.generateGaloisKeys(secretKey, traceSteps(L as OneRoundLayout));
        const c = new OneRoundClient(client, secretKey, plan.site, L as OneRoundLayout, plan.budget, moduli);
        const s = new OneRoundServer(server, pk, server.deserializeGaloisKeys(client.serialize(gk)), site, L as OneRoundLayout, plan.budget, moduli);
        finish = (x) => {
          const r = c.request(x);
          return { replies: s.answer(r.request), xShift: r.xShift };
        };
        dispose = () => s.dispose();
      }
      const offRead: bigint[] = [];
      const errors: number[] = [];
      // the last round's integers: one-round S B_int A_int x_int; two-round B_int v' with v' = v / q_top
      const stride = protocol === 'one-round' ? BigInt((L as OneRoundLayout).stride) : 1n;
      const over = protocol === 'two-round' ? moduli[moduli.length - 1] : 1n;
      const lastLimbs = plan.budget.lastLimbs;
      const dropped = moduli.slice(lastLimbs - plan.budget.dropLimbs, lastLimbs).reduce((a, b) => a * b, 1n);
      // in the units of the reply (after the last rescale): flooding, then the rescale's rounding
      const F = 2 ** Math.ceil(plan.budget.floodLog2) / Number(dropped);
      const bound = F + (L.polyN + 1) / 2 + 2;
      for (let q = 0; q < 12; q++) {
        const x = Float64Array.from({ length: inDim }, () => Math.random() * 2 - 1);
        const { replies, xShift } = finish(x);
        const { delta } = exactInts(site, x, xShift);
        let k = 0;
        for (let p = 0; p < L.products2; p++) {
          const ct = client.deserializeCiphertext(replies[p]);
          const limbs = ct.limbs;
          expect(limbs).toBe(lastLimbs - plan.budget.dropLimbs);
          const words = client.plaintextWords(client.decrypt(ct, secretKey));
          const read = new Set(readPositions(L, p));
          for (let j = 0; j < L.polyN; j++) {
            if (!read.has(j)) offRead.push(words[j]);
          }
          for (const pos of readPositions(L, p)) {
            const res = Array.from({ length: limbs }, (_, l) => words[l * L.polyN + pos]);
            const got = crt(res, moduli.slice(0, limbs));
            const want = (delta[k] * stride) / over / dropped;
            errors.push(Number(got - want));
            k++;
          }
        }
      }
      expect(chiSquare(offRead, moduli[0])).toBeLessThan(CHI2_MAX);
      for (const e of errors) expect(Math.abs(e)).toBeLessThan(bound);
      if (F > 50 * L.polyN) {
        // flooding dominates: the errors spread uniformly on [-F, F]
        const u = errors.map((e) => e / F);
        const mean = u.reduce((s, e) => s + e, 0) / u.length;
        const variance = u.reduce((s, e) => s + (e - mean) ** 2, 0) / u.length;
        expect(Math.abs(mean)).toBeLessThan(6 * Math.sqrt(1 / 3 / u.length));
        expect(variance).toBeGreaterThan(1 / 3 - 0.06);
        expect(variance).toBeLessThan(1 / 3 + 0.06);
      }
      dispose();
      client.dispose();
      server.dispose();
    });
  }

  it('the reply c1 is rerandomised: dividing it by the request c1 does not give A', () => {
    const { client, server, secretKey, pk, plan, moduli } = setup('two-round');
    const L = plan.layout as TwoRoundLayout;
    const n = L.polyN;
    const q = moduli[0];
    const x = Float64Array.from({ length: inDim }, () => Math.random() * 2 - 1);
    const pt = client.encodeCoefficients(packInput(L, x), { limbs: 3, scale: 1 });
    const ctx = client.encryptSymmetric(pt, secretKey);
    const req = server.deserializeCiphertext(client.serialize(ctx));
    const aPt = server.encodeCoefficients(packA(L, site.aInt, 0), { limbs: 3, scale: 1 });
    const raw = server.multiplyPlain(req, aPt);
    const fresh = server.rerandomize(raw, pk);
    const c1 = (w: BigUint64Array) => w.subarray(3 * n, 4 * n); // limb 0 of c1 (NTT domain)
    const wx = c1(client.ciphertextWords(ctx));
    const inv = (a: bigint): bigint => {
      let r = 1n, b = a % q, e = q - 2n;
      while (e > 0n) {
        if (e & 1n) r = (r * b) % q;
        b = (b * b) % q;
        e >>= 1n;
      }
      return r;
    };
    const ratio = (w: BigUint64Array, base: BigUint64Array) => Array.from({ length: 64 }, (_, j) => (w[j] * inv(base[j])) % q);
    const attackRaw = ratio(c1(server.ciphertextWords(raw)), wx);
    const attackFresh = ratio(c1(server.ciphertextWords(fresh)), wx);
    // Without rerandomisation the ratio is A's NTT word for word: a second encryption (another c1)
    // gives the same words.
    const ctx2 = client.encryptSymmetric(pt, secretKey);
    const raw2 = server.multiplyPlain(server.deserializeCiphertext(client.serialize(ctx2)), aPt);
    expect(ratio(c1(server.ciphertextWords(raw2)), c1(client.ciphertextWords(ctx2)))).toEqual(attackRaw);
    const matches = attackFresh.filter((v, j) => v === attackRaw[j]).length;
    expect(matches).toBe(0);
    // and the protocol's actual replies are rerandomised ones
    const s = new TwoRoundServer(server, pk, site, L, plan.budget, moduli);
    const reply = server.deserializeCiphertext(s.round1(client.serialize(client.encryptSymmetric(pt, secretKey))).replies[0]);
    expect(reply.limbs).toBe(2); // rerandomised at 3 primes, then rescaled once
    for (const o of [raw2, ctx2, raw, fresh, aPt, req, ctx, pt, reply]) o.dispose();
    s.dispose();
    client.dispose();
    server.dispose();
  });
});

describe('a curious server (over the WebSocket)', () => {
  const SHAPE = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-private-adv-'));
  let experts: ExpertSet;
  let model: Model;
  beforeAll(async () => {
    writeSyntheticExperts(path.join(tmp, 'e'), SHAPE, { seed: 4, specs: [{ name: 'qv', r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'] }] });
    experts = new ExpertSet(path.join(tmp, 'e'));
    model = await Model.load('tiny', { backend: 'cpu', contextLength: 128, seed: 3 });
  });
  afterAll(() => {
    model?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('receives only public material and fresh ciphertexts, stores shares only, logs nothing of the input', async () => {
    const frames: Uint8Array[] = [];
    const logged: string[] = [];
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation((...a: unknown[]) => void logged.push(a.map(String).join(' '))),
    );
    const { server, url } = await startPrivateServer({ experts, hiddenSize: 64, backend: 'cpu', socket: { onFrame: (b) => frames.push(Uint8Array.from(b)) } });
    const runs: number[][] = [];
    const hiddens: Float32Array[] = [];
    try {
      for (let run = 0; run < 2; run++) {
        const client = await PrivateClient.open(model, { url, expert: 'qv', placement: 'final-hidden', protocol: 'two-round' });
        const { summary } = await client.run([1, 2, 3, 4], { maxTokens: 4, stopAtEos: false });
        hiddens.push(model.hidden());
        runs.push(summary.ids);
        await client.dispose();
      }
    } finally {
      spies.forEach((s) => s.mockRestore());
    }
    expect(runs[0]).toEqual(runs[1]);
    const check = Ckks.create({ polyN: 8192, primeBits: [60, 60, 60], backend: 'cpu' });
    const rounds: Uint8Array[] = [];
    for (const f of frames) {
      const frame = parseFrame(f, { maxBlobs: 8, maxBlobBytes: 1 << 30 });
      if (frame.type === FrameType.Hello || frame.type === FrameType.Open) {
        const json = JSON.parse(new TextDecoder().decode(frame.blobs[0]));
        const keys = Object.keys(frame.type === FrameType.Hello ? json : json.params).sort();
        expect(keys).toEqual(frame.type === FrameType.Hello ? ['expert', 'placement'] : ['ckks', 'expert', 'floodBits', 'placement', 'protocol']);
        if (frame.type === FrameType.Open) {
          expect(frame.blobs.length).toBe(2);
          check.deserializePublicKey(frame.blobs[1]).dispose(); // a public key of the session's parameters
        }
      } else {
        expect([FrameType.Round1, FrameType.Round2]).toContain(frame.type);
        expect(frame.blobs.length).toBe(1);
        const ct = check.deserializeCiphertext(frame.blobs[0]); // a ciphertext, nothing else
        expect(ct.limbs).toBe(frame.type === FrameType.Round1 ? 3 : 2);
        ct.dispose();
        rounds.push(frame.blobs[0]);
      }
    }
    // run 1 and run 2 sent the same inputs: no two round frames are equal
    const seen = new Set(rounds.map((b) => Buffer.from(b).toString('base64')));
    expect(seen.size).toBe(rounds.length);
    // ciphertext words look uniform: the low 6 bytes of each little-endian word of the last c0 limb
    // (residues mod a 60-bit prime; chi-square over byte values, 255 dof: P(X > 400) < 1e-8)
    const counts = new Array(256).fill(0);
    let total = 0;
    for (const b of rounds) {
      for (let i = b.length - 65536; i < b.length; i++) {
        if ((i - (b.length - 65536)) % 8 < 6) {
          counts[b[i]]++;
          total++;
        }
      }
    }
    const chi = counts.reduce((s, c) => s + (c - total / 256) ** 2 / (total / 256), 0);
    expect(chi).toBeLessThan(400);
    // nothing logged holds the activations
    const values = hiddens.flatMap((h) => Array.from(h.slice(0, 8), (v) => v.toPrecision(4)));
    for (const line of logged) for (const v of values) expect(line.includes(v)).toBe(false);
    expect(server.engine.stats().sessions).toBe(0);
    check.dispose();
    await server.close();
  });
});
