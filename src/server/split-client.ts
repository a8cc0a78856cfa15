/**
 * The split client (replaces the original's bench_split_ws.py and phone client): it keeps the
 * embedding, the LM head and sampling local (a SplitHead: the engine's multi-threaded CPU
 * path, or the GPU when present) and sends only embeddings to `WS /api/v1/split/stream`,
 * receiving the final hidden state of each step. Binary frames by default (float32 or
 * float16); `binary: false` speaks the original's base64 JSON.
 *
 * Each generated token yields a stage record: the server's stages (forward, HE stages, as
 * the server measured them), `network` (round trip minus the server's own time: both sides'
 * encoding and the transport), and the local `lm_head` and `sampling`; `embedMs` is the local
 * embedding lookup.
 */
import WebSocket from 'ws';
import type { StageTimes } from '../pipeline/types';
import { decodeBase64, decodeValues, encodeBase64, encodeValues, HiddenDtype, packFrame, unpackFrame } from './hidden-codec';
import type { SplitHead, SplitInput, SplitSampling } from './split-engine';

export interface SplitClientOptions {
  /** Wire dtype of the hidden states (default float32). */
  dtype?: HiddenDtype;
  /** Binary frames (default) or the original's base64 JSON. */
  binary?: boolean;
  /** Per-request timeout, ms (default 120 000). */
  timeoutMs?: number;
  /** The server's bearer token (servers started with --token / TENSAFE_TOKEN). */
  token?: string;
}

export interface SplitForwardReply {
  hidden: Float32Array;
  /** The result's fields as the server sent them (he_active, total_ms, stages, ...). */
  fields: Record<string, unknown>;
  /** Client-side round trip, ms. */
  rttMs: number;
}

export interface SplitTokenEvent {
  index: number;
  id: number;
  text?: string;
  stages: StageTimes;
  embedMs: number;
  totalMs: number;
}

export interface SplitGenerateOptions extends Partial<SplitSampling> {
  maxTokens?: number;
  expert?: string;
  useHe?: boolean;
  sessionId?: string;
  /** Token ids that end the generation. */
  stop?: number[];
  /** Send embedding rows ('hidden_states', the original) or 'token_ids'; 'auto' (default):
   * rows when the head has an embedding table and the server accepts them. */
  input?: 'auto' | 'hidden_states' | 'token_ids';
  /** Turns ids into text for the events (optional). */
  detokenize?: (ids: number[]) => string;
}

export interface SplitGenerateSummary {
  ids: number[];
  tokens: number;
  prefillMs: number;
  /** Tokens per second over the decode steps (prefill excluded). */
  tokPerS: number;
  stageMedians: StageTimes;
}

