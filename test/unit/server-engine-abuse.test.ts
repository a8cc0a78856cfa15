/**
 * Issue 15 over the real engine on the CPU ('tiny' preset, random weights): a split session
 * stays consistent under concurrent requests, a one-token forward costs a decode step after
 * other sessions ran, chat clients beyond the pipeline's one generation are told they are
 * queued, token frames and split results carry the HE operation counts of the packing layout,
 * and the selftest's head=cuda without a GPU is a clear 503. (The protocol-level tests with
 * doubles: server-abuse.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cudaAvailable } from '../../src/engine/info';
import { Model } from '../../src/engine/model';
import { layoutOperations, totalHeOperations } from '../../src/pipeline/he-ops';
import { packingLayout } from '../../src/pipeline/native';
import type { Pipeline } from '../../src/pipeline/pipeline';
import type { HeOperations } from '../../src/pipeline/types';
import { decodeValues } from '../../src/server/hidden-codec';
import type { TensafeServer } from '../../src/server/server';
import type { SplitSession } from '../../src/server/split-engine';
import { getJson, postJson, WsClient } from './server-client';
import { openTinyServer, type TinyServer } from './server-page-service';

let tiny: TinyServer;
let engines: TinyServer['engines'];
let pipeline: Pipeline;
let server: TensafeServer;
let base: string;
let wsBase: string;
let local: Model;

const QUERY = 'What is a savings account?';

beforeAll(async () => {
  tiny = await openTinyServer({ localContext: 2048 });
  ({ engines, pipeline, server, base, wsBase, local } = tiny);
});

afterAll(async () => {
  await tiny?.close();
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const randomIds = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 512));

/** The counts one HE application of A (rank x inDim) runs, from the native packing layout. */
function expectedOps(rank: number, inDim: number, applications = 1): HeOperations {
  const d = pipeline.describe();
  return layoutOperations(packingLayout({ packing: 'coefficients', polyN: d.polyN, rank, inDim }), applications);
}

describe('split sessions over the real engine (defects 1 and 2)', () => {
  it('concurrent forwards on one HTTP session leave it consistent: cached_seq_len and the KV cache agree', async () => {
    const fwd = (body: Record<string, unknown>) => postJson(`${base}/api/v1/split/forward`, { session_id: 'race', use_he: false, ...body });
    expect((await fwd({ token_ids: [1] })).status).toBe(200);
    const longIds = randomIds(1500);
    const long = fwd({ token_ids: longIds }); // a new sequence of 1500 positions
    await new Promise((r) => setTimeout(r, 20));
    const short = await fwd({ token_ids: [3] }); // another new sequence, while the long one runs
    expect((await long).status).toBe(200);
    expect(short.status).toBe(200);
    expect(short.body.cached_seq_len).toBe(0);
    const next = await fwd({ token_ids: [4], incremental: true });
    expect(next.status).toBe(200);
    // Whichever ran last holds the session: its length and its cache must agree.
    const held = next.body.cached_seq_len === 1 ? [3] : longIds;
    expect(next.body.cached_seq_len).toBe(held.length);
    local.reset();
    await local.prefill(held);
    await local.decodeStep(4);
    expect(decodeValues(Buffer.from(next.body.pre_activations_b64, 'base64'), 'float32', 64, 'h')).toEqual(local.hidden());
  });

  // A session owns its context (its KV cache): no replay when other sessions ran (issue 15, defect 2).
  it('a one-token forward costs a decode step, not a replay of the session, after other sessions ran', async () => {
    const split = engines.split!;
    const off = { expert: 'none', useHe: false };
    const sessions: SplitSession[] = [];
    const prefillMs: number[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const s = split.createSession();
        sessions.push(s);
        const t0 = performance.now();
        await s.forward({ kind: 'tokens', ids: randomIds(1000) }, off);
        prefillMs.push(performance.now() - t0);
      }
      const stepMs: number[] = [];
      for (let round = 0; round < 3; round++) {
        for (const s of sessions) {
          const t0 = performance.now();
          const r = await s.forward({ kind: 'tokens', ids: [7] }, off);
          stepMs.push(performance.now() - t0);
          expect(r.replayedPositions ?? 0).toBe(0);
        }
      }
      expect(median(stepMs)).toBeLessThan(0.25 * median(prefillMs));
    } finally {
      for (const s of sessions) await s.dispose();
    }
  }, 60_000);
});

describe('generation slots over the real pipeline (defect 4)', () => {
  it('two chat clients at once: the pipeline runs one generation, so the second is told it is queued and starts after the first', async () => {
    expect((await getJson(`${base}/health`)).body.generation_slots).toBe(1);
    const a = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    const b = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    const stamp = (c: WsClient) =>
      c.until(['done', 'error'], 60_000).then((frames) => frames.map((f) => ({ type: f.type, position: f.position, at: performance.now() })));
    a.send({ query: QUERY, max_tokens: 8, temperature: 0 });
    await new Promise((r) => setTimeout(r, 30));
    b.send({ query: QUERY, max_tokens: 8, temperature: 0 });
    // Frames are stamped as the test reads them: read both concurrently.
    const [fa, fb] = await Promise.all([stamp(a), stamp(b)]);
    expect(fa[0].type).toBe('input_info');
    expect(fa.at(-1)!.type).toBe('done');
    expect(fb[0]).toMatchObject({ type: 'queued', position: 1 });
    expect(fb.at(-1)!.type).toBe('done');
    const bInfo = fb.find((f) => f.type === 'input_info')!;
    expect(bInfo.at).toBeGreaterThanOrEqual(fa.at(-1)!.at); // input_info only when its generation starts
    await a.close();
    await b.close();
  });
});

