/**
 * The split engine over the engine's model (src/engine/model) and the HE-LoRA step of the
 * pipeline (HeLoraGenerator.heApply): the server half of split inference.
 *
 * Server side, per forward: the decoder runs the new positions on the session's KV cache, the
 * final hidden state h of the last position gets the expert's delta
 * scaling * B (A h), with A h computed under CKKS (heApply: encode, encrypt, ct x pt,
 * decrypt, sums, in one native call) and B applied in plaintext, and h + delta goes back.
 *
 * Sessions are contexts of ONE model: the pipeline's (the server lends its weights: no copy)
 * or, opened alone, one loaded here. A session's context (its own KV cache of `contextLength`
 * positions) is made at its first forward and freed with the session, so memory is weights +
 * live sessions x KV cache, bounded by the server's session cap; nothing is ever replayed.
 * Calls on one session run one at a time in the order they arrive (reset included: it is
 * queued behind a running forward, never run on the JS thread while one computes); different
 * sessions compute at the same time.
 *
 * Inputs: token ids, or embedding rows (the original's `hidden_states_b64`): rows and ids carry
 * the same information (see split-engine.ts); a session holds one kind.
 *
 * Client side (SplitHead, also the selftest's client): a context for the embedding lookup
 * (`embed`), and the LM head and sampling of a given hidden state (`setHidden`, then the
 * engine's multi-threaded CPU or GPU LM head). On the engine's backend it is a context of the
 * same model; on the other backend it loads the model there.
 */
import { Model, type ModelContext, type WeightDtype } from '../engine/model';
import { Tokenizer } from '../engine/tokenizer';
import { clipL2, CsprngGaussian, PrivacyAccountant, resolveDp, type ResolvedDp } from '../pipeline/dp';
import type { ExpertSet } from '../pipeline/experts';
import { createGenerator, type NativeHeLoraGenerator } from '../pipeline/native';
import type { DpOptions, Packing, StageTimes } from '../pipeline/types';
import { layoutOperations, totalHeOperations } from '../pipeline/he-ops';
import type { HeOperations } from '../pipeline/types';
import { RequestError } from './errors';
import type {
  SplitEngine, SplitEngineConfig, SplitForwardOptions, SplitForwardResult, SplitHead, SplitInput, SplitSampling, SplitSession,
} from './split-engine';

export interface ModelSplitOptions {
  /** The loaded model the sessions are contexts of (the pipeline's); else `source` is loaded. */
  model?: Model;
  /** The backend of `source` (default: the model's, or 'auto'). */
  backend?: 'cpu' | 'cuda';
  /** Preset name or model folder (the same the pipeline holds): loaded when `model` is absent,
   * and for a client head on the other backend. */
  source?: string;
  seed?: number;
  dtype?: WeightDtype;
  /** CUDA device of a model loaded here. */
  device?: number;
  /** Positions per session (default: the model's contextLength). */
  contextLength?: number;
  /** Presets only: the pipeline's layer count when it truncated the preset (the CPU default). */
  numLayers?: number;
  experts: ExpertSet;
  he?: { polyN?: number; packing?: Packing; decrypt?: 'sequential' | 'batched'; allowInsecure?: boolean };
  /**
   * DP noise on the HE input (the pipeline's options): the final hidden state is clipped to
   * L2 norm C and N(0, sigma^2) noise from the OS CSPRNG is added before encryption; the delta
   * computed from it is added to the clean state, as in HE mode. Each forward with HE is one
   * release, composed per session by the pipeline's accountant.
   */
  dp?: DpOptions;
}

