/**
 * The bounded soak of issue 15: 32 clients against the real engine on the CPU ('tiny' preset),
 * each running a fixed script of 6 interactions drawn from 8 kinds of valid and invalid traffic
 * (192 in all: chat streams with HE and without, split generations with a local head, HTTP split
 * forwards racing on one session, cancels, malformed and non-UTF-8 frames, oversized frames and
 * bodies, refused Hosts and Origins, aborted uploads). Asserted, each with its bound:
 *  - no event-loop stall above STALL_MS (a 10 ms timer's largest gap while a sibling thread kept
 *    ticking, over the whole run; STALL_WALL_MS in wall time);
 *  - no lost or duplicated tokens: every stream's indices run 0..n-1 and its ids are the
 *    in-process pipeline's (greedy), every split generation's ids too;
 *  - /health answers every probe (every 100 ms) with 200 within HEALTH_MS;
 *  - memory (heap + external + array buffers after GC) back within MEMORY_MARGIN of its baseline
 *    once the clients are gone and the HTTP sessions expired;
 *  - the server idle afterwards (no socket, slot, session or upload left).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelHead } from '../../src/server/model-split-engine';
import { SplitClient } from '../../src/server/split-client';
import { getJson, postJson, rawRequest, stallMeter, WsClient, type Stall } from './server-client';
import { openTinyServer, type TinyServer } from './server-page-service';

const CLIENTS = 32;
const STEPS = 6;
const KINDS = 8;
/**
 * Largest event-loop stall allowed: of the main thread itself (a sibling thread kept ticking
 * meanwhile: the engine's work or a wait blocked the loop) STALL_MS, and in wall time, the
 * whole process waiting for a CPU included (a shared 2-core machine), STALL_WALL_MS. The issue's
 * freeze was 20 s; a request must never wait for the engine on the main thread.
 */
const STALL_MS = 500;
const STALL_WALL_MS = 3000;
/** Slowest /health answer allowed (a fresh connection each probe; the issue saw 19.7 s). */
const HEALTH_MS = 1500;
const MEMORY_MARGIN = 16 * 1024 * 1024;
const QUERY = 'What is a savings account?';
const TOKENS = 6;

let tiny: TinyServer;
let head: ModelHead;
const ref: Record<'he' | 'base' | 'long', number[]> = { he: [], base: [], long: [] };

beforeAll(async () => {
  // Room for every client's sessions (the cap's eviction is tested on its own); HTTP sessions
  // expire 1.5 s after their last use, so the memory check sees them freed.
  tiny = await openTinyServer({ server: { sessions: { max: 128, idleMs: 1500, sweepMs: 100 } } });
  const run = (mode: 'he-lora' | 'base', maxTokens: number) => tiny.pipeline.run(QUERY, { mode, expert: 'banking_expert', maxTokens, temperature: 0 });
  ref.he = (await run('he-lora', TOKENS)).events.map((e) => e.id);
  ref.base = (await run('base', TOKENS)).events.map((e) => e.id);
  ref.long = (await run('he-lora', 64)).events.map((e) => e.id);
  head = await ModelHead.open('tiny', { backend: 'cpu', seed: 0 });
}, 120_000);

afterAll(async () => {
  head?.dispose();
  await tiny?.close();
});

/** Heap + external + array buffers after a few GCs. */
async function memory(): Promise<number> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

function expectStream(frames: Array<Record<string, any>>, want: number[], end: 'done' | 'cancelled'): void {
  expect(frames.at(-1)!.type).toBe(end);
  const tokens = frames.filter((f) => f.type === 'token');
  expect(tokens.map((t) => t.index)).toEqual(tokens.map((_, i) => i)); // none lost, none twice
  expect(tokens.map((t) => t.metrics.token_id)).toEqual(want.slice(0, tokens.length));
  if (end === 'done') expect(tokens.length).toBe(want.length);
}

