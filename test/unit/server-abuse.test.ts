/**
 * The server under abuse (issue 15), over loopback with protocol doubles (server-fakes.ts):
 * who may connect (Host, Origin, token, bind), limits applied before the bytes are in, one
 * request at a time per split session, rate charges by work, honest generation slots with
 * queued frames and slow-client drops, and the minor items. Each test failed before the fix.
 * The same over the real engine: server-engine-abuse.test.ts; the bounded soak: server-soak.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { parseServeArgs, runServe } from '../../src/cli/serve';
import { tokenProtocols } from '../../src/server/guards';
import { decodeValues, encodeValues, packFrame } from '../../src/server/hidden-codec';
import { startServer, TensafeServer, type ServerOptions } from '../../src/server/server';
import { SplitClient } from '../../src/server/split-client';
import type { SplitHead } from '../../src/server/split-engine';
import { getJson, postJson, rawRequest, stallMeter, WsClient, type Stall } from './server-client';
import { FakeService, FakeSplit, NativeLikeSplit } from './server-fakes';

const TOKEN = 'test-token-0123456789abcdef';

/** `p`, or 'waited' after `ms` (a test of an answer that must come before a body is sent). */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'waited'> {
  return Promise.race([p, new Promise<'waited'>((r) => setTimeout(() => r('waited'), ms))]);
}
const started: TensafeServer[] = [];

async function serve(options: Partial<ServerOptions> = {}): Promise<{ server: TensafeServer; url: string; ws: string; port: number; service: FakeService }> {
  const service = (options.service as FakeService) ?? new FakeService(1);
  const s = await startServer({ service, split: new FakeSplit(), port: 0, rateLimit: { perMinute: 100_000, burst: 10_000 }, ...options });
  started.push(s.server);
  return { server: s.server, url: s.url, ws: s.url.replace('http', 'ws'), port: s.port, service };
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close(200)));
  vi.restoreAllMocks();
});

/** The event loop's stalls while `fn` runs (server-client.ts stallMeter). */
async function worstStall<T>(fn: () => Promise<T>): Promise<{ result: T; stall: Stall }> {
  const meter = stallMeter();
  let stall: Stall | undefined;
  try {
    const result = await fn();
    stall = await meter.stop();
    return { result, stall };
  } finally {
    if (!stall) await meter.stop();
  }
}

