/**
 * Model and ModelContext: the Qwen2 decoder from TypeScript, in the shape of llama.cpp and
 * node-llama-cpp. `Model.load()` picks the native class of the backend (ModelCpu / ModelCuda) and
 * loads the weights once (a Hugging Face folder, or a preset with generated weights);
 * `model.createContext()` makes a ModelContext, one conversation's state (KV cache of its own
 * contextLength, position, hidden state, logits, sampling seed, adapters). Any number of contexts
 * share one model's weights and run independently (different contexts compute at the same time).
 *
 * A context offers generation as an async iterator of tokens, single forward steps, and the
 * separate stages (forward -> hidden state -> LM head -> sampling) the HE-LoRA pipeline and the
 * timers need, plus runWithSites (a forward that pauses at chosen projections for async JS work).
 * Calls on one context run in the order they are made and never block the JS thread (see
 * ModelContext). For notebooks and short scripts, the step methods of Model itself run on the
 * model's default context (`model.context`, made on first use with the model's contextLength).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

import { type Backend, resolveDevice } from '../info';
import { callAsync, callSync, native, withCallerStack } from '../native';
import { type ChatMessage, Tokenizer } from '../tokenizer';
import type {
  ContextOptions,
  GenerateOptions,
  GeneratedToken,
  LayerAdapter,
  ModelConfig,
  ModelLoadOptions,
  ModelPreset,
  NativeGeneration,
  ProjectionSite,
  Prompt,
  SamplingOptions,
  SiteCall,
  SiteOp,
  WeightDtype,
} from './types';

/** The native model object (ModelCpu / ModelCuda): the weights, loaded once, shared by its contexts. */
export interface NativeModel {
  createContext(options?: { contextLength?: number; seed?: number | bigint }): Promise<NativeContext>;
  createContextSync(options?: { contextLength?: number; seed?: number | bigint }): NativeContext;
  /** Bytes a context of that length holds (KV cache + scratch). */
  contextBytes(contextLength?: number): number;
  dispose(): Promise<void>;
  readonly backend: Backend;
  readonly dtype: WeightDtype;
  readonly config: ModelConfig;
  /** Longest context of its contexts (and their default). */
  readonly contextLength: number;
  /** CUDA device index, null on the CPU. */
  readonly device: number | null;
  readonly weightBytesPerToken: number;
  /** Bytes of the weights (and shared tables) in the backend's memory. */
  readonly memoryBytes: number;
  /** Live contexts of this model. */
  readonly contexts: number;
  readonly disposed: boolean;
}

/** The native context object (ModelContext): one conversation's state. */
export interface NativeContext {
  prefill(tokens: Int32Array | number[]): Promise<void>;
  decodeStep(token: number): Promise<void>;
  lmHead(): Promise<void>;
  forward(tokens: Int32Array | number[]): Promise<Float32Array>;
  step(tokens: Int32Array | number[] | number, sampling?: SamplingOptions): Promise<number>;
  generate(
    prompt: Int32Array | number[],
    options: { maxNewTokens?: number; sampling?: SamplingOptions; stopTokens?: number[]; timing?: boolean },
  ): Promise<NativeGeneration>;
  sample(sampling?: SamplingOptions): number;
  hidden(): Float32Array;
  logits(): Float32Array;
  addToHidden(delta: Float32Array): Promise<void>;
  setHidden(hidden: Float32Array): Promise<void>;
  embed(tokens: Int32Array | number[]): Float32Array;
  prefillEmbeddings(rows: Float32Array, n: number): Promise<void>;
  reset(): Promise<void>;
  trim(length: number): Promise<void>;
  setSamplingSeed(seed: number | bigint): Promise<void>;
  setLayerAdapters(adapters: LayerAdapter[]): Promise<void>;
  /** The same LoRA pairs through the projection-hook interface (tests of the hook plumbing). */
  setHookLora(adapters: LayerAdapter[]): Promise<void>;
  /** Hook invocations since the last setHookLora. */
  readonly hookCalls: number;
  /** Where the installed plaintext adapters run: CUDA 'cuda-resident' (on the device), 'host' (hooked sites), 'mixed' or 'none'; the CPU backend 'host'. */
  readonly layerAdapterPath: string;
  runWithSites(op: SiteOp, sites: ProjectionSite[], onSite: (call: SiteCall) => Promise<Float32Array[]>): Promise<void>;
  dispose(): Promise<void>;
  readonly position: number;
  readonly contextLength: number;
  readonly backend: Backend;
  readonly dtype: WeightDtype;
  readonly config: ModelConfig;
  readonly device: number | null;
  readonly weightBytesPerToken: number;
  readonly memoryBytes: number;
  /** Work running or queued on the context. */
  readonly busy: boolean;
  readonly disposed: boolean;
}

