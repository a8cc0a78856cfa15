/**
 * The split forward shared by `WS /api/v1/split/stream` and `POST /api/v1/split/forward`:
 * the rate charge, the session's turn (one request at a time per session: its reset, length
 * and KV cache never see two), the context check, the split gate, the engine call, and the
 * result in the original's fields (`pre_activations_b64`, `he_active`, `encrypt_ms`,
 * `compute_ms`, `decrypt_ms`, `he_operations`, `dp_sigma`, `total_ms`, `incremental`,
 * `cached_seq_len`, `layers_computed`) plus ours (`stages`, `dtype`, `expert`, `he_ms`,
 * `he_counts`, `replayed_positions`).
 *
 * Rate: a forward costs `forwardCost` requests: one to start a sequence, and one more per
 * POSITIONS_PER_REQUEST positions computed beyond the first, so a one-token incremental step
 * is free (metered by the gate and the context) while a 2000-token "incremental" forward or
 * an engine's replay of a lost cache is charged like the work it is (a replay after the fact).
 *
 * Only the last position's hidden state is returned (seq_len 1, output_shape [1, d]): the
 * only one a client's LM head needs; the original returned every position of a prefill,
 * and its clients take the last row either way.
 */
import { totalHeOperations } from '../pipeline/he-ops';
import { checkRate, ServerContext, requireSplit } from './context';
import { RequestError } from './errors';
import { encodeBase64, HiddenDtype, unpackFrame } from './hidden-codec';
import { inputLength, type SplitForwardResult } from './split-engine';
import { Json, parseSplitForward, SplitForwardRequest } from './validate';

/** Positions of work one rate-limit request pays for. */
export const POSITIONS_PER_REQUEST = 256;

/** Requests a forward of `positions` computed positions costs (see the file comment). */
export function forwardCost(startsSequence: boolean, positions: number): number {
  return (startsSequence ? 1 : 0) + Math.floor(Math.max(0, positions - 1) / POSITIONS_PER_REQUEST);
}

export interface SplitOutcome {
  req: SplitForwardRequest;
  result: SplitForwardResult;
  cachedSeqLen: number;
  totalMs: number;
}

/** Parses a forward from JSON (+ optional binary payload) against the engine's shape. */
export function parseForward(ctx: ServerContext, obj: Json, payload?: Uint8Array): SplitForwardRequest {
  const cfg = requireSplit(ctx).config();
  return parseSplitForward(obj, payload, {
    hiddenSize: cfg.hiddenSize,
    vocabSize: cfg.vocabSize,
    inputs: cfg.inputs,
    experts: cfg.experts,
    defaultExpert: cfg.defaultExpert,
    maxSeqLen: cfg.contextLength,
  });
}

/** Splits a binary forward frame into header and payload; binary frames carry forwards only. */
export function parseBinaryForward(frame: Uint8Array): { header: Json; payload: Uint8Array } {
  const f = unpackFrame(frame);
  if ((f.header.type ?? 'forward') !== 'forward') {
    throw new RequestError(`binary frames carry forwards only, got type ${JSON.stringify(f.header.type)}`, { field: 'type', code: 'unknown_type' });
  }
  return f;
}

/**
 * Runs one forward in session `key` (created on first use) for `client` (its rate bucket):
 * charged first, then in the session's turn (behind any request still running on it), inside
 * the split gate. A non-incremental forward starts the sequence over; an incremental one appends.
 */