describe('who may connect (defect 3)', () => {
  it('refuses a DNS-rebinding Host on HTTP and WebSocket upgrades; accepts loopback names, IP literals and configured names', async () => {
    const s = await serve({ allowedHosts: ['tensafe.test'] });
    const calls = s.service.calls.length;
    const evil = await rawRequest(`${s.url}/api/v1/chat/compare`, { method: 'POST', headers: { Host: `rebind.attacker.example:${s.port}`, 'Content-Type': 'text/plain' }, body: JSON.stringify({ query: 'q', max_tokens: 2 }) }).response;
    expect(evil.status).toBe(403);
    expect(evil.body).toMatchObject({ code: 'bad_host', field: 'Host' });
    expect(s.service.calls.length).toBe(calls); // nothing started
    expect((await rawRequest(`${s.url}/health`, { headers: { Host: `rebind.attacker.example:${s.port}` } }).response).status).toBe(403);
    for (const host of [`localhost:${s.port}`, `127.0.0.1:${s.port}`, `[::1]:${s.port}`, `app.localhost:${s.port}`, `tensafe.test:${s.port}`, `10.1.2.3:${s.port}`, 'localhost']) {
      expect((await rawRequest(`${s.url}/health`, { headers: { Host: host } }).response).status, host).toBe(200);
    }
    await expect(WsClient.open(`${s.ws}/api/v1/chat/stream`, { headers: { Host: `rebind.attacker.example:${s.port}` } })).rejects.toMatchObject({ status: 403 });
    const ok = await WsClient.open(`${s.ws}/api/v1/chat/stream`, { headers: { Host: `localhost:${s.port}` } });
    ok.send({ type: 'ping' });
    expect((await ok.next()).type).toBe('pong');
    await ok.close();
  });

  it("refuses other sites' pages: a cross-origin text/plain POST starts nothing; the server's own pages, configured origins and non-browser clients pass", async () => {
    const s = await serve({ allowedOrigins: ['https://app.example'] });
    const body = JSON.stringify({ query: 'q', max_tokens: 2 });
    const calls = s.service.calls.length;
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${s.port + 1}`]) {
      const r = await rawRequest(`${s.url}/api/v1/chat/compare`, { method: 'POST', headers: { Origin: origin, 'Content-Type': 'text/plain' }, body }).response;
      expect(r.status, origin).toBe(403);
      expect(r.body.code).toBe('bad_origin');
    }
    // A cross-site GET carries no Origin (an <img> or no-cors fetch); Sec-Fetch-Site gives it away.
    expect((await rawRequest(`${s.url}/api/v1/split/selftest?max_tokens=2`, { headers: { 'Sec-Fetch-Site': 'cross-site' } }).response).status).toBe(403);
    // The page itself may be opened from a link on another site (it holds no data, runs nothing).
    expect((await rawRequest(`${s.url}/`, { headers: { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' } }).response).status).toBe(200);
    expect(s.service.calls.length).toBe(calls);
    for (const origin of [`http://127.0.0.1:${s.port}`, 'https://app.example']) {
      expect((await rawRequest(`${s.url}/api/v1/chat/compare`, { method: 'POST', headers: { Origin: origin }, body }).response).status, origin).toBe(200);
    }
    expect((await rawRequest(`${s.url}/api/v1/chat/compare`, { method: 'POST', headers: { 'Sec-Fetch-Site': 'same-origin' }, body }).response).status).toBe(200);
    expect((await postJson(`${s.url}/api/v1/chat/compare`, body)).status).toBe(200); // no Origin: not a browser
    await expect(WsClient.open(`${s.ws}/api/v1/chat/stream`, { origin: 'http://evil.example' })).rejects.toMatchObject({ status: 403 });
    const same = await WsClient.open(`${s.ws}/api/v1/chat/stream`, { origin: `http://127.0.0.1:${s.port}` });
    await same.close();
  });

  it('with a token: 401 without it or with a wrong one; the bearer header and the WebSocket subprotocol pass; /health and the page need none', async () => {
    const s = await serve({ token: TOKEN });
    const body = JSON.stringify({ query: 'q', max_tokens: 2 });
    const none = await rawRequest(`${s.url}/api/v1/chat/compare`, { method: 'POST', body }).response;
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.body.code).toBe('unauthorized');
    expect((await rawRequest(`${s.url}/api/v1/chat/compare`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}x` }, body }).response).status).toBe(401);
    expect((await rawRequest(`${s.url}/api/v1/metrics`).response).status).toBe(401);
    expect((await rawRequest(`${s.url}/api/v1/chat/compare`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body }).response).status).toBe(200);
    expect((await rawRequest(`${s.url}/health`).response).status).toBe(200);
    expect((await rawRequest(`${s.url}/`).response).status).toBe(200);
    await expect(WsClient.open(`${s.ws}/api/v1/chat/stream`)).rejects.toMatchObject({ status: 401 });
    await expect(WsClient.open(`${s.ws}/api/v1/chat/stream`, { protocols: tokenProtocols(`${TOKEN}x`) })).rejects.toMatchObject({ status: 401 });
    const byHeader = await WsClient.open(`${s.ws}/api/v1/chat/stream`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    await byHeader.close();
    // A browser's WebSocket offers "tensafe" + the token subprotocol; the server selects "tensafe".
    const byProtocol = await WsClient.open(`${s.ws}/api/v1/chat/stream`, { protocols: tokenProtocols(TOKEN) });
    expect(byProtocol.ws.protocol).toBe('tensafe');
    byProtocol.send({ query: 'q', max_tokens: 2 });
    expect((await byProtocol.until(['done', 'error'])).at(-1)!.type).toBe('done');
    await byProtocol.close();
    await expect(SplitClient.connect(s.url)).rejects.toThrow(/401/);
    const client = await SplitClient.connect(s.url, { token: TOKEN });
    expect(await client.ping()).toBeGreaterThan(0);
    await client.close();
  });

  it('listens on 127.0.0.1 by default and refuses a non-loopback host without a token', async () => {
    const s = await serve();
    expect(new URL(s.url).hostname).toBe('127.0.0.1');
    const open = new TensafeServer({ service: new FakeService(0), host: '0.0.0.0', port: 0 });
    await expect(open.listen()).rejects.toMatchObject({ code: 'ERR_TENSAFE_NO_TOKEN', message: expect.stringMatching(/0\.0\.0\.0.*without a token/) });
    await open.close(0);
    const guarded = new TensafeServer({ service: new FakeService(0), host: '0.0.0.0', port: 0, token: TOKEN });
    started.push(guarded);
    const { port } = await guarded.listen();
    expect((await rawRequest(`http://127.0.0.1:${port}/api/v1/metrics`).response).status).toBe(401);
    expect(() => new TensafeServer({ service: new FakeService(0), token: 'short' })).toThrow(/at least 16 characters/);
  });

  it('tensafe serve reads --token, --allow-host and --allow-origin, and refuses a public host without a token', async () => {
    expect(parseServeArgs(['--token', TOKEN, '--allow-host', 'a.test,b.test', '--allow-host', 'c.test', '--allow-origin', 'https://app.example'])).toMatchObject({
      token: TOKEN,
      allowHosts: ['a.test', 'b.test', 'c.test'],
      allowOrigins: ['https://app.example'],
    });
    expect(() => parseServeArgs(['--token', 'abc'])).toThrow(/--token must be at least 16 characters/);
    // Refused before any engine loads.
    const saved = process.env.TENSAFE_TOKEN;
    delete process.env.TENSAFE_TOKEN;
    try {
      await expect(runServe(['--host', '0.0.0.0', '--port', '0'])).rejects.toThrow(/--host 0\.0\.0\.0 is not a loopback address: set TENSAFE_TOKEN/);
    } finally {
      if (saved !== undefined) process.env.TENSAFE_TOKEN = saved;
    }
    expect(() => parseServeArgs(['--allow-origin', 'https://app.example/path'])).toThrow(/scheme:\/\/host\[:port\]/);
  });
});

