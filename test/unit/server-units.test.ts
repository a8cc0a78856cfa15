import { describe, expect, it } from 'vitest';
import { RequestError } from '../../src/server/errors';
import { GenerationGate } from '../../src/server/generation-gate';
import {
  decodeBase64, decodeValues, encodeValues, fromHalfBits, packFrame, toHalfBits, unpackFrame,
} from '../../src/server/hidden-codec';
import { RateLimiter } from '../../src/server/rate-limiter';
import { SessionStore } from '../../src/server/session-store';
import { parseChatRequest, parseJsonObject, parseSplitForward } from '../../src/server/validate';

/** Reference: the half whose value is nearest (ties to even mantissa), by exhaustive search. */
function nearestHalf(x: number): number {
  let best = 0;
  let bestErr = Infinity;
  for (let h = 0; h < 0x7c00; h++) {
    const err = Math.abs(fromHalfBits(h) - Math.abs(x));
    if (err < bestErr || (err === bestErr && (h & 1) === 0)) {
      best = h;
      bestErr = err;
    }
  }
  return (x < 0 ? 0x8000 : 0) | best;
}

describe('hidden-state codec', () => {
  it('rounds float32 to the nearest float16 like an exhaustive reference', () => {
    const xs = [0, 1, -2.5, 65504, 6.1e-5, 5.96e-8, 1e-3, 3.14159, -0.33333];
    for (let i = 0; i < 150; i++) xs.push((Math.random() - 0.5) * 10 ** (Math.random() * 8 - 4));
    for (const x0 of xs) {
      const x = Math.fround(x0);
      expect(toHalfBits(x), `x=${x}`).toBe(nearestHalf(x));
    }
    expect(toHalfBits(1e6)).toBe(0x7c00); // overflow -> Inf
    expect(Number.isNaN(fromHalfBits(toHalfBits(NaN)))).toBe(true);
  });

  it('round-trips float32 exactly and float16 within half precision', () => {
    const v = new Float32Array(1536).map(() => (Math.random() - 0.5) * 20);
    const b32 = encodeValues(v, 'float32');
    expect(b32.length).toBe(1536 * 4);
    expect(decodeValues(b32, 'float32', 1536, 'x')).toEqual(v);
    const b16 = encodeValues(v, 'float16');
    expect(b16.length).toBe(1536 * 2);
    const back = decodeValues(b16, 'float16', 1536, 'x');
    for (let i = 0; i < v.length; i++) expect(Math.abs(back[i] - v[i])).toBeLessThanOrEqual(Math.abs(v[i]) * 2 ** -11 + 1e-7);
  });

  it('refuses wrong sizes, non-finite values and bad base64, naming the field', () => {
    expect(() => decodeValues(new Uint8Array(10), 'float32', 3, 'hidden_states_b64')).toThrow(/hidden_states_b64: payload is 10 bytes, expected 12/);
    const bad = encodeValues(Float32Array.from([1, NaN, 2]), 'float32');
    expect(() => decodeValues(bad, 'float32', 3, 'payload')).toThrow(/value 1 is NaN/);
    expect(() => decodeBase64('abc', 'h')).toThrow(/not valid base64/);
    expect(() => decodeBase64('ab$=', 'h')).toThrow(/not valid base64/);
    expect(() => decodeBase64(42, 'h')).toThrow(/must be a base64 string/);
    expect(decodeBase64(Buffer.from([1, 2, 3]).toString('base64'), 'h')).toEqual(Buffer.from([1, 2, 3]));
  });

  it('packs and unpacks binary frames with an aligned payload', () => {
    for (const name of ['a', 'ab', 'abc', 'abcd']) {
      const payload = encodeValues(Float32Array.from([1, 2, 3]), 'float32');
      const f = packFrame({ type: 'forward', name }, payload);
      const { header, payload: p } = unpackFrame(f);
      expect(header).toEqual({ type: 'forward', name });
      expect(p.byteOffset % 4).toBe(0);
      expect(Buffer.from(p)).toEqual(payload);
    }
    expect(() => unpackFrame(Buffer.from('nope'))).toThrow(/must start with "TSH1"/);
    const f = Buffer.alloc(12);
    f.write('TSH1');
    f.writeUInt32LE(100, 4);
    expect(() => unpackFrame(f)).toThrow(/exceeds the frame/);
    f.writeUInt32LE(4, 4);
    f.write('{{{{', 8);
    expect(() => unpackFrame(f)).toThrow(/not valid JSON/);
  });
});

