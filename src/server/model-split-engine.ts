/**
 * The split engine over the engine's model (src/engine/model) and the HE-LoRA step of the
 * pipeline (HeLoraGenerator.heApply): the server half of split inference.
 *
 * Server side, per forward: the decoder runs the new positions on the session's KV cache, the
 * final hidden state h of the last position gets the expert's delta
 * scaling * B (A h), with A h computed under CKKS (heApply: encode, encrypt, ct x pt,
 * decrypt, sums, in one native call) and B applied in plaintext, and h + delta goes back.
 *
 * KV caches: a pool of `kvSlots` model instances (each one KV cache). A session keeps its
 * token history; while it owns a slot its forwards are incremental, and when another session
 * took the slot it is replayed (reset + prefill of its history) on the least recently used
 * slot. Memory is bounded by the pool, whatever the number of sessions; disposing a session
 * drops its history and frees its slot.
 *
 * Inputs: token ids always; embedding rows (the original's `hidden_states_b64`) when the
 * model binding offers `prefillEmbeddings(rows: Float32Array, n)` (feature-detected; without
 * it such forwards are answered with 501 saying so; rows and ids carry the same information,
 * see split-engine.ts). Likewise a head offers `embed` when the binding has `embed(ids)`.
 *
 * Client side (SplitHead, also the selftest's client): its own model instance used for the
 * embedding lookup (`embed`), and the LM head and sampling of a given hidden state: the
 * backend's hidden is set to the received state (`setHidden`; on bindings without it, zeroed
 * exactly, h + (-h) = 0, then 0 + x = x), so the engine's multi-threaded CPU (or GPU) LM head
 * projects exactly what the server sent.
 */
import { Model } from '../engine/model';
import type { WeightDtype } from '../engine/model';
import { Tokenizer } from '../engine/tokenizer';
import { clipL2, CsprngGaussian, PrivacyAccountant, resolveDp, type ResolvedDp } from '../pipeline/dp';
import type { ExpertSet } from '../pipeline/experts';
import { layoutOperations, totalHeOperations } from '../pipeline/he-ops';
import { createGenerator, type NativeHeLoraGenerator } from '../pipeline/native';
import type { DpOptions, Packing, StageTimes } from '../pipeline/types';
import { RequestError } from './errors';
import type {
  SplitEngine, SplitEngineConfig, SplitForwardOptions, SplitForwardResult, SplitHead, SplitInput, SplitSampling, SplitSession,
} from './split-engine';

export interface ModelSplitOptions {
  backend: 'cpu' | 'cuda';
  /** Preset name or model folder (the same the pipeline holds). */
  source: string;
  seed?: number;
  dtype?: WeightDtype;
  contextLength?: number;
  /** Presets only: the pipeline's layer count when it truncated the preset (the CPU default). */
  numLayers?: number;
  experts: ExpertSet;
  he?: { polyN?: number; packing?: Packing; decrypt?: 'sequential' | 'batched'; allowInsecure?: boolean };
  /** Model instances (KV caches) shared by the sessions (default 4 on the CPU, 2 on CUDA). */
  kvSlots?: number;
  /**
   * DP noise on the HE input (the pipeline's options): the final hidden state is clipped to
   * L2 norm C and N(0, sigma^2) noise from the OS CSPRNG is added before encryption; the delta
   * computed from it is added to the clean state, as in HE mode. Each forward with HE is one
   * release, composed per session by the pipeline's accountant.
   */
  dp?: DpOptions;
}

/** Serialises the engine's model work (a slot's KV cache must not interleave). */
class AsyncLock {
  private tail: Promise<void> = Promise.resolve();
  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}

interface Slot {
  model: Model;
  owner?: ModelSplitSession;
  lastUsed: number;
}