/** A split engine whose frames are large (d = 1024, context 512): its endpoint's frame limit is ~2.8 MB. */
class WideSplit extends NativeLikeSplit {
  constructor(msPerPosition = 0.05) {
    super(msPerPosition, 512, 1024);
  }
}

describe('limits before bytes (defect 5)', () => {
  it('chat/stream refuses a frame beyond its own limit before buffering it (1009) while split/stream takes its full-context frames', async () => {
    const s = await serve({ split: new WideSplit() });
    const chat = await WsClient.open(`${s.ws}/api/v1/chat/stream`);
    chat.send({ query: 'x'.repeat(10_000), max_tokens: 1, pad: 'y'.repeat(60_000) }); // the largest sensible request passes
    expect((await chat.until(['done', 'error'])).at(-1)!.type).toBe('done');
    chat.send({ query: 'q', pad: 'x'.repeat(1_500_000) });
    await expect(chat.next()).rejects.toThrow(/socket closed \(1009\)/);
    const split = await WsClient.open(`${s.ws}/api/v1/split/stream`);
    const rows = new Float32Array(300 * 1024).fill(0.01);
    split.send({ type: 'forward', hidden_states_b64: encodeValues(rows, 'float32').toString('base64'), seq_len: 300, hidden_dim: 1024, use_he: false }); // 1.6 MB
    expect((await split.next()).type).toBe('result');
    await split.close();
  });

  it('an oversized chunked body gets its 413 answer, not a reset', async () => {
    const s = await serve();
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 48) c.enqueue(chunk); // 3 MiB against the 1 MiB limit
        else c.close();
      },
    });
    const r = await fetch(`${s.url}/api/v1/chat/compare`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(r.status).toBe(413);
    expect(await r.json()).toMatchObject({ code: 'too_large' });
    expect((await getJson(`${s.url}/health`)).status).toBe(200);
  });

  it('a client that aborts its upload is neither logged as a stack nor counted as a server error', async () => {
    const s = await serve();
    const logged = vi.spyOn(console, 'error');
    const { request, response } = rawRequest(`${s.url}/api/v1/split/forward`, { method: 'POST', headers: { 'Content-Length': 500_000, 'Content-Type': 'application/json' }, hold: true, partial: Buffer.alloc(100_000, 0x20) });
    response.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    request.destroy();
    let route: any;
    for (let i = 0; i < 100 && !route; i++) {
      await new Promise((r) => setTimeout(r, 20));
      route = (await getJson(`${s.url}/api/v1/metrics`)).body.routes['POST /api/v1/split/forward'];
    }
    expect(route).toMatchObject({ requests: 1, errors: 0, aborted: 1 });
    expect(logged).not.toHaveBeenCalled();
  });

  it('large uploads reserve room first: beyond the upload budget a new one is refused (503) before its body is read', async () => {
    const s = await serve({ split: new WideSplit(), uploadBudgetBytes: 1 << 20 });
    const first = rawRequest(`${s.url}/api/v1/split/forward`, { method: 'POST', headers: { 'Content-Length': 900_000, 'Content-Type': 'application/json' }, hold: true, partial: Buffer.from('{"token_ids":[1]') });
    first.response.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 50));
    const held = rawRequest(`${s.url}/api/v1/split/forward`, { method: 'POST', headers: { 'Content-Length': 900_000, 'Content-Type': 'application/json' }, hold: true });
    held.response.catch(() => undefined);
    const second = await within(held.response, 3000);
    held.request.destroy();
    first.request.destroy();
    expect(second).not.toBe('waited');
    if (second === 'waited') return;
    expect(second.status).toBe(503);
    expect(second.body.code).toBe('busy');
    expect(second.headers['retry-after']).toBe('1');
    await new Promise((r) => setTimeout(r, 50));
    expect(s.server.stats().uploads.used).toBe(0); // released by the aborted upload
  });

  it('a client whose rate bucket is empty is refused before its large body is read', async () => {
    const s = await serve({ split: new WideSplit(), rateLimit: { perMinute: 60, burst: 1 } });
    expect((await postJson(`${s.url}/api/v1/split/forward`, { token_ids: [1] })).status).toBe(200);
    const held = rawRequest(`${s.url}/api/v1/split/forward`, { method: 'POST', headers: { 'Content-Length': 2_000_000, 'Content-Type': 'application/json' }, hold: true });
    held.response.catch(() => undefined);
    const r = await within(held.response, 3000);
    held.request.destroy();
    expect(r).not.toBe('waited');
    expect((r as { status: number }).status).toBe(429);
  });

  it('a flooding split connection is paused: its unread frames wait in the client, not in the server, and all are answered in order', async () => {
    const split = new WideSplit(0.2); // 256 rows: about 50 ms a forward
    const s = await serve({ split });
    const ws = new WebSocket(`${s.ws}/api/v1/split/stream`);
    await new Promise((r) => ws.once('open', r));
    const answers: number[] = [];
    ws.on('message', (data, binary) => {
      if (binary) answers.push(Number((JSON.parse(Buffer.from(data as Buffer).subarray(8, 8 + Buffer.from(data as Buffer).readUInt32LE(4)).toString()) as { cached_seq_len: number }).cached_seq_len));
    });
    const rows = encodeValues(new Float32Array(256 * 1024).fill(0.01), 'float32'); // 1 MiB a frame
    for (let i = 0; i < 32; i++) ws.send(packFrame({ seq_len: 256, session_id: `f${i}`, use_he: false }, rows), { binary: true });
    await new Promise((r) => setTimeout(r, 600));
    // 32 MiB sent; the server reads at most its pending bound ahead: most of it is still here.
    expect(ws.bufferedAmount).toBeGreaterThan(12 << 20);
    const t0 = Date.now();
    while (answers.length < 32 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
    expect(answers).toEqual(Array(32).fill(0));
    ws.close();
  });
});