type Pending = { resolve: (v: { data: Buffer; binary: boolean }) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export class SplitClient {
  private readonly ws: WebSocket;
  private readonly pending: Pending[] = [];
  private readonly dtype: HiddenDtype;
  private readonly binary: boolean;
  private readonly timeoutMs: number;
  private closedError?: Error;

  private constructor(ws: WebSocket, options: SplitClientOptions) {
    this.ws = ws;
    this.dtype = options.dtype ?? 'float32';
    this.binary = options.binary ?? true;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    // The server answers a connection's messages in order, so replies match requests FIFO.
    ws.on('message', (data, isBinary) => {
      const p = this.pending.shift();
      if (!p) return;
      clearTimeout(p.timer);
      p.resolve({ data: Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer), binary: isBinary });
    });
    ws.on('close', (code, reason) => {
      this.closedError = new Error(`split connection closed (${code}${reason.length ? `: ${reason.toString()}` : ''})`);
      for (const p of this.pending.splice(0)) {
        clearTimeout(p.timer);
        p.reject(this.closedError);
      }
    });
    ws.on('error', () => undefined); // surfaced through 'close'
  }

  /** Connects to `ws://host:port` (the path is added) or a full `.../api/v1/split/stream` URL. */
  static connect(url: string, options: SplitClientOptions = {}): Promise<SplitClient> {
    const full = url.includes('/api/v1/split/stream') ? url : `${url.replace(/^http/, 'ws').replace(/\/$/, '')}/api/v1/split/stream`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(full, { perMessageDeflate: false, ...(options.token ? { headers: { Authorization: `Bearer ${options.token}` } } : {}) });
      ws.once('open', () => resolve(new SplitClient(ws, options)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        // A refused upgrade (401 without the token, 403 for a refused Host/Origin, 503): say why.
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => reject(new Error(`split server refused the connection: ${res.statusCode} ${body}`.trim())));
      });
    });
  }

  private request(data: string | Buffer): Promise<{ data: Buffer; binary: boolean }> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.pending.findIndex((p) => p.timer === timer);
        if (i >= 0) this.pending.splice(i, 1);
        reject(new Error(`split request timed out after ${this.timeoutMs} ms`));
        this.ws.terminate(); // replies would now be out of step: give up the connection
      }, this.timeoutMs);
      this.pending.push({ resolve, reject, timer });
      this.ws.send(data);
    });
  }

  private async json(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await this.request(JSON.stringify(msg));
    if (r.binary) throw new Error('split: expected a JSON reply, got a binary frame');
    const obj = JSON.parse(r.data.toString('utf8')) as Record<string, unknown>;
    if (obj.type === 'error') throw Object.assign(new Error(`split server: ${obj.message}`), { code: obj.code, field: obj.field });
    return obj;
  }

  config(): Promise<Record<string, unknown>> {
    return this.json({ type: 'config' });
  }

  async tokenize(text: string): Promise<number[]> {
    return (await this.json({ type: 'tokenize', text })).token_ids as number[];
  }

  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.json({ type: 'ping' });
    return performance.now() - t0;
  }

  /** One forward: embedding rows (or token ids) in, the last final hidden state out. */
  async forward(input: SplitInput, opts: { incremental: boolean; sessionId?: string; expert?: string; useHe?: boolean }): Promise<SplitForwardReply> {
    const common = {
      type: 'forward',
      incremental: opts.incremental,
      session_id: opts.sessionId ?? 'default',
      use_he: opts.useHe ?? true,
      response_dtype: this.dtype,
      ...(opts.expert ? { expert_name: opts.expert } : {}),
    };
    if (input.kind === 'tokens') {
      const t0 = performance.now();
      const r = await this.request(JSON.stringify({ ...common, token_ids: input.ids }));
      return this.reply(r, t0);
    }
    const embeddings = input.data;
    const seqLen = input.seqLen;
    const fields = { ...common, seq_len: seqLen, hidden_dim: embeddings.length / seqLen, dtype: this.dtype };
    const t0 = performance.now();
    const out = this.binary
      ? packFrame(fields, encodeValues(embeddings, this.dtype))
      : JSON.stringify({ ...fields, hidden_states_b64: encodeBase64(embeddings, this.dtype) });
    const r = await this.request(out);
    return this.reply(r, t0);
  }

  private reply(r: { data: Buffer; binary: boolean }, t0: number): SplitForwardReply {
    let header: Record<string, unknown>;
    let hidden: Float32Array;
    if (r.binary) {
      const f = unpackFrame(r.data);
      header = f.header;
      const shape = header.output_shape as number[];
      hidden = decodeValues(f.payload, header.dtype as HiddenDtype, shape[0] * shape[1], 'payload');
    } else {
      header = JSON.parse(r.data.toString('utf8'));
      if (header.type === 'error') throw Object.assign(new Error(`split server: ${header.message}`), { code: header.code, field: header.field });
      const shape = header.output_shape as number[];
      hidden = decodeValues(decodeBase64(header.pre_activations_b64, 'pre_activations_b64'), (header.dtype as HiddenDtype) ?? 'float32', shape[0] * shape[1], 'pre_activations_b64');
      delete header.pre_activations_b64;
    }
    return { hidden, fields: header, rttMs: performance.now() - t0 };
  }

  /**
   * Generates with the head local and the decoder remote: prefill the prompt ids, then one
   * incremental forward per token.
   */
  async *generate(head: SplitHead, promptIds: number[], options: SplitGenerateOptions = {}): AsyncGenerator<SplitTokenEvent, SplitGenerateSummary> {
    const maxTokens = options.maxTokens ?? 64;
    const sampling: SplitSampling = { temperature: options.temperature ?? 0, topK: options.topK ?? 0, topP: options.topP ?? 1, seed: options.seed };
    const stop = new Set(options.stop ?? []);
    const sessionId = options.sessionId ?? `gen-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const ids: number[] = [];
    const perStage = new Map<string, number[]>();
    const t0 = performance.now();
    let prefillMs = 0;
    let tDecode = 0;
    let useRows = options.input === 'hidden_states';
    if (options.input === undefined || options.input === 'auto') {
      const cfg = await this.config();
      useRows = !!head.embed && Array.isArray(cfg.inputs) && (cfg.inputs as string[]).includes('hidden_states');
    }
    if (useRows && !head.embed) throw new Error('split client: this head has no embedding table; use input "token_ids"');
    const makeInput = async (tokens: number[]): Promise<SplitInput> =>
      useRows ? { kind: 'embeddings', data: await head.embed!(tokens), seqLen: tokens.length } : { kind: 'tokens', ids: tokens };
    let te = performance.now();
    let input = await makeInput(promptIds);
    let embedMs = performance.now() - te;
    for (let i = 0; i < maxTokens; i++) {
      const tStep = performance.now();
      const reply = await this.forward(input, { incremental: i > 0, sessionId, expert: options.expert, useHe: options.useHe });
      const next = await head.next(reply.hidden, sampling, i);
      const serverStages = (reply.fields.stages ?? {}) as StageTimes;
      const serverMs = Number(reply.fields.total_ms ?? 0);
      const stages: StageTimes = { ...serverStages, network: Math.max(0, reply.rttMs - serverMs), lm_head: next.lmHeadMs, sampling: next.samplingMs };
      const totalMs = performance.now() - tStep + embedMs;
      if (i === 0) {
        prefillMs = performance.now() - t0;
        tDecode = performance.now();
      } else {
        for (const [k, v] of Object.entries(stages)) {
          const a = perStage.get(k) ?? [];
          a.push(v as number);
          perStage.set(k, a);
        }
      }
      const done = stop.has(next.id);
      if (!done) {
        ids.push(next.id);
        yield { index: i, id: next.id, text: options.detokenize?.([next.id]), stages, embedMs, totalMs };
      }
      if (done || i === maxTokens - 1) break;
      te = performance.now();
      input = await makeInput([next.id]);
      embedMs = performance.now() - te;
    }
    const decodeMs = performance.now() - tDecode;
    const stageMedians: StageTimes = {};
    for (const [k, v] of perStage) (stageMedians as Record<string, number>)[k] = median(v);
    await this.json({ type: 'reset', session_id: sessionId }); // free the server's KV cache now
    return { ids, tokens: ids.length, prefillMs, tokPerS: ids.length > 1 ? ((ids.length - 1) / decodeMs) * 1000 : 0, stageMedians };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
