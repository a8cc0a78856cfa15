/**
 * WS /api/v1/private/stream under bad input (CPU): malformed, truncated and oversized frames, wrong
 * or insecure parameters, keys of another parameter set, rounds out of order, another connection's
 * session, a session reused after expiry, too many sessions. Each gets a clear error frame; the
 * socket stays usable, the server answers /health, and a good session running beside them keeps
 * giving the right deltas.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Ckks } from '../../src/engine/ckks/ckks';
import { loraDeltaReference } from '../../src/pipeline/adapter';
import { ExpertSet, writeSyntheticExperts } from '../../src/pipeline/experts';
import { PrivateClientSession } from '../../src/private/client-session';
import { defaultCkksParams, type PrivateParams } from '../../src/private/params';
import type { SitePublic } from '../../src/private/sites';
import { PrivateConnection } from '../../src/private/transport';
import { encodeFrame, FrameType, jsonBlob, parseFrame, type Frame } from '../../src/private/wire';
import { startPrivateServer, type PrivateServer } from '../../src/server/private-server';

const SHAPE = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 128 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tensafe-private-ep-'));
let experts: ExpertSet;
let server: PrivateServer;
let url: string;

beforeAll(async () => {
  writeSyntheticExperts(path.join(tmp, 'e'), SHAPE, { seed: 9, specs: [{ name: 'qv', r: 8, alpha: 16, targetModules: ['q_proj', 'v_proj'] }] });
  experts = new ExpertSet(path.join(tmp, 'e'));
  ({ server, url } = await startPrivateServer({ experts, hiddenSize: 64, backend: 'cpu', idleMs: 400, maxSessions: 3, maxKeyBytes: 8 << 20 }));
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A raw socket: send anything, read the next frame. */
async function rawSocket(): Promise<{ send: (d: Uint8Array | string) => void; next: () => Promise<Frame>; close: () => void }> {
  const ws = new WebSocket(url.replace('http', 'ws') + '/api/v1/private/stream');
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const queue: Frame[] = [];
  const waiters: Array<(f: Frame) => void> = [];
  ws.on('message', (d: Buffer) => {
    const f = parseFrame(new Uint8Array(d), { maxBlobs: 100, maxBlobBytes: 1 << 30 });
    const w = waiters.shift();
    if (w) w(f);
    else queue.push(f);
  });
  return {
    send: (d) => ws.send(d),
    next: () => (queue.length ? Promise.resolve(queue.shift() as Frame) : new Promise((r) => waiters.push(r))),
    close: () => ws.close(),
  };
}

function errorOf(f: Frame): { code: string; message: string } {
  expect(f.type).toBe(FrameType.Error);
  return JSON.parse(new TextDecoder().decode(f.blobs[0]));
}