describe('split sessions under concurrency (defects 1 and 2)', () => {
  it('concurrent forwards on one HTTP session run one at a time: the main thread never waits for the engine, cached_seq_len stays true', async () => {
    const split = new NativeLikeSplit(1); // 1 ms per position, off the main thread
    const s = await serve({ split });
    const fwd = (body: Record<string, unknown>) => postJson(`${s.url}/api/v1/split/forward`, { session_id: 'x', ...body });
    expect((await fwd({ token_ids: [1] })).status).toBe(200);
    const { result, stall } = await worstStall(async () => {
      const long = fwd({ token_ids: Array.from({ length: 2000 }, (_, i) => i % 50) }); // about 2 s
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      const health = await getJson(`${s.url}/health`);
      const healthMs = performance.now() - t0;
      const short = await fwd({ token_ids: [3] }); // starts the sequence over, after the long one
      return { long: await long, short, health, healthMs };
    });
    expect(result.health.status).toBe(200);
    expect(result.healthMs).toBeLessThan(500);
    expect(stall.mainOnlyMs).toBeLessThan(500); // was the long forward's remaining time (about 1.8 s)
    expect(split.overlaps).toBe(0);
    expect(result.long.status).toBe(200);
    expect(result.short.body.cached_seq_len).toBe(0);
    // The session now holds exactly [3]: an incremental [4] sees one position and sums [3, 4].
    const next = await fwd({ token_ids: [4], incremental: true });
    expect(next.body.cached_seq_len).toBe(1);
    const h = decodeValues(Buffer.from(next.body.pre_activations_b64, 'base64'), 'float32', 8, 'h');
    expect(h[0]).toBeCloseTo(0.07, 5);
    expect(h[7]).toBeCloseTo(0.07 + 2, 5);
  });

  it('beyond its waiting bound a session refuses (409 session_busy); a waiter whose client leaves is dropped', async () => {
    const split = new NativeLikeSplit(2);
    const s = await serve({ split, sessions: { maxWaiting: 1 } });
    const fwd = (ids: number[]) => postJson(`${s.url}/api/v1/split/forward`, { session_id: 'q', token_ids: ids, incremental: true });
    const a = fwd(Array(200).fill(1)); // 400 ms
    await new Promise((r) => setTimeout(r, 50));
    const b = fwd([2]); // waits its turn
    await new Promise((r) => setTimeout(r, 50));
    const c = await fwd([3]);
    expect(c.status).toBe(409);
    expect(c.body).toMatchObject({ code: 'session_busy', field: 'session_id' });
    expect([(await a).status, (await b).status]).toEqual([200, 200]);
    expect((await b).body.cached_seq_len).toBe(200);
    // A waiter that goes away leaves the line: the next request runs as soon as the first is done.
    const d = fwd(Array(100).fill(1));
    await new Promise((r) => setTimeout(r, 30));
    const gone = rawRequest(`${s.url}/api/v1/split/forward`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ session_id: 'q', token_ids: [5], incremental: true }) });
    gone.response.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 30));
    gone.request.destroy();
    expect((await d).status).toBe(200);
    const e = await fwd([6]);
    expect(e.body.cached_seq_len).toBe(301); // 201 + 100: the abandoned [5] never ran
    expect(split.overlaps).toBe(0);
  });

  it('concurrent forwards that would overflow a session get context_full, not a raw engine error', async () => {
    const split = new NativeLikeSplit(2, 64);
    const s = await serve({ split });
    const fwd = (body: Record<string, unknown>) => postJson(`${s.url}/api/v1/split/forward`, { session_id: 'c', ...body });
    const [a, b] = await Promise.all([fwd({ token_ids: Array(40).fill(1) }), (async () => {
      await new Promise((r) => setTimeout(r, 20));
      return fwd({ token_ids: Array(40).fill(2), incremental: true });
    })()]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(400);
    expect(b.body).toMatchObject({ code: 'context_full', field: 'token_ids' });
    expect(b.body.error).toMatch(/holds 40 positions; 40 more exceed the context of 64/);
    expect((await fwd({ token_ids: [1], incremental: true })).body.cached_seq_len).toBe(40);
  });

  it('a session whose engine queues its reset (the context engine) starts over without being refused as full', async () => {
    const split = new NativeLikeSplit(0, 64);
    split.queuedReset = true;
    const s = await serve({ split });
    const fwd = (body: Record<string, unknown>) => postJson(`${s.url}/api/v1/split/forward`, { session_id: 'z', ...body });
    expect((await fwd({ token_ids: Array(60).fill(1) })).status).toBe(200);
    const again = await fwd({ token_ids: Array(10).fill(2) }); // a new sequence: 10 of 64
    expect(again.status).toBe(200);
    expect(again.body.cached_seq_len).toBe(0);
    expect((await fwd({ token_ids: [3], incremental: true })).body.cached_seq_len).toBe(10);
  });

  it('replayed positions are shown to the client and charged to its rate limit', async () => {
    const split = new NativeLikeSplit(0);
    split.replayedPositions = 1000; // an engine that rebuilt a lost cache of 1000 positions
    const s = await serve({ split, rateLimit: { perMinute: 60, burst: 10 } });
    const c = await WsClient.open(`${s.ws}/api/v1/split/stream`);
    const statuses: string[] = [];
    c.send({ token_ids: [1], session_id: 'r' });
    const first = await c.next();
    expect(first).toMatchObject({ type: 'result', replayed_positions: 1000 });
    // Each forward: 0 (one incremental token) + 3 for the 1000 replayed positions; 10 - 1 - 3 = 6 left.
    for (let i = 0; i < 4; i++) {
      c.send({ token_ids: [2], session_id: 'r', incremental: true });
      statuses.push((await c.next()).type);
    }
    c.send({ token_ids: [1], session_id: 'another' });
    const refused = await c.next();
    expect(statuses).toEqual(['result', 'result', 'result', 'result']); // incremental steps are not refused up front
    expect(refused).toMatchObject({ type: 'error', code: 'rate_limited' });
    await c.close();
  });

  it('a long "incremental" forward costs what it computes, not nothing', async () => {
    const s = await serve({ split: new NativeLikeSplit(0, 2048), rateLimit: { perMinute: 60, burst: 3 } });
    expect((await postJson(`${s.url}/api/v1/split/forward`, { session_id: 'l', token_ids: [1] })).status).toBe(200);
    const big = await postJson(`${s.url}/api/v1/split/forward`, { session_id: 'l', token_ids: Array(1000).fill(1), incremental: true });
    expect(big.status).toBe(429); // 3 requests' worth (999 positions beyond the first), 2 left
    expect(big.body.error).toMatch(/this request costs 3/);
    expect((await postJson(`${s.url}/api/v1/split/forward`, { session_id: 'l', token_ids: [1], incremental: true })).status).toBe(200); // a step is free
  });

  it('under a limit smaller than a request costs, the request still runs and its cost is owed', async () => {
    const s = await serve({ split: new NativeLikeSplit(0, 2048), rateLimit: { perMinute: 60, burst: 1 } });
    const big = await postJson(`${s.url}/api/v1/split/forward`, { session_id: 'm', token_ids: Array(1000).fill(1) }); // costs 4, the bucket holds 1
    expect(big.status).toBe(200);
    const next = await postJson(`${s.url}/api/v1/split/forward`, { session_id: 'n', token_ids: [1] });
    expect(next.status).toBe(429); // 3 owed, debt bounded by the bucket: 2 s to wait
    expect(Number((next.body.error as string).match(/retry in (\d+) s/)![1])).toBe(2);
  });

  it('a session reclaimed by the cap or the idle timeout is visible: continuing it incrementally over WebSocket gets session_expired', async () => {
    const s = await serve({ sessions: { max: 2, idleMs: 150, sweepMs: 20 } });
    const c = await WsClient.open(`${s.ws}/api/v1/split/stream`);
    for (const id of ['a', 'b', 'c']) {
      c.send({ token_ids: [1], session_id: id });
      expect((await c.next()).type).toBe('result');
    }
    c.send({ token_ids: [1], session_id: 'a', incremental: true }); // evicted by the cap
    expect(await c.next()).toMatchObject({ type: 'error', code: 'session_expired', field: 'session_id' });
    await new Promise((r) => setTimeout(r, 300));
    c.send({ token_ids: [1], session_id: 'c', incremental: true }); // expired while idle
    expect(await c.next()).toMatchObject({ type: 'error', code: 'session_expired' });
    await c.close();
  });
});

