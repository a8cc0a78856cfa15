/**
 * Pipeline: the GenerationService over one loaded model, its experts and the native HE-LoRA
 * step. `Pipeline.open(options)` loads the model (a Model: weights once) and the experts once;
 * generations run on the pipeline's own context of that model, one at a time; `pipeline.model`
 * lends the same weights to others (the server's split sessions are contexts of it).
 * `generate()` streams one TokenEvent per token (stage record included) and returns a summary
 * with tok/s and the privacy spent. Each token is ONE native call (HeLoraGenerator.next);
 * TypeScript only streams.
 *
 * The embedded default ('default' model):
 *  - CPU: the Qwen2.5-1.5B shape (d = 1536, real 151936-token vocabulary) with 4 of its 28
 *    layers and random weights, named so: it answers within a minute on 2 cores.
 *  - CUDA: the full Qwen2.5-1.5B shape, random weights.
 * Experts: the folder given as `adapters`, else synthetic PEFT experts generated once for the
 * model's shape under datasets/cache/experts/ (git-ignored).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveDevice, type Backend } from '../engine/info';
import { Ckks, type CkksContextOptions } from '../engine/ckks';
import { Model, type ModelContext } from '../engine/model';
import { packageRoot } from '../engine/native';
import { Tokenizer } from '../engine/tokenizer';
import type { PeftAdapter } from './adapter';
import { PrivacyAccountant, resolveDp, type ResolvedDp } from './dp';
import { DEFAULT_RELATIVE_DELTA, ExpertSet, writeSyntheticExperts, type ModelShape } from './experts';
import { heOperationsOf } from './he-ops';
import { createGenerator, nativeStageNames, toStageTimes, type GeneratorConfig, type ModelConfigInfo, type NativeHeLoraGenerator } from './native';
import { resolveOptions, validatePipelineOptions, type ResolvedOptions } from './options';
import { stageMedians } from './records';
import type { GenerationService, GenerationSummary, PipelineOptions, StageName, TokenEvent } from './types';

/** Options of Pipeline.open: the defaults of every generation plus what is loaded once. */
export interface PipelineOpenOptions extends PipelineOptions {
  /** Experts root (folders of PEFT adapters + optional router.json). */
  adapters?: string;
  /** Layers of a preset model (the CPU default uses 4). */
  numLayers?: number;
  /** Seed of the synthetic model weights. */
  modelSeed?: number;
  /** Seed of the synthetic experts. */
  expertSeed?: number;
  /** KV cache capacity in tokens (the model's contextLength: the longest context of its contexts). */
  contextLength?: number;
  /** CUDA device index of the model (and its CKKS work); implies backend 'cuda' under 'auto'. */
  device?: number;
  /** Delta size of the synthetic experts: |scaling B A x| / |x| (default 0.05; src/pipeline/experts.ts). */
  expertDelta?: number;
}

const OPEN_ONLY_KEYS = ['adapters', 'numLayers', 'modelSeed', 'expertSeed', 'contextLength', 'device', 'expertDelta'] as const;

export const CPU_DEFAULT_LAYERS = 4;

interface ModelChoice {
  /** A preset name or a model folder. */
  source: string;
  numLayers?: number;
}

function chooseModel(model: string, backend: Backend, numLayers?: number): ModelChoice {
  if (model === 'default') {
    return backend === 'cpu' ? { source: 'qwen2.5-1.5b-shape', numLayers: numLayers ?? CPU_DEFAULT_LAYERS } : { source: 'qwen2.5-1.5b-shape', numLayers };
  }
  if (['qwen2.5-1.5b-shape', 'qwen2.5-0.5b-shape', 'tiny'].includes(model)) return { source: model, numLayers };
  if (fs.existsSync(path.join(model, 'config.json'))) {
    if (numLayers) throw new RangeError(`option 'numLayers' applies to presets only, not to the model folder '${model}'`);
    return { source: model };
  }
  throw new RangeError(`option 'model' must be 'default', a preset (qwen2.5-1.5b-shape, qwen2.5-0.5b-shape, tiny) or a folder with config.json, got ${JSON.stringify(model)}`);
}

function shapeOf(c: ModelConfigInfo): ModelShape {
  return { hiddenSize: c.hiddenSize, numLayers: c.numHiddenLayers, numHeads: c.numAttentionHeads, numKvHeads: c.numKeyValueHeads, headDim: c.headDim, intermediateSize: c.intermediateSize };
}