describe('request validation', () => {
  const experts = ['banking_expert'];
  const bad = (obj: Record<string, unknown>, re: RegExp) => {
    let err: unknown;
    try {
      parseChatRequest(obj, experts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).status).toBe(400);
    expect((err as Error).message).toMatch(re);
  };

  it('applies the original defaults and accepts the edges of every range', () => {
    const r = parseChatRequest({ query: 'hi' }, experts);
    expect(r).toMatchObject({ query: 'hi', maxTokens: 256, temperature: 0.7, topP: 0.9, topK: 50, useHe: true, mode: 'he-lora', sessionId: 'default', expert: 'auto' });
    const edges = parseChatRequest({ query: 'x'.repeat(10000), max_tokens: 2048, temperature: 2, top_p: 0, top_k: 200, use_he: false }, experts);
    expect(edges).toMatchObject({ maxTokens: 2048, temperature: 2, topP: 0, topK: 200, mode: 'base' });
    expect(parseChatRequest({ query: 'q', max_tokens: 1, temperature: 0, top_p: 1, top_k: 0, expert: 'banking_expert' }, experts).expert).toBe('banking_expert');
  });

  it('refuses each out-of-range or mistyped field with a message naming it', () => {
    bad({}, /query is required/);
    bad({ query: '   ' }, /query must not be empty/);
    bad({ query: 'x'.repeat(10001) }, /query is 10001 characters; at most 10000/);
    bad({ query: 'q', max_tokens: 0 }, /max_tokens must be in \[1, 2048\], got 0/);
    bad({ query: 'q', max_tokens: 2049 }, /max_tokens must be in \[1, 2048\]/);
    bad({ query: 'q', max_tokens: 1.5 }, /max_tokens must be an integer/);
    bad({ query: 'q', max_tokens: '5' }, /max_tokens must be a finite number/);
    bad({ query: 'q', temperature: 2.01 }, /temperature must be in \[0, 2\]/);
    bad({ query: 'q', temperature: -0.1 }, /temperature must be in \[0, 2\]/);
    bad({ query: 'q', top_p: 1.1 }, /top_p must be in \[0, 1\]/);
    bad({ query: 'q', top_k: 201 }, /top_k must be in \[0, 200\]/);
    bad({ query: 'q', top_k: -1 }, /top_k must be in \[0, 200\]/);
    bad({ query: 'q', use_he: 'yes' }, /use_he must be true or false/);
    bad({ query: 'q', expert: 'crypto_expert' }, /unknown expert "crypto_expert"; available: banking_expert/);
    bad({ query: 'q', session_id: 'x'.repeat(129) }, /session_id is 129 characters/);
    bad({ query: 'q', mode: 'fast' }, /mode must be/);
  });

  it('refuses malformed JSON and non-objects', () => {
    expect(() => parseJsonObject('{"query": ')).toThrow(/malformed JSON in body/);
    expect(() => parseJsonObject('[1,2]')).toThrow(/must be a JSON object/);
    expect(() => parseJsonObject('null')).toThrow(/must be a JSON object/);
  });

  it('checks split forwards against the model: hidden size, dtype, payload size, seq_len', () => {
    const model = { hiddenSize: 4, vocabSize: 10, experts: ['shared_attention'], defaultExpert: 'shared_attention', maxSeqLen: 16, inputs: ['hidden_states', 'token_ids'] as Array<'hidden_states' | 'token_ids'> };
    const h = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const ok = parseSplitForward({ hidden_states_b64: encodeValues(h, 'float32').toString('base64'), seq_len: 2, hidden_dim: 4 }, undefined, model);
    expect(ok.input).toEqual({ kind: 'embeddings', data: h, seqLen: 2 });
    expect(ok).toMatchObject({ seqLen: 2, expert: 'shared_attention', incremental: false, useHe: true, dtype: 'float32' });
    const half = parseSplitForward({ seq_len: 2, dtype: 'float16' }, encodeValues(h, 'float16'), model);
    expect(half.input).toMatchObject({ kind: 'embeddings', data: h });
    expect(parseSplitForward({ token_ids: [0, 9] }, undefined, model)).toMatchObject({ input: { kind: 'tokens', ids: [0, 9] }, seqLen: 2 });
    expect(() => parseSplitForward({ token_ids: [10] }, undefined, model)).toThrow(/token_ids\[0\] must be an integer in \[0, 10\)/);
    expect(() => parseSplitForward({ token_ids: [1.5] }, undefined, model)).toThrow(/token_ids\[0\]/);
    const idsOnly = { ...model, inputs: ['token_ids'] as Array<'hidden_states' | 'token_ids'> };
    expect(() => parseSplitForward({ seq_len: 1 }, new Uint8Array(16), idsOnly)).toThrow(/cannot run its decoder from embedding rows/);
    expect(() => parseSplitForward({ hidden_states_b64: '', seq_len: 1, hidden_dim: 5 }, undefined, model)).toThrow(/hidden_dim 5 does not match the model's hidden size 4/);
    expect(() => parseSplitForward({ hidden_states_b64: 'AAAA', seq_len: 1 }, undefined, model)).toThrow(/payload is 3 bytes, expected 16/);
    expect(() => parseSplitForward({ seq_len: 1, dtype: 'int8' }, new Uint8Array(4), model)).toThrow(/dtype must be "float32" or "float16"/);
    expect(() => parseSplitForward({ seq_len: 17 }, new Uint8Array(4), model)).toThrow(/seq_len must be in \[1, 16\]/);
    expect(() => parseSplitForward({ seq_len: 1 }, undefined, model)).toThrow(/hidden_states_b64 \(or token_ids\) is required/);
    expect(() => parseSplitForward({ seq_len: 1, expert_name: 'x' }, new Uint8Array(16), model)).toThrow(/unknown expert "x"/);
  });
});

describe('rate limiter', () => {
  it('allows the burst, refuses beyond it, and refills at the sustained rate', () => {
    let now = 0;
    const rl = new RateLimiter({ perMinute: 60, burst: 3, now: () => now });
    expect([rl.take('a'), rl.take('a'), rl.take('a'), rl.take('a')]).toEqual([true, true, true, false]);
    expect(rl.take('b')).toBe(true); // per client
    expect(rl.retryAfterS('a')).toBe(1);
    now += 1000; // one request per second refills
    expect(rl.take('a')).toBe(true);
    expect(rl.take('a')).toBe(false);
    now += 60_000;
    rl.sweep();
    expect(rl.stats().clients).toBe(0); // idle buckets dropped
    expect(rl.stats().rejected).toBe(2);
  });

  it('takes several tokens at once, and charges work done after the fact as debt down to -burst', () => {
    let now = 0;
    const rl = new RateLimiter({ perMinute: 60, burst: 4, now: () => now });
    expect(rl.take('a', 3)).toBe(true);
    expect(rl.take('a', 2)).toBe(false); // 1 left: nothing taken
    expect(rl.available('a')).toBe(1);
    rl.charge('a', 100);
    expect(rl.available('a')).toBe(-4); // debt bounded by the bucket's size
    expect(rl.retryAfterS('a')).toBe(5); // 5 tokens to refill at one a second
    now += 5000;
    expect(rl.take('a')).toBe(true);
  });
});

describe('generation gate', () => {
  it('runs at most `limit` at once, in FIFO order, and refuses beyond the queue', async () => {
    const gate = new GenerationGate(2, 3);
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const job = (i: number) =>
      gate.run(async () => {
        running++;
        peak = Math.max(peak, running);
        order.push(i);
        await new Promise((r) => setTimeout(r, 5));
        running--;
      });
    const jobs = [0, 1, 2, 3, 4].map(job);
    await expect(job(5)).rejects.toMatchObject({ status: 503, code: 'busy' });
    await Promise.all(jobs);
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(gate.stats()).toMatchObject({ running: 0, queued: 0, refused: 1 });
  });

  it('drops an aborted waiter and refuses everything after close', async () => {
    const gate = new GenerationGate(1, 10);
    const release = await gate.acquire();
    const ac = new AbortController();
    const waiting = gate.acquire(ac.signal);
    const other = gate.acquire();
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'cancelled' });
    expect(gate.stats().queued).toBe(1);
    gate.close();
    await expect(other).rejects.toMatchObject({ status: 503, code: 'shutting_down' });
    release();
    expect(gate.stats().running).toBe(0);
    await expect(gate.acquire()).rejects.toMatchObject({ code: 'shutting_down' });
  });
});