describe('generation slots (defect 4)', () => {
  it('a service that runs one generation at a time gets one slot: waiting clients are told their place, then stream', async () => {
    const service = new FakeService(3);
    service.concurrency = 1;
    const s = await serve({ service, maxConcurrent: 2 });
    expect((await getJson(`${s.url}/health`)).body).toMatchObject({ generation_slots: 1 });
    const clients = await Promise.all([0, 1, 2].map(() => WsClient.open(`${s.ws}/api/v1/chat/stream`)));
    for (const [i, c] of clients.entries()) {
      c.send({ query: `q${i}`, max_tokens: 10 });
      await new Promise((r) => setTimeout(r, 10));
    }
    const frames = await Promise.all(clients.map((c) => c.until(['done', 'error'])));
    const types = frames.map((f) => f.map((m) => (m.type === 'queued' ? `queued:${m.position}` : m.type)).filter((t) => t !== 'token'));
    expect(types).toEqual([
      ['input_info', 'done'],
      ['queued:1', 'input_info', 'done'],
      ['queued:2', 'queued:1', 'input_info', 'done'],
    ]);
    for (const f of frames) expect(f.filter((m) => m.type === 'token')).toHaveLength(10);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('a client that stops reading is dropped after the bounded time and its slot goes to the next client', async () => {
    const service = new FakeService(1);
    service.concurrency = 1;
    const big = 'x'.repeat(16 * 1024);
    const inner = service.generate.bind(service);
    service.generate = async function* (p, o, sig) {
      const gen = inner(p, o, sig);
      for (;;) {
        const r = await gen.next();
        if (r.done) return r.value;
        yield { ...r.value, text: big }; // 16 KiB tokens: a non-reader's buffers fill fast
      }
    };
    const s = await serve({ service, flow: { maxBufferedBytes: 64 * 1024, slowClientMs: 300 } });
    const stuck = await WsClient.open(`${s.ws}/api/v1/chat/stream`);
    stuck.send({ query: 'q', max_tokens: 2048 });
    await stuck.nextRaw(); // input_info
    stuck.ws.pause(); // stops reading
    await new Promise((r) => setTimeout(r, 50));
    const next = await WsClient.open(`${s.ws}/api/v1/chat/stream`);
    next.send({ query: 'q', max_tokens: 3 });
    const t0 = Date.now();
    const frames = await next.until(['done', 'error'], 20_000);
    expect(frames[0]).toMatchObject({ type: 'queued', position: 1 });
    expect(frames.at(-1)!.type).toBe('done');
    expect(Date.now() - t0).toBeLessThan(10_000);
    stuck.ws.resume();
    const t1 = Date.now();
    while (!stuck.closed && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(stuck.closed).toBe(true);
    expect(s.server.stats().gate).toMatchObject({ running: 0, queued: 0 });
    await next.close();
  });
});

describe('minor items (defect 6)', () => {
  it('selftest head=cuda without a usable GPU answers 503 naming the head, not a 500 with the driver text', async () => {
    class NoCudaSplit extends FakeSplit {
      async createHead(backend?: string): Promise<SplitHead> {
        if (backend === 'cuda') throw Object.assign(new Error("backend 'cuda' is not available: no usable CUDA device"), { code: 'ERR_TENSAFE_BACKEND' });
        return super.createHead();
      }
    }
    const s = await serve({ split: new NoCudaSplit() });
    const r = await getJson(`${s.url}/api/v1/split/selftest?max_tokens=2&head=cuda`);
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ code: 'head_unavailable', field: 'head' });
    expect(r.body.error).toMatch(/cannot run on 'cuda' here \(backend 'cuda' is not available: no usable CUDA device\); use head=cpu/);
    expect((await getJson(`${s.url}/api/v1/split/selftest?max_tokens=2&head=cpu`)).status).toBe(200);
  });

  it('selftest numbers are decimal integers: 0x10, 1e1, " 8" and 8.0 are refused, 8 is taken', async () => {
    const s = await serve();
    for (const v of ['0x10', '1e1', '%208', '8.0', '-1']) {
      const r = await getJson(`${s.url}/api/v1/split/selftest?max_tokens=${v}`);
      expect(r.status, v).toBe(400);
      expect(r.body).toMatchObject({ field: 'max_tokens' });
    }
    const ok = await getJson(`${s.url}/api/v1/split/selftest?max_tokens=8`);
    expect(ok.status).toBe(200);
    expect(ok.body.total_tokens).toBeLessThanOrEqual(8);
  });

  it('a non-UTF-8 text frame gets an error frame and the connection stays open, on both endpoints', async () => {
    const s = await serve();
    for (const path of ['/api/v1/chat/stream', '/api/v1/split/stream']) {
      const c = await WsClient.open(`${s.ws}${path}`);
      c.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
      expect(await c.next(), path).toMatchObject({ type: 'error', code: 'invalid_utf8' });
      c.send({ type: 'ping' });
      expect((await c.next()).type).toBe('pong');
      await c.close();
    }
  });

  it('a shutdown past its grace period sends cancelled before closing the stream with 1001', async () => {
    const s = await serve({ service: new FakeService(20) });
    const c = await WsClient.open(`${s.ws}/api/v1/chat/stream`);
    c.send({ query: 'q', max_tokens: 2000 });
    await c.next(); // input_info
    await s.server.close(100);
    const frames: any[] = [];
    for (;;) {
      try {
        frames.push(await c.next(1000));
      } catch {
        break;
      }
    }
    expect(frames.at(-1)).toMatchObject({ type: 'cancelled', reason: 'server shutting down' });
    expect(c.closeCode).toBe(1001);
  });

  it("HTTP binary forwards honour the header's type: a config frame is refused, not run as a forward", async () => {
    const split = new NativeLikeSplit(0);
    const s = await serve({ split });
    const r = await fetch(`${s.url}/api/v1/split/forward`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: packFrame({ type: 'config', seq_len: 1 }, encodeValues(Float32Array.from(Array(8).fill(1)), 'float32')),
    });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ code: 'unknown_type', field: 'type' });
    expect(split.liveSessions).toBe(0); // nothing ran
  });

  it("chat frames carry each token's HE operation counts (he_operations, he_rotations, ciphertext_bytes, he_counts)", async () => {
    const service = new FakeService(1);
    const inner = service.generate.bind(service);
    const ops = { encryptions: 1, products: 2, decryptions: 2, rotations: 0, ciphertextBytes: 524_288 };
    service.generate = async function* (p, o, sig) {
      const gen = inner(p, o, sig);
      for (;;) {
        const r = await gen.next();
        if (r.done) return r.value;
        yield o?.mode === 'he-lora' ? { ...r.value, he: ops } : r.value;
      }
    };
    const s = await serve({ service });
    const c = await WsClient.open(`${s.ws}/api/v1/chat/stream`);
    c.send({ query: 'q', max_tokens: 3 });
    const frames = await c.until(['done']);
    for (const t of frames.filter((f) => f.type === 'token')) {
      expect(t.metrics).toMatchObject({ he_operations: 5, he_rotations: 0, ciphertext_bytes: 524_288, he_counts: { encryptions: 1, products: 2, decryptions: 2, rotations: 0, ciphertext_bytes: 524_288 } });
    }
    expect(frames.at(-1)!.aggregate.total_he_operations).toBe(15);
    c.send({ query: 'q', max_tokens: 2, use_he: false });
    const base = await c.until(['done']);
    expect(base.find((f) => f.type === 'token')!.metrics.he_operations).toBeNull(); // nothing encrypted: not counted
    const cmp = await postJson(`${s.url}/api/v1/chat/compare`, { query: 'q', max_tokens: 4 });
    expect(cmp.body.adapted).toMatchObject({ he_operations: 20, rotations: 0 });
    await c.close();
  });
});
