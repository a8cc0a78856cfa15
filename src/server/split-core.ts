/**
 * The split forward shared by `WS /api/v1/split/stream` and `POST /api/v1/split/forward`:
 * session lookup (KV cache), the generation gate, the engine call, and the result in the
 * original's fields (`pre_activations_b64`, `he_active`, `encrypt_ms`, `compute_ms`,
 * `decrypt_ms`, `he_operations`, `dp_sigma`, `total_ms`, `incremental`, `cached_seq_len`,
 * `layers_computed`) plus ours (`stages`, `dtype`, `expert`).
 *
 * Only the last position's hidden state is returned (seq_len 1, output_shape [1, d]): the
 * only one a client's LM head needs; the original returned every position of a prefill,
 * and its clients take the last row either way.
 */
import { ServerContext, requireSplit } from './context';
import { RequestError } from './errors';
import { encodeBase64, HiddenDtype, unpackFrame } from './hidden-codec';
import type { SplitForwardResult } from './split-engine';
import { Json, parseSplitForward, SplitForwardRequest } from './validate';

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

/** Splits a binary forward frame into header and payload. */
export function parseBinaryForward(frame: Uint8Array): { header: Json; payload: Uint8Array } {
  return unpackFrame(frame);
}

/**
 * Runs one forward in session `key` (created on first use) inside the generation gate.
 * A non-incremental forward starts the sequence over; an incremental one appends.
 */
export async function runForward(ctx: ServerContext, key: string, owner: string | undefined, req: SplitForwardRequest, signal: AbortSignal): Promise<SplitOutcome> {
  const engine = requireSplit(ctx);
  const t0 = performance.now();
  // Continuing a session that the cap or the idle timeout reclaimed would silently restart
  // the sequence from this one token: say so instead.
  if (req.incremental && !ctx.sessions.has(key) && ctx.sessions.wasReclaimed(key)) {
    throw new RequestError(`session ${JSON.stringify(req.sessionId)} expired (idle timeout or session cap); resend the whole sequence with incremental: false`, {
      status: 409,
      field: 'session_id',
      code: 'session_expired',
    });
  }
  const release = await ctx.gate.acquire(signal);
  try {
    return await ctx.sessions.use(
      key,
      () => engine.createSession(),
      async (session) => {
        if (!req.incremental) session.reset();
        const cachedSeqLen = session.length;
        const result = await session.forward(req.input, { expert: req.expert, useHe: req.useHe });
        // The engine's own count (taken in the session's order of calls) when it gives one.
        return { req, result, cachedSeqLen: result.cachedSeqLen ?? cachedSeqLen, totalMs: performance.now() - t0 };
      },
      owner,
    );
  } finally {
    release();
  }
}

const r2 = (v: number | undefined) => Math.round((v ?? 0) * 100) / 100;

/** The result fields (without the hidden state itself). */
export function resultFields(ctx: ServerContext, o: SplitOutcome, dtype: HiddenDtype): Json {
  const s = o.result.stages;
  return {
    type: 'result',
    seq_len: 1,
    output_shape: [1, o.result.hidden.length],
    dtype,
    he_active: o.result.heActive,
    encrypt_ms: r2((s.encode ?? 0) + (s.encrypt ?? 0)),
    // An engine that times the HE step as one call reports it here (encode .. sums).
    compute_ms: r2(s.ct_pt_multiply ?? o.result.heMs),
    he_ms: r2(o.result.heMs ?? (s.encode ?? 0) + (s.encrypt ?? 0) + (s.ct_pt_multiply ?? 0) + (s.decrypt ?? 0) + (s.transfer ?? 0) + (s.extract_sum ?? 0)),
    decrypt_ms: r2((s.decrypt ?? 0) + (s.transfer ?? 0)),
    he_operations: o.result.heOperations,
    dp_sigma: o.result.dpSigma,
    ...(o.result.privacy ? { dp_epsilon_spent: o.result.privacy.epsilon, dp_delta: o.result.privacy.delta, dp_releases: o.result.privacy.releases } : {}),
    total_ms: r2(o.totalMs),
    incremental: o.cachedSeqLen > 0,
    cached_seq_len: o.cachedSeqLen,
    layers_computed: requireSplit(ctx).config().numLayers,
    expert: o.result.expert,
    stages: s,
  };
}

/** The original's JSON result: fields + base64 hidden state. */
export function jsonResult(ctx: ServerContext, o: SplitOutcome): Json {
  return { ...resultFields(ctx, o, o.req.responseDtype), pre_activations_b64: encodeBase64(o.result.hidden, o.req.responseDtype) };
}