/** Runs async calls one at a time, in call order; a call made while idle starts at once. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private pending = 0;
  run<T>(fn: () => Promise<T>): Promise<T> {
    // Idle: start now, so the synchronous part of fn takes effect before run() returns.
    const p = this.pending === 0 ? fn() : this.tail.then(fn, fn);
    this.pending++;
    const settle = () => {
      this.pending--;
    };
    this.tail = p.then(settle, settle);
    return p;
  }
}

class ModelSplitSession implements SplitSession {
  private context?: ModelContext;
  private readonly queue = new SerialQueue();
  /** Positions in the session's cache (after the calls that have finished). */
  private held = 0;
  /** What the session holds: token ids or embedding rows (one kind per sequence). */
  private kind?: 'tokens' | 'embeddings';
  /** Composition of this session's DP releases (when DP is on). */
  accountant?: PrivacyAccountant;
  disposed = false;

  constructor(private readonly engine: ModelSplitEngine) {}

  get length(): number {
    return this.held;
  }

  reset(): void {
    // A new sequence; the privacy spent by this session's earlier releases stays counted.
    void this.queue
      .run(async () => {
        this.held = 0;
        this.kind = undefined;
        if (this.context && !this.context.disposed) await this.context.reset();
      })
      .catch(() => undefined);
  }

  forward(input: SplitInput, options: SplitForwardOptions): Promise<SplitForwardResult> {
    return this.queue.run(() => this.forwardNow(input, options));
  }

  private async forwardNow(input: SplitInput, options: SplitForwardOptions): Promise<SplitForwardResult> {
    if (this.disposed) throw new RequestError('split session was closed', { status: 410, code: 'session_closed' });
    if (this.kind && this.held > 0 && this.kind !== input.kind) {
      throw new RequestError('a session holds either token ids or embedding rows; start a new one (incremental: false)', { code: 'mixed_inputs' });
    }
    const ctxLen = this.engine.sessionContextLength;
    const n = input.kind === 'tokens' ? input.ids.length : input.seqLen;
    if (this.held + n > ctxLen) {
      throw new RequestError(`the session holds ${this.held} positions; ${n} more exceed the context of ${ctxLen}`, { field: 'token_ids', code: 'context_full' });
    }
    const t0 = performance.now();
    this.context ??= await this.engine.newContext();
    const cachedSeqLen = this.held;
    if (input.kind === 'tokens') await this.context.prefill(input.ids);
    else await this.context.prefillEmbeddings(input.data, input.seqLen);
    this.held += n;
    this.kind = input.kind;
    const hidden = this.context.hidden();
    const forwardMs = performance.now() - t0;
    const result = await this.engine.applyHe(this, hidden, options);
    result.stages.forward = forwardMs;
    return { ...result, cachedSeqLen };
  }

  dispose(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    this.disposed = true;
    this.engine.forget(this);
    // Behind the running forward, if any; the KV cache is freed then.
    return this.queue.run(async () => {
      const c = this.context;
      this.context = undefined;
      this.held = 0;
      if (c) await c.dispose();
    });
  }
}

export class ModelSplitEngine implements SplitEngine {
  private readonly sessions = new Set<ModelSplitSession>();
  private readonly heads = new Set<ModelHead>();
  private readonly heGens = new Map<string, Promise<NativeHeLoraGenerator>>();
  /** Ciphertext operations of one heApply, per expert. */
  private readonly heOperations = new Map<string, HeOperations>();
  /** The context the HE generators are made on (heApply touches no KV cache: 1 position). */
  private heContext?: Promise<ModelContext>;
  private readonly tokenizer = Tokenizer.qwen();
  private readonly dp: ResolvedDp | null;
  private readonly noise = new CsprngGaussian();
  private disposed = false;
  readonly sessionContextLength: number;

  private constructor(
    private readonly options: ModelSplitOptions,
    /** The model whose contexts the sessions are. */
    readonly model: Model,
    /** Whether this engine loaded the model (and so disposes it). */
    private readonly ownsModel: boolean,
  ) {
    this.dp = resolveDp(options.dp);
    const max = model.contextLength;
    const n = options.contextLength ?? max;
    if (!Number.isInteger(n) || n < 1 || n > max) {
      throw new RangeError(`contextLength must be an integer in [1, ${max}] (the model's contextLength), got ${n}`);
    }
    this.sessionContextLength = n;
  }

