/**
 * Protocol-test doubles for the server: a GenerationService and a SplitEngine whose numbers
 * are simple functions of their inputs, so the tests can check the server's framing, limits
 * and bookkeeping without a model. Tests of the numbers themselves use the real engine
 * (server-engine.test.ts).
 */
import type { GenerationService, GenerationSummary, PipelineOptions, TokenEvent } from '../../src/pipeline/types';
import { RequestError } from '../../src/server/errors';
import type { SplitEngine, SplitEngineConfig, SplitForwardResult, SplitHead, SplitInput, SplitSession } from '../../src/server/split-engine';

/** Adds the input's rows to `sum`; token ids stand for the rows the fake head embeds them to (id / 100). */
function addRows(sum: Float32Array, input: SplitInput, d: number): void {
  const n = input.kind === 'tokens' ? input.ids.length : input.seqLen;
  const emb = input.kind === 'tokens' ? Float32Array.from(input.ids.flatMap((id) => Array(d).fill(id / 100))) : input.data;
  for (let p = 0; p < n; p++) for (let j = 0; j < d; j++) sum[j] += emb[p * d + j];
}

export class FakeService implements GenerationService {
  disposed = false;
  calls: Array<{ prompt: string; options: PipelineOptions }> = [];
  /** Generations run concurrently here (each is its own timer loop). */
  concurrency = 8;
  /** Milliseconds each token takes (a timer, so the event loop stays free). */
  constructor(public tokenMs = 1) {}

  async *generate(prompt: string, options: PipelineOptions = {}, signal?: AbortSignal): AsyncGenerator<TokenEvent, GenerationSummary> {
    this.calls.push({ prompt, options });
    const n = options.maxTokens ?? 16;
    const t0 = performance.now();
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      if (signal?.aborted) throw Object.assign(new Error('generation aborted'), { name: 'AbortError' });
      await new Promise((r) => setTimeout(r, this.tokenMs));
      const text = ` t${i}`;
      parts.push(text);
      const he = options.mode === 'he-lora';
      yield {
        index: i,
        id: 1000 + i,
        text,
        totalMs: this.tokenMs,
        stages: he ? { forward: 0.5, encode: 0.1, encrypt: 0.2, ct_pt_multiply: 0.05, decrypt: 0.04, lm_head: 0.3, sampling: 0.01 } : { forward: 0.5, lm_head: 0.3, sampling: 0.01 },
      };
    }
    const ms = performance.now() - t0;
    return {
      text: parts.join(''),
      tokens: n,
      tokPerS: (n / ms) * 1000,
      mode: options.mode ?? 'he-lora',
      expert: options.expert === 'auto' || !options.expert ? 'banking_expert' : options.expert,
      stageMedians: { forward: 0.5 },
      options,
    };
  }
  experts(): string[] {
    return ['banking_expert', 'investment_expert', 'shared_attention'];
  }
  describe() {
    return { model: 'fake', backend: 'cpu' as const, hiddenSize: 8, vocabSize: 50, polyN: 16384 };
  }
  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