/** Names of the presets (exact Qwen2.5 shapes with generated weights, and `tiny`). */
export function modelPresets(): Array<{ preset: ModelPreset; config: ModelConfig }> {
  return callSync(() => native().modelPresets());
}

/** The config of a preset or of a folder's config.json, without loading weights. */
export function modelConfig(source: string): ModelConfig {
  return callSync(() => native().modelConfig(source));
}

function isPreset(source: string): boolean {
  return modelPresets().some((p) => p.preset === source);
}

/** Token ids as an Int32Array, refusing what Int32Array.from would silently truncate or wrap. */
function tokenArray(tokens: readonly number[] | Int32Array, name = 'tokens'): Int32Array {
  if (tokens instanceof Int32Array) return tokens;
  if (!Array.isArray(tokens)) throw new TypeError(`${name} must be an Int32Array or an array of token ids`);
  tokens.forEach((id, i) => {
    if (typeof id !== 'number') throw new TypeError(`${name}[${i}] must be a number`);
    if (!Number.isInteger(id) || id < -0x80000000 || id > 0x7fffffff) {
      throw new RangeError(`${name}[${i}] must be an integer token id, got ${id}`);
    }
  });
  return Int32Array.from(tokens);
}

function randomSeed(): bigint {
  return crypto.randomBytes(8).readBigUInt64LE();
}

/** Rethrows a native call's synchronous error with the caller's stack; a later rejection too. */
function callQueued(fn: () => Promise<void>): Promise<void> {
  const callerStack = new Error().stack;
  let p: Promise<void>;
  try {
    p = fn();
  } catch (err) {
    throw withCallerStack(err, callerStack);
  }
  return p.catch((err) => {
    throw withCallerStack(err, callerStack);
  });
}

function busyError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_TENSAFE_BUSY' });
}

/**
 * One conversation's state over a loaded model: its KV cache (contextLength positions), position,
 * hidden state, logits, sampling seed and adapters. Made by `model.createContext()`.
 *
 * Calls on a context run one at a time in the order they are made, and never block the JS
 * thread: forwards (prefill, decodeStep, forward, step, generate, lmHead, prefillEmbeddings,
 * runWithSites) return promises; state changes (reset, trim, setSamplingSeed, setLayerAdapters,
 * addToHidden, setHidden) take effect at once when the context is idle (errors thrown at once)
 * and are queued behind running work otherwise (their promise settles when they ran); reads
 * (hidden, logits, sample, embed) need an idle context and throw ERR_TENSAFE_BUSY while work is
 * pending (await it first). `position` is the position after the last finished call.
 */
export class ModelContext {
  /** @internal use model.createContext() */
  constructor(
    /** The model whose weights this context runs. */
    readonly model: Model,
    /** The native context, for bindings that take one (HeLoraGenerator.create). */
    readonly native: NativeContext,
  ) {}

  /** Tokens held in the KV cache (after the last finished call). */
  get position(): number {
    return callSync(() => this.native.position);
  }
  /** KV-cache capacity in tokens. */
  get contextLength(): number {
    return callSync(() => this.native.contextLength);
  }
  /** Bytes this context holds (KV cache + scratch), in the backend's memory. */
  get memoryBytes(): number {
    return callSync(() => this.native.memoryBytes);
  }
  /** Work is running or queued on this context. */
  get busy(): boolean {
    return callSync(() => this.native.busy);
  }
  get disposed(): boolean {
    return this.native.disposed;
  }

  // ---- single steps and stages ----

