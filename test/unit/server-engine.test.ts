/**
 * The server over the real engine on the CPU (the 'tiny' preset, random weights): split
 * forwards equal the local model's hidden state (and the HE-LoRA delta its float64
 * reference), split generation and chat/stream equal the in-process pipeline token for token,
 * the selftest reports its numbers, and a bounded load test.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../../src/engine/model';
import type { Pipeline } from '../../src/pipeline/pipeline';
import { decodeValues, encodeValues, packFrame, unpackFrame } from '../../src/server/hidden-codec';
import { ModelHead, ModelSplitEngine } from '../../src/server/model-split-engine';
import type { TensafeServer } from '../../src/server/server';
import { SplitClient } from '../../src/server/split-client';
import { getJson, postJson, WsClient } from './server-client';
import { openTinyEngines, openTinyServer, type TinyServer } from './server-page-service';

let tiny: TinyServer;
let engines: TinyServer['engines'];
let pipeline: Pipeline;
let server: TensafeServer;
let base: string;
let wsBase: string;
let local: Model;

const QUERY = 'What is a savings account?';

beforeAll(async () => {
  tiny = await openTinyServer({ localContext: 256 });
  ({ engines, pipeline, server, base, wsBase, local } = tiny);
});

afterAll(async () => {
  await tiny?.close();
});

async function collect(gen: AsyncGenerator<any, any>): Promise<{ events: any[]; summary: any }> {
  const events = [];
  for (;;) {
    const r = await gen.next();
    if (r.done) return { events, summary: r.value };
    events.push(r.value);
  }
}

describe('split mode over the real engine', () => {
  it('a split forward (HE off) equals the local model hidden state bit for bit, prefill and incremental', async () => {
    const split = engines.split!;
    const ids = split.tokenize(split.prompt(QUERY));
    local.reset();
    await local.prefill(ids);
    const want = local.hidden();
    const c = await WsClient.open(`${wsBase}/api/v1/split/stream`);
    c.send({ type: 'forward', token_ids: ids, use_he: false, session_id: 'a' });
    const r = await c.next();
    expect(r).toMatchObject({ type: 'result', he_active: false, cached_seq_len: 0, output_shape: [1, 64] });
    expect(decodeValues(Buffer.from(r.pre_activations_b64, 'base64'), 'float32', 64, 'x')).toEqual(want);
    // Three incremental steps with a fresh random token each: equal to the local decode steps.
    for (let i = 0; i < 3; i++) {
      const t = Math.floor(Math.random() * 512);
      await local.decodeStep(t);
      c.send({ type: 'forward', token_ids: [t], incremental: true, use_he: false, session_id: 'a' });
      const ri = await c.next();
      expect(ri.cached_seq_len).toBe(ids.length + i);
      expect(decodeValues(Buffer.from(ri.pre_activations_b64, 'base64'), 'float32', 64, 'x')).toEqual(local.hidden());
    }
    expect(server.stats().sessions.sessions).toBe(1);
    await c.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats().sessions.sessions).toBe(0); // the connection's KV cache is freed
  });

  it('with HE, the hidden state is h + scaling * B (A h), A h under CKKS within 1e-4 of float64', async () => {
    const split = engines.split!;
    const ids = Array.from({ length: 12 }, () => Math.floor(Math.random() * 512));
    local.reset();
    await local.prefill(ids);
    const h = local.hidden();
    const adapter = pipeline.expertSet.get('banking_expert');
    const pair = adapter.finalHiddenPair(64);
    // float64 reference: y = A h, delta = scaling * B y.
    const y = new Float64Array(pair.rank);
    for (let k = 0; k < pair.rank; k++) for (let j = 0; j < 64; j++) y[k] += pair.a[k * 64 + j] * h[j];
    const want = new Float64Array(64);
    for (let i = 0; i < 64; i++) {
      let acc = 0;
      for (let k = 0; k < pair.rank; k++) acc += pair.b[i * pair.rank + k] * y[k];
      want[i] = h[i] + adapter.scaling * acc;
    }
    const client = await SplitClient.connect(base);
    const reply = await client.forward({ kind: 'tokens', ids }, { incremental: false, expert: 'banking_expert', sessionId: 'he' });
    expect(reply.fields).toMatchObject({ he_active: true, expert: 'banking_expert' });
    expect(Number(reply.fields.he_ms)).toBeGreaterThan(0);
    let maxDelta = 0;
    let maxErr = 0;
    for (let i = 0; i < 64; i++) {
      maxDelta = Math.max(maxDelta, Math.abs(want[i] - h[i]));
      maxErr = Math.max(maxErr, Math.abs(reply.hidden[i] - want[i]));
    }
    expect(maxDelta).toBeGreaterThan(1e-3); // the adapter does change h
    expect(maxErr).toBeLessThan(1e-4 * Math.max(1, maxDelta) + 1e-5);
    await client.close();
  });

  it('split generation (local LM head, remote decoder + HE) equals the in-process pipeline token for token', async () => {
    const split = engines.split!;
    const ref = await pipeline.run(QUERY, { mode: 'he-lora', expert: 'banking_expert', maxTokens: 16, temperature: 0 });
    const head = await ModelHead.open('tiny', { backend: 'cpu', seed: 0 });
    // Embedding rows (the original protocol; binary float32, then JSON float16) and token ids.
    for (const opts of [{ binary: true }, { binary: false, dtype: 'float16' as const }, { binary: true, input: 'token_ids' as const }]) {
      const client = await SplitClient.connect(base, opts);
      const { events, summary } = await collect(
        client.generate(head, split.tokenize(split.prompt(QUERY)), { maxTokens: 16, expert: 'banking_expert', stop: split.stopTokens(), input: opts.input }),
      );
      const ids = events.map((e) => e.id);
      if (!opts.dtype) expect(ids).toEqual(ref.events.map((e) => e.id).slice(0, ids.length));
      expect(ids.length).toBe(ref.events.length);
      for (const e of events) {
        expect(e.stages.forward).toBeGreaterThan(0);
        expect(e.stages.lm_head).toBeGreaterThan(0);
        expect(e.stages.network).toBeGreaterThanOrEqual(0);
      }
      expect(summary.tokPerS).toBeGreaterThan(0);
      await client.close();
    }
    head.dispose();
  });

  it('sessions of one model (each its own context) interleave exactly', async () => {
    const engine = await ModelSplitEngine.open({ backend: 'cpu', source: 'tiny', seed: 0, contextLength: 256, experts: pipeline.expertSet });
    try {
      const a = engine.createSession();
      const b = engine.createSession();
      const seqA = Array.from({ length: 6 }, () => Math.floor(Math.random() * 512));
      const seqB = Array.from({ length: 6 }, () => Math.floor(Math.random() * 512));
      const off = { expert: 'none', useHe: false };
      // a: prefill 3, b: prefill 3, then alternate single tokens on the two contexts.
      const got = { a: [] as Float32Array[], b: [] as Float32Array[] };
      got.a.push((await a.forward({ kind: 'tokens', ids: seqA.slice(0, 3) }, off)).hidden);
      got.b.push((await b.forward({ kind: 'tokens', ids: seqB.slice(0, 3) }, off)).hidden);
      for (let i = 3; i < 6; i++) {
        got.a.push((await a.forward({ kind: 'tokens', ids: [seqA[i]] }, off)).hidden);
        got.b.push((await b.forward({ kind: 'tokens', ids: [seqB[i]] }, off)).hidden);
      }
      expect(a.length).toBe(6);
      for (const [name, seq] of [['a', seqA], ['b', seqB]] as const) {
        local.reset();
        await local.prefill(seq.slice(0, 3));
        expect(got[name][0]).toEqual(local.hidden());
        for (let i = 3; i < 6; i++) {
          await local.decodeStep(seq[i]);
          // Each session's context decodes incrementally, as the local model does.
          const want = local.hidden();
          const g = got[name][i - 2];
          for (let j = 0; j < want.length; j++) expect(Math.abs(g[j] - want[j])).toBeLessThan(1e-4 * (1 + Math.abs(want[j])));
        }
      }
      a.dispose();
      b.dispose();
    } finally {
      await engine.dispose();
    }
  });

  it('a long forward never freezes the server, and a reset sent meanwhile runs after it (issue 15, defect 1)', async () => {
    const long = Array.from({ length: 2000 }, (_, i) => (i * 37) % 512);
    const url = `${base}/api/v1/split/forward`;
    expect((await postJson(url, { token_ids: [1], session_id: 'long', use_he: false })).status).toBe(200);
    const t0 = performance.now();
    const big = postJson(url, { token_ids: long, session_id: 'long', incremental: true, use_he: false });
    await new Promise((r) => setTimeout(r, 5));
    // Sent while the 2000-position forward computes: non-incremental, so it starts over.
    const fresh = postJson(url, { token_ids: [3], session_id: 'long', incremental: false, use_he: false });
    const health: number[] = [];
    let bigDone = false;
    void big.then(() => (bigDone = true));
    while (!bigDone) {
      const h0 = performance.now();
      expect((await getJson(`${base}/health`)).status).toBe(200);
      health.push(performance.now() - h0);
      await new Promise((r) => setTimeout(r, 10));
    }
    const [rb, rf] = await Promise.all([big, fresh]);
    const forwardMs = performance.now() - t0;
    expect(rb.status).toBe(200);
    expect(rb.body.cached_seq_len).toBe(1);
    expect(rf.status).toBe(200);
    expect(rf.body.cached_seq_len).toBe(0); // the reset took effect in order, after the long forward
    expect(Math.max(...health)).toBeLessThan(Math.max(250, forwardMs / 2));
    // Its answer is a fresh one-token cache's.
    local.reset();
    await local.prefill([3]);
    expect(decodeValues(Buffer.from(rf.body.pre_activations_b64, 'base64'), 'float32', 64, 'x')).toEqual(local.hidden());
  });

  it('with DP on, noise enters only through the adapter path and each release is accounted', async () => {
    const { PrivacyAccountant, resolveDp } = await import('../../src/pipeline/dp');
    const dpOpts = { mechanism: 'analytic' as const, epsilon: 1, delta: 1e-5 };
    const dp = resolveDp(dpOpts)!;
    const engine = await ModelSplitEngine.open({ backend: 'cpu', source: 'tiny', seed: 0, contextLength: 64, experts: pipeline.expertSet, dp: dpOpts });
    try {
      expect(engine.config().dp).toMatchObject({ mechanism: 'analytic', epsilon: 1, sigma: dp.sigma });
      const session = engine.createSession();
      const ids = [5, 17, 42, 7];
      const outs: Float32Array[] = [];
      for (let i = 0; i < 2; i++) {
        session.reset();
        const r = await session.forward({ kind: 'tokens', ids }, { expert: 'banking_expert', useHe: true });
        expect(r.dpSigma).toBe(dp.sigma);
        expect(r.stages.dp_noise).toBeGreaterThan(0);
        const acc = new PrivacyAccountant(dp.accountant, dp.delta);
        acc.addGaussian(dp.sigma, dp.sensitivity, i + 1);
        expect(r.privacy).toEqual(acc.spent());
        outs.push(r.hidden);
      }
      // Fresh noise each release, and the two answers differ only inside span(B): the clean
      // hidden state is untouched, the noise reaches it through the adapter alone.
      const pair = pipeline.expertSet.get('banking_expert').finalHiddenPair(64);
      const diff = Array.from(outs[0], (v, i) => v - outs[1][i]);
      const norm = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
      expect(norm(diff)).toBeGreaterThan(1e-4);
      const basis: number[][] = [];
      for (let k = 0; k < pair.rank; k++) {
        let col = Array.from({ length: 64 }, (_, i) => pair.b[i * pair.rank + k]);
        for (const q of basis) {
          const dot = col.reduce((a, x, i) => a + x * q[i], 0);
          col = col.map((x, i) => x - dot * q[i]);
        }
        const n = norm(col);
        if (n > 1e-9) basis.push(col.map((x) => x / n));
      }
      expect(basis.length).toBeLessThan(64); // a proper subspace: the check can fail
      let res = diff;
      for (const q of basis) {
        const dot = res.reduce((a, x, i) => a + x * q[i], 0);
        res = res.map((x, i) => x - dot * q[i]);
      }
      expect(norm(res)).toBeLessThan(1e-3 * norm(diff) + 1e-5);
      session.dispose();
    } finally {
      await engine.dispose();
    }
  });

  it('embedding-row forwards (the original protocol, float32 and float16) equal token-id forwards', async () => {
    const cfg = await getJson(`${base}/api/v1/split/config`);
    expect(cfg.body).toMatchObject({ model: 'tiny (random weights)', hidden_dim: 64, vocab_size: 512, num_layers: 2, he_active: true });
    expect(cfg.body.inputs).toContain('token_ids');
    expect(cfg.body.inputs).toContain('hidden_states');
    const split = engines.split!;
    const ids = split.tokenize(split.prompt(QUERY));
    const rows = local.embed(ids);
    expect(rows.length).toBe(ids.length * 64);
    const c = await WsClient.open(`${wsBase}/api/v1/split/stream`);
    c.send({ type: 'forward', token_ids: ids, use_he: false, session_id: 'ids' });
    const byIds = decodeValues(Buffer.from((await c.next()).pre_activations_b64, 'base64'), 'float32', 64, 'x');
    // The original's JSON + base64 float32 rows.
    c.send({ type: 'forward', hidden_states_b64: encodeValues(rows, 'float32').toString('base64'), seq_len: ids.length, hidden_dim: 64, use_he: false, session_id: 'rows' });
    const r = await c.next();
    expect(r).toMatchObject({ type: 'result', cached_seq_len: 0 });
    expect(decodeValues(Buffer.from(r.pre_activations_b64, 'base64'), 'float32', 64, 'x')).toEqual(byIds);
    // Incremental: one more row vs one more id.
    const t = 77;
    c.send({ type: 'forward', token_ids: [t], incremental: true, use_he: false, session_id: 'ids' });
    const nextIds = decodeValues(Buffer.from((await c.next()).pre_activations_b64, 'base64'), 'float32', 64, 'x');
    c.sendBinary(packFrame({ type: 'forward', seq_len: 1, incremental: true, use_he: false, session_id: 'rows' }, encodeValues(local.embed([t]), 'float32')));
    const f = unpackFrame((await c.nextRaw()).data);
    expect(f.header.cached_seq_len).toBe(ids.length);
    expect(decodeValues(f.payload, 'float32', 64, 'x')).toEqual(nextIds);
    // A session holds one kind of input.
    c.send({ type: 'forward', token_ids: [1], incremental: true, use_he: false, session_id: 'rows' });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'mixed_inputs' });
    // float16 rows: rounded to half precision (the preset's bf16-exact rows mostly survive), close to the float32 answer.
    c.send({ type: 'forward', hidden_states_b64: encodeValues(rows, 'float16').toString('base64'), dtype: 'float16', response_dtype: 'float32', seq_len: ids.length, use_he: false, session_id: 'half' });
    const half = decodeValues(Buffer.from((await c.next()).pre_activations_b64, 'base64'), 'float32', 64, 'x');
    await c.close();
    let maxErr = 0;
    for (let i = 0; i < 64; i++) maxErr = Math.max(maxErr, Math.abs(half[i] - byIds[i]));
    expect(maxErr).toBeLessThan(0.05);
  });

  it('GET /api/v1/split/selftest generates through the split path and reports tok/s and the stage split', async () => {
    const r = await getJson(`${base}/api/v1/split/selftest?max_tokens=16&head=cpu`);
    expect(r.status).toBe(200);
    expect(r.body.total_tokens).toBeGreaterThan(0);
    expect(r.body.tok_s).toBeGreaterThan(0);
    expect(r.body.input_tokens).toBeGreaterThan(5);
    expect(r.body.he_active).toBe(true);
    expect(r.body.input).toBe('hidden_states'); // the head embeds, the server takes rows
    expect(r.body.head_backend).toBe('cpu');
    for (const k of ['forward', 'lora_b', 'lm_head', 'sampling']) expect(r.body.stage_medians[k], k).toBeGreaterThan(0);
    expect(r.body.verdict).toMatch(/^PASS/);
  });
});

describe('HE mode over the real pipeline', () => {
  it('chat/stream delivers the pipeline tokens in order with its stage records and the network stage', async () => {
    const ref = await pipeline.run(QUERY, { mode: 'he-lora', expert: 'investment_expert', maxTokens: 12, temperature: 0 });
    const c = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    c.send({ query: QUERY, max_tokens: 12, temperature: 0, expert: 'investment_expert' });
    const frames = await c.until(['done', 'error']);
    const tokens = frames.filter((f) => f.type === 'token');
    expect(tokens.map((t) => t.metrics.token_id)).toEqual(ref.events.map((e) => e.id));
    expect(tokens.map((t) => t.index)).toEqual(ref.events.map((e) => e.index));
    for (const t of tokens) {
      for (const k of ['forward', 'encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'lm_head', 'sampling', 'network']) expect(t.stages[k], k).toBeGreaterThan(0);
    }
    const done = frames.at(-1)!;
    expect(done.type).toBe('done');
    expect(done.summary).toMatchObject({ tokens: 12, mode: 'he-lora', expert: 'investment_expert' });
    expect(done.summary.stage_medians.encrypt).toBeGreaterThan(0);
    await c.close();
  });

  it('a cancel stops the pipeline mid-stream (no done frame), a vanished client frees its slot', async () => {
    const c = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    c.send({ query: QUERY, max_tokens: 500, temperature: 0.7, top_k: 0, top_p: 1, seed: 1 });
    const head = await c.until(['token']);
    expect(head[0].type).toBe('input_info');
    c.send({ type: 'cancel' });
    const rest = await c.until(['cancelled', 'done', 'error']);
    expect(rest.at(-1)!.type).toBe('cancelled');
    expect(rest.filter((f) => f.type === 'token').length).toBeLessThan(400);
    c.send({ query: QUERY, max_tokens: 2 });
    expect((await c.until(['done'])).at(-1)!.summary.tokens).toBe(2);
    // A client that goes away mid-stream: the generation stops and the gate empties.
    const gone = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    gone.send({ query: QUERY, max_tokens: 500, temperature: 0.7, top_k: 0, top_p: 1, seed: 2 });
    await gone.until(['token']);
    gone.ws.terminate();
    const t0 = Date.now();
    while (server.stats().gate.running > 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    expect(server.stats().gate.running).toBe(0);
    await c.close();
  });

  it('chat/compare answers base and HE-adapted with tok/s', async () => {
    const r = await fetch(`${base}/api/v1/chat/compare`, { method: 'POST', body: JSON.stringify({ query: QUERY, max_tokens: 6, temperature: 0 }) });
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body.base.tokens).toBe(6);
    expect(body.adapted.tokens).toBe(6);
    expect(body.base.tok_s).toBeGreaterThan(body.adapted.tok_s); // HE costs something on the CPU
    expect(body.adapted.stage_medians.encrypt).toBeGreaterThan(0);
  });
});

describe('load (bounded)', () => {
  it('32 WebSocket clients x 32 tokens: every token in order, /health answered under load, memory back to baseline', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const measure = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const m = process.memoryUsage();
      return m.heapUsed + m.external + m.arrayBuffers;
    };
    const round = async (n: number, tokens: number) => {
      const clients = await Promise.all(Array.from({ length: n }, () => WsClient.open(`${wsBase}/api/v1/chat/stream`)));
      clients.forEach((c, i) => c.send({ query: `${QUERY} (${i})`, max_tokens: tokens, temperature: 0, use_he: i % 2 === 0, expert: 'banking_expert' }));
      const healthMs: number[] = [];
      let running = true;
      const prober = (async () => {
        while (running) {
          const t0 = performance.now();
          const h = await getJson(`${base}/health`);
          expect(h.status).toBe(200);
          healthMs.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const results = await Promise.all(clients.map((c) => c.until(['done', 'error'], 110_000)));
      running = false;
      await prober;
      await Promise.all(clients.map((c) => c.close()));
      return { results, healthMs };
    };
    await round(4, 4); // warm-up: generators, tokenizer, JIT
    const before = await measure();
    const { results, healthMs } = await round(32, 32);
    for (const frames of results) {
      expect(frames.at(-1)!.type).toBe('done');
      const idx = frames.filter((f) => f.type === 'token').map((f) => f.index);
      expect(idx).toEqual(Array.from({ length: idx.length }, (_, i) => i));
      expect(frames.at(-1)!.summary.tokens).toBe(idx.length);
    }
    expect(healthMs.length).toBeGreaterThan(2);
    expect(Math.max(...healthMs)).toBeLessThan(1000); // answered while 32 streams run
    await new Promise((r) => setTimeout(r, 100));
    expect(server.stats()).toMatchObject({ sockets: 0, gate: { running: 0, queued: 0 } });
    const after = await measure();
    expect(after - before).toBeLessThan(8 * 1024 * 1024);
  }, 180_000);

  it('32 split clients x 32 tokens, each session a context of the pipeline\'s model: every client gets the pipeline tokens, sessions freed after', async () => {
    const split = engines.split!;
    const ref = await pipeline.run(QUERY, { mode: 'he-lora', expert: 'banking_expert', maxTokens: 32, temperature: 0 });
    const want = ref.events.map((e) => e.id);
    const head = await ModelHead.open('tiny', { backend: 'cpu', seed: 0 });
    const promptIds = split.tokenize(split.prompt(QUERY));
    const clients = await Promise.all(Array.from({ length: 32 }, (_, i) => SplitClient.connect(base, { binary: i % 2 === 0 })));
    let peakSessions = 0;
    const poll = setInterval(() => (peakSessions = Math.max(peakSessions, server.stats().sessions.sessions)), 20);
    const runs = await Promise.all(clients.map((c) => collect(c.generate(head, promptIds, { maxTokens: 32, expert: 'banking_expert', stop: split.stopTokens() }))));
    clearInterval(poll);
    for (const r of runs) expect(r.events.map((e) => e.id)).toEqual(want);
    expect(peakSessions).toBeGreaterThan(4); // many sessions (contexts) alive at once
    await Promise.all(clients.map((c) => c.close()));
    head.dispose();
    await new Promise((r) => setTimeout(r, 50));
    expect(server.stats().sessions.sessions).toBe(0);
  }, 180_000);
});
