/**
 * `WS /api/v1/chat/stream`: one JSON request per generation, answered with the original's
 * frames:
 *   {"type":"input_info", encrypted, active_expert, simd_slots, dp_epsilon, dp_sigma, ...}
 *   {"type":"token", token, metrics:{token_id, token_text, latency_ms, encrypt_ms, compute_ms,
 *     decrypt_ms, network_ms, ...}, aggregate:{...}, done:false}      (one per token)
 *   {"type":"done", aggregate:{...}, done:true}
 *   {"type":"error", message, code, field?}
 *   {"type":"cancelled", reason}   (ours: after {"type":"cancel"} or a shutdown past its grace)
 *   {"type":"queued", position, slots}  (ours: waiting for a generation slot; again as it moves up)
 * plus our fields: `index` and `stages` (the full stage record, ms) on each token frame, and
 * `summary` (tok/s, stage medians, privacy spent) on the done frame. `{"type":"cancel"}` stops
 * the running generation. One generation at a time per connection.
 *
 * The `network` stage is the server's cost to encode a frame and hand it to the socket. A
 * frame cannot contain its own cost, so token frame i reports the cost measured for frame
 * i-1 (the first token: the input_info frame); the done frame's medians use each frame's own.
 *
 * A client that stops reading holds its slot only for the flow's `slowClientMs`: the stream
 * waits while the socket has more than `maxBufferedBytes` unsent, then drops the client.
 */
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import { totalHeOperations } from '../pipeline/he-ops';
import type { GenerationSummary, PipelineOptions, StageTimes, TokenEvent } from '../pipeline/types';
import { checkRate, clientKey, ServerContext, timedSend, track } from './context';
import { RequestError } from './errors';
import { ChatRequest, parseChatRequest, parseJsonObject } from './validate';
import { drainOrDrop, frameText, sendErrorFrame } from './ws-flow';

/** PipelineOptions for a validated chat request. top_p 0 keeps one candidate: greedy. */
export function pipelineOptions(req: Omit<ChatRequest, 'useHe' | 'sessionId' | 'query' | 'mode'>, mode: PipelineOptions['mode']): PipelineOptions {
  const greedy = req.temperature === 0 || req.topP === 0;
  return {
    mode,
    expert: req.expert,
    maxTokens: req.maxTokens,
    temperature: greedy ? 0 : req.temperature,
    topK: greedy ? 1 : req.topK,
    topP: greedy ? 1 : req.topP,
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    timers: true,
  };
}

const r2 = (v: number | undefined) => Math.round((v ?? 0) * 100) / 100;

/** The original's per-token HE figures from our stage record. */
export function originalTokenMetrics(ev: TokenEvent, stages: StageTimes, expert: string, heOn: boolean, simdSlots: number) {
  return {
    token_id: ev.id,
    token_text: ev.text,
    latency_ms: r2(ev.totalMs),
    encrypt_ms: r2((stages.encode ?? 0) + (stages.encrypt ?? 0)),
    compute_ms: r2(stages.ct_pt_multiply),
    decrypt_ms: r2((stages.decrypt ?? 0) + (stages.transfer ?? 0)),
    network_ms: r2(stages.network),
    // Counted from the packing layouts of the HE applications the token ran (null: not counted).
    he_operations: ev.he ? totalHeOperations(ev.he) : null,
    he_rotations: ev.he?.rotations ?? 0,
    he_counts: ev.he
      ? { encryptions: ev.he.encryptions, products: ev.he.products, decryptions: ev.he.decryptions, rotations: ev.he.rotations, ciphertext_bytes: ev.he.ciphertextBytes }
      : null,
    active_expert: expert,
    gate_value: heOn ? 1 : 0,
    ciphertext_bytes: ev.he ? ev.he.ciphertextBytes : null,
    simd_slots_used: heOn ? simdSlots : 0,
    dp_noise_sigma: null as number | null,
  };
}

interface Aggregate {
  total_tokens: number;
  total_time_ms: number;
  tokens_per_second: number;
  avg_latency_ms: number;
  total_he_operations: number | null;
  total_rotations: number;
  total_encrypt_ms: number;
  total_compute_ms: number;
  total_decrypt_ms: number;
  total_network_ms: number;
  expert_distribution: Record<string, number>;
  encryption_active: boolean;
  dp_epsilon_spent: number;
  dp_epsilon_per_request: number;
  dp_noise_sigma: number;
  privacy_budget_remaining: number;
}