  /** Appends tokens and returns the last one's logits (prefill + LM head). */
  forward(tokens: readonly number[] | Int32Array): Promise<Float32Array> {
    return callAsync(() => this.native.forward(tokenArray(tokens)));
  }
  /** Appends tokens to the cache (no LM head). */
  prefill(tokens: readonly number[] | Int32Array): Promise<void> {
    return callAsync(() => this.native.prefill(tokenArray(tokens)));
  }
  decodeStep(token: number): Promise<void> {
    return callAsync(() => this.native.decodeStep(token));
  }
  /** Computes logits from the current (possibly adjusted) hidden state. */
  lmHead(): Promise<void> {
    return callAsync(() => this.native.lmHead());
  }
  /** One native call: forward of the tokens, LM head, sampling; the next token id. */
  step(tokens: readonly number[] | Int32Array | number, sampling: SamplingOptions = {}): Promise<number> {
    return callAsync(() => this.native.step(typeof tokens === 'number' ? tokens : tokenArray(tokens), sampling));
  }
  /** Samples from the current logits (see sampling.h for the exact rule). Needs an idle context. */
  sample(options: SamplingOptions = {}): number {
    return callSync(() => this.native.sample(options));
  }
  /** Final hidden state (after the final norm) of the last token: a copy. Needs an idle context. */
  hidden(): Float32Array {
    return callSync(() => this.native.hidden());
  }
  /** Logits of the last lmHead(): a copy. Needs an idle context. */
  logits(): Float32Array {
    return callSync(() => this.native.logits());
  }
  /** hidden += delta (the HE-LoRA output goes here before lmHead()). */
  addToHidden(delta: Float32Array): Promise<void> {
    return callQueued(() => this.native.addToHidden(delta));
  }
  /** hidden = h (a hidden state computed elsewhere, e.g. the server's in split mode), before lmHead(). */
  setHidden(hidden: Float32Array): Promise<void> {
    return callQueued(() => this.native.setHidden(hidden));
  }
  /** Embedding rows of tokens (n x hiddenSize): the client's part in split mode. Needs an idle context. */
  embed(tokens: readonly number[] | Int32Array): Float32Array {
    return callSync(() => this.native.embed(tokenArray(tokens)));
  }
  /** Appends n positions from embedding rows (n x hiddenSize) instead of token ids. */
  prefillEmbeddings(rows: Float32Array, n: number): Promise<void> {
    return callAsync(() => this.native.prefillEmbeddings(rows, n));
  }
  /** Empties the cache. */
  reset(): Promise<void> {
    return callQueued(() => this.native.reset());
  }
  /** Keeps the first `length` cached positions. */
  trim(length: number): Promise<void> {
    return callQueued(() => this.native.trim(length));
  }
  setSamplingSeed(seed: number | bigint): Promise<void> {
    return callQueued(() => this.native.setSamplingSeed(seed));
  }
  /** Installs plaintext LoRA pairs on chosen projections of chosen layers ([] clears). */
  setLayerAdapters(adapters: LayerAdapter[]): Promise<void> {
    return callQueued(() => this.native.setLayerAdapters(adapters));
  }

  /**
   * A forward (`{ prefill: ids }` or `{ decode: id }`) that pauses at the first projection of each
   * site group for `onSite`, on the JS thread: it receives the group's input row (the same for
   * every module of the group: q/k/v share the post-norm x, gate/up theirs; groups that mix inputs
   * are refused) and resolves with one delta per module (out_dim floats each), added to that
   * module's output. One call per position per group, positions in order. A rejection or a bad
   * delta rejects the forward (code ERR_TENSAFE_SITE with the reason as `cause`, or a
   * TypeError/RangeError naming the delta); the context then keeps its previous position and
   * cache. onSite must not use this context (it is busy until the forward ends). Afterwards
   * hidden(), lmHead() and sample() work as after any forward.
   */
  runWithSites(op: SiteOp, sites: ProjectionSite[], onSite: (call: SiteCall) => Promise<Float32Array[]>): Promise<void> {
    const nativeOp = 'prefill' in op ? { prefill: tokenArray(op.prefill, 'op.prefill') } : op;
    return callAsync(() => this.native.runWithSites(nativeOp, sites, onSite));
  }