class ModelSplitSession implements SplitSession {
  /** Token ids of the sequence (-1 for positions sent as embedding rows). */
  history: number[] = [];
  /** The embedding rows sent, when the session runs on rows (for replay). */
  rowsHistory?: Float32Array[];
  /** Composition of this session's DP releases (when DP is on). */
  accountant?: PrivacyAccountant;
  slot?: Slot;
  disposed = false;
  constructor(private readonly engine: ModelSplitEngine) {}
  get length(): number {
    return this.history.length;
  }
  reset(): void {
    // A new sequence; the privacy spent by this session's earlier releases stays counted.
    this.history = [];
    this.rowsHistory = undefined;
    if (this.slot && this.slot.owner === this) this.slot.model.reset();
  }
  forward(input: SplitInput, options: SplitForwardOptions): Promise<SplitForwardResult> {
    return this.engine.forwardSession(this, input, options);
  }
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.history = [];
    this.rowsHistory = undefined;
    this.engine.release(this);
  }
}

export class ModelSplitEngine implements SplitEngine {
  private readonly slots: Slot[];
  private readonly lock = new AsyncLock();
  private readonly heGens = new Map<string, Promise<NativeHeLoraGenerator>>();
  private readonly tokenizer = Tokenizer.qwen();
  private readonly dp: ResolvedDp | null;
  private readonly noise = new CsprngGaussian();
  private disposed = false;
  private clock = 0;

  private constructor(
    private readonly options: ModelSplitOptions,
    slots: Model[],
  ) {
    this.slots = slots.map((model) => ({ model, lastUsed: 0 }));
    this.dp = resolveDp(options.dp);
  }