/** One scripted interaction of kind `kind` for client `c`. */
async function interaction(kind: number, c: number, s: number): Promise<void> {
  const { base, wsBase } = tiny;
  const port = new URL(base).port;
  switch (kind) {
    case 0: {
      // A chat stream, with HE or without (the pipeline runs one at a time: most are queued).
      const ws = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
      const he = (c + s) % 2 === 0;
      ws.send({ query: QUERY, max_tokens: TOKENS, temperature: 0, expert: 'banking_expert', use_he: he });
      expectStream(await ws.until(['done', 'error'], 60_000), he ? ref.he : ref.base, 'done');
      await ws.close();
      return;
    }
    case 1: {
      // A split generation: local head, remote decoder + HE, binary or JSON frames.
      const client = await SplitClient.connect(base, { binary: c % 2 === 0 });
      const promptIds = tiny.engines.split!.tokenize(tiny.engines.split!.prompt(QUERY));
      const ids: number[] = [];
      const gen = client.generate(head, promptIds, { maxTokens: TOKENS, expert: 'banking_expert', stop: tiny.engines.split!.stopTokens() });
      for (let r = await gen.next(); !r.done; r = await gen.next()) ids.push(r.value.id);
      expect(ids).toEqual(ref.he);
      await client.close();
      return;
    }
    case 2: {
      // Junk on the split socket: each gets an error frame, the socket stays open.
      const ws = await WsClient.open(`${wsBase}/api/v1/split/stream`);
      ws.send('{"type": "forward", ');
      ws.send({ type: 'forward', hidden_states_b64: '!!!!', seq_len: 1 });
      ws.send({ type: 'teleport' });
      ws.ws.send(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });
      ws.sendBinary(Buffer.from('not a frame'));
      ws.send({ type: 'ping' });
      const frames = await ws.until(['pong'], 30_000);
      expect(frames.map((f) => f.type)).toEqual(['error', 'error', 'error', 'error', 'error', 'pong']);
      expect(frames[3].code).toBe('invalid_utf8');
      await ws.close();
      return;
    }
    case 3: {
      // Refused HTTP: another site, a rebinding Host, a wrong method, malformed JSON, a chunked body too large.
      const cross = await rawRequest(`${base}/api/v1/chat/compare`, { method: 'POST', headers: { Origin: 'http://evil.example', 'Content-Type': 'text/plain' }, body: '{"query":"q"}' }).response;
      expect(cross.status).toBe(403);
      expect((await rawRequest(`${base}/api/v1/split/config`, { headers: { Host: `evil.example:${port}` } }).response).status).toBe(403);
      expect((await getJson(`${base}/api/v1/chat/compare`)).status).toBe(405);
      expect((await postJson(`${base}/api/v1/split/tokenize`, '{"text":')).status).toBe(400);
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      let n = 0;
      const body = new ReadableStream<Uint8Array>({ pull: (ctl) => (n++ < 20 ? ctl.enqueue(chunk) : ctl.close()) });
      const big = await fetch(`${base}/api/v1/split/tokenize`, { method: 'POST', body, duplex: 'half' } as RequestInit);
      expect(big.status).toBe(413);
      await big.text();
      return;
    }
    case 4: {
      // A chat frame beyond the endpoint's limit: closed (1009) before it is buffered; a new socket works.
      const ws = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
      ws.send({ query: 'q', pad: 'x'.repeat(200_000) });
      await expect(ws.next(30_000)).rejects.toThrow(/socket closed \(1009\)/);
      const again = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
      again.send({ type: 'ping' });
      expect((await again.next(30_000)).type).toBe('pong');
      await again.close();
      return;
    }
    case 5: {
      // Two HTTP forwards racing on one session, then a third: the session's length stays true.
      const sid = `race-${c}-${s}`;
      const fwd = (ids: number[], incremental: boolean) => postJson(`${base}/api/v1/split/forward`, { session_id: sid, token_ids: ids, incremental, use_he: false });
      const [a, b] = await Promise.all([fwd([1, 2, 3], false), fwd([4], true)]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const aFirst = b.body.cached_seq_len === 3;
      if (!aFirst) expect(b.body.cached_seq_len).toBe(0); // b created the session, then a restarted it
      const after = await fwd([5], true);
      expect(after.body.cached_seq_len).toBe(aFirst ? 4 : 3);
      return;
    }
    case 6: {
      // An upload abandoned half way.
      const { request, response } = rawRequest(`${base}/api/v1/split/forward`, { method: 'POST', headers: { 'Content-Length': 200_000, 'Content-Type': 'application/json' }, hold: true, partial: Buffer.alloc(50_000, 0x20) });
      response.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 20));
      request.destroy();
      return;
    }
    default: {
      // A stream cancelled after its first token.
      const ws = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
      ws.send({ query: QUERY, max_tokens: 64, temperature: 0, expert: 'banking_expert' });
      const head0 = await ws.until(['token'], 60_000);
      ws.send({ type: 'cancel' });
      const rest = await ws.until(['cancelled', 'done', 'error'], 60_000);
      const frames = [...head0, ...rest];
      if (frames.at(-1)!.type === 'done') expectStream(frames, ref.long, 'done'); // finished before the cancel arrived
      else expectStream(frames, ref.long, 'cancelled');
      await ws.close();
    }
  }
}