function newAggregate(heOn: boolean): Aggregate {
  return {
    total_tokens: 0,
    total_time_ms: 0,
    tokens_per_second: 0,
    avg_latency_ms: 0,
    total_he_operations: null,
    total_rotations: 0,
    total_encrypt_ms: 0,
    total_compute_ms: 0,
    total_decrypt_ms: 0,
    total_network_ms: 0,
    expert_distribution: {},
    encryption_active: heOn,
    dp_epsilon_spent: 0,
    dp_epsilon_per_request: 0,
    dp_noise_sigma: 0,
    privacy_budget_remaining: 0,
  };
}

/** Runs one chat generation over `ws`; resolves when the done (or error) frame is sent. */
export async function streamChat(ctx: ServerContext, ws: WebSocket, req: ChatRequest, signal: AbortSignal): Promise<void> {
  const describe = ctx.service.describe();
  const heOn = req.mode === 'he-lora';
  const simdSlots = heOn ? describe.polyN / 2 : 0;
  const expertLabel = req.mode === 'base' ? 'none' : req.expert;
  const agg = newAggregate(heOn);
  const options = pipelineOptions(req, req.mode);

  let lastNetwork = timedSend(ws, () =>
    JSON.stringify({
      type: 'input_info',
      encrypted: heOn,
      mode: req.mode,
      active_expert: expertLabel,
      simd_slots: simdSlots,
      poly_n: heOn ? describe.polyN : 0,
      backend: describe.backend,
      model: describe.model,
      max_tokens: req.maxTokens,
    }),
  );

  const t0 = performance.now();
  const gen = ctx.service.generate(req.query, options, signal);
  let summary: GenerationSummary | undefined;
  let pending: Promise<IteratorResult<TokenEvent, GenerationSummary>> | undefined = gen.next();
  try {
    for (;;) {
      const step = await pending;
      pending = undefined;
      if (step.done) {
        summary = step.value;
        break;
      }
      const ev = step.value;
      if (signal.aborted) break;
      // Ask for the next token before sending this one: the engine computes it on its own
      // thread (GPU) while this thread encodes and sends, so the network stage overlaps the
      // next token's work instead of adding to it. (The pipeline times its stages itself.)
      pending = gen.next();
      pending.catch(() => undefined); // handled when awaited; no unhandled rejection while we send
      const shown: StageTimes = { ...ev.stages, network: lastNetwork };
      agg.total_tokens++;
      agg.total_encrypt_ms += (ev.stages.encode ?? 0) + (ev.stages.encrypt ?? 0);
      agg.total_compute_ms += ev.stages.ct_pt_multiply ?? 0;
      agg.total_decrypt_ms += (ev.stages.decrypt ?? 0) + (ev.stages.transfer ?? 0);
      agg.total_network_ms += lastNetwork;
      if (ev.he) {
        agg.total_he_operations = (agg.total_he_operations ?? 0) + totalHeOperations(ev.he);
        agg.total_rotations += ev.he.rotations;
      }
      agg.expert_distribution[expertLabel] = (agg.expert_distribution[expertLabel] ?? 0) + 1;
      agg.total_time_ms = performance.now() - t0;
      agg.tokens_per_second = (agg.total_tokens / agg.total_time_ms) * 1000;
      agg.avg_latency_ms = agg.total_time_ms / agg.total_tokens;
      const network = timedSend(ws, () =>
        JSON.stringify({
          type: 'token',
          token: ev.text,
          index: ev.index,
          stages: shown,
          metrics: originalTokenMetrics(ev, shown, expertLabel, heOn, simdSlots),
          aggregate: agg,
          done: false,
        }),
      );
      ctx.metrics.token({ ...ev.stages, network });
      lastNetwork = network;
      // A client that does not read: wait a bounded time, then drop it (this throws).
      await drainOrDrop(ws, ctx.flow, signal);
    }
  } finally {
    // Stopped early (cancel, shutdown, a dropped client, an error): end the generation so the
    // service frees what it holds (its KV cache, its lock) before the slot is released.
    if (!summary) {
      await pending?.catch(() => undefined);
      await gen.return?.(undefined as never).catch(() => undefined);
    }
  }
  if (!summary || signal.aborted) return; // cancelled: no done frame (the client asked to stop or went away)
  ctx.metrics.generations++;
  agg.total_time_ms = performance.now() - t0;
  if (agg.total_tokens > 0) {
    agg.tokens_per_second = (agg.total_tokens / agg.total_time_ms) * 1000;
    agg.avg_latency_ms = agg.total_time_ms / agg.total_tokens;
  }
  if (summary.privacy) agg.dp_epsilon_spent = summary.privacy.epsilon;
  if (summary.expert) {
    agg.expert_distribution = { [summary.expert]: agg.total_tokens };
  }
  timedSend(ws, () =>
    JSON.stringify({
      type: 'done',
      aggregate: agg,
      done: true,
      summary: {
        text: summary!.text,
        tokens: summary!.tokens,
        tok_s: summary!.tokPerS,
        mode: summary!.mode,
        expert: summary!.expert ?? expertLabel,
        stage_medians: summary!.stageMedians,
        privacy: summary!.privacy ?? null,
        insecure: summary!.insecure ?? false,
      },
    }),
  );
}