  static async open(options: ModelSplitOptions): Promise<ModelSplitEngine> {
    if (options.model) return new ModelSplitEngine(options, options.model, false);
    if (!options.source) throw new TypeError("options must give 'model' (a loaded Model) or 'source' (a preset or folder)");
    const model = await Model.load(options.source, {
      backend: options.backend ?? 'auto',
      seed: options.seed ?? 0,
      dtype: options.dtype,
      contextLength: options.contextLength ?? 2048,
      numLayers: options.numLayers,
      device: options.device,
    });
    try {
      return new ModelSplitEngine(options, model, true);
    } catch (err) {
      await model.dispose();
      throw err;
    }
  }

  private get modelConfig() {
    return this.model.config;
  }

  config(): SplitEngineConfig {
    const c = this.modelConfig;
    const experts = this.options.experts.names();
    const he = this.heOptions();
    return {
      model: c.name,
      backend: this.model.backend,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      numLayers: c.numHiddenLayers,
      clientLayers: 0,
      contextLength: this.sessionContextLength,
      experts,
      expertKeywords: Object.fromEntries(experts.map((e) => [e, this.keywords(e)])),
      defaultExpert: experts.includes('shared_attention') ? 'shared_attention' : experts[0] ?? 'none',
      heActive: experts.length > 0,
      polyN: he.polyN,
      simdSlots: he.polyN / 2,
      dp: this.dp
        ? { mechanism: this.dp.mechanism, epsilon: this.dp.epsilon, delta: this.dp.delta, sigma: this.dp.sigma, sensitivity: this.dp.sensitivity }
        : { mechanism: 'off', epsilon: 0, delta: 0, sigma: 0, sensitivity: 0 },
      inputs: ['hidden_states', 'token_ids'],
    };
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
    const s = new ModelSplitSession(this);
    this.sessions.add(s);
    return s;
  }

  /** Live sessions (for tests and metrics). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** A session's context: its own KV cache, made off the JS thread. */
  async newContext(): Promise<ModelContext> {
    if (this.disposed) throw new RequestError('split engine is shut down', { status: 503, code: 'shutting_down' });
    return this.model.createContext({ contextLength: this.sessionContextLength });
  }

  /** A session is gone (disposed). */
  forget(session: ModelSplitSession): void {
    this.sessions.delete(session);
  }

