/**
 * `WS /api/v1/split/stream`: the original's persistent split connection. Text frames are
 * JSON messages with a `type`:
 *   ping      -> {"type":"pong"}
 *   config    -> {"type":"config", model, hidden_dim, vocab_size, num_layers, ...}
 *   tokenize  -> {"type":"token_ids", token_ids, length}      (field `text`, <= 10000 chars)
 *   forward   -> {"type":"result", pre_activations_b64, ...}   (default type, as the original)
 *   reset     -> {"type":"reset", session_id}                  (ours: frees the session's KV cache)
 *   anything else -> {"type":"error", message: "Unknown message type: ..."}
 * Binary frames (ours, hidden-codec.ts) carry a forward with its hidden state as raw
 * float32/float16 and are answered with a binary result frame in `response_dtype`.
 *
 * Sessions belong to the connection: `session_id` names one of this connection's sequences;
 * they are freed when the connection closes (and by the idle timeout and the cap).
 *
 * A connection's messages are handled one at a time, in order (ws-flow.ts: a flooding client
 * is paused, not buffered), and each answer waits for a client that reads slowly (bounded).
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { clientKey, requireSplit, ServerContext, timedSend, track } from './context';
import { RequestError } from './errors';
import { encodeValues, packFrame } from './hidden-codec';
import { jsonResult, parseBinaryForward, parseForward, resultFields, runForward } from './split-core';
import { LIMITS, parseJsonObject, stringField } from './validate';
import { drainOrDrop, frameText, sendErrorFrame, serialMessages } from './ws-flow';

let connections = 0;

/** The original's split config fields (+ ours: backend, context_length, dtypes, binary_frames, poly_n). */
export function splitConfigBody(ctx: ServerContext): Record<string, unknown> {
  const c = requireSplit(ctx).config();
  return {
    model: c.model,
    hidden_dim: c.hiddenSize,
    vocab_size: c.vocabSize,
    num_layers: c.numLayers,
    client_layers: c.clientLayers,
    dp_epsilon: c.dp.epsilon,
    dp_delta: c.dp.delta,
    dp_sigma: c.dp.sigma,
    dp_sensitivity: c.dp.sensitivity,
    dp_mechanism: c.dp.mechanism,
    experts: c.experts,
    expert_keywords: c.expertKeywords,
    default_expert: c.defaultExpert,
    simd_slots: c.simdSlots,
    poly_n: c.polyN,
    he_active: c.heActive,
    backend: c.backend,
    context_length: c.contextLength,
    dtypes: ['float32', 'float16'],
    binary_frames: true,
    inputs: c.inputs,
  };
}

export function handleSplitSocket(ctx: ServerContext, ws: WebSocket, req: IncomingMessage): void {
  const client = clientKey(req);
  const owner = `ws${++connections}`;
  const closed = new AbortController();
  ws.on('close', () => {
    closed.abort();
    ctx.sessions.deleteOwned(owner);
  });

  const handle = async (data: Buffer, isBinary: boolean): Promise<void> => {
    const t0 = performance.now();
    let route = 'ws:/api/v1/split/stream';
    let ok = true;
    try {
      if (isBinary) {
        route += ':forward';
        const { header, payload } = parseBinaryForward(data);
        await forward(header, payload, true);
        return;
      }
      const msg = parseJsonObject(frameText(data), 'message');
      const type = msg.type ?? 'forward';
      route += `:${typeof type === 'string' && ['ping', 'config', 'tokenize', 'forward', 'reset'].includes(type) ? type : 'unknown'}`;
      switch (type) {
        case 'ping':
          timedSend(ws, () => JSON.stringify({ type: 'pong', ...(msg.t !== undefined ? { t: msg.t } : {}) }));
          return;
        case 'config':
          timedSend(ws, () => JSON.stringify({ type: 'config', ...splitConfigBody(ctx) }));
          return;
        case 'tokenize': {
          const text = stringField(msg, 'text', LIMITS.tokenizeMaxChars, undefined);
          const ids = requireSplit(ctx).tokenize(text);
          timedSend(ws, () => JSON.stringify({ type: 'token_ids', token_ids: ids, length: ids.length }));
          return;
        }
        case 'reset': {
          const sid = stringField(msg, 'session_id', LIMITS.sessionIdMaxChars, 'default');
          ctx.sessions.delete(`${owner}:${sid}`);
          timedSend(ws, () => JSON.stringify({ type: 'reset', session_id: sid }));
          return;
        }
        case 'forward':
          await forward(msg, undefined, false);
          return;
        default:
          throw new RequestError(`Unknown message type: ${typeof type === 'string' ? type : JSON.stringify(type)}`, { field: 'type', code: 'unknown_type' });
      }
    } catch (err) {
      ok = false;
      if (!closed.signal.aborted) sendErrorFrame(ws, err);
    } finally {
      ctx.metrics.request(route, performance.now() - t0, ok);
    }
  };

  const forward = async (msg: Record<string, unknown>, payload: Uint8Array | undefined, binary: boolean): Promise<void> => {
    if (ctx.closing) throw new RequestError('server is shutting down', { status: 503, code: 'shutting_down' });
    const fwd = parseForward(ctx, msg, payload);
    const { controller, done } = track(ctx, closed.signal);
    try {
      // Charged by split-core's forwardCost: a sequence costs one request, its one-token
      // incremental steps nothing (or a split client would hit the limit after a hundred
      // tokens), longer inputs and replays what they compute.
      const outcome = await runForward(ctx, `${owner}:${fwd.sessionId}`, owner, client, fwd, controller.signal);
      const network = timedSend(ws, () =>
        binary
          ? packFrame({ ...resultFields(ctx, outcome, fwd.responseDtype), session_id: fwd.sessionId }, encodeValues(outcome.result.hidden, fwd.responseDtype))
          : JSON.stringify({ ...jsonResult(ctx, outcome), session_id: fwd.sessionId }),
      );
      ctx.metrics.token({ ...outcome.result.stages, network });
      await drainOrDrop(ws, ctx.flow, controller.signal);
    } finally {
      done();
    }
  };

  serialMessages(ws, ctx.flow.maxPending, handle);
}
