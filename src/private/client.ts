/**
 * PrivateClient: generation in the private (client-key) mode. The client runs the public base
 * model itself (a Model on its own backend), holds the CKKS secret key, and for every adapted
 * site sends only ciphertexts to the server, which holds the adapter (src/server/private-*.ts):
 *
 *   final-hidden  one site per generated token: the final hidden state h goes out encrypted, the
 *                 delta scaling B A h comes back encrypted and is added before the LM head;
 *   layers        every site of every forward position (prompt included): the forward pauses at
 *                 each adapted layer (ModelContext.runWithSites) for the encrypted round trip(s).
 *
 * Per token the record holds the stage times forward (base model, pauses excluded),
 * client_encrypt, network, server_he, client_decrypt, lm_head, sampling, and the bytes and rounds.
 * The prompt and the tokens never leave the client.
 */
import * as crypto from 'node:crypto';
import type { Model } from '../engine/model/model';
import { Tokenizer } from '../engine/tokenizer';
import { PrivateClientSession, type SiteCallStats } from './client-session';
import { checkParams, defaultCkksParams, DEFAULT_FLOOD_BITS, type PrivateCkksParams, type PrivateParams, type ProtocolName } from './params';
import type { PlacementName, SitePublic } from './sites';
import { PrivateConnection, type NetworkModel } from './transport';

export const PRIVATE_STAGES = ['forward', 'client_encrypt', 'network', 'server_he', 'client_decrypt', 'lm_head', 'sampling'] as const;
export type PrivateStageName = (typeof PRIVATE_STAGES)[number];

export interface PrivateTokenEvent {
  index: number;
  id: number;
  text: string;
  stages: Record<PrivateStageName, number>;
  bytesUp: number;
  bytesDown: number;
  rounds: number;
  /** Sites answered for this token (positions x sites for the prompt's first token). */
  siteCalls: number;
  totalMs: number;
}

export interface PrivateSummary {
  tokens: number;
  tokPerS: number;
  text: string;
  ids: number[];
  protocol: ProtocolName;
  placement: PlacementName;
  expert: string;
  /** Median per stage over the tokens after the first (the first includes the prompt). */
  stageMedians: Record<PrivateStageName, number>;
  bytesPerToken: { up: number; down: number };
  roundsPerToken: number;
  setup: { ms: number; bytesUp: number; bytesDown: number };
  insecure: boolean;
  floodBits: number;
  polyN: number;
}

export interface PrivateClientOptions {
  /** The server's URL (http://host:port) — the private endpoint is /api/v1/private/stream. */
  url: string;
  expert: string;
  placement?: PlacementName;
  protocol?: ProtocolName;
  /** lambda of the noise flooding (default 40). */
  floodBits?: number;
  /** Overrides of the CKKS parameters (defaults: the server's per-protocol defaults). */
  ckks?: Partial<PrivateCkksParams>;
  /** Where the client's CKKS runs (default: the model's backend). */
  heBackend?: 'cpu' | 'cuda';
  /** CUDA device of the client's CKKS (default: the current one). */
  device?: number;
  network?: NetworkModel;
  /** Extra HTTP headers of the WebSocket upgrade (e.g. an Authorization bearer token). */
  headers?: Record<string, string>;
}

export interface PrivateGenerateOptions {
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  chat?: boolean;
  stopAtEos?: boolean;
}

/** Qwen token ids folded into a test model's smaller vocabulary (the 'tiny' preset), as the pipeline does. */
function smallVocabIds(prompt: string, vocab: number, chat: boolean): Int32Array {
  const tok = Tokenizer.qwen();
  const ids = chat ? tok.encodeChat([{ role: 'user', content: prompt }]) : tok.encode(prompt);
  return Int32Array.from(ids, (id) => id % vocab);
}