export async function runForward(
  ctx: ServerContext,
  key: string,
  owner: string | undefined,
  client: string,
  req: SplitForwardRequest,
  signal: AbortSignal,
): Promise<SplitOutcome> {
  const engine = requireSplit(ctx);
  const t0 = performance.now();
  const live = ctx.sessions.has(key);
  // Continuing a session that the cap or the idle timeout reclaimed would silently restart
  // the sequence from this one token: say so instead.
  if (req.incremental && !live && ctx.sessions.wasReclaimed(key)) {
    throw new RequestError(`session ${JSON.stringify(req.sessionId)} expired (idle timeout or session cap); resend the whole sequence with incremental: false`, {
      status: 409,
      field: 'session_id',
      code: 'session_expired',
    });
  }
  const n = inputLength(req.input);
  checkRate(ctx, client, forwardCost(!req.incremental || !live, n));
  return ctx.sessions.use(
    key,
    () => engine.createSession(),
    async (session) => {
      // The session's turn: no other request of it runs, so its length is exact; a new sequence
      // holds nothing (an engine may queue its reset behind earlier work of the session).
      if (!req.incremental) await session.reset();
      const cachedSeqLen = req.incremental ? session.length : 0;
      const capacity = engine.config().contextLength;
      if (cachedSeqLen + n > capacity) {
        throw new RequestError(`the session holds ${cachedSeqLen} positions; ${n} more exceed the context of ${capacity}`, {
          field: req.input.kind === 'tokens' ? 'token_ids' : 'seq_len',
          code: 'context_full',
        });
      }
      const release = await ctx.splitGate.acquire(signal);
      try {
        const result = await session.forward(req.input, { expert: req.expert, useHe: req.useHe });
        // A replay (the engine rebuilt a lost cache) is work this client caused: charge it.
        if (result.replayedPositions) ctx.limiter.charge(client, forwardCost(false, result.replayedPositions + 1));
        // The engine's own count (taken in the session's order of calls) when it gives one.
        return { req, result, cachedSeqLen: result.cachedSeqLen ?? cachedSeqLen, totalMs: performance.now() - t0 };
      } finally {
        release();
      }
    },
    owner,
    { signal },
  );
}

const r2 = (v: number | undefined) => Math.round((v ?? 0) * 100) / 100;

const HE_STAGE_KEYS = ['encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'transfer', 'extract_sum'] as const;

/**
 * The result fields (without the hidden state itself). `encrypt_ms`, `compute_ms` and
 * `decrypt_ms` come from the engine's per-stage HE times; an engine that times the HE step only
 * as one call reports it in `he_ms` and leaves those three null (`he_stage_times: false`)
 * rather than passing the whole step off as one stage.
 */
export function resultFields(ctx: ServerContext, o: SplitOutcome, dtype: HiddenDtype): Json {
  const s = o.result.stages;
  const perStage = HE_STAGE_KEYS.some((k) => typeof s[k] === 'number');
  const heSum = HE_STAGE_KEYS.reduce((a, k) => a + (s[k] ?? 0), 0);
  const counts = o.result.heCounts;
  return {
    type: 'result',
    seq_len: 1,
    output_shape: [1, o.result.hidden.length],
    dtype,
    he_active: o.result.heActive,
    encrypt_ms: perStage ? r2((s.encode ?? 0) + (s.encrypt ?? 0)) : o.result.heActive ? null : 0,
    compute_ms: perStage ? r2(s.ct_pt_multiply) : o.result.heActive ? null : 0,
    decrypt_ms: perStage ? r2((s.decrypt ?? 0) + (s.transfer ?? 0)) : o.result.heActive ? null : 0,
    he_ms: r2(o.result.heMs ?? heSum),
    he_stage_times: perStage,
    he_operations: counts ? totalHeOperations(counts) : o.result.heOperations,
    ...(counts
      ? { he_counts: { encryptions: counts.encryptions, products: counts.products, decryptions: counts.decryptions, rotations: counts.rotations, ciphertext_bytes: counts.ciphertextBytes } }
      : {}),
    dp_sigma: o.result.dpSigma,
    ...(o.result.privacy ? { dp_epsilon_spent: o.result.privacy.epsilon, dp_delta: o.result.privacy.delta, dp_releases: o.result.privacy.releases } : {}),
    total_ms: r2(o.totalMs),
    incremental: o.cachedSeqLen > 0,
    cached_seq_len: o.cachedSeqLen,
    replayed_positions: o.result.replayedPositions ?? 0,
    layers_computed: requireSplit(ctx).config().numLayers,
    expert: o.result.expert,
    stages: s,
  };
}

/** The original's JSON result: fields + base64 hidden state. */
export function jsonResult(ctx: ServerContext, o: SplitOutcome): Json {
  return { ...resultFields(ctx, o, o.req.responseDtype), pre_activations_b64: encodeBase64(o.result.hidden, o.req.responseDtype) };
}