/** hidden = sum of every embedding row in the session so far, + the length on the last coordinate. */
export class FakeSplit implements SplitEngine {
  readonly d = 8;
  liveSessions = 0;
  disposed = false;
  config(): SplitEngineConfig {
    return {
      model: 'fake-split',
      backend: 'cpu',
      hiddenSize: this.d,
      vocabSize: 50,
      numLayers: 2,
      clientLayers: 0,
      contextLength: 64,
      experts: ['banking_expert', 'shared_attention'],
      expertKeywords: { banking_expert: ['bank'] },
      defaultExpert: 'shared_attention',
      heActive: true,
      polyN: 16384,
      simdSlots: 8192,
      dp: { mechanism: 'off', epsilon: 0, delta: 0, sigma: 0, sensitivity: 0 },
      inputs: ['hidden_states', 'token_ids'],
    };
  }
  tokenize(text: string): number[] {
    return [...text].map((c) => c.charCodeAt(0) % 50);
  }
  detokenize(ids: number[]): string {
    return ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');
  }
  routeExpert(): string {
    return 'banking_expert';
  }
  prompt(q: string): string {
    return q;
  }
  stopTokens(): number[] {
    return [49];
  }
  createSession(): SplitSession {
    const d = this.d;
    const sum = new Float32Array(d);
    let length = 0;
    this.liveSessions++;
    let disposed = false;
    return {
      get length() {
        return length;
      },
      reset() {
        sum.fill(0);
        length = 0;
      },
      forward: async (input: SplitInput): Promise<SplitForwardResult> => {
        const seqLen = input.kind === 'tokens' ? input.ids.length : input.seqLen;
        if (length + seqLen > 64) throw new RangeError('context overflow');
        addRows(sum, input, d);
        length += seqLen;
        await new Promise((r) => setTimeout(r, 1));
        const h = Float32Array.from(sum);
        h[d - 1] += length;
        return { hidden: h, stages: { forward: 0.2, encrypt: 0.1 }, heActive: true, heOperations: 3, dpSigma: 0, expert: 'banking_expert' };
      },
      dispose: () => {
        if (!disposed) this.liveSessions--;
        disposed = true;
      },
    };
  }
  async createHead(): Promise<SplitHead> {
    const d = this.d;
    return {
      backend: 'cpu',
      hiddenSize: d,
      vocabSize: 50,
      embed: async (ids: number[]) => {
        const out = new Float32Array(ids.length * d);
        ids.forEach((id, p) => out.fill(id / 100, p * d, (p + 1) * d));
        return out;
      },
      next: async (h: Float32Array) => ({ id: Math.floor(Math.abs(h[0] * 100)) % 49, lmHeadMs: 0.1, samplingMs: 0.01 }),
      dispose() {},
    };
  }
  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

/**
 * A split engine with the native engine's concurrency semantics, for the server's concurrency
 * tests (the real engine: server-engine-abuse.test.ts):
 *  - a forward takes `msPerPosition` per position off the main thread (a timer, as the
 *    AsyncWorker does) and commits the session's length when it finishes (as ModelSplitEngine
 *    appends the history after the prefill);
 *  - the context is checked at entry (the engine's `context_full`), and a real overflow fails
 *    the way the native KV cache does (code ERR_TENSAFE_ARG_RANGE);
 *  - reset() while a forward of the session runs waits for it ON THE CALLING THREAD, as a native
 *    call that needs the model's mutex does (the main thread then freezes);
 *  - every call that starts while another call of the same session runs is counted in `overlaps`.
 * hidden = sum of the rows (ids / 100 per coordinate) in the cache + the length on the last
 * coordinate, as FakeSplit; a reset that waited drops the in-flight forward's rows from the cache
 * while its length is still committed (the native engine's inconsistency).
 */
export class NativeLikeSplit extends FakeSplit {
  overlaps = 0;
  /** Positions a forward reports as replayed (an engine that rebuilds lost caches). */
  replayedPositions = 0;
  /** reset() queued behind the session's work (the context engine) instead of run at once. */
  queuedReset = false;
  constructor(
    public msPerPosition = 1,
    public contextLength = 4096,
    public hiddenSize = 8,
  ) {
    super();
  }
  config(): SplitEngineConfig {
    return { ...super.config(), contextLength: this.contextLength, hiddenSize: this.hiddenSize };
  }
  createSession(): SplitSession {
    const d = this.hiddenSize;
    const sum = new Float32Array(d);
    const engine = this;
    let length = 0;
    let busyUntil = 0;
    let inFlight = 0;
    let epoch = 0;
    this.liveSessions++;
    let disposed = false;
    return {
      get length() {
        return length;
      },
      reset() {
        if (inFlight > 0) engine.overlaps++;
        const clear = () => {
          epoch++;
          sum.fill(0);
          length = 0;
        };
        if (engine.queuedReset) {
          setTimeout(clear, 0); // takes effect later, before the next forward's work
          return;
        }
        while (performance.now() < busyUntil) {
          // the native mutex: the calling thread waits for the running forward
        }
        clear();
      },
      forward: async (input: SplitInput): Promise<SplitForwardResult> => {
        if (inFlight > 0) engine.overlaps++;
        if (engine.queuedReset) await new Promise((r) => setTimeout(r, 0)); // a queued reset runs first
        const n = input.kind === 'tokens' ? input.ids.length : input.seqLen;
        if (length + n > engine.contextLength) {
          throw new RequestError(`the session holds ${length} positions; ${n} more exceed the context`, { code: 'context_full' });
        }
        inFlight++;
        const myEpoch = epoch;
        const ms = n * engine.msPerPosition;
        busyUntil = Math.max(busyUntil, performance.now() + ms);
        try {
          await new Promise((r) => setTimeout(r, ms));
          if (length + n > engine.contextLength) throw Object.assign(new RangeError('KV cache position out of range'), { code: 'ERR_TENSAFE_ARG_RANGE' });
          if (epoch === myEpoch) addRows(sum, input, d);
          length += n;
          const h = Float32Array.from(sum);
          h[d - 1] += length;
          return { hidden: h, stages: { forward: ms }, heActive: false, heOperations: 0, dpSigma: 0, expert: 'none', replayedPositions: engine.replayedPositions };
        } finally {
          inFlight--;
        }
      },
      dispose: () => {
        if (!disposed) this.liveSessions--;
        disposed = true;
      },
    };
  }
}