/** Wires a chat WebSocket: parses requests, enforces limits, runs one generation at a time. */
export function handleChatSocket(ctx: ServerContext, ws: WebSocket, req: IncomingMessage): void {
  const client = clientKey(req);
  let current: AbortController | undefined;
  const closed = new AbortController();
  ws.on('close', () => {
    closed.abort();
    current?.abort();
  });

  // Messages are handled as they come (a cancel must reach a running generation); each is
  // small: the endpoint's frame limit (server.ts) refuses big ones before they are buffered.
  ws.on('message', (data, isBinary) => {
    void (async () => {
      const t0 = performance.now();
      let ok = true;
      try {
        if (isBinary) throw new RequestError('chat/stream takes JSON text frames', { field: 'frame' });
        const msg = parseJsonObject(frameText(data as Buffer), 'message');
        const type = msg.type ?? 'chat';
        if (type === 'cancel') {
          current?.abort();
          return;
        }
        if (type === 'ping') {
          timedSend(ws, () => JSON.stringify({ type: 'pong' }));
          return;
        }
        if (type !== 'chat') {
          throw new RequestError(`unknown message type ${JSON.stringify(type)}; chat/stream takes "chat" (default), "cancel", "ping"`, {
            field: 'type',
            code: 'unknown_type',
          });
        }
        if (current) throw new RequestError('a generation is already running on this connection; send {"type":"cancel"} or wait for "done"', { status: 409, code: 'busy_connection' });
        const chat = parseChatRequest(msg, ctx.service.experts());
        if (ctx.closing) throw new RequestError('server is shutting down', { status: 503, code: 'shutting_down' });
        checkRate(ctx, client);
        const { controller, done } = track(ctx, closed.signal);
        current = controller;
        try {
          // Waiting for a slot: the client hears its place in the line, and again as it moves up.
          const release = await ctx.gate.acquire(controller.signal, (position) =>
            timedSend(ws, () => JSON.stringify({ type: 'queued', position, slots: ctx.gate.limit })),
          );
          try {
            await streamChat(ctx, ws, chat, controller.signal);
          } finally {
            release();
          }
        } catch (err) {
          if (!controller.signal.aborted) throw err;
        } finally {
          done();
          current = undefined;
        }
        // Stopped by {"type":"cancel"} (or shutdown): say so; a closed socket hears nothing.
        if (controller.signal.aborted && !closed.signal.aborted) {
          timedSend(ws, () => JSON.stringify({ type: 'cancelled', reason: ctx.closing ? 'server shutting down' : 'cancelled by the client' }));
        }
      } catch (err) {
        ok = false;
        if (!closed.signal.aborted) sendErrorFrame(ws, err);
      } finally {
        ctx.metrics.request('ws:/api/v1/chat/stream', performance.now() - t0, ok);
      }
    })();
  });
}
