/** Types of the Qwen2 decoder API (src/engine/model). */
import type { BackendChoice } from '../info';
import type { ChatMessage } from '../tokenizer';

export type WeightDtype = 'f32' | 'f16' | 'bf16';

/** The presets: exact Qwen2.5 shapes with generated weights, and a tiny model for tests. */
export type ModelPreset = 'qwen2.5-1.5b-shape' | 'qwen2.5-0.5b-shape' | 'tiny';

export interface ModelLoadOptions {
  /** 'auto' (default): CUDA when a GPU is usable, else the CPU. */
  backend?: BackendChoice;
  /**
   * Weight storage on the backend. Default: the CPU keeps the checkpoint's dtype (bf16 for
   * presets, whose generated values are bf16-exact); CUDA uses f16.
   */
  dtype?: WeightDtype;
  /** KV-cache capacity in tokens (default 4096). */
  contextLength?: number;
  /** Seed of the generated weights of a preset (default 0); ignored for a folder. */
  seed?: number | bigint;
  /** Presets only: keep the first numLayers layers (named so: "..., 4 of 28 layers (random weights)"). */
  numLayers?: number;
  /**
   * CUDA device index among the visible ones (CUDA_VISIBLE_DEVICES applies; default 0). Implies
   * backend 'cuda' when backend is 'auto'; refused with backend 'cpu'.
   */
  device?: number;
}

/** Options of model.createContext(). */
export interface ContextOptions {
  /** KV-cache capacity in tokens (default and maximum: the model's contextLength). */
  contextLength?: number;
  /** Seed of the sampling draws (default 0; generate() sets its own per run). */
  seed?: number | bigint;
}

export type ProjectionName = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';

/** What runWithSites computes: a prompt (prefill) or one decode step. */
export type SiteOp = { prefill: readonly number[] | Int32Array } | { decode: number };

/** A group of projections of one layer that share one input (q/k/v, o, gate/up or down). */
export interface ProjectionSite {
  layer: number;
  modules: ProjectionName[];
}

/** What onSite receives: the group's input row at one position. */
export interface SiteCall {
  layer: number;
  modules: ProjectionName[];
  /** Absolute position of the row in the context. */
  position: number;
  /** The projections' input (in_dim floats): a copy, onSite may keep it. */
  input: Float32Array;
}

/** The model's shape as read from config.json or a preset. */
export interface ModelConfig {
  /** e.g. "qwen2.5-1.5b-shape (random weights)", or the folder's name. */
  name: string;
  modelType: string;
  architecture: string;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  torchDtype: string;
  bosTokenId: number;
  eosTokenIds: number[];
  parameterCount: number;
}

export interface SamplingOptions {
  /** 0 (default): greedy. */
  temperature?: number;
  /** 0 (default): off. */
  topK?: number;
  /** 1 (default): off; in (0, 1]. */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate at most (default 64). */
  maxNewTokens?: number;
  /**
   * Seed of the sampling draws (non-greedy sampling). Default: a fresh random seed per call;
   * pass one for reproducible runs (same seed, same tokens, on either backend).
   */
  seed?: number | bigint;
  /** Stop at the model's EOS ids / the tokenizer's stop ids (default true). */
  stopAtEos?: boolean;
  /** Extra ids to stop at. */
  stopTokens?: number[];
  /** Wrap a string prompt in the chat template (default false; a ChatMessage[] prompt always is). */
  chat?: boolean;
  /** Continue after what the cache holds instead of starting afresh (default false). */
  keepCache?: boolean;
}

/** One generated token, as the async iterator yields it. */
export interface GeneratedToken {
  id: number;
  /** Text this token completes ('' while a multi-byte character is still incomplete; ids-only models: ''). */
  text: string;
  /** 0 for the first generated token. */
  index: number;
  /** Wall time of this step (prefill + first token for index 0), milliseconds. */
  ms: number;
  /** Set on the last token: why generation stopped. */
  finishReason?: 'length' | 'eos' | 'stop' | 'context';
}

export type Prompt = string | readonly number[] | Int32Array | readonly ChatMessage[];

/** A plaintext LoRA pair on one projection of one layer: y += scaling * B (A x). */
export interface LayerAdapter {
  layer: number;
  target: ProjectionName;
  rank: number;
  scaling?: number;
  /** [rank, in] row-major (PEFT lora_A.weight). */
  a: Float32Array;
  /** [out, rank] row-major (PEFT lora_B.weight). */
  b: Float32Array;
}

/** Result of the native generation loop (Model.generateIds). */
export interface NativeGeneration {
  tokens: Int32Array;
  prefillMs: number;
  decodeMs: number;
  totalMs: number;
  /** Per decode step, with `timing: true`: each stage synchronised and timed. */
  forwardMs?: Float64Array;
  lmHeadMs?: Float64Array;
  samplingMs?: Float64Array;
}