  static async open(options: ModelSplitOptions): Promise<ModelSplitEngine> {
    const n = options.kvSlots ?? (options.backend === 'cuda' ? 2 : 4);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`kvSlots must be an integer >= 1, got ${n}`);
    const models: Model[] = [];
    try {
      for (let i = 0; i < n; i++) {
        models.push(await Model.load(options.source, { backend: options.backend, seed: options.seed ?? 0, dtype: options.dtype, contextLength: options.contextLength ?? 2048, numLayers: options.numLayers }));
      }
    } catch (err) {
      models.forEach((m) => m.dispose());
      throw err;
    }
    return new ModelSplitEngine(options, models);
  }

  private get modelConfig() {
    return this.slots[0].model.config;
  }

  config(): SplitEngineConfig {
    const c = this.modelConfig;
    const experts = this.options.experts.names();
    const he = this.heOptions();
    return {
      model: c.name,
      backend: this.options.backend,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      numLayers: c.numHiddenLayers,
      clientLayers: 0,
      contextLength: this.slots[0].model.contextLength,
      experts,
      expertKeywords: Object.fromEntries(experts.map((e) => [e, this.keywords(e)])),
      defaultExpert: experts.includes('shared_attention') ? 'shared_attention' : experts[0] ?? 'none',
      heActive: experts.length > 0,
      polyN: he.polyN,
      simdSlots: he.polyN / 2,
      dp: this.dp
        ? { mechanism: this.dp.mechanism, epsilon: this.dp.epsilon, delta: this.dp.delta, sigma: this.dp.sigma, sensitivity: this.dp.sensitivity }
        : { mechanism: 'off', epsilon: 0, delta: 0, sigma: 0, sensitivity: 0 },
      inputs: this.acceptsRows() ? ['hidden_states', 'token_ids'] : ['token_ids'],
    };
  }

  /** Whether the model binding can run the decoder from embedding rows. */
  private acceptsRows(): boolean {
    return typeof (this.slots[0].model.native as unknown as Record<string, unknown>).prefillEmbeddings === 'function';
  }

  private keywords(expert: string): string[] {
    const r = this.options.experts.router as unknown as { config?: { experts?: Record<string, { gate_keywords?: string[] }> } };
    return r.config?.experts?.[expert]?.gate_keywords ?? [];
  }

  private heOptions(): { polyN: number; packing: Packing; decrypt: 'sequential' | 'batched'; allowInsecure: boolean } {
    const h = this.options.he ?? {};
    return { polyN: h.polyN ?? 16384, packing: h.packing ?? 'coefficients', decrypt: h.decrypt ?? 'batched', allowInsecure: h.allowInsecure ?? false };
  }

  /** Ids folded into the model's vocabulary (the tiny test model has 512), as the pipeline does. */
  private fold(ids: number[]): number[] {
    const v = this.modelConfig.vocabSize;
    return ids.map((id) => (id < v ? id : id % v));
  }

  tokenize(text: string): number[] {
    return this.fold(this.tokenizer.encode(text));
  }

  detokenize(ids: number[]): string {
    return ids.map((id) => (id < this.tokenizer.vocabSize ? this.tokenizer.decode([id], { skipSpecialTokens: true }) : `<|id:${id}|>`)).join('');
  }

  routeExpert(query: string): string {
    if (this.options.experts.names().length === 0) return 'none';
    return this.options.experts.resolve('auto', query).name;
  }

  prompt(query: string): string {
    return this.tokenizer.applyChatTemplate([{ role: 'user', content: query }]);
  }

  stopTokens(): number[] {
    return [...new Set([...this.tokenizer.stopIds, ...this.modelConfig.eosTokenIds])];
  }

  createSession(): SplitSession {
    if (this.disposed) throw new RequestError('split engine is shut down', { status: 503, code: 'shutting_down' });
    return new ModelSplitSession(this);
  }

  /** Frees a session's slot (its KV cache is emptied for the next owner). */
  release(session: ModelSplitSession): void {
    const slot = session.slot;
    session.slot = undefined;
    if (slot && slot.owner === session) {
      slot.owner = undefined;
      slot.lastUsed = 0;
      if (!slot.model.disposed) slot.model.reset();
    }
  }

  private heGenerator(expert: string): Promise<NativeHeLoraGenerator> {
    let g = this.heGens.get(expert);
    if (!g) {
      const adapter = this.options.experts.get(expert);
      const pair = adapter.finalHiddenPair(this.modelConfig.hiddenSize);
      const he = this.heOptions();
      g = createGenerator(this.slots[0].model.native, {
        mode: 'he-lora',
        placement: 'final-hidden',
        packing: he.packing,
        decrypt: he.decrypt,
        polyN: he.polyN,
        allowInsecure: he.allowInsecure,
        timers: false,
        scaling: adapter.scaling,
        finalPair: { rank: pair.rank, a: pair.a, b: pair.b },
      });
      g.catch(() => this.heGens.delete(expert));
      this.heGens.set(expert, g);
    }
    return g;
  }

  async forwardSession(session: ModelSplitSession, input: SplitInput, options: SplitForwardOptions): Promise<SplitForwardResult> {
    if (input.kind !== 'tokens' && !this.acceptsRows()) {
      throw new RequestError('this engine runs its decoder from token ids only; send token_ids', { status: 501, code: 'hidden_states_unsupported' });
    }
    if (input.kind !== 'tokens' && session.history.length > 0 && !session.rowsHistory) {
      throw new RequestError('a session holds either token ids or embedding rows; start a new one (incremental: false)', { code: 'mixed_inputs' });
    }
    if (session.disposed) throw new RequestError('split session was closed', { status: 410, code: 'session_closed' });
    const ctx = this.slots[0].model.contextLength;
    const n = input.kind === 'tokens' ? input.ids.length : input.seqLen;
    if (session.history.length + n > ctx) {
      throw new RequestError(`the session holds ${session.history.length} positions; ${n} more exceed the context of ${ctx}`, { field: 'token_ids', code: 'context_full' });
    }
    const release = await this.lock.acquire();
    try {
      if (this.disposed) throw new RequestError('split engine is shut down', { status: 503, code: 'shutting_down' });
      const stages: StageTimes = {};
      const t0 = performance.now();
      const { slot, replayed } = await this.slotFor(session);
      if (input.kind === 'tokens') {
        if (session.rowsHistory && session.history.length === 0) session.rowsHistory = undefined;
        if (session.rowsHistory) throw new RequestError('a session holds either token ids or embedding rows; start a new one (incremental: false)', { code: 'mixed_inputs' });
        await slot.model.prefill(input.ids);
        session.history.push(...input.ids);
      } else {
        await this.prefillRows(slot.model, input.data, input.seqLen);
        session.rowsHistory = [...(session.rowsHistory ?? []), input.data];
        for (let i = 0; i < input.seqLen; i++) session.history.push(-1); // positions held as rows
      }
      const hidden = slot.model.hidden();
      stages.forward = performance.now() - t0;

      const experts = this.options.experts.names();
      const expert = options.expert === 'auto' || !experts.includes(options.expert) ? this.config().defaultExpert : options.expert;
      let heActive = false;
      let heMs = 0;
      if (options.useHe && experts.includes(expert)) {
        const adapter = this.options.experts.get(expert);
        const pair = adapter.finalHiddenPair(hidden.length);
        const gen = await this.heGenerator(expert);
        let x = Float64Array.from(hidden);
        if (this.dp) {
          const tn = performance.now();
          x = clipL2(x, this.dp.clipNorm);
          const n = new Float64Array(x.length);
          this.noise.fill(n, this.dp.sigma);
          for (let i = 0; i < x.length; i++) x[i] += n[i];
          session.accountant ??= new PrivacyAccountant(this.dp.accountant, this.dp.delta);
          session.accountant.addGaussian(this.dp.sigma, this.dp.sensitivity, 1);
          stages.dp_noise = performance.now() - tn;
        }
        const t1 = performance.now();
        const y = await gen.heApply(x);
        heMs = performance.now() - t1;
        const t2 = performance.now();
        // delta = scaling * B y, B: [d, r] row-major (PEFT lora_B.weight).
        const r = pair.rank;
        const s = adapter.scaling;
        for (let i = 0; i < hidden.length; i++) {
          let acc = 0;
          const row = i * r;
          for (let k = 0; k < r; k++) acc += pair.b[row + k] * y[k];
          hidden[i] += s * acc;
        }
        stages.lora_b = performance.now() - t2;
        heActive = true;
      }
      // heApply: one application of the final-hidden layout.
      const layout = heActive ? (await this.heGenerator(expert)).info().layouts[0] : null;
      const heCounts = layout ? layoutOperations(layout) : undefined;
      return {
        hidden,
        stages,
        heActive,
        heMs,
        heOperations: heCounts ? totalHeOperations(heCounts) : 0,
        ...(heCounts ? { heCounts } : {}),
        replayedPositions: replayed,
        dpSigma: heActive && this.dp ? this.dp.sigma : 0,
        ...(session.accountant ? { privacy: session.accountant.spent() } : {}),
        expert: heActive ? expert : 'none',
      };
    } finally {
      release();
    }
  }

  /** The session's slot: its own when it still owns one, else the LRU slot with a replay
   * (`replayed`: the positions recomputed). */
  private async slotFor(session: ModelSplitSession): Promise<{ slot: Slot; replayed: number }> {
    this.clock++;
    if (session.slot && session.slot.owner === session) {
      session.slot.lastUsed = this.clock;
      return { slot: session.slot, replayed: 0 };
    }
    const slot = this.slots.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
    if (slot.owner) slot.owner.slot = undefined;
    slot.owner = session;
    slot.lastUsed = this.clock;
    session.slot = slot;
    slot.model.reset();
    // Replay the session's sequence into this cache.
    if (session.rowsHistory) {
      for (const rows of session.rowsHistory) await this.prefillRows(slot.model, rows, rows.length / slot.model.config.hiddenSize);
    } else if (session.history.length) {
      await slot.model.prefill(session.history);
    }
    return { slot, replayed: session.history.length };
  }

  private prefillRows(model: Model, rows: Float32Array, n: number): Promise<void> {
    const nat = model.native as unknown as { prefillEmbeddings: (rows: Float32Array, n: number) => Promise<void> };
    return nat.prefillEmbeddings(rows, n);
  }

  async createHead(backend: 'auto' | 'cpu' | 'cuda' = 'auto'): Promise<SplitHead> {
    return ModelHead.open(this.options.source, { backend, seed: this.options.seed ?? 0, dtype: backend === this.options.backend ? this.options.dtype : undefined, numLayers: this.options.numLayers });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    const release = await this.lock.acquire();
    try {
      this.disposed = true;
      for (const g of this.heGens.values()) (await g.catch(() => undefined))?.dispose();
      this.heGens.clear();
      for (const s of this.slots) s.model.dispose();
    } finally {
      release();
    }
  }
}

