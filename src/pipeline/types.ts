/**
 * The contract of HE-LoRA generation, shared by the pipeline (src/pipeline), the server
 * (src/server), the CLI and the notebook library. Implementations live elsewhere; this file
 * only fixes the shapes so those parts can be built side by side.
 */

/** Stage names of the original analysis, in pipeline order (+ `network` in server modes). */
export const STAGES = [
  'forward',
  'dp_noise',
  'encode',
  'encrypt',
  'ct_pt_multiply',
  'decrypt',
  'transfer',
  'extract_sum',
  'lora_b',
  'lm_head',
  'sampling',
  'network',
] as const;
export type StageName = (typeof STAGES)[number];

/** One generated token's timings, in milliseconds (absent stages did not run). */
export type StageTimes = Partial<Record<StageName, number>>;

export type GenerationMode = 'base' | 'lora' | 'he-lora';
export type Packing = 'replicated-slots' | 'rotations' | 'coefficients';
export type DecryptMode = 'sequential' | 'batched';
export type Placement = 'final-hidden' | 'layers';
export type KeyOwner = 'server' | 'client';
export type DpMechanism = 'off' | 'classic' | 'analytic' | 'original';

export interface DpOptions {
  mechanism: DpMechanism;
  /** Per-request privacy target (epsilon, delta) the noise is calibrated to. */
  epsilon?: number;
  delta?: number;
  /** L2 clipping norm C. */
  clipNorm?: number;
  /** L2 sensitivity; default 2C (replace-one neighbours). */
  sensitivity?: number;
  /** Accountant used to compose per-token releases. */
  accountant?: 'rdp' | 'zcdp';
}

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
}

/** Everything a generation can be asked for; validated up front with errors naming the option. */
export interface PipelineOptions extends SamplingOptions {
  backend?: 'auto' | 'cpu' | 'cuda';
  /** Model folder or preset ('qwen2.5-1.5b-shape', 'qwen2.5-0.5b-shape', 'tiny', 'default'). */
  model?: string;
  mode?: GenerationMode;
  /** Expert (adapter) name, or 'auto' for the keyword router. */
  expert?: string;
  placement?: Placement;
  packing?: Packing;
  decrypt?: DecryptMode;
  polyN?: number;
  keyOwner?: KeyOwner;
  dp?: DpOptions;
  maxTokens?: number;
  /** Record per-stage timings (CUDA events / steady clock). */
  timers?: boolean;
  /** Reproduce one of the original's optimisation steps (overrides the HE options). */
  seedPreset?: 'baseline' | 'batched-decrypt' | 'poly-n-16384' | 'split-selftest';
  /** Research sweeps only: accept parameter sets below 128-bit security (reported in results). */
  allowInsecure?: boolean;
  /**
   * Where the LM head runs: on the backend (default), or a single-thread float32 CPU loop
   * (the original's split selftest, reproduced by seedPreset 'split-selftest').
   */
  lmHead?: 'backend' | 'cpu-f32-single-thread';
  /**
   * Placement 'layers' only: the layers whose adapter pairs run under HE (the rest of the
   * adapter runs in plaintext). Empty / absent = every adapted layer under HE.
   */
  layersUnderHe?: number[];
  /**
   * CKKS encryption: 'secret-key' (default with keyOwner 'server': the server holds the key
   * anyway, and it is cheaper) or 'public-key' (the original's; the seed presets use it).
   */
  encryption?: 'secret-key' | 'public-key';
}

/**
 * Ciphertext work of one token (HE-LoRA mode): what the original reports as `he_operations`
 * and `ciphertext_bytes`, counted from the packing layouts of the HE applications that ran.
 */
export interface HeOperations {
  encryptions: number;
  /** Ciphertext x plaintext products. */
  products: number;
  decryptions: number;
  /** Ciphertext rotations (the rotations packing's rotate-and-sum; 0 for the others). */
  rotations: number;
  /** Bytes of the ciphertexts encrypted (the encrypted input a client would send). */
  ciphertextBytes: number;
}

/** One streamed token. */
export interface TokenEvent {
  index: number;
  id: number;
  text: string;
  stages: StageTimes;
  /** Wall-clock ms of the whole step as seen from JS. */
  totalMs: number;
  /** HE-LoRA mode: the ciphertext work this token ran (the prompt's HE work on the first token). */
  he?: HeOperations;
}

/** Summary after a generation finishes. */
export interface GenerationSummary {
  text: string;
  tokens: number;
  tokPerS: number;
  mode: GenerationMode;
  expert?: string;
  /** Median ms per stage over the generated tokens. */
  stageMedians: StageTimes;
  /** Cumulative (epsilon, delta) spent by this request's DP releases, when DP is on. */
  privacy?: { epsilon: number; delta: number; accountant: string; releases: number };
  options: PipelineOptions;
  /** True when parameters below 128-bit security were used (allowInsecure). */
  insecure?: boolean;
  /** Where CKKS ran: 'cpu', 'cuda' (per-operation), 'cuda-resident' (one device-resident step). */
  heBackend?: string;
  /** Where plaintext LoRA ran (mode lora, and the plaintext pairs of he-lora layers): 'cuda-resident' (on the device), 'host', 'mixed'; 'none' without any. */
  loraBackend?: string;
}

/** What the server and the notebooks drive: one loaded model + adapters + HE context. */
export interface GenerationService {
  /** Streams tokens; abort with the signal (native work stops between tokens). */
  generate(prompt: string, options?: PipelineOptions, signal?: AbortSignal): AsyncGenerator<TokenEvent, GenerationSummary>;
  /** Names of the experts (adapters) available. */
  experts(): string[];
  /** Split mode: runs the server part on hidden states / token ids. */
  describe(): { model: string; backend: 'cpu' | 'cuda'; hiddenSize: number; vocabSize: number; polyN: number };
  /**
   * Generations this service runs at the same time (default 1: one KV cache). The server gives
   * out no more generation slots than this, so a client holding a slot is really generating.
   */
  readonly concurrency?: number;
  dispose(): Promise<void>;
}
