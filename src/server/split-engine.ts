/**
 * What the server needs for split inference, and what a split client runs locally.
 *
 * Split mode (the original's "GateLink-Split"): the client holds the embedding table and the
 * LM head; it embeds its tokens, sends the embeddings, the server runs the decoder layers
 * (and the HE-LoRA step on the final hidden state) with a KV cache kept per session, and
 * returns the final hidden state, which the client projects through the LM head and samples.
 *
 * Two inputs: embedding rows (the original's protocol) or token ids (ours). Both carry the
 * same information: embedding rows are a table lookup and invert back to their ids by
 * nearest-row search, which is why the original's split mode hid nothing from the server.
 * An engine that cannot run its decoder from embedding rows lists only 'token_ids'.
 *
 * `SplitEngine` is the server side, `SplitHead` the client side; model-split-engine.ts
 * implements both over the engine's model.
 */
import type { HeOperations, StageTimes } from '../pipeline/types';
import type { Disposable } from './session-store';

export interface SplitEngineConfig {
  /** Model name as the engine reports it (e.g. 'qwen2.5-1.5b-shape (random weights)'). */
  model: string;
  backend: 'cpu' | 'cuda';
  hiddenSize: number;
  vocabSize: number;
  numLayers: number;
  /** Decoder layers the client runs (0: the client runs only the embedding). */
  clientLayers: number;
  /** KV cache capacity per session, in positions. */
  contextLength: number;
  experts: string[];
  expertKeywords: Record<string, string[]>;
  /** Expert used when a forward names none (the original: 'shared_attention'). */
  defaultExpert: string;
  heActive: boolean;
  polyN: number;
  simdSlots: number;
  dp: { mechanism: string; epsilon: number; delta: number; sigma: number; sensitivity: number };
  /** Forward inputs this engine accepts. */
  inputs: Array<'hidden_states' | 'token_ids'>;
}

/** What a forward appends to the session's sequence. */
export type SplitInput =
  | { kind: 'embeddings'; data: Float32Array; seqLen: number }
  | { kind: 'tokens'; ids: number[] };

export function inputLength(input: SplitInput): number {
  return input.kind === 'tokens' ? input.ids.length : input.seqLen;
}

export interface SplitForwardOptions {
  expert: string;
  useHe: boolean;
}

export interface SplitForwardResult {
  /** Final hidden state of the last position (hiddenSize floats), HE-LoRA delta added. */
  hidden: Float32Array;
  /** Server stage times of this call (forward, dp_noise, encode, encrypt, ...), ms. */
  stages: StageTimes;
  heActive: boolean;
  /** ms of the whole HE step when the engine times it as one call (encode .. sums), else absent. */
  heMs?: number;
  /** Ciphertext operations this call ran (encryptions + products + decryptions + rotations). */
  heOperations: number;
  /** The same, by kind, with the bytes encrypted (absent: the engine does not count them). */
  heCounts?: HeOperations;
  /**
   * Positions the engine recomputed beyond this call's input (a session whose KV cache was
   * lent to another and is rebuilt from its history). The server charges them to the
   * client's rate limit and reports them; an engine whose sessions own their caches reports 0.
   */
  replayedPositions?: number;
  dpSigma: number;
  /** Cumulative privacy spent by the session's DP releases (when DP is on). */
  privacy?: { epsilon: number; delta: number; accountant: string; releases: number };
  /** The expert actually applied ('none' when HE/adapters were off). */
  expert: string;
  /** Positions the session held before this forward (measured in the session's order of calls). */
  cachedSeqLen?: number;
}

/** One client sequence on the server: its KV cache. */
export interface SplitSession extends Disposable {
  /** Positions in the KV cache. */
  readonly length: number;
  /** Empties the KV cache (a non-incremental forward starts a new sequence); ordered with the
   * session's forwards (a reset made while one runs takes effect after it). */
  reset(): void;
  /** Appends positions (embedding rows or token ids) and returns the last final hidden state. */
  forward(input: SplitInput, options: SplitForwardOptions): Promise<SplitForwardResult>;
}

export interface SplitEngine {
  config(): SplitEngineConfig;
  tokenize(text: string): number[];
  detokenize(ids: number[]): string;
  /** The keyword router's choice for a query. */
  routeExpert(query: string): string;
  /** Wraps a question in the prompt format the adapters expect. */
  prompt(query: string): string;
  /** Token ids that end a generation. */
  stopTokens(): number[];
  createSession(): SplitSession;
  /** The client-side part, running in this process (the selftest's client). */
  createHead(backend?: 'auto' | 'cpu' | 'cuda'): Promise<SplitHead>;
  dispose(): Promise<void>;
}

export interface SplitSampling {
  temperature: number;
  topK: number;
  topP: number;
  seed?: number;
}

/** The client's local work: embedding, LM head, sampling. */
export interface SplitHead extends Disposable {
  readonly backend: 'cpu' | 'cuda';
  readonly hiddenSize: number;
  readonly vocabSize: number;
  /** Embedding rows of `ids` (ids.length x hiddenSize floats); absent when the head has no table. */
  embed?(ids: number[]): Promise<Float32Array>;
  /** LM head then sampling of one hidden state; `step` numbers the draws of a run. */
  next(hidden: Float32Array, sampling: SplitSampling, step: number): Promise<{ id: number; lmHeadMs: number; samplingMs: number }>;
}