describe('soak (bounded)', () => {
  it(`${CLIENTS} clients x ${STEPS} mixed valid and invalid interactions: no stall, no lost token, /health throughout, memory back`, async () => {
    await interaction(0, 0, 0); // warm-up: generators, tokenizer, JIT
    await interaction(1, 0, 0);
    const t0 = Date.now();
    while (tiny.server.stats().sessions.sessions > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    const before = await memory();

    const meter = stallMeter();
    let stall: Stall = { worstMs: Infinity, mainOnlyMs: Infinity };
    const health: Array<{ status: number; ms: number }> = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const t = performance.now();
        const h = await rawRequest(`${tiny.base}/health`).response; // a connection of its own each time
        health.push({ status: h.status, ms: performance.now() - t });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const done: number[] = [];
    try {
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, c) => {
          for (let s = 0; s < STEPS; s++) {
            await interaction((c + s * 3) % KINDS, c, s);
            done.push(c);
          }
        }),
      );
    } finally {
      probing = false;
      await prober;
      stall = await meter.stop();
    }
    expect(done.length).toBe(CLIENTS * STEPS);
    expect(stall.mainOnlyMs).toBeLessThan(STALL_MS);
    expect(stall.worstMs).toBeLessThan(STALL_WALL_MS);
    expect(health.length).toBeGreaterThan(5);
    expect(health.every((h) => h.status === 200)).toBe(true);
    expect(Math.max(...health.map((h) => h.ms))).toBeLessThan(HEALTH_MS);

    // Everything given back: sockets, slots, uploads; HTTP sessions expire after their idle time.
    const t1 = Date.now();
    while ((tiny.server.stats().sockets > 0 || tiny.server.stats().sessions.sessions > 0) && Date.now() - t1 < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(tiny.server.stats()).toMatchObject({ sockets: 0, sessions: { sessions: 0 }, gate: { running: 0, queued: 0 }, splitGate: { running: 0, queued: 0 }, uploads: { used: 0 } });
    const after = await memory();
    expect(after - before).toBeLessThan(MEMORY_MARGIN);
    const routes = (await getJson(`${tiny.base}/api/v1/metrics`)).body.routes;
    expect(routes['POST /api/v1/split/forward'].aborted).toBeGreaterThan(0); // the abandoned uploads, not errors
    console.log(`soak: ${CLIENTS * STEPS} interactions in ${((Date.now() - t0) / 1000).toFixed(1)} s, worst event-loop stall ${stall.mainOnlyMs.toFixed(0)} ms of the main thread (${stall.worstMs.toFixed(0)} ms wall), /health max ${Math.max(...health.map((h) => h.ms)).toFixed(0)} ms over ${health.length} probes, memory ${((after - before) / 1048576).toFixed(1)} MiB over baseline`);
  }, 120_000);
});
