/**
 * The server's protocol over real HTTP and WebSocket on loopback, with protocol doubles for
 * the engines (server-fakes.ts): framing, every endpoint's shape, every bad input, limits,
 * sessions and shutdown. The numbers through the real engine: server-engine.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeValues, packFrame, unpackFrame, decodeValues } from '../../src/server/hidden-codec';
import { startServer, TensafeServer } from '../../src/server/server';
import { WsClient, getJson, postJson } from './server-client';
import { FakeService, FakeSplit } from './server-fakes';

let server: TensafeServer;
let base: string;
let wsBase: string;
let service: FakeService;
let split: FakeSplit;

beforeAll(async () => {
  service = new FakeService(1);
  split = new FakeSplit();
  const s = await startServer({ service, split, port: 0, rateLimit: { perMinute: 100_000, burst: 10_000 }, sessions: { max: 4, idleMs: 60_000 } });
  server = s.server;
  base = s.url;
  wsBase = base.replace('http', 'ws');
});

afterAll(async () => {
  await server.close(1000);
});

const b64 = (v: number[]) => encodeValues(Float32Array.from(v), 'float32').toString('base64');

describe('HTTP endpoints', () => {
  it('GET /health answers with status, engine and sessions', async () => {
    const r = await getJson(`${base}/health`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ok', engine_ready: true, adapters_loaded: 3, kv_cache_sessions: 0, backend: 'cpu' });
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('GET /api/v1/metrics in JSON and in Prometheus text', async () => {
    const j = await getJson(`${base}/api/v1/metrics`);
    expect(j.status).toBe(200);
    expect(j.body).toMatchObject({ engine_ready: true, model: 'fake', adapters: service.experts() });
    expect(j.body.request_stats.total_requests).toBeGreaterThan(0);
    expect(j.body.generation_gate.limit).toBe(2);
    const p = await fetch(`${base}/api/v1/metrics?format=prometheus`);
    expect(p.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const text = await p.text();
    expect(text).toMatch(/# TYPE tensafe_requests_total counter/);
    expect(text).toMatch(/tensafe_requests_total\{route="GET \/health"\} \d+/);
    const p2 = await fetch(`${base}/api/v1/metrics`, { headers: { Accept: 'text/plain' } });
    expect(await p2.text()).toMatch(/tensafe_generations_running 0/);
  });

  it('POST /api/v1/chat/compare returns base and adapted answers in the original shape', async () => {
    const r = await postJson(`${base}/api/v1/chat/compare`, { query: 'What is a savings account?', max_tokens: 5, temperature: 0 });
    expect(r.status).toBe(200);
    expect(r.body.base).toMatchObject({ tokens: 5, encrypted: false, expert: 'none', response: ' t0 t1 t2 t3 t4' });
    expect(r.body.adapted).toMatchObject({ tokens: 5, encrypted: true, rotations: 0 });
    expect(r.body.base.tok_s).toBeGreaterThan(0);
    expect(r.body.adapted.stage_medians).toBeTypeOf('object');
    const modes = service.calls.slice(-2).map((c) => c.options.mode);
    expect(modes).toEqual(['base', 'he-lora']);
    expect(service.calls.at(-1)!.options).toMatchObject({ temperature: 0, topK: 1, maxTokens: 5 });
  });

  it('refuses bad compare requests with 400 naming the problem, wrong methods with 405, unknown paths with 404', async () => {
    const cases: Array<[unknown, RegExp]> = [
      ['{"query":', /malformed JSON/],
      [[1], /must be a JSON object/],
      [{ query: 'q', max_tokens: 4096 }, /max_tokens must be in \[1, 2048\]/],
      [{ query: 'q', temperature: 3 }, /temperature must be in \[0, 2\]/],
      [{ query: 'q', top_p: -1 }, /top_p must be in \[0, 1\]/],
      [{ query: 'q', top_k: 500 }, /top_k must be in \[0, 200\]/],
      [{ query: 'x'.repeat(10_001) }, /at most 10000/],
      [{ query: 'q', expert: 'nope' }, /unknown expert "nope"/],
    ];
    for (const [body, re] of cases) {
      const r = await postJson(`${base}/api/v1/chat/compare`, body);
      expect(r.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(r.body.error).toMatch(re);
    }
    expect((await getJson(`${base}/api/v1/chat/compare`)).status).toBe(405);
    const nf = await getJson(`${base}/api/v1/nothing`);
    expect(nf.status).toBe(404);
    expect(nf.body.error).toMatch(/no such endpoint/);
  });

  it('refuses an oversized body with 413 before reading it', async () => {
    const r = await postJson(`${base}/api/v1/chat/compare`, { query: 'q', pad: 'x'.repeat(2 << 20) });
    expect(r.status).toBe(413);
  });

  it('serves the page at /', async () => {
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/html/);
    const html = await r.text();
    expect(html).toMatch(/<script src="\/app.js"/);
    expect(html).not.toMatch(/https?:\/\//); // nothing fetched from elsewhere
    expect((await fetch(`${base}/app.js`)).status).toBe(200);
    expect((await fetch(`${base}/..%2fpackage.json`)).status).toBe(404);
  });
});

describe('WS /api/v1/chat/stream', () => {
  it('streams input_info, every token in order with stage records (network included), then done', async () => {
    const c = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    c.send({ query: 'What is a savings account?', max_tokens: 6, temperature: 0 });
    const frames = await c.until(['done', 'error']);
    expect(frames[0].type).toBe('input_info');
    expect(frames[0]).toMatchObject({ encrypted: true, mode: 'he-lora', simd_slots: 8192 });
    const tokens = frames.filter((f) => f.type === 'token');
    expect(tokens.map((t) => t.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(tokens.map((t) => t.token).join('')).toBe(' t0 t1 t2 t3 t4 t5');
    for (const t of tokens) {
      expect(t.stages.network).toBeGreaterThan(0);
      expect(t.stages.encrypt).toBe(0.2);
      expect(t.metrics).toMatchObject({ token_id: 1000 + t.index, he_rotations: 0, encrypt_ms: 0.3, compute_ms: 0.05 });
      expect(t.metrics.network_ms).toBeGreaterThanOrEqual(0);
      expect(t.done).toBe(false);
    }
    const done = frames.at(-1)!;
    expect(done).toMatchObject({ type: 'done', done: true });
    expect(done.aggregate.total_tokens).toBe(6);
    expect(done.aggregate.tokens_per_second).toBeGreaterThan(0);
    expect(done.summary).toMatchObject({ tokens: 6, mode: 'he-lora' });
    // The connection takes another request afterwards.
    c.send({ query: 'again', max_tokens: 2, use_he: false });
    const again = await c.until(['done']);
    expect(again[0]).toMatchObject({ type: 'input_info', encrypted: false, mode: 'base' });
    expect(again.filter((f) => f.type === 'token')).toHaveLength(2);
    await c.close();
  });

  it('answers each bad input with an error frame that says what is wrong, and stays open', async () => {
    const c = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    const cases: Array<[unknown, RegExp, string?]> = [
      ['not json', /malformed JSON in message/],
      [{ query: 'q', max_tokens: 0 }, /max_tokens must be in \[1, 2048\]/, 'max_tokens'],
      [{ query: 'q', temperature: 'hot' }, /temperature must be a finite number/, 'temperature'],
      [{ query: 'q', top_p: 2 }, /top_p must be in \[0, 1\]/, 'top_p'],
      [{ query: 'q', top_k: 1000 }, /top_k must be in \[0, 200\]/, 'top_k'],
      [{ query: 'x'.repeat(10_001) }, /at most 10000 are allowed/, 'query'],
      [{ query: 'q', expert: 'crypto' }, /unknown expert "crypto"/, 'expert'],
      [{ type: 'dance' }, /unknown message type "dance"/, 'type'],
    ];
    for (const [msg, re, field] of cases) {
      c.send(msg);
      const e = await c.next();
      expect(e.type).toBe('error');
      expect(e.message).toMatch(re);
      if (field) expect(e.field).toBe(field);
    }
    c.sendBinary(Buffer.from([1, 2, 3]));
    expect((await c.next()).message).toMatch(/JSON text frames/);
    c.send({ type: 'ping' });
    expect((await c.next()).type).toBe('pong');
    await c.close();
  });

  it('cancels a running generation on request and refuses a second one meanwhile', async () => {
    const slow = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    slow.send({ query: 'long', max_tokens: 2000 });
    expect((await slow.next()).type).toBe('input_info');
    expect((await slow.next()).type).toBe('token');
    slow.send({ query: 'second' });
    const frames = await slow.until(['error']);
    expect(frames.at(-1)!.code).toBe('busy_connection');
    slow.send({ type: 'cancel' });
    const rest = await slow.until(['cancelled', 'error', 'done']);
    expect(rest.at(-1)!.type).toBe('cancelled');
    expect(rest.filter((f) => f.type === 'token').length).toBeLessThan(1990);
    await slow.close();
  });
});

describe('WS /api/v1/split/stream and the split HTTP endpoints', () => {
  it('answers ping, config and tokenize in the original shapes', async () => {
    const c = await WsClient.open(`${wsBase}/api/v1/split/stream`);
    c.send({ type: 'ping' });
    expect(await c.next()).toEqual({ type: 'pong' });
    c.send({ type: 'config' });
    const cfg = await c.next();
    expect(cfg).toMatchObject({ type: 'config', hidden_dim: 8, vocab_size: 50, num_layers: 2, client_layers: 0, he_active: true, simd_slots: 8192, binary_frames: true });
    expect(cfg.experts).toEqual(['banking_expert', 'shared_attention']);
    c.send({ type: 'tokenize', text: 'abc' });
    expect(await c.next()).toEqual({ type: 'token_ids', token_ids: [47, 48, 49], length: 3 });
    await c.close();
  });

  it('runs forwards with an incremental per-session KV cache, in JSON/base64 and in binary float32/float16', async () => {
    const c = await WsClient.open(`${wsBase}/api/v1/split/stream`);
    // Prefill two positions: the fake returns the running sum (+ length on the last coordinate).
    c.send({ type: 'forward', hidden_states_b64: b64([...Array(8).fill(1), ...Array(8).fill(2)]), seq_len: 2, hidden_dim: 8, session_id: 's1' });
    const r1 = await c.next();
    expect(r1).toMatchObject({ type: 'result', seq_len: 1, output_shape: [1, 8], incremental: false, cached_seq_len: 0, he_active: true, he_operations: 3, layers_computed: 2 });
    const h1 = decodeValues(Buffer.from(r1.pre_activations_b64, 'base64'), 'float32', 8, 'x');
    expect(Array.from(h1)).toEqual([3, 3, 3, 3, 3, 3, 3, 5]);
    // Incremental: one more position in binary float16, answered in binary float16.
    c.sendBinary(packFrame({ type: 'forward', seq_len: 1, dtype: 'float16', incremental: true, session_id: 's1' }, encodeValues(Float32Array.from(Array(8).fill(0.5)), 'float16')));
    const raw = await c.nextRaw();
    expect(raw.binary).toBe(true);
    const { header, payload } = unpackFrame(raw.data);
    expect(header).toMatchObject({ type: 'result', incremental: true, cached_seq_len: 2, dtype: 'float16' });
    expect(Array.from(decodeValues(payload, 'float16', 8, 'x'))).toEqual([3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 6.5]);
    // Another session of the same connection is independent; a non-incremental forward restarts.
    c.sendBinary(packFrame({ seq_len: 1, session_id: 's2', response_dtype: 'float32' }, encodeValues(Float32Array.from(Array(8).fill(1)), 'float32')));
    const r3 = unpackFrame((await c.nextRaw()).data);
    expect(Array.from(decodeValues(r3.payload, 'float32', 8, 'x'))).toEqual([1, 1, 1, 1, 1, 1, 1, 2]);
    c.send({ hidden_states_b64: b64(Array(8).fill(1)), seq_len: 1, session_id: 's1' }); // type defaults to forward
    const r4 = await c.next();
    expect(r4.cached_seq_len).toBe(0);
    expect(Array.from(decodeValues(Buffer.from(r4.pre_activations_b64, 'base64'), 'float32', 8, 'x'))).toEqual([1, 1, 1, 1, 1, 1, 1, 2]);
    expect(split.liveSessions).toBe(2);
    c.send({ type: 'forward', token_ids: [100 - 100, 50 - 50], incremental: true, session_id: 's2' }); // ids: rows of zeros
    const r5 = await c.next();
    expect(r5).toMatchObject({ type: 'result', cached_seq_len: 1 });
    expect(Array.from(decodeValues(Buffer.from(r5.pre_activations_b64, 'base64'), 'float32', 8, 'x'))).toEqual([1, 1, 1, 1, 1, 1, 1, 4]);
    c.send({ type: 'reset', session_id: 's2' });
    expect(await c.next()).toEqual({ type: 'reset', session_id: 's2' });
    await new Promise((r) => setTimeout(r, 10));
    expect(split.liveSessions).toBe(1);
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(split.liveSessions).toBe(0); // the connection's sessions are freed when it closes
  });

  it('answers every bad split input with an error frame', async () => {
    const c = await WsClient.open(`${wsBase}/api/v1/split/stream`);
    const cases: Array<[unknown, RegExp]> = [
      ['{bad', /malformed JSON/],
      [{ type: 'teleport' }, /Unknown message type: teleport/],
      [{ type: 'forward', hidden_states_b64: 'not base64!', seq_len: 1 }, /hidden_states_b64 is not valid base64/],
      [{ type: 'forward', hidden_states_b64: b64([1, 2, 3]), seq_len: 1 }, /payload is 12 bytes, expected 32/],
      [{ type: 'forward', hidden_states_b64: b64([1]), seq_len: 1, hidden_dim: 16 }, /hidden_dim 16 does not match the model's hidden size 8/],
      [{ type: 'forward', hidden_states_b64: b64([1]), seq_len: 1, dtype: 'bfloat16' }, /dtype must be "float32" or "float16"/],
      [{ type: 'forward', hidden_states_b64: b64(Array(8).fill(1)), seq_len: 1, expert_name: 'ghost' }, /unknown expert "ghost"/],
      [{ type: 'forward', hidden_states_b64: b64(Array(8).fill(1)), seq_len: 0 }, /seq_len must be in \[1, 64\]/],
      [{ type: 'forward', hidden_states_b64: b64([...Array(7).fill(1), Infinity]), seq_len: 1 }, /value 7 is Infinity/],
      [{ type: 'tokenize', text: 5 }, /text must be a string/],
      [{ type: 'forward', token_ids: [1, 50] }, /token_ids\[1\] must be an integer in \[0, 50\)/],
      [{ type: 'forward', token_ids: [] }, /token_ids must be an array of 1 to 64/],
      [{ type: 'forward', token_ids: [1], hidden_states_b64: 'AAAA' }, /either token_ids or hidden states/],
    ];
    for (const [m, re] of cases) {
      c.send(m);
      const e = await c.next();
      expect(e.type, JSON.stringify(m).slice(0, 60)).toBe('error');
      expect(e.message).toMatch(re);
    }
    c.sendBinary(Buffer.from('garbage frame'));
    expect((await c.next()).message).toMatch(/must start with "TSH1"/);
    c.sendBinary(packFrame({ type: 'config' }, new Uint8Array(0)));
    expect((await c.next()).message).toMatch(/binary frames carry forwards only/);
    await c.close();
  });

  it('POST /api/v1/split/forward, GET /api/v1/split/config and /api/v1/split/selftest', async () => {
    const r = await postJson(`${base}/api/v1/split/forward`, { hidden_states_b64: b64(Array(8).fill(2)), seq_len: 1, hidden_dim: 8, session_id: 'h1' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: 'result', output_shape: [1, 8], cached_seq_len: 0 });
    const r2 = await postJson(`${base}/api/v1/split/forward`, { hidden_states_b64: b64(Array(8).fill(2)), seq_len: 1, session_id: 'h1', incremental: true });
    expect(r2.body.cached_seq_len).toBe(1);
    expect(Array.from(decodeValues(Buffer.from(r2.body.pre_activations_b64, 'base64'), 'float32', 8, 'x'))).toEqual([4, 4, 4, 4, 4, 4, 4, 6]);
    const bad = await postJson(`${base}/api/v1/split/forward`, { hidden_states_b64: '%%%%', seq_len: 1 });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: 'hidden_states_b64' });
    // Binary over HTTP.
    const bin = await fetch(`${base}/api/v1/split/forward`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: packFrame({ seq_len: 1, session_id: 'h2' }, encodeValues(Float32Array.from(Array(8).fill(1)), 'float32')),
    });
    expect(bin.status).toBe(200);
    const f = unpackFrame(Buffer.from(await bin.arrayBuffer()));
    expect(f.header.output_shape).toEqual([1, 8]);
    const cfg = await getJson(`${base}/api/v1/split/config`);
    expect(cfg.body).toMatchObject({ model: 'fake-split', hidden_dim: 8, default_expert: 'shared_attention' });
    const st = await getJson(`${base}/api/v1/split/selftest?max_tokens=8`);
    expect(st.status).toBe(200);
    expect(st.body.total_tokens).toBeGreaterThan(0);
    expect(st.body.tok_s).toBeGreaterThan(0);
    expect(st.body.stage_medians).toHaveProperty('lm_head');
    expect((await getJson(`${base}/api/v1/split/selftest?max_tokens=5000`)).status).toBe(400);
    expect((await getJson(`${base}/api/v1/split/selftest?max_tokens=abc`)).body.error).toMatch(/max_tokens must be a finite number/);
    expect((await getJson(`${base}/api/v1/split/selftest?head=tpu`)).body.error).toMatch(/head must be auto, cpu or cuda/);
  });

  it('caps the sessions: the least recently used idle one is evicted and freed', async () => {
    const before = split.liveSessions;
    for (let i = 0; i < 6; i++) {
      const r = await postJson(`${base}/api/v1/split/forward`, { hidden_states_b64: b64(Array(8).fill(1)), seq_len: 1, session_id: `cap${i}` });
      expect(r.status).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 20));
    expect(split.liveSessions).toBeLessThanOrEqual(4);
    expect(server.stats().sessions.evicted).toBeGreaterThanOrEqual(6 + before - 4);
    // Continuing an evicted session is refused (it would restart from one token) ...
    const cont = await postJson(`${base}/api/v1/split/forward`, { hidden_states_b64: b64(Array(8).fill(1)), seq_len: 1, session_id: 'cap0', incremental: true });
    expect(cont.status).toBe(409);
    expect(cont.body).toMatchObject({ code: 'session_expired', field: 'session_id' });
    // ... restarting it is fine, and a never-seen session may start incrementally (as the original).
    expect((await postJson(`${base}/api/v1/split/forward`, { hidden_states_b64: b64(Array(8).fill(1)), seq_len: 1, session_id: 'cap0' })).status).toBe(200);
    expect((await postJson(`${base}/api/v1/split/forward`, { hidden_states_b64: b64(Array(8).fill(1)), seq_len: 1, session_id: 'fresh', incremental: true })).status).toBe(200);
  });
});

describe('limits', () => {
  it('rate-limits per client: 429 over HTTP, an error frame over WebSocket', async () => {
    const svc = new FakeService(0);
    const s = await startServer({ service: svc, split: new FakeSplit(), port: 0, rateLimit: { perMinute: 60, burst: 2 } });
    try {
      const body = { query: 'q', max_tokens: 1 };
      expect((await postJson(`${s.url}/api/v1/chat/compare`, body)).status).toBe(200);
      expect((await postJson(`${s.url}/api/v1/chat/compare`, body)).status).toBe(200);
      const third = await fetch(`${s.url}/api/v1/chat/compare`, { method: 'POST', body: JSON.stringify(body) });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe('1');
      expect((await third.json()).error).toMatch(/rate limit exceeded/);
      const c = await WsClient.open(`${s.url.replace('http', 'ws')}/api/v1/chat/stream`);
      c.send(body);
      expect(await c.next()).toMatchObject({ type: 'error', code: 'rate_limited' });
      await c.close();
      // Split: starting a sequence is a request; its incremental forwards are not counted.
      const sc = await WsClient.open(`${s.url.replace('http', 'ws')}/api/v1/split/stream`);
      sc.send({ token_ids: [1], session_id: 'z' });
      expect(await sc.next()).toMatchObject({ type: 'error', code: 'rate_limited' });
      await new Promise((r) => setTimeout(r, 1100)); // one request refills
      sc.send({ token_ids: [1], session_id: 'z' });
      expect((await sc.next()).type).toBe('result');
      for (let i = 0; i < 20; i++) {
        sc.send({ token_ids: [2], session_id: 'z', incremental: true });
        expect((await sc.next()).type).toBe('result');
      }
      sc.send({ token_ids: [3], session_id: 'other', incremental: true }); // a new session counts
      expect(await sc.next()).toMatchObject({ type: 'error', code: 'rate_limited' });
      await sc.close();
    } finally {
      await s.server.close(100);
    }
  });

  it('runs at most maxConcurrent generations at once and queues the rest in order', async () => {
    let active = 0;
    let peak = 0;
    const svc = new FakeService(2);
    const inner = svc.generate.bind(svc);
    svc.generate = async function* (p, o, sig) {
      active++;
      peak = Math.max(peak, active);
      try {
        return yield* inner(p, o, sig);
      } finally {
        active--;
      }
    };
    const s = await startServer({ service: svc, port: 0, maxConcurrent: 2 });
    try {
      const clients = await Promise.all(Array.from({ length: 6 }, () => WsClient.open(`${s.url.replace('http', 'ws')}/api/v1/chat/stream`)));
      clients.forEach((c, i) => c.send({ query: `q${i}`, max_tokens: 5 }));
      const results = await Promise.all(clients.map((c) => c.until(['done', 'error'])));
      for (const r of results) expect(r.at(-1)!.type).toBe('done');
      expect(peak).toBe(2);
      await Promise.all(clients.map((c) => c.close()));
    } finally {
      await s.server.close(100);
    }
  });
});

describe('fuzz', () => {
  // Random JSON-ish values for every field the endpoints read.
  const pick = <T,>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];
  const junk = (): unknown =>
    pick<() => unknown>([
      () => Math.random() * 1e6 - 5e5,
      () => Math.floor(Math.random() * 5000) - 10,
      () => pick([NaN, Infinity, -0, 1e308, -1]),
      () => 'x'.repeat(Math.floor(Math.random() * 50)),
      () => pick([true, false, null]),
      () => [1, 'a', null],
      () => ({ nested: { deep: 1 } }),
      () => Buffer.from(Array.from({ length: 40 }, () => Math.floor(Math.random() * 256))).toString('base64'),
      () => '%%%%',
    ])();
  const fields = ['type', 'query', 'max_tokens', 'temperature', 'top_p', 'top_k', 'use_he', 'session_id', 'expert', 'expert_name', 'mode', 'seed',
    'hidden_states_b64', 'seq_len', 'hidden_dim', 'dtype', 'response_dtype', 'incremental', 'token_ids', 'text'];
  const message = (): string => {
    const r = Math.random();
    if (r < 0.1) return Buffer.from(Array.from({ length: 30 }, () => Math.floor(Math.random() * 256))).toString('latin1');
    if (r < 0.2) return JSON.stringify(junk());
    const o: Record<string, unknown> = {};
    for (const f of fields) if (Math.random() < 0.3) o[f] = junk();
    if (Math.random() < 0.5) o.type = pick(['forward', 'config', 'tokenize', 'ping', 'reset', 'chat', 'cancel', 'zap']);
    if (Math.random() < 0.3) o.max_tokens = 1;
    return JSON.stringify(o);
  };

  it('answers 300 random messages per endpoint without dying, then still serves', async () => {
    for (const path of ['/api/v1/split/stream', '/api/v1/chat/stream']) {
      const c = await WsClient.open(`${wsBase}${path}`);
      for (let i = 0; i < 300; i++) {
        if (Math.random() < 0.1) {
          const bin = Math.random() < 0.5 ? packFrame({ seq_len: junk(), dtype: junk(), token_ids: junk() }, Buffer.alloc(Math.floor(Math.random() * 64))) : Buffer.from(message());
          c.sendBinary(bin);
        } else c.send(message());
      }
      c.send({ type: 'ping' });
      // Drain until our pong: every earlier frame is a reply of some kind, never a close.
      for (;;) {
        const f = await c.next(60_000);
        expect(typeof f.type).toBe('string');
        if (f.type === 'pong') break;
      }
      c.send({ type: 'cancel' });
      await c.close();
    }
    for (let i = 0; i < 50; i++) {
      const url = pick(['/api/v1/chat/compare', '/api/v1/split/forward', '/api/v1/split/tokenize']);
      const r = await fetch(`${base}${url}`, { method: 'POST', body: message() });
      expect([200, 400, 413, 429, 501, 503]).toContain(r.status);
      await r.text();
    }
    expect((await getJson(`${base}/health`)).body.status).toBe('ok');
  }, 120_000);
});

describe('heartbeat', () => {
  it('drops a socket that stops answering pings and keeps one that answers', async () => {
    const { default: WebSocket } = await import('ws');
    const s = await startServer({ service: new FakeService(0), port: 0, heartbeatMs: 50 });
    try {
      const url = `${s.url.replace('http', 'ws')}/api/v1/chat/stream`;
      const open = (autoPong: boolean) =>
        new Promise<InstanceType<typeof WebSocket>>((resolve, reject) => {
          const ws = new WebSocket(url, { autoPong });
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        });
      const silent = await open(false);
      const live = await open(true);
      const closed = new Promise<number>((r) => silent.once('close', (code) => r(code)));
      expect(await closed).toBe(1006); // terminated by the server
      await new Promise((r) => setTimeout(r, 200));
      expect(live.readyState).toBe(WebSocket.OPEN);
      live.close();
    } finally {
      await s.server.close(100);
    }
  });

  it('closes a socket that sends a frame beyond the payload limit (1009)', async () => {
    const c = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    c.send({ query: 'q', pad: 'x'.repeat(200_000) }); // the limit is sized for a full split context
    await expect(c.next()).rejects.toThrow(/socket closed \(1009\)/);
    const again = await WsClient.open(`${wsBase}/api/v1/chat/stream`); // the server is fine
    again.send({ type: 'ping' });
    expect((await again.next()).type).toBe('pong');
    await again.close();
  });
});

describe('graceful shutdown', () => {
  it('lets a running stream finish within the grace time, refuses new work, closes sockets and disposes the engines', async () => {
    const svc = new FakeService(5);
    const sp = new FakeSplit();
    const s = await startServer({ service: svc, split: sp, port: 0 });
    const ws = s.url.replace('http', 'ws');
    const c = await WsClient.open(`${ws}/api/v1/chat/stream`);
    const sc = await WsClient.open(`${ws}/api/v1/split/stream`);
    sc.send({ hidden_states_b64: b64(Array(8).fill(1)), seq_len: 1 });
    await sc.next();
    expect(sp.liveSessions).toBe(1);
    c.send({ query: 'q', max_tokens: 20 });
    await c.next(); // input_info: the stream is running
    const closing = s.server.close(5000);
    const frames = await c.until(['done', 'error', 'cancelled']);
    expect(frames.at(-1)!.type).toBe('done'); // finished, not cut
    await closing;
    expect(c.closed && sc.closed).toBe(true);
    expect(c.closeCode).toBe(1001);
    expect(svc.disposed && sp.disposed).toBe(true);
    expect(sp.liveSessions).toBe(0);
    await expect(WsClient.open(`${ws}/api/v1/chat/stream`)).rejects.toThrow();
  });

  it('cancels streams still running after the grace time', async () => {
    const svc = new FakeService(20);
    const s = await startServer({ service: svc, port: 0 });
    const c = await WsClient.open(`${s.url.replace('http', 'ws')}/api/v1/chat/stream`);
    c.send({ query: 'q', max_tokens: 2000 });
    await c.next();
    const t0 = Date.now();
    await s.server.close(100);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(c.closed).toBe(true);
  });
});

describe('split client (protocol)', () => {
  it('generates the same tokens over binary float32, base64 JSON and in-process, and frees its session', async () => {
    const { SplitClient } = await import('../../src/server/split-client');
    const split = new FakeSplit(); // a server of its own, so the session count is this test's
    const own = await startServer({ service: new FakeService(0), split, port: 0 });
    const head = await split.createHead();
    // In-process reference: the same loop without the network.
    const session = split.createSession();
    const ref: number[] = [];
    let emb = await head.embed([3, 4, 5]);
    let n = 3;
    for (let i = 0; i < 10; i++) {
      const r = await session.forward({ kind: 'embeddings', data: emb, seqLen: n }, { expert: 'banking_expert', useHe: true });
      const next = await head.next(r.hidden, { temperature: 0, topK: 1, topP: 1 }, i);
      ref.push(next.id);
      emb = await head.embed([next.id]);
      n = 1;
    }
    session.dispose();
    for (const opts of [{ binary: true }, { binary: false }, { binary: true, dtype: 'float16' as const }, { binary: true, input: 'token_ids' as const }]) {
      const live = split.liveSessions;
      const client = await SplitClient.connect(own.url, opts);
      const gen = client.generate(head, [3, 4, 5], { maxTokens: 10, input: opts.input });
      const events = [];
      let step = await gen.next();
      while (!step.done) {
        events.push(step.value);
        step = await gen.next();
      }
      const ids = events.map((e) => e.id);
      if (opts.dtype === 'float16') expect(ids.length).toBe(10); // values rounded: ids may differ
      else expect(ids).toEqual(ref);
      for (const e of events) {
        expect(e.stages.network).toBeGreaterThanOrEqual(0);
        expect(e.stages.forward).toBe(0.2);
        expect(e.stages.lm_head).toBe(0.1);
      }
      expect(step.value.tokens).toBe(10);
      expect(split.liveSessions).toBe(live); // reset freed the server's KV cache
      expect(await client.ping()).toBeGreaterThan(0);
      await client.close();
    }
    expect(split.liveSessions).toBe(0);
    await own.server.close(100);
  });
});