  private heGenerator(expert: string): Promise<NativeHeLoraGenerator> {
    let g = this.heGens.get(expert);
    if (!g) {
      const adapter = this.options.experts.get(expert);
      const pair = adapter.finalHiddenPair(this.modelConfig.hiddenSize);
      const he = this.heOptions();
      this.heContext ??= this.model.createContext({ contextLength: 1 });
      const heContext = this.heContext;
      g = heContext.then(async (context) => {
        const gen = await createGenerator(context, {
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
        // heApply: one encryption, the products and their decryptions (the layout's count);
        // read now, while no heApply holds the generator.
        const layout = gen.info().layouts[0];
        if (layout) this.heOperations.set(expert, layoutOperations(layout));
        return gen;
      });
      g.catch(() => this.heGens.delete(expert));
      this.heGens.set(expert, g);
    }
    return g;
  }

  /** The HE-LoRA step on a session's final hidden state (in place), with its stage times. */
  async applyHe(session: ModelSplitSession, hidden: Float32Array, options: SplitForwardOptions): Promise<SplitForwardResult> {
    const stages: StageTimes = {};
    const experts = this.options.experts.names();
    const expert = options.expert === 'auto' || !experts.includes(options.expert) ? this.config().defaultExpert : options.expert;
    let heActive = false;
    let heMs = 0;
    let heCounts: HeOperations | undefined;
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
      heCounts = this.heOperations.get(expert);
    }
    return {
      hidden,
      stages,
      heActive,
      heMs,
      heOperations: heCounts ? totalHeOperations(heCounts) : 0,
      ...(heCounts ? { heCounts } : {}),
      replayedPositions: 0,
      dpSigma: heActive && this.dp ? this.dp.sigma : 0,
      ...(session.accountant ? { privacy: session.accountant.spent() } : {}),
      expert: heActive ? expert : 'none',
    };
  }

  async createHead(backend: 'auto' | 'cpu' | 'cuda' = 'auto'): Promise<SplitHead> {
    if (this.disposed) throw new RequestError('split engine is shut down', { status: 503, code: 'shutting_down' });
    const want = backend === 'auto' ? this.model.backend : backend;
    let head: ModelHead;
    if (want === this.model.backend) {
      head = await ModelHead.onModel(this.model); // the same weights: no copy
    } else {
      const source = this.options.source ?? this.model.source;
      head = await ModelHead.open(source, { backend: want, seed: this.options.seed ?? 0, numLayers: this.options.numLayers });
    }
    this.heads.add(head);
    head.onDispose = () => this.heads.delete(head);
    return head;
  }

  /** Frees the sessions' contexts, the heads made here, the HE generators and (when loaded here) the model. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.sessions].map((s) => s.dispose().catch(() => undefined)));
    await Promise.all([...this.heads].map((h) => h.dispose().catch(() => undefined)));
    for (const g of this.heGens.values()) await (await g.catch(() => undefined))?.dispose();
    this.heGens.clear();
    if (this.heContext) await (await this.heContext.catch(() => undefined))?.dispose();
    if (this.ownsModel) await this.model.dispose();
  }
}

/** The client's embedding, LM head and sampling over a context (CPU threads or GPU). */
export class ModelHead implements SplitHead {
  // One hidden state on the context: concurrent calls (several clients sharing a head) must not
  // interleave set-hidden, LM head and sampling.
  private readonly queue = new SerialQueue();
  /** Called once when disposed (the engine that made it forgets it). */
  onDispose?: () => void;
  private disposed = false;

  private constructor(
    private readonly context: ModelContext,
    /** A model loaded for this head alone (disposed with it). */
    private readonly ownModel?: Model,
  ) {}

  /** A head that loads its own model (another backend, or a client process). */
  static async open(source: string, options: { backend?: 'auto' | 'cpu' | 'cuda'; seed?: number; dtype?: WeightDtype; numLayers?: number; device?: number }): Promise<ModelHead> {
    const model = await Model.load(source, { backend: options.backend ?? 'auto', seed: options.seed ?? 0, dtype: options.dtype, contextLength: 8, numLayers: options.numLayers, device: options.device });
    try {
      return new ModelHead(await model.createContext(), model);
    } catch (err) {
      await model.dispose();
      throw err;
    }
  }

  /** A head over a context of a loaded model (its weights shared). */
  static async onModel(model: Model): Promise<ModelHead> {
    return new ModelHead(await model.createContext({ contextLength: 1 }));
  }

  get backend(): 'cpu' | 'cuda' {
    return this.context.model.backend;
  }
  get hiddenSize(): number {
    return this.context.model.config.hiddenSize;
  }
  get vocabSize(): number {
    return this.context.model.config.vocabSize;
  }

  /** Embedding rows of `ids` (ids.length x hiddenSize floats). */
  readonly embed = (ids: number[]): Promise<Float32Array> => this.queue.run(async () => this.context.embed(ids));

  async next(hidden: Float32Array, sampling: SplitSampling, step: number): Promise<{ id: number; lmHeadMs: number; samplingMs: number }> {
    if (hidden.length !== this.hiddenSize) throw new RangeError(`hidden must hold ${this.hiddenSize} values, got ${hidden.length}`);
    return this.queue.run(async () => {
      await this.context.setHidden(hidden);
      const t0 = performance.now();
      await this.context.lmHead();
      const lmHeadMs = performance.now() - t0;
      const t1 = performance.now();
      if (step === 0) await this.context.setSamplingSeed(sampling.seed ?? Math.floor(Math.random() * 2 ** 32));
      const id = this.context.sample({ temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP });
      return { id, lmHeadMs, samplingMs: performance.now() - t1 };
    });
  }

  /** The logits of the last next() (for tests). */
  logits(): Float32Array {
    return this.context.logits();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.onDispose?.();
    await this.queue.run(async () => {
      await this.context.dispose();
      if (this.ownModel) await this.ownModel.dispose();
    });
  }
}