function health(): Promise<number> {
  return new Promise((resolve) => http.get(url + '/health', (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', () => resolve(0)));
}

async function openSession(conn: PrivateConnection, params?: Partial<PrivateParams>): Promise<PrivateClientSession> {
  const adapter = await conn.hello('qv', 'layers');
  const sites = adapter.sites as SitePublic[];
  const p: PrivateParams = { protocol: 'two-round', placement: 'layers', expert: 'qv', floodBits: 40, ckks: defaultCkksParams('two-round', sites), ...params };
  const s = await PrivateClientSession.create(p, sites, { backend: 'cpu' });
  const ready = await conn.open(s.openFrame());
  s.session = ready.session as number;
  return s;
}

describe('the private endpoint refuses bad input clearly and stays up', () => {
  it('malformed, truncated and odd frames get bad_frame errors on a socket that stays open', async () => {
    const sock = await rawSocket();
    const good = encodeFrame({ type: FrameType.Hello, session: 0, site: 0, seq: 7, blobs: [jsonBlob({ expert: 'qv', placement: 'layers' })] });
    const cases: Array<[string, Uint8Array | string]> = [
      ['text frame', 'hello'],
      ['short', new Uint8Array(10)],
      ['bad magic', Uint8Array.from(good, (b, i) => (i === 0 ? 0 : b))],
      ['version', Uint8Array.from(good, (b, i) => (i === 4 ? 9 : b))],
      ['unknown type', Uint8Array.from(good, (b, i) => (i === 5 ? 0x55 : b))],
      ['truncated', good.subarray(0, good.length - 3)],
      ['trailing bytes', Uint8Array.from([...good, 1, 2])],
      ['too many blobs', Uint8Array.from(good, (b, i) => (i === 24 ? 200 : b))],
      ['server-only type', encodeFrame({ type: FrameType.Ready, session: 0, site: 0, seq: 1, blobs: [] })],
    ];
    for (const [name, data] of cases) {
      sock.send(data);
      const e = errorOf(await sock.next());
      expect(e.code, name).toBe('bad_frame');
      expect(e.message.length, name).toBeGreaterThan(10);
    }
    sock.send(good);
    const f = await sock.next();
    expect(f.type).toBe(FrameType.Adapter);
    expect(f.seq).toBe(7);
    sock.close();
    expect(await health()).toBe(200);
  });

  it('wrong and insecure parameters, foreign keys and unknown experts are refused before any session exists', async () => {
    const conn = await PrivateConnection.connect(url);
    await expect(conn.hello('nope', 'layers')).rejects.toMatchObject({ code: 'unknown_expert' });
    const adapter = await conn.hello('qv', 'layers');
    const sites = adapter.sites as SitePublic[];
    const base: PrivateParams = { protocol: 'two-round', placement: 'layers', expert: 'qv', floodBits: 40, ckks: { polyN: 8192, primeBits: [60, 60, 60] } };
    const session = await PrivateClientSession.create(base, sites, { backend: 'cpu' });
    const openWith = (params: unknown, pk: Uint8Array = session.ckks.serialize(session.publicKey)) =>
      conn.open(encodeFrame({ type: FrameType.Open, session: 0, site: 0, seq: 0, blobs: [jsonBlob({ params }), pk] }));
    await expect(openWith({ ...base, protocol: 'three-round' })).rejects.toMatchObject({ code: 'bad_params' });
    await expect(openWith({ ...base, ckks: { polyN: 1000, primeBits: [60] } })).rejects.toMatchObject({ code: 'bad_params' });
    await expect(openWith({ ...base, ckks: { polyN: 4096, primeBits: [60, 60, 60] } })).rejects.toMatchObject({ code: 'insecure_params' });
    await expect(openWith({ ...base, floodBits: 0 })).rejects.toMatchObject({ code: 'bad_params' });
    await expect(openWith({ ...base, floodBits: 0, ckks: { ...base.ckks, allowInsecure: true } })).rejects.toMatchObject({ code: 'insecure_refused' });
    // keys of another parameter set (other primes): the fingerprint check refuses them
    const other = Ckks.create({ polyN: 8192, primeBits: [50, 50, 50], backend: 'cpu' });
    const otherPk = other.generateKeys().publicKey;
    await expect(openWith(base, other.serialize(otherPk))).rejects.toMatchObject({ code: 'bad_keys' });
    // budget too small for the flooding: refused with the reason
    const two = Ckks.create({ polyN: 8192, primeBits: [60, 60], backend: 'cpu' });
    await expect(openWith({ ...base, floodBits: 110, ckks: { polyN: 8192, primeBits: [60, 60] } }, two.serialize(two.generateKeys().publicKey))).rejects.toThrow(/flooding|modulus/);
    two.dispose();
    expect(server.engine.stats().sessions).toBe(0);
    other.dispose();
    session.dispose();
    await conn.close();
  });

  it('rounds out of order, unknown sites, foreign sessions and expired sessions get errors; a good session beside them is unaffected', async () => {
    const good = await PrivateConnection.connect(url);
    const goodSession = await openSession(good);
    const adapter = experts.get('qv');
    const x = Float64Array.from({ length: 64 }, () => Math.random() * 2 - 1);
    const check = async () => {
      const { outputs } = await goodSession.runSite(0, x, good);
      const want = [...loraDeltaReference(adapter.pair(0, 'q_proj')!, adapter.scaling, x), ...loraDeltaReference(adapter.pair(0, 'v_proj')!, adapter.scaling, x)];
      let num = 0, den = 0;
      want.forEach((w, i) => ((num += (outputs[i] - w) ** 2), (den += w * w)));
      expect(Math.sqrt(num / den)).toBeLessThan(1e-3);
    };
    await check();

    const bad = await PrivateConnection.connect(url);
    const s = await openSession(bad);
    const ct = s.ckks.serialize(s.ckks.encryptSymmetric(s.ckks.encodeCoefficients(new Float64Array(64), { limbs: 3, scale: 1 }), (s as unknown as { secretKey: never }).secretKey, { compact: true }));
    const frameFor = (type: FrameType, session: number, site: number) => encodeFrame({ type, session, site, seq: 99, blobs: [ct] });
    expect(await bad.request(frameFor(FrameType.Round2, s.session, 0), 99).then((r) => errorOf(r.reply).code)).toBe('no_round1');
    expect(await bad.request(frameFor(FrameType.Round1, s.session, 9), 99).then((r) => errorOf(r.reply).code)).toBe('bad_site');
    expect(await bad.request(frameFor(FrameType.OneRound, s.session, 0), 99).then((r) => errorOf(r.reply).code)).toBe('bad_round');
    expect(await bad.request(frameFor(FrameType.Round1, goodSession.session, 0), 99).then((r) => errorOf(r.reply).code)).toBe('unknown_session');
    expect(await bad.request(encodeFrame({ type: FrameType.Round1, session: s.session, site: 0, seq: 99, blobs: [ct.subarray(0, 100)] }), 99).then((r) => errorOf(r.reply).code)).toMatch(/bad_ciphertext|bad_request/);
    expect(await bad.request(encodeFrame({ type: FrameType.Round1, session: s.session, site: 0, seq: 99, blobs: [ct, ct] }), 99).then((r) => errorOf(r.reply).code)).toBe('bad_frame');
    await check();
    // expiry: idle longer than idleMs (400 ms), then the handle is gone
    await new Promise((r) => setTimeout(r, 700));
    expect(await bad.request(frameFor(FrameType.Round1, s.session, 0), 99).then((r) => errorOf(r.reply).code)).toBe('unknown_session');
    s.dispose();
    await bad.close();
    // the good session expired too (it was idle); a new one works
    goodSession.dispose();
    const again = await openSession(good);
    const { outputs } = await again.runSite(0, x, good);
    expect(outputs.length).toBe(96);
    again.dispose();
    await good.close();
    expect(await health()).toBe(200);
  });

  it('bounds the sessions and frees them when their connection closes', async () => {
    const conns = await Promise.all([0, 1, 2, 3].map(() => PrivateConnection.connect(url)));
    const sessions = [];
    for (let i = 0; i < 3; i++) sessions.push(await openSession(conns[i]));
    await expect(openSession(conns[3])).rejects.toMatchObject({ code: 'too_many_sessions' });
    await conns[0].close();
    await new Promise((r) => setTimeout(r, 50));
    const fourth = await openSession(conns[3]);
    expect(server.engine.stats().sessions).toBe(3);
    for (const s of [...sessions, fourth]) s.dispose();
    for (const c of conns) await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(server.engine.stats().sessions).toBe(0);
  });
});

describe('who may connect to the private endpoint', () => {
  it('applies the Host, Origin and token guards, standalone and mounted in TensafeServer', async () => {
    const { FakeService } = await import('./server-fakes');
    const { startServer } = await import('../../src/server/server');
    const { PrivateEngine } = await import('../../src/server/private-engine');
    const { privateEndpoint } = await import('../../src/server/private-server');
    const token = 'a-test-token-of-enough-length';
    const guarded = await startPrivateServer({ experts, hiddenSize: 64, backend: 'cpu', token });
    const engine = new PrivateEngine({ experts, hiddenSize: 64, backend: 'cpu' });
    const full = await startServer({ service: new FakeService() as never, port: 0, token, endpoints: [privateEndpoint(engine)] });
    try {
      for (const base of [guarded.url, full.url]) {
        const tryOpen = (headers: Record<string, string>) =>
          PrivateConnection.connect(base, {}, headers).then(
            async (c) => {
              const a = await c.hello('qv', 'layers');
              await c.close();
              return (a.sites as unknown[]).length;
            },
            (e: Error) => e.message,
          );
        expect(await tryOpen({})).toMatch(/401/);
        expect(await tryOpen({ authorization: 'Bearer wrong-token-of-enough-length' })).toMatch(/401/);
        expect(await tryOpen({ authorization: `Bearer ${token}`, origin: 'http://evil.example' })).toMatch(/403/);
        expect(await tryOpen({ authorization: `Bearer ${token}`, host: 'attacker.example' })).toMatch(/40[03]/);
        expect(await tryOpen({ authorization: `Bearer ${token}` })).toBe(2);
      }
      await expect(startPrivateServer({ experts, hiddenSize: 64, backend: 'cpu', host: '0.0.0.0' })).rejects.toMatchObject({ code: 'ERR_TENSAFE_NO_TOKEN' });
    } finally {
      await guarded.server.close();
      await full.server.close();
      engine.dispose();
    }
  });
});