  /**
   * Generates tokens one step at a time (one native call per token: prefill + first token,
   * then forward + LM head + sampling), yielding each with its text piece.
   */
  async *generate(prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, void, undefined> {
    const ids = this.model.encodePrompt(prompt, options.chat ?? false);
    const maxNew = options.maxNewTokens ?? 64;
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new RangeError(`maxNewTokens must be a positive integer, got ${maxNew}`);
    const sampling: SamplingOptions = {
      temperature: options.temperature ?? 0,
      topK: options.topK ?? 0,
      topP: options.topP ?? 1,
    };
    const stop = new Set(this.model.stopIds(options));
    const explicitStops = new Set(options.stopTokens ?? []);
    if (!options.keepCache) await this.reset();
    const room = this.contextLength - this.position;
    if (ids.length > room) {
      throw new RangeError(
        `the prompt has ${ids.length} tokens but the context has room for ${room} (contextLength ${this.contextLength}); ` +
          'shorten it or use a context with a larger contextLength',
      );
    }
    await this.setSamplingSeed(options.seed ?? randomSeed());
    const config = this.model.config;
    const stream = config.vocabSize >= 151643 ? Tokenizer.qwen().stream() : undefined;

    let input: Int32Array | number = ids;
    for (let index = 0; index < maxNew; index++) {
      const t0 = performance.now();
      const id = await callAsync(() => this.native.step(input, sampling));
      const ms = performance.now() - t0;
      let text = stream ? stream.push(id) : '';
      let finishReason: GeneratedToken['finishReason'];
      if (stop.has(id)) finishReason = explicitStops.has(id) ? 'stop' : 'eos';
      else if (index === maxNew - 1) finishReason = 'length';
      else if (this.position >= this.contextLength) finishReason = 'context';
      if (finishReason && stream) text += stream.flush();
      yield { id, text, index, ms, ...(finishReason ? { finishReason } : {}) };
      if (finishReason) return;
      input = id;
    }
  }

  /** Generates and collects: the ids, the text, and why it stopped. */
  async generateText(
    prompt: Prompt,
    options: GenerateOptions = {},
  ): Promise<{ ids: number[]; text: string; finishReason: GeneratedToken['finishReason'] }> {
    const ids: number[] = [];
    let text = '';
    let finishReason: GeneratedToken['finishReason'];
    for await (const t of this.generate(prompt, options)) {
      ids.push(t.id);
      text += t.text;
      finishReason = t.finishReason;
    }
    return { ids, text, finishReason };
  }

  /**
   * The whole generation loop in native code (no JS per token): what the benchmark times. With
   * `timing`, each stage is synchronised and timed per step.
   */
  async generateIds(
    prompt: readonly number[] | Int32Array,
    options: GenerateOptions & { timing?: boolean } = {},
  ): Promise<NativeGeneration> {
    const ids = tokenArray(prompt, 'prompt');
    if (!options.keepCache) await this.reset();
    await this.setSamplingSeed(options.seed ?? randomSeed());
    return callAsync(() =>
      this.native.generate(ids, {
        maxNewTokens: options.maxNewTokens ?? 64,
        sampling: { temperature: options.temperature ?? 0, topK: options.topK ?? 0, topP: options.topP ?? 1 },
        stopTokens: this.model.stopIds(options),
        timing: options.timing ?? false,
      }),
    );
  }

  /**
   * Frees the KV cache and scratch (GPU memory on CUDA) once the calls queued before have run,
   * off the JS thread; the promise settles when it is freed. Later calls throw
   * ERR_TENSAFE_DISPOSED. ERR_TENSAFE_BUSY while HE-LoRA generators made on it are alive.
   */
  dispose(): Promise<void> {
    return callQueued(() => this.native.dispose());
  }
  [Symbol.dispose](): void {
    void this.dispose().catch(() => undefined);
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

export class Model {
  private defaultContext?: ModelContext;

  private constructor(
    /** The native model, for bindings that take one. */
    readonly native: NativeModel,
    /** What was loaded: a preset name or a folder path. */
    readonly source: string,
  ) {}

  /**
   * Loads a preset (`qwen2.5-1.5b-shape`, `qwen2.5-0.5b-shape`, `tiny`: weights generated from
   * `seed`, text meaningless) or a Hugging Face folder (config.json + safetensors, memory-mapped;
   * nothing is ever downloaded), once: every context of the model shares these weights.
   */
  static async load(source: ModelPreset | string, options: ModelLoadOptions = {}): Promise<Model> {
    if (typeof source !== 'string' || source.length === 0) {
      throw new TypeError('source must be a preset name or a model folder path');
    }
    const { backend } = resolveDevice(options.backend ?? 'auto', options.device);
    const addon = native();
    const cls = backend === 'cuda' ? addon.ModelCuda : addon.ModelCpu;
    if (!cls) {
      const err = new Error(`backend '${backend}' has no model implementation in this build`);
      (err as NodeJS.ErrnoException).code = 'ERR_TENSAFE_BACKEND';
      throw err;
    }
    const preset = isPreset(source);
    if (!preset && !fs.existsSync(source)) {
      const names = modelPresets().map((p) => p.preset).join(', ');
      throw new RangeError(`'${source}' is neither a preset (${names}) nor an existing model folder`);
    }
    const nativeOptions: Record<string, unknown> = preset ? { preset: source } : { dir: source };
    if (options.dtype !== undefined) nativeOptions.dtype = options.dtype;
    if (options.contextLength !== undefined) nativeOptions.contextLength = options.contextLength;
    if (options.seed !== undefined) nativeOptions.seed = options.seed;
    if (options.numLayers !== undefined) nativeOptions.numLayers = options.numLayers;
    if (options.device !== undefined) nativeOptions.device = options.device;
    const nm = (await callAsync(() => cls.load(nativeOptions))) as NativeModel;
    return new Model(nm, source);
  }

  get config(): ModelConfig {
    return callSync(() => this.native.config);
  }
  /** Display name: says "(random weights)" for presets. */
  get name(): string {
    return this.config.name;
  }
  get backend(): Backend {
    return callSync(() => this.native.backend);
  }
  get dtype(): WeightDtype {
    return callSync(() => this.native.dtype);
  }
  /** The longest context a context of this model may have, and its contexts' default. */
  get contextLength(): number {
    return callSync(() => this.native.contextLength);
  }
  /** CUDA device index (null on the CPU). */
  get device(): number | null {
    return callSync(() => this.native.device);
  }
  /** Weight bytes one decode step reads (for the bandwidth floor). */
  get weightBytesPerToken(): number {
    return callSync(() => this.native.weightBytesPerToken);
  }
  /** Bytes of the weights and shared tables in the backend's memory (device memory on CUDA). */
  get memoryBytes(): number {
    return callSync(() => this.native.memoryBytes);
  }
  /** Bytes a context of `contextLength` positions (default: the model's) holds. */
  contextBytes(contextLength?: number): number {
    return callSync(() => this.native.contextBytes(contextLength));
  }
  /** Live contexts of this model (the default context counted once it exists). */
  get contexts(): number {
    return callSync(() => this.native.contexts);
  }
  get disposed(): boolean {
    return this.native.disposed;
  }

  /** The tokenizer, when this model's vocabulary is Qwen's (presets and real checkpoints). */
  tokenizer(): Tokenizer {
    const v = this.config.vocabSize;
    if (v < 151643) {
      throw new RangeError(`this model's vocabulary (${v} ids) is not Qwen's; give prompts as token ids`);
    }
    return Tokenizer.qwen();
  }

  /** Token ids of a prompt (ids pass through; text and chats go through the tokenizer). */
  encodePrompt(prompt: Prompt, chat = false): Int32Array {
    if (typeof prompt === 'string') {
      const tok = this.tokenizer();
      return Int32Array.from(chat ? tok.encodeChat([{ role: 'user', content: prompt }]) : tok.encode(prompt));
    }
    if (prompt instanceof Int32Array) return prompt;
    if (Array.isArray(prompt) && prompt.length > 0 && typeof prompt[0] === 'object') {
      return Int32Array.from(this.tokenizer().encodeChat(prompt as readonly ChatMessage[]));
    }
    if (Array.isArray(prompt)) return tokenArray(prompt as number[], 'prompt');
    throw new TypeError('prompt must be a string, an array of token ids, an Int32Array or an array of chat messages');
  }

  /** Stop ids for a run: the config's EOS ids plus the tokenizer's, when they fit the vocabulary. */
  stopIds(options: GenerateOptions = {}): number[] {
    const c = this.config;
    const ids = new Set<number>(options.stopTokens ?? []);
    if (options.stopAtEos ?? true) {
      for (const id of c.eosTokenIds) ids.add(id);
      if (c.vocabSize >= 151643) for (const id of Tokenizer.qwen().stopIds) ids.add(id);
    }
    return [...ids].filter((id) => Number.isInteger(id) && id >= 0 && id < c.vocabSize);
  }

  /**
   * A new context (its own KV cache of `contextLength` positions, default the model's, and
   * scratch), allocated off the JS thread. `seed` seeds its sampling draws (default 0).
   */
  async createContext(options: ContextOptions = {}): Promise<ModelContext> {
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    const nc = await callAsync(() => this.native.createContext(options));
    return new ModelContext(this, nc);
  }

  /**
   * The default context, made on first use with the model's contextLength (allocated on the JS
   * thread: the KV cache is reserved, not written). Model's own step methods run on it; servers
   * and anything with several conversations use createContext() instead.
   */
  get context(): ModelContext {
    if (!this.defaultContext) this.defaultContext = new ModelContext(this, callSync(() => this.native.createContextSync()));
    return this.defaultContext;
  }

  // ---- the default context's steps (see ModelContext) ----

  forward(tokens: readonly number[] | Int32Array): Promise<Float32Array> {
    return callAsync(async () => this.context.forward(tokens));
  }
  prefill(tokens: readonly number[] | Int32Array): Promise<void> {
    return callAsync(async () => this.context.prefill(tokens));
  }
  decodeStep(token: number): Promise<void> {
    return callAsync(async () => this.context.decodeStep(token));
  }
  lmHead(): Promise<void> {
    return callAsync(async () => this.context.lmHead());
  }
  sample(options: SamplingOptions = {}): number {
    return this.context.sample(options);
  }
  hidden(): Float32Array {
    return this.context.hidden();
  }
  logits(): Float32Array {
    return this.context.logits();
  }
  addToHidden(delta: Float32Array): Promise<void> {
    return this.context.addToHidden(delta);
  }
  setHidden(hidden: Float32Array): Promise<void> {
    return this.context.setHidden(hidden);
  }
  embed(tokens: readonly number[] | Int32Array): Float32Array {
    return this.context.embed(tokens);
  }
  prefillEmbeddings(rows: Float32Array, n: number): Promise<void> {
    return callAsync(async () => this.context.prefillEmbeddings(rows, n));
  }
  reset(): Promise<void> {
    return this.context.reset();
  }
  trim(length: number): Promise<void> {
    return this.context.trim(length);
  }
  setSamplingSeed(seed: number | bigint): Promise<void> {
    return this.context.setSamplingSeed(seed);
  }
  setLayerAdapters(adapters: LayerAdapter[]): Promise<void> {
    return this.context.setLayerAdapters(adapters);
  }
  /** runWithSites on the default context (see ModelContext.runWithSites). */
  runWithSites(op: SiteOp, sites: ProjectionSite[], onSite: (call: SiteCall) => Promise<Float32Array[]>): Promise<void> {
    return callAsync(async () => this.context.runWithSites(op, sites, onSite));
  }
  /** Tokens held in the default context's KV cache. */
  get position(): number {
    return this.context.position;
  }
  generate(prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, void, undefined> {
    return this.context.generate(prompt, options);
  }
  generateText(prompt: Prompt, options: GenerateOptions = {}): ReturnType<ModelContext['generateText']> {
    return this.context.generateText(prompt, options);
  }
  generateIds(prompt: readonly number[] | Int32Array, options: GenerateOptions & { timing?: boolean } = {}): Promise<NativeGeneration> {
    return callAsync(async () => this.context.generateIds(prompt, options));
  }

  /**
   * Frees the weights (GPU memory on CUDA) and the default context, off the JS thread; the
   * promise settles when they are freed. ERR_TENSAFE_BUSY (thrown at once) while contexts made
   * with createContext() are alive: dispose them first. Later calls throw ERR_TENSAFE_DISPOSED.
   */
  dispose(): Promise<void> {
    if (this.native.disposed) return Promise.resolve();
    const own = this.defaultContext && !this.defaultContext.disposed ? 1 : 0;
    const live = this.native.contexts - own;
    if (live > 0) {
      throw withCallerStack(
        busyError(`this model has ${live} live context${live === 1 ? '' : 's'} made with createContext(); dispose ${live === 1 ? 'it' : 'them'} before the model`),
        new Error().stack,
      );
    }
    const done: Array<Promise<void>> = [];
    if (own) done.push(this.defaultContext!.dispose());
    done.push(callSync(() => this.native.dispose()));
    return Promise.all(done).then(() => undefined);
  }
  [Symbol.dispose](): void {
    void this.dispose().catch(() => undefined);
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** The reference sampler of the engine (sampling.h) on given logits and draw u in [0, 1). */
export function sampleToken(logits: Float32Array, sampling: SamplingOptions, u: number): number {
  return callSync(() => native().sampleToken(logits, sampling, u));
}

/** The draw the backends use for the step-th sampled token of a run seeded with `seed`. */
export function samplingUniform(seed: number | bigint, step: number | bigint): number {
  return callSync(() => native().samplingUniform(seed, step));
}

/** Reads a safetensors file (float tensors converted to Float32Array). */
export function readSafetensors(path: string): {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; data?: Float32Array }>;
} {
  return callSync(() => native().readSafetensors(path));
}