/** The client's LM head and sampling over its own model instance (CPU threads or GPU). */
export class ModelHead implements SplitHead {
  private current?: Float32Array;
  // One hidden state on the backend: concurrent next() calls (several clients sharing a head)
  // must not interleave set-hidden, LM head and sampling.
  private readonly lock = new AsyncLock();
  private constructor(private readonly model: Model) {}

  static async open(source: string, options: { backend?: 'auto' | 'cpu' | 'cuda'; seed?: number; dtype?: WeightDtype; numLayers?: number }): Promise<ModelHead> {
    const model = await Model.load(source, { backend: options.backend ?? 'auto', seed: options.seed ?? 0, dtype: options.dtype, contextLength: 8, numLayers: options.numLayers });
    const head = new ModelHead(model);
    await model.prefill([0]); // the backend needs a hidden state to overwrite
    head.current = model.hidden();
    return head;
  }

  get backend(): 'cpu' | 'cuda' {
    return this.model.backend;
  }
  get hiddenSize(): number {
    return this.model.config.hiddenSize;
  }
  get vocabSize(): number {
    return this.model.config.vocabSize;
  }

  /** Embedding rows, when the model binding offers `embed(ids)` (feature-detected). */
  get embed(): ((ids: number[]) => Promise<Float32Array>) | undefined {
    const nat = this.model.native as unknown as { embed?: (ids: number[]) => Float32Array | Promise<Float32Array> };
    if (typeof nat.embed !== 'function') return undefined;
    return async (ids: number[]) => nat.embed!(ids);
  }