describe('session store', () => {
  const make = () => {
    const disposed: string[] = [];
    let n = 0;
    return { disposed, create: () => { const id = `s${n++}`; return { id, dispose: () => { disposed.push(id); } }; } };
  };

  it('evicts the least recently used idle session at the cap and expires idle ones', async () => {
    let now = 0;
    const store = new SessionStore<{ id: string; dispose(): void }>({ max: 2, idleMs: 1000, now: () => now });
    const { disposed, create } = make();
    await store.use('a', create, async () => undefined);
    now = 10;
    await store.use('b', create, async () => undefined);
    now = 20;
    await store.use('a', create, async () => undefined); // a is now the most recent
    await store.use('c', create, async () => undefined); // evicts b
    await new Promise((r) => setImmediate(r));
    expect(disposed).toEqual(['s1']);
    expect(store.has('a') && store.has('c') && !store.has('b')).toBe(true);
    now = 2000;
    store.sweep();
    await new Promise((r) => setImmediate(r));
    expect(disposed.sort()).toEqual(['s0', 's1', 's2']);
    expect(store.stats()).toMatchObject({ sessions: 0, evicted: 1, expired: 2 });
    await store.close();
  });

  it('never evicts a busy session: refuses a new one with 503 when all are busy', async () => {
    const store = new SessionStore<{ id: string; dispose(): void }>({ max: 1 });
    const { create } = make();
    let release!: () => void;
    const busy = store.use('a', create, () => new Promise<void>((r) => (release = r)));
    await expect(store.use('b', create, async () => undefined)).rejects.toMatchObject({ status: 503, code: 'sessions_full' });
    release();
    await busy;
    await store.use('b', create, async () => undefined);
    expect(store.has('b')).toBe(true);
    await store.close();
  });

  it('disposes a busy session deleted by its owner as soon as its call returns', async () => {
    const store = new SessionStore<{ id: string; dispose(): void }>({ max: 4 });
    const { disposed, create } = make();
    let release!: () => void;
    const busy = store.use('k', create, () => new Promise<void>((r) => (release = r)), 'conn1');
    store.deleteOwned('conn1');
    expect(store.has('k')).toBe(true);
    release();
    await busy;
    await new Promise((r) => setImmediate(r));
    expect(store.has('k')).toBe(false);
    expect(disposed).toEqual(['s0']);
    await store.close();
  });
});