function zeroStages(): Record<PrivateStageName, number> {
  return { forward: 0, client_encrypt: 0, network: 0, server_he: 0, client_decrypt: 0, lm_head: 0, sampling: 0 };
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export class PrivateClient {
  private disposed = false;

  private constructor(
    readonly model: Model,
    readonly connection: PrivateConnection,
    readonly session: PrivateClientSession,
    readonly sites: SitePublic[],
    readonly setup: { ms: number; bytesUp: number; bytesDown: number },
    readonly insecure: boolean,
  ) {}

  /** Connects, learns the sites' public facts, makes keys, opens the session. */
  static async open(model: Model, options: PrivateClientOptions): Promise<PrivateClient> {
    const t0 = performance.now();
    const placement = options.placement ?? 'final-hidden';
    const protocol = options.protocol ?? 'two-round';
    const connection = await PrivateConnection.connect(options.url, options.network ?? {}, options.headers ?? {});
    let session: PrivateClientSession | undefined;
    try {
      const adapter = await connection.hello(options.expert, placement);
      const sites = adapter.sites as SitePublic[];
      const cfg = model.config;
      for (const s of sites) {
        if (s.layer !== null && s.layer >= cfg.numHiddenLayers) throw new RangeError(`the server's adapter targets layer ${s.layer}, the model has ${cfg.numHiddenLayers}`);
        if (s.layer === null && s.shape.inDim !== cfg.hiddenSize) throw new RangeError(`the server's final-hidden pair reads ${s.shape.inDim} values, the model's hidden state has ${cfg.hiddenSize}`);
      }
      const ckks = { ...defaultCkksParams(protocol, sites), ...(options.ckks ?? {}) } as PrivateCkksParams;
      const params: PrivateParams = checkParams({ protocol, placement, expert: options.expert, floodBits: options.floodBits ?? DEFAULT_FLOOD_BITS, ckks });
      session = await PrivateClientSession.create(params, sites, { backend: options.heBackend ?? model.backend, ...(options.device !== undefined ? { device: options.device } : {}) });
      const up0 = connection.bytes.up;
      const down0 = connection.bytes.down;
      const ready = await connection.open(session.openFrame());
      session.session = ready.session as number;
      return new PrivateClient(
        model,
        connection,
        session,
        sites,
        { ms: performance.now() - t0, bytesUp: connection.bytes.up - up0, bytesDown: connection.bytes.down - down0 },
        Boolean(ready.insecure) || session.ckks.info().insecure,
      );
    } catch (err) {
      session?.dispose();
      await connection.close();
      throw err;
    }
  }

  get params(): PrivateParams {
    return this.session.params;
  }

  private addStats(ev: PrivateTokenEvent, s: SiteCallStats): void {
    ev.stages.client_encrypt += s.clientEncryptMs;
    ev.stages.client_decrypt += s.clientDecryptMs;
    ev.stages.network += s.networkMs;
    ev.stages.server_he += s.serverHeMs;
    ev.bytesUp += s.bytesUp;
    ev.bytesDown += s.bytesDown;
    ev.rounds += s.rounds;
    ev.siteCalls++;
  }

  /** Runs the forward of `op` with the encrypted sites (layers) or plainly (final-hidden). */
  private async forward(op: { prefill: Int32Array } | { decode: number }, ev: PrivateTokenEvent): Promise<void> {
    const m = this.model;
    const t0 = performance.now();
    if (this.params.placement === 'final-hidden') {
      if ('prefill' in op) await m.prefill(op.prefill);
      else await m.decodeStep(op.decode);
      ev.stages.forward += performance.now() - t0;
      return;
    }
    const bySite = new Map<string, number>();
    for (const s of this.sites) bySite.set(`${s.layer}:${s.shape.modules[0].module}`, s.id);
    const sites = this.sites.map((s) => ({ layer: s.layer as number, modules: s.shape.modules.map((x) => x.module) }));
    let paused = 0;
    const ctx = m as unknown as {
      runWithSites?: (
        op: { prefill: Int32Array } | { decode: number },
        sites: Array<{ layer: number; modules: string[] }>,
        onSite: (call: { layer: number; modules: string[]; position: number; input: Float32Array }) => Promise<Float32Array[]>,
      ) => Promise<void>;
    };
    if (typeof ctx.runWithSites !== 'function') {
      throw Object.assign(new Error('the layers placement needs ModelContext.runWithSites (a forward that pauses at each adapted layer), which this build lacks'), { code: 'ERR_TENSAFE_BACKEND' });
    }
    await ctx.runWithSites(op, sites, async (call) => {
      const p0 = performance.now();
      const id = bySite.get(`${call.layer}:${call.modules[0]}`);
      if (id === undefined) throw new Error(`no site at layer ${call.layer} for ${call.modules.join('+')}`);
      const { outputs, stats } = await this.session.runSite(id, call.input, this.connection);
      this.addStats(ev, stats);
      const site = this.sites[id];
      const deltas = site.shape.modules.map((mod) => Float32Array.from(outputs.subarray(mod.outOffset, mod.outOffset + mod.outDim)));
      paused += performance.now() - p0;
      return deltas;
    });
    ev.stages.forward += performance.now() - t0 - paused;
  }

  /** The final-hidden site on the current hidden state: h += delta. */
  private async finalSite(ev: PrivateTokenEvent): Promise<void> {
    if (this.params.placement !== 'final-hidden') return;
    const h = this.model.hidden();
    const { outputs, stats } = await this.session.runSite(0, h, this.connection);
    this.addStats(ev, stats);
    this.model.addToHidden(Float32Array.from(outputs));
  }

  /** Streams the tokens of a private generation (greedy by default). */
  async *generate(prompt: string | number[] | Int32Array, options: PrivateGenerateOptions = {}): AsyncGenerator<PrivateTokenEvent, PrivateSummary> {
    if (this.disposed) throw Object.assign(new Error('PrivateClient is disposed'), { code: 'ERR_TENSAFE_DISPOSED' });
    const m = this.model;
    const ids = typeof prompt !== 'string' ? m.encodePrompt(prompt as number[]) : m.config.vocabSize >= 151643 ? m.encodePrompt(prompt, options.chat ?? false) : smallVocabIds(prompt, m.config.vocabSize, options.chat ?? false);
    const maxTokens = options.maxTokens ?? 32;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer, got ${maxTokens}`);
    const sampling = { temperature: options.temperature ?? 0, topK: options.topK ?? 0, topP: options.topP ?? 1 };
    const stop = new Set(m.stopIds({ stopAtEos: options.stopAtEos ?? true }));
    m.reset();
    m.setSamplingSeed(options.seed ?? crypto.randomBytes(6).readUIntLE(0, 6));
    const stream = m.config.vocabSize >= 151643 ? Tokenizer.qwen().stream() : undefined;
    const events: PrivateTokenEvent[] = [];
    const tStart = performance.now();
    let op: { prefill: Int32Array } | { decode: number } = { prefill: ids };
    for (let index = 0; index < maxTokens; index++) {
      const t0 = performance.now();
      const ev: PrivateTokenEvent = { index, id: -1, text: '', stages: zeroStages(), bytesUp: 0, bytesDown: 0, rounds: 0, siteCalls: 0, totalMs: 0 };
      await this.forward(op, ev);
      await this.finalSite(ev);
      let t = performance.now();
      await m.lmHead();
      ev.stages.lm_head = performance.now() - t;
      t = performance.now();
      ev.id = m.sample(sampling);
      ev.stages.sampling = performance.now() - t;
      ev.text = stream ? stream.push(ev.id) : '';
      ev.totalMs = performance.now() - t0;
      events.push(ev);
      yield ev;
      if (stop.has(ev.id) || m.position >= m.contextLength) break;
      op = { decode: ev.id };
    }
    const elapsed = (performance.now() - tStart) / 1000;
    const steady = events.length > 1 ? events.slice(1) : events;
    const stageMedians = zeroStages();
    for (const s of Object.keys(stageMedians) as PrivateStageName[]) stageMedians[s] = median(steady.map((e) => e.stages[s]));
    return {
      tokens: events.length,
      tokPerS: events.length / elapsed,
      text: events.map((e) => e.text).join('') + (stream ? stream.flush() : ''),
      ids: events.map((e) => e.id),
      protocol: this.params.protocol,
      placement: this.params.placement,
      expert: this.params.expert,
      stageMedians,
      bytesPerToken: { up: median(steady.map((e) => e.bytesUp)), down: median(steady.map((e) => e.bytesDown)) },
      roundsPerToken: median(steady.map((e) => e.rounds)),
      setup: this.setup,
      insecure: this.insecure,
      floodBits: this.params.floodBits,
      polyN: this.params.ckks.polyN,
    };
  }

  /** Runs a generation to the end: every event and the summary. */
  async run(prompt: string | number[] | Int32Array, options: PrivateGenerateOptions = {}): Promise<{ events: PrivateTokenEvent[]; summary: PrivateSummary }> {
    const events: PrivateTokenEvent[] = [];
    const it = this.generate(prompt, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return { events, summary: r.value };
      events.push(r.value);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.session.dispose();
    await this.connection.close();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