  /** Sets the backend's hidden state to exactly `h`: the binding's setHidden when present,
   * else zero it (h + (-h) = 0) and add h. */
  private setHidden(h: Float32Array): void {
    const nat = this.model.native as unknown as { setHidden?: (h: Float32Array) => void };
    if (typeof nat.setHidden === 'function') {
      nat.setHidden(h);
      this.current = Float32Array.from(h);
      return;
    }
    const neg = new Float32Array(this.current!.length);
    for (let i = 0; i < neg.length; i++) neg[i] = -this.current![i];
    this.model.addToHidden(neg);
    this.model.addToHidden(h);
    this.current = Float32Array.from(h);
  }

  async next(hidden: Float32Array, sampling: SplitSampling, step: number): Promise<{ id: number; lmHeadMs: number; samplingMs: number }> {
    if (hidden.length !== this.hiddenSize) throw new RangeError(`hidden must hold ${this.hiddenSize} values, got ${hidden.length}`);
    const release = await this.lock.acquire();
    try {
      this.setHidden(hidden);
      const t0 = performance.now();
      await this.model.lmHead();
      const lmHeadMs = performance.now() - t0;
      const t1 = performance.now();
      if (step === 0) this.model.setSamplingSeed(sampling.seed ?? Math.floor(Math.random() * 2 ** 32));
      const id = this.model.sample({ temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP });
      return { id, lmHeadMs, samplingMs: performance.now() - t1 };
    } finally {
      release();
    }
  }

  /** The logits of the last next() (for tests). */
  logits(): Float32Array {
    return this.model.logits();
  }

  dispose(): void {
    this.model.dispose();
  }
}

