/**
 * Typed access to the HE-LoRA bindings (native/addon/helora_binding.cc). Everything per token
 * runs natively: `HeLoraGenerator.start/next` is one native call per token. A generator runs on
 * a model context (`HeLoraGenerator.create(context, config)`): its calls are queued with the
 * context's own, in order.
 */
import { ModelContext, type NativeContext } from '../engine/model';
import { callAsync, callSync, native } from '../engine/native';
import type { StageName, StageTimes } from './types';

export interface PackingLayoutInfo {
  packing: 'replicated-slots' | 'rotations' | 'coefficients';
  polyN: number;
  slots: number;
  inDim: number;
  rank: number;
  chunk: number;
  chunks: number;
  segment: number;
  rowsPerPlaintext: number;
  products: number;
  rotationsPerProduct: number;
}

export interface LayoutSpec {
  packing: PackingLayoutInfo['packing'];
  polyN: number;
  rank: number;
  inDim: number;
}

export interface ModelConfigInfo {
  name: string;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  tieWordEmbeddings: boolean;
  eosTokenIds: number[];
  parameterCount: number;
}

export interface NativePair {
  rank: number;
  a: Float32Array;
  b: Float32Array;
  layer?: number;
  module?: string;
  underHe?: boolean;
}

export interface GeneratorConfig {
  mode: 'base' | 'lora' | 'he-lora';
  placement?: 'final-hidden' | 'layers';
  packing?: PackingLayoutInfo['packing'];
  decrypt?: 'sequential' | 'batched';
  polyN?: number;
  allowInsecure?: boolean;
  scaling?: number;
  timers?: boolean;
  lmHead?: 'backend' | 'cpu-f32-single-thread';
  /** 'secret-key' (default: the key holder encrypts) or 'public-key' (the original's). */
  encryption?: 'secret-key' | 'public-key';
  /** Where CKKS runs (default: the model's backend). */
  heBackend?: 'cpu' | 'cuda';
  /**
   * CUDA model only: use the device-resident steps where they apply (HE: coefficients, batched,
   * final-hidden; plaintext LoRA final-hidden: A h and B y on the device). Default true.
   */
  resident?: boolean;
  dp?: { clipNorm: number; sigma: number } | null;
  /** Test hook: keep the last HE input before and after clip + noise (lastHeInput()). */
  recordHeInput?: boolean;
  finalPair?: NativePair;
  pairs?: NativePair[];
}

export interface NativeStep {
  token: number;
  /** ms per stage in native stage order; NaN where a stage did not run. */
  stages: Float64Array;
}

export interface NativeHeLoraGenerator {
  start(prompt: Int32Array, sampling?: { temperature?: number; topK?: number; topP?: number; seed?: number }): Promise<NativeStep>;
  next(token: number): Promise<NativeStep>;
  heApply(x: Float64Array, pairIndex?: number): Promise<Float64Array>;
  info(): { heSites: number; releases: number; layouts: Array<PackingLayoutInfo | null>; model: ModelConfigInfo; modelBackend: string; heBackend: string; loraBackend: string };
  /** With config.recordHeInput: the last release's input before clip + noise (`hidden`) and the HE input (`input`); null before one. */
  lastHeInput(): { hidden: Float64Array; input: Float64Array } | null;
  /** Removes its adapters and hooks from the context and frees its CKKS state (queued behind the context's work). */
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

/**
 * A generator on `context` (a ModelContext, or the native context of one). The context must
 * outlive it: disposing a context with live generators raises ERR_TENSAFE_BUSY.
 */
export function createGenerator(context: ModelContext | NativeContext, config: GeneratorConfig): Promise<NativeHeLoraGenerator> {
  const nat = context instanceof ModelContext ? context.native : context;
  return callAsync(() => native().HeLoraGenerator.create(nat, config));
}

export function packingLayout(spec: LayoutSpec): PackingLayoutInfo {
  return callSync(() => native().heLoraLayout(spec));
}

/** Float64 simulation of a packing (slot products, rotate-and-sum, negacyclic products). */
export function simulatePacking(spec: LayoutSpec, a: Float32Array, x: Float64Array): Float64Array {
  return callSync(() => native().heLoraSimulate(spec, a, x));
}

/** A x under CKKS, without a model; `iterations` applications, each with its stage times. */
export function heLinear(
  spec: LayoutSpec & { decrypt?: 'sequential' | 'batched'; allowInsecure?: boolean; encryption?: 'secret-key' | 'public-key' },
  a: Float32Array,
  x: Float64Array,
  iterations = 1,
): Promise<{ y: Float64Array; stages: Float64Array[] }> {
  return callAsync(() => native().heLoraLinear(spec, a, x, iterations));
}

/** N(0, 1) samples from the native DP sampler. */
export function nativeNoise(n: number): Float64Array {
  return callSync(() => native().heLoraNoise(n));
}

/** Native stage order (types.ts STAGES without `network`). */
export function nativeStageNames(): StageName[] {
  return callSync(() => native().heLoraStages as StageName[]);
}

/** Converts a native stage vector into StageTimes (absent stages omitted). */
export function toStageTimes(stages: Float64Array, names = nativeStageNames()): StageTimes {
  const out: StageTimes = {};
  for (let i = 0; i < names.length; i++) if (!Number.isNaN(stages[i])) out[names[i]] = stages[i];
  return out;
}
