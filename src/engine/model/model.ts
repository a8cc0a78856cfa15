/**
 * Model: the Qwen2 decoder from TypeScript. Picks the native class of the backend (ModelCpu /
 * ModelCuda), loads a Hugging Face folder or a preset with generated weights, and offers
 * generation as an async iterator of tokens, single forward steps, and the separate stages
 * (forward -> hidden state -> LM head -> sampling) the HE-LoRA pipeline and the timers need.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

import { type Backend, resolveBackend } from '../info';
import { callAsync, callSync, native } from '../native';
import { type ChatMessage, Tokenizer } from '../tokenizer';
import type {
  GenerateOptions,
  GeneratedToken,
  LayerAdapter,
  ModelConfig,
  ModelLoadOptions,
  ModelPreset,
  NativeGeneration,
  Prompt,
  SamplingOptions,
  WeightDtype,
} from './types';

/** The native model object (same methods on ModelCpu and ModelCuda). */
export interface NativeModel {
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
  addToHidden(delta: Float32Array): void;
  setHidden(hidden: Float32Array): void;
  embed(tokens: Int32Array | number[]): Float32Array;
  prefillEmbeddings(rows: Float32Array, n: number): Promise<void>;
  reset(): void;
  trim(length: number): void;
  setSamplingSeed(seed: number | bigint): void;
  setLayerAdapters(adapters: LayerAdapter[]): void;
  /** The same LoRA pairs through the projection-hook interface (tests of the hook plumbing). */
  setHookLora(adapters: LayerAdapter[]): void;
  /** Hook invocations since the last setHookLora. */
  readonly hookCalls: number;
  dispose(): void;
  readonly position: number;
  readonly contextLength: number;
  readonly backend: Backend;
  readonly dtype: WeightDtype;
  readonly config: ModelConfig;
  readonly weightBytesPerToken: number;
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

export class Model {
  private constructor(
    /** The native object, for bindings that take a model (the HE-LoRA pipeline). */
    readonly native: NativeModel,
    /** What was loaded: a preset name or a folder path. */
    readonly source: string,
  ) {}

  /**
   * Loads a preset (`qwen2.5-1.5b-shape`, `qwen2.5-0.5b-shape`, `tiny`: weights generated from
   * `seed`, text meaningless) or a Hugging Face folder (config.json + safetensors, memory-mapped;
   * nothing is ever downloaded).
   */
  static async load(source: ModelPreset | string, options: ModelLoadOptions = {}): Promise<Model> {
    if (typeof source !== 'string' || source.length === 0) {
      throw new TypeError('source must be a preset name or a model folder path');
    }
    const backend = resolveBackend(options.backend ?? 'auto');
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
  get contextLength(): number {
    return callSync(() => this.native.contextLength);
  }
  /** Tokens held in the KV cache. */
  get position(): number {
    return callSync(() => this.native.position);
  }
  /** Weight bytes one decode step reads (for the bandwidth floor). */
  get weightBytesPerToken(): number {
    return callSync(() => this.native.weightBytesPerToken);
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
  /** Samples from the current logits (see sampling.h for the exact rule). */
  sample(options: SamplingOptions = {}): number {
    return callSync(() => this.native.sample(options));
  }
  /** Final hidden state (after the final norm) of the last token: a copy. */
  hidden(): Float32Array {
    return callSync(() => this.native.hidden());
  }
  /** Logits of the last lmHead(): a copy. */
  logits(): Float32Array {
    return callSync(() => this.native.logits());
  }
  /** hidden += delta (the HE-LoRA output goes here before lmHead()). */
  addToHidden(delta: Float32Array): void {
    callSync(() => this.native.addToHidden(delta));
  }
  /** hidden = h (a hidden state computed elsewhere, e.g. the server's in split mode), before lmHead(). */
  setHidden(hidden: Float32Array): void {
    callSync(() => this.native.setHidden(hidden));
  }
  /** Embedding rows of tokens (n x hiddenSize): the client's part in split mode. */
  embed(tokens: readonly number[] | Int32Array): Float32Array {
    return callSync(() => this.native.embed(tokenArray(tokens)));
  }
  /** Appends n positions from embedding rows (n x hiddenSize) instead of token ids. */
  prefillEmbeddings(rows: Float32Array, n: number): Promise<void> {
    return callAsync(() => this.native.prefillEmbeddings(rows, n));
  }
  reset(): void {
    callSync(() => this.native.reset());
  }
  /** Keeps the first `length` cached positions. */
  trim(length: number): void {
    callSync(() => this.native.trim(length));
  }
  setSamplingSeed(seed: number | bigint): void {
    callSync(() => this.native.setSamplingSeed(seed));
  }
  /** Installs plaintext LoRA pairs on chosen projections of chosen layers ([] clears). */
  setLayerAdapters(adapters: LayerAdapter[]): void {
    callSync(() => this.native.setLayerAdapters(adapters));
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
   * Generates tokens one step at a time (one native call per token: prefill + first token,
   * then forward + LM head + sampling), yielding each with its text piece.
   */
  async *generate(prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, void, undefined> {
    const ids = this.encodePrompt(prompt, options.chat ?? false);
    const maxNew = options.maxNewTokens ?? 64;
    if (!Number.isInteger(maxNew) || maxNew < 1) throw new RangeError(`maxNewTokens must be a positive integer, got ${maxNew}`);
    const sampling: SamplingOptions = {
      temperature: options.temperature ?? 0,
      topK: options.topK ?? 0,
      topP: options.topP ?? 1,
    };
    const stop = new Set(this.stopIds(options));
    const explicitStops = new Set(options.stopTokens ?? []);
    if (!options.keepCache) this.reset();
    const room = this.contextLength - this.position;
    if (ids.length > room) {
      throw new RangeError(
        `the prompt has ${ids.length} tokens but the context has room for ${room} (contextLength ${this.contextLength}); ` +
          'shorten it or load the model with a larger contextLength',
      );
    }
    this.setSamplingSeed(options.seed ?? randomSeed());
    const stream = this.config.vocabSize >= 151643 ? Tokenizer.qwen().stream() : undefined;

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
  generateIds(
    prompt: readonly number[] | Int32Array,
    options: GenerateOptions & { timing?: boolean } = {},
  ): Promise<NativeGeneration> {
    if (!options.keepCache) this.reset();
    this.setSamplingSeed(options.seed ?? randomSeed());
    return callAsync(() =>
      this.native.generate(tokenArray(prompt, 'prompt'), {
        maxNewTokens: options.maxNewTokens ?? 64,
        sampling: { temperature: options.temperature ?? 0, topK: options.topK ?? 0, topP: options.topP ?? 1 },
        stopTokens: this.stopIds(options),
        timing: options.timing ?? false,
      }),
    );
  }

  /** Frees the weights and the cache now (GPU memory on CUDA); later calls throw ERR_TENSAFE_DISPOSED. */
  dispose(): void {
    this.native.dispose();
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