/** Serialises generations: they run on the pipeline's one context. */
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

export class Pipeline implements GenerationService {
  private readonly generators = new Map<string, NativeHeLoraGenerator>();
  private readonly lock = new AsyncLock();
  private readonly stageNames: StageName[] = nativeStageNames();
  private disposed = false;

  private constructor(
    readonly backend: Backend,
    /** The loaded model: its weights are shared with whoever makes contexts of it (split sessions, private clients). */
    readonly model: Model,
    /** The context the pipeline's generations run on. */
    private readonly context: ModelContext,
    readonly modelConfig: ModelConfigInfo,
    readonly expertSet: ExpertSet,
    readonly tokenizer: Tokenizer,
    private readonly defaults: PipelineOptions,
  ) {}

  static async open(options: PipelineOpenOptions = {}): Promise<Pipeline> {
    if (typeof options !== 'object' || options === null) throw new TypeError("option 'options' must be an object");
    const openOnly: Record<string, unknown> = {};
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options)) ((OPEN_ONLY_KEYS as readonly string[]).includes(k) ? openOnly : rest)[k] = v;
    const defaults = validatePipelineOptions(rest);
    if (openOnly.adapters !== undefined && typeof openOnly.adapters !== 'string') throw new TypeError("option 'adapters' must be a folder path");
    for (const k of ['numLayers', 'modelSeed', 'expertSeed', 'contextLength'] as const) {
      const v = openOnly[k];
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < (k === 'modelSeed' || k === 'expertSeed' ? 0 : 1))) {
        throw new RangeError(`option '${k}' must be a ${k.endsWith('Seed') ? 'non-negative' : 'positive'} integer, got ${String(v)}`);
      }
    }
    const o = options;
    if (o.expertDelta !== undefined && !(typeof o.expertDelta === 'number' && o.expertDelta > 0 && o.expertDelta <= 10)) {
      throw new RangeError(`option 'expertDelta' must be a number in (0, 10], got ${String(o.expertDelta)}`);
    }
    const { backend, device } = resolveDevice(defaults.backend ?? 'auto', o.device);
    const choice = chooseModel(defaults.model ?? 'default', backend, o.numLayers);
    const model = await Model.load(choice.source, { backend, device, seed: o.modelSeed ?? 0, contextLength: o.contextLength ?? 2048, numLayers: choice.numLayers });
    let context: ModelContext;
    try {
      context = await model.createContext();
    } catch (err) {
      await model.dispose();
      throw err;
    }
    const cfg = model.config;
    let root = o.adapters;
    if (!root) {
      const s = shapeOf(cfg);
      const seed = o.expertSeed ?? 0;
      const relativeDelta = o.expertDelta ?? DEFAULT_RELATIVE_DELTA;
      root = path.join(packageRoot(), 'datasets', 'cache', 'experts', `d${s.hiddenSize}-l${s.numLayers}-h${s.numHeads}-kv${s.numKvHeads}-i${s.intermediateSize}-seed${seed}-delta${relativeDelta}`);
      if (!fs.existsSync(path.join(root, 'router.json'))) writeSyntheticExperts(root, s, { seed, baseModel: cfg.name, relativeDelta });
    }
    const experts = new ExpertSet(root);
    return new Pipeline(backend, model, context, cfg, experts, Tokenizer.qwen(), defaults);
  }

  experts(): string[] {
    return this.expertSet.names();
  }

  describe(): { model: string; backend: 'cpu' | 'cuda'; hiddenSize: number; vocabSize: number; polyN: number } {
    return { model: this.modelConfig.name, backend: this.backend, hiddenSize: this.modelConfig.hiddenSize, vocabSize: this.modelConfig.vocabSize, polyN: resolveOptions({}, this.defaults).polyN };
  }

  /** The generator's CKKS parameters (native/src/helora/he_linear.h: primes [60, 40], + a 60-bit special prime for rotations). */
  private static heParameters(o: Pick<ResolvedOptions, 'polyN' | 'packing'>): CkksContextOptions {
    return { polyN: o.polyN, primeBits: [60, 40], specialPrimeBits: o.packing === 'rotations' ? 60 : undefined };
  }

  /** Whether the HE parameters of these options exceed the 128-bit bound (the native table decides). */
  static insecure(o: Pick<ResolvedOptions, 'polyN' | 'packing'>): boolean {
    return Ckks.checkParameters({ ...Pipeline.heParameters(o), allowInsecure: true }).belowSecurityBound;
  }

  private generatorConfig(o: ResolvedOptions, adapter: PeftAdapter | undefined, dp: ResolvedDp | null): GeneratorConfig {
    const cfg: GeneratorConfig = {
      mode: o.mode,
      placement: o.placement,
      packing: o.packing,
      decrypt: o.decrypt,
      polyN: o.polyN,
      allowInsecure: o.allowInsecure,
      timers: o.timers,
      lmHead: o.lmHead,
      encryption: o.encryption,
      dp: dp && o.mode === 'he-lora' ? { clipNorm: dp.clipNorm, sigma: dp.sigma } : null,
    };
    if (o.mode === 'base' || !adapter) return cfg;
    cfg.scaling = adapter.scaling;
    if (o.placement === 'final-hidden') {
      const p = adapter.finalHiddenPair(this.modelConfig.hiddenSize);
      cfg.finalPair = { rank: p.rank, a: p.a, b: p.b };
    } else {
      const underHe = (layer: number) => o.layersUnderHe.length === 0 || o.layersUnderHe.includes(layer);
      cfg.pairs = adapter.pairs.map((p) => ({ rank: p.rank, a: p.a, b: p.b, layer: p.layer, module: p.module, underHe: underHe(p.layer) }));
    }
    return cfg;
  }

  private async generator(o: ResolvedOptions, expert: string | undefined, adapter: PeftAdapter | undefined, dp: ResolvedDp | null): Promise<NativeHeLoraGenerator> {
    const key = JSON.stringify({
      mode: o.mode, expert: o.mode === 'base' ? null : expert, placement: o.placement, packing: o.packing, decrypt: o.decrypt, polyN: o.polyN,
      timers: o.timers, lmHead: o.lmHead, encryption: o.encryption, allowInsecure: o.allowInsecure, layersUnderHe: o.layersUnderHe,
      dp: dp && o.mode === 'he-lora' ? [dp.clipNorm, dp.sigma] : null,
    });
    let g = this.generators.get(key);
    if (!g) {
      g = await createGenerator(this.context, this.generatorConfig(o, adapter, dp));
      // Each generator holds CKKS keys: keep a few.
      if (this.generators.size >= 6) {
        const [oldKey, old] = this.generators.entries().next().value as [string, NativeHeLoraGenerator];
        await old.dispose();
        this.generators.delete(oldKey);
      }
      this.generators.set(key, g);
    }
    return g;
  }

  private tokenText(stream: ReturnType<Tokenizer['stream']>, id: number): string {
    // Random-weight models can sample ids past the tokenizer's vocabulary (151936 > 151669).
    if (id >= this.tokenizer.vocabSize) return stream.flush() + `<|id:${id}|>`;
    return stream.push(id);
  }

  async *generate(prompt: string, options?: PipelineOptions, signal?: AbortSignal): AsyncGenerator<TokenEvent, GenerationSummary> {
    if (this.disposed) throw Object.assign(new Error('Pipeline is disposed'), { code: 'ERR_TENSAFE_DISPOSED' });
    if (typeof prompt !== 'string') throw new TypeError("argument 'prompt' must be a string");
    if (prompt.length > 10_000) throw new RangeError(`argument 'prompt' must be at most 10000 characters, got ${prompt.length}`);
    const o = resolveOptions(options ?? {}, this.defaults);
    if (options?.backend && options.backend !== 'auto' && options.backend !== this.backend) {
      throw new RangeError(`option 'backend' is '${options.backend}' but this pipeline runs on '${this.backend}'`);
    }
    if (options?.model && options.model !== (this.defaults.model ?? 'default')) {
      throw new RangeError(`option 'model' cannot change per request (this pipeline holds '${this.modelConfig.name}')`);
    }
    if (o.keyOwner === 'client') {
      throw new RangeError("option 'keyOwner' 'client' is not served in-process: the client must hold the secret key (split mode); use 'server'");
    }
    // The native parameter check, before any work: ERR_TENSAFE_INSECURE (one message) unless allowInsecure.
    if (o.mode === 'he-lora') Ckks.checkParameters({ ...Pipeline.heParameters(o), allowInsecure: o.allowInsecure });
    const dp = resolveDp(o.dp);
    const route = o.mode === 'base' ? undefined : this.expertSet.resolve(o.expert, prompt);
    const release = await this.lock.acquire();
    try {
      const gen = await this.generator(o, route?.name, route?.adapter, dp);
      // A test model with a smaller vocabulary than the tokenizer's (the 'tiny' preset, 512)
      // sees the prompt ids folded into its range; real shapes use the ids unchanged.
      const vocab = this.modelConfig.vocabSize;
      const ids = this.tokenizer.encodeChat([{ role: 'user', content: prompt }]).map((id) => (id < vocab ? id : id % vocab));
      const stream = this.tokenizer.stream({ skipSpecialTokens: true });
      const stop = new Set<number>([...this.tokenizer.stopIds, ...this.modelConfig.eosTokenIds]);
      const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
      const events: TokenEvent[] = [];
      let text = '';
      // HE work per token, from the generator's layouts (read once, not per token): every HE
      // site runs once per position the step computes (the prompt's positions on the first token
      // for placement layers; final-hidden only ever the last position).
      const heLayouts = o.mode === 'he-lora' ? gen.info() : undefined;
      let t0 = process.hrtime.bigint();
      let step = await gen.start(Int32Array.from(ids), { temperature: o.temperature, topK: o.topK, topP: o.topP, seed });
      let decodeMs = 0;
      for (let i = 0; i < o.maxTokens; i++) {
        const totalMs = Number(process.hrtime.bigint() - t0) / 1e6;
        if (i > 0) decodeMs += totalMs;
        const last = stop.has(step.token) || i + 1 === o.maxTokens;
        // The last event carries the decoder's buffered bytes too (an incomplete UTF-8 sequence
        // at the end), so the streamed pieces always add up to the summary's text.
        const piece = this.tokenText(stream, step.token) + (last ? stream.flush() : '');
        text += piece;
        const ev: TokenEvent = { index: i, id: step.token, text: piece, stages: toStageTimes(step.stages, this.stageNames), totalMs };
        if (heLayouts) {
          const positions = o.placement === 'layers' && i === 0 ? ids.length : 1;
          ev.he = heOperationsOf(heLayouts, heLayouts.heSites * positions);
        }
        events.push(ev);
        yield ev;
        if (last || signal?.aborted) break;
        t0 = process.hrtime.bigint();
        step = await gen.next(step.token);
      }
      text += stream.flush();
      const genInfo = gen.info();
      const releases = genInfo.releases;
      let privacy: GenerationSummary['privacy'];
      if (dp && o.mode === 'he-lora' && releases > 0) {
        const acc = new PrivacyAccountant(dp.accountant, dp.delta);
        acc.addGaussian(dp.sigma, dp.sensitivity, releases);
        const s = acc.spent();
        privacy = { epsilon: s.epsilon, delta: s.delta, accountant: s.accountant, releases };
      }
      // tok/s of the decode steps (the first token also pays the prompt's prefill).
      const tokPerS = events.length > 1 ? ((events.length - 1) * 1000) / decodeMs : 1000 / events[0].totalMs;
      return {
        text,
        tokens: events.length,
        tokPerS,
        mode: o.mode,
        expert: route?.name,
        stageMedians: stageMedians(events.slice(events.length > 1 ? 1 : 0)),
        privacy,
        options: { ...o },
        insecure: o.mode === 'he-lora' && Pipeline.insecure(o) ? true : undefined,
        heBackend: o.mode === 'he-lora' ? genInfo.heBackend : undefined,
        loraBackend: o.mode === 'base' ? undefined : genInfo.loraBackend,
      };
    } finally {
      release();
    }
  }

  /** Collects a whole generation: the events and the summary. */
  async run(prompt: string, options?: PipelineOptions, signal?: AbortSignal): Promise<{ events: TokenEvent[]; summary: GenerationSummary }> {
    const it = this.generate(prompt, options, signal);
    const events: TokenEvent[] = [];
    for (;;) {
      const r = await it.next();
      if (r.done) return { events, summary: r.value };
      events.push(r.value);
    }
  }

  /** Frees the generators, the pipeline's context and the model (GPU memory on CUDA). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    const release = await this.lock.acquire();
    try {
      for (const g of this.generators.values()) await g.dispose();
      this.generators.clear();
      await this.context.dispose();
      this.disposed = true;
      // ERR_TENSAFE_BUSY when contexts lent to others (split sessions) are still alive: those
      // owners must go first (the server disposes its split engine before the pipeline).
      await this.model.dispose();
    } finally {
      release();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
  [Symbol.dispose](): void {
    void this.dispose().catch(() => undefined);
  }
}