describe('HE operation counts (defect 6)', () => {
  it('chat token frames carry the counts of the packing layout; compare sums them', async () => {
    const pair = pipeline.expertSet.get('banking_expert').finalHiddenPair(64);
    const want = expectedOps(pair.rank, 64);
    expect(want.products).toBeGreaterThan(0);
    const c = await WsClient.open(`${wsBase}/api/v1/chat/stream`);
    c.send({ query: QUERY, max_tokens: 5, temperature: 0, expert: 'banking_expert' });
    const tokens = (await c.until(['done'])).filter((f) => f.type === 'token');
    expect(tokens.length).toBeGreaterThan(0);
    for (const t of tokens) {
      expect(t.metrics.he_counts).toEqual({ encryptions: want.encryptions, products: want.products, decryptions: want.decryptions, rotations: want.rotations, ciphertext_bytes: want.ciphertextBytes });
      expect(t.metrics.he_operations).toBe(totalHeOperations(want));
      expect(t.metrics.ciphertext_bytes).toBe(want.encryptions * 2 * 16384 * 2 * 8);
    }
    await c.close();
    const cmp = await postJson(`${base}/api/v1/chat/compare`, { query: QUERY, max_tokens: 4, temperature: 0, expert: 'banking_expert' });
    expect(cmp.body.adapted.he_operations).toBe(cmp.body.adapted.tokens * totalHeOperations(want));
  });

  it('placement layers: the first token counts every prompt position at every site, later tokens one position', async () => {
    const adapter = pipeline.expertSet.get('investment_expert');
    let perPosition: HeOperations = { encryptions: 0, products: 0, decryptions: 0, rotations: 0, ciphertextBytes: 0 };
    for (const p of adapter.pairs) {
      const o = expectedOps(p.rank, p.inDim);
      perPosition = { encryptions: perPosition.encryptions + o.encryptions, products: perPosition.products + o.products, decryptions: perPosition.decryptions + o.decryptions, rotations: perPosition.rotations + o.rotations, ciphertextBytes: perPosition.ciphertextBytes + o.ciphertextBytes };
    }
    const promptLength = pipeline.tokenizer.encodeChat([{ role: 'user', content: QUERY }]).length;
    const run = await pipeline.run(QUERY, { mode: 'he-lora', placement: 'layers', expert: 'investment_expert', maxTokens: 3, temperature: 0 });
    expect(run.events.length).toBe(3);
    const scale = (o: HeOperations, k: number) => ({ encryptions: o.encryptions * k, products: o.products * k, decryptions: o.decryptions * k, rotations: o.rotations * k, ciphertextBytes: o.ciphertextBytes * k });
    expect(run.events[0].he).toEqual(scale(perPosition, promptLength));
    for (const ev of run.events.slice(1)) expect(ev.he).toEqual(perPosition);
    // What the generator really ran: its releases (one per site per position) match the counts.
    const info = (pipeline as unknown as { generators: Map<string, { info(): { releases: number; heSites: number } }> }).generators;
    const ran = [...info.values()].map((g) => g.info()).find((x) => x.heSites === adapter.pairs.length)!;
    expect(ran.releases).toBe(ran.heSites * (promptLength + run.events.length - 1));
    const base0 = await pipeline.run(QUERY, { mode: 'base', maxTokens: 2 });
    expect(base0.events[0].he).toBeUndefined();
  });

  it('split results carry the same counts, and say whether HE time is split by stage', async () => {
    const pair = pipeline.expertSet.get('banking_expert').finalHiddenPair(64);
    const want = expectedOps(pair.rank, 64);
    const r = await postJson(`${base}/api/v1/split/forward`, { token_ids: [5, 6, 7], expert_name: 'banking_expert', session_id: 'ops' });
    expect(r.status).toBe(200);
    expect(r.body.he_counts).toEqual({ encryptions: want.encryptions, products: want.products, decryptions: want.decryptions, rotations: want.rotations, ciphertext_bytes: want.ciphertextBytes });
    expect(r.body.he_operations).toBe(totalHeOperations(want));
    expect(r.body.he_ms).toBeGreaterThan(0);
    if (r.body.he_stage_times) {
      for (const k of ['encrypt_ms', 'compute_ms', 'decrypt_ms']) expect(r.body[k], k).toBeGreaterThan(0);
    } else {
      // heApply times the HE step as one native call: no stage is passed off as the whole step.
      expect([r.body.encrypt_ms, r.body.compute_ms, r.body.decrypt_ms]).toEqual([null, null, null]);
    }
    expect(r.body.replayed_positions).toBe(0); // a fresh session replays nothing
  });
});

describe('selftest head (defect 6)', () => {
  it('head=cuda: a 503 naming the head where there is no usable GPU, the GPU head where there is one', async () => {
    const r = await getJson(`${base}/api/v1/split/selftest?max_tokens=4&head=cuda`);
    if (cudaAvailable()) {
      expect(r.status).toBe(200);
      expect(r.body.head_backend).toBe('cuda');
    } else {
      expect(r.status).toBe(503);
      expect(r.body).toMatchObject({ code: 'head_unavailable', field: 'head' });
      expect(r.body.error).toMatch(/cannot run on 'cuda' here \(.*\); use head=cpu/);
    }
    expect((await getJson(`${base}/api/v1/split/selftest?max_tokens=4&head=cpu`)).status).toBe(200); // the server is fine
  });
});
